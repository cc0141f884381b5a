from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.registry.store import shared_store


@pytest.fixture(scope="session")
def gate_store(tmp_path_factory):
    """Good, worse and deliberately slow models in a real sqlite MLflow store (once per worker)."""
    return shared_store(tmp_path_factory)


@pytest.fixture
def model_name(request) -> str:
    return "gate-" + request.node.name.replace("[", "-").replace("]", "").replace("_", "-")[:80]


class GateProject:
    """A project directory with an mlci.yml, and a way to run `mlci gate` in it."""

    def __init__(self, root: Path, store, model: str, run_cli):
        self.root, self.store, self.model, self._run_cli = root, store, model, run_cli
        self.out = root / "mlci-out"

    def write_config(self, gate: dict, *, mode: str = "alias", extra: dict | None = None) -> Path:
        doc = {
            "model": {"name": self.model, "metrics-direction": {"accuracy*": "higher", "f1": "higher",
                                                               "log_loss": "lower"}},
            "mlflow": {"tracking-uri": self.store.uri, "registry-mode": mode},
            "gate": gate,
            **(extra or {}),
        }
        path = self.root / "mlci.yml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        return path

    def gate(self, label: str | None, *args: str):
        run = ["--run", self.store.runs[label]] if label else []
        return self._run_cli("--config", str(self.root / "mlci.yml"), "--out-dir", str(self.out),
                             "gate", *run, *args)

    def env(self) -> dict[str, str]:
        from mlci.outputs.dotenv import read_dotenv

        return read_dotenv(self.out / "gate.env")

    def json(self) -> dict:
        return json.loads((self.out / "gate.json").read_text(encoding="utf-8"))

    def registry(self, mode: str = "alias"):
        from mlci.adapters.ci_env import CiEnv
        from mlci.adapters.mlflow import Registry

        return Registry(self.store.uri, mode=mode, ci=CiEnv(user_login="setup"))

    def crown(self, label: str, *, mode: str = "alias") -> str:
        """Register the run `label` and make it the champion, as a production deploy would."""
        registry = self.registry(mode)
        version = registry.register(self.model, self.store.runs[label]).version
        registry.move_marker(self.model, "champion", version, reason="test setup")
        return version


@pytest.fixture
def project(tmp_path, gate_store, model_name, run_cli, clean_env) -> GateProject:
    clean_env.chdir(tmp_path)
    return GateProject(tmp_path, gate_store, model_name, run_cli)
