"""Fixtures for the retrain tests: a real sqlite MLflow store, a project dir with mlci.yml, webhooks."""

from __future__ import annotations

import contextlib
import textwrap
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class Store:
    uri: str
    root: Path
    experiment_id: str
    client: object

    def add_version(self, model: str, *, validated: bool = True, champion: bool = False) -> str:
        """Register a new version of `model` with plain MLflow APIs; returns its version number."""
        from mlflow.exceptions import MlflowException

        run = self.client.create_run(self.experiment_id)
        self.client.log_metric(run.info.run_id, "accuracy", 0.9)
        self.client.set_terminated(run.info.run_id)
        with contextlib.suppress(MlflowException):  # already registered
            self.client.create_registered_model(model)
        version = self.client.create_model_version(model, f"{run.info.artifact_uri}/model", run.info.run_id).version
        if validated:
            self.client.set_model_version_tag(model, version, "mlci.validated", "true")
        if champion:
            self.client.set_registered_model_alias(model, "champion", version)
        return str(version)

    def version_tags(self, model: str, version: str) -> dict[str, str]:
        return dict(self.client.get_model_version(model, version).tags)

    def aliases(self, model: str) -> dict[str, str]:
        return {k: str(v) for k, v in self.client.get_registered_model(model).aliases.items()}


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory) -> Store:
    """One sqlite MLflow store per xdist worker; tests keep apart by using their own model names."""
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("retrain-mlflow")
    uri = f"sqlite:///{root}/mlflow.db"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment_id = client.create_experiment("retrain-tests", artifact_location=str(root / "artifacts"))
    return Store(uri=uri, root=root, experiment_id=experiment_id, client=client)


@pytest.fixture
def model_name() -> str:
    return f"churn-{uuid.uuid4().hex[:8]}"


@dataclass
class Project:
    root: Path
    out: Path

    def write_config(self, text: str) -> Path:
        path = self.root / "mlci.yml"
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        return path

    def write_data(self, data: dict) -> Path:
        import yaml

        path = self.root / "mlci.yml"
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        return path

    def cli(self, *args: str) -> list[str]:
        """Global options first, so every call reads this project's config and writes to its out dir."""
        return ["--config", str(self.root / "mlci.yml"), "--out-dir", str(self.out), *args]


@pytest.fixture
def project(tmp_path, clean_env) -> Project:
    """An empty project directory as the working directory, with no CI/MLCI/MLflow variables leaking in."""
    clean_env.chdir(tmp_path)
    return Project(root=tmp_path, out=tmp_path / "mlci-out")
