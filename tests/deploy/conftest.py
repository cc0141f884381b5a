"""Fixtures for the deploy area: a real MLflow sqlite registry with real sklearn models.

The session store holds model `demo` with three versions of linear models
whose predictions are known in closed form, so a test can tell from a
prediction which version answered:
  v1: y = x0 + 2*x1 + 3*x2 + 0.5   (gate-validated)
  v2: y = -x0 + 4*x2 - 1           (gate-validated)
  v3: y = x1                       (never validated: must not deploy)
Each test copies the database, so marker moves never leak between tests;
the artifacts are shared read-only.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlci.adapters.mlflow import tracking_uri_scope

MODEL = "demo"
COEFFICIENTS = {"1": ([1.0, 2.0, 3.0], 0.5), "2": ([-1.0, 0.0, 4.0], -1.0), "3": ([0.0, 1.0, 0.0], 0.0)}
FEATURES = ["f0", "f1", "f2"]
SAMPLE_ROWS = [[0.5, 1.0, -2.0], [3.0, -1.5, 0.25], [-4.0, 2.0, 1.0], [1.0, 1.0, 1.0]]


def expected_predictions(version: str, rows=SAMPLE_ROWS) -> list[float]:
    weights, bias = COEFFICIENTS[version]
    return [sum(w * x for w, x in zip(weights, row, strict=True)) + bias for row in rows]


@dataclass
class Store:
    root: Path
    db: Path


@pytest.fixture(scope="session")
def registry_store(tmp_path_factory) -> Store:
    """Built once per test run: xdist workers share it (under a lock), since tests only copy it."""
    import fcntl

    base = tmp_path_factory.getbasetemp()
    # Under xdist every worker has its own basetemp inside one per-run directory.
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    root = shared / "deploy-store"
    root.mkdir(exist_ok=True)
    with open(shared / "deploy-store.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not (root / "complete").exists():
                _build_store(root)
                (root / "complete").write_text("ok")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return Store(root=root, db=root / "mlflow.db")


def _build_store(root: Path) -> None:
    import mlflow
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from mlflow import MlflowClient
    from sklearn.linear_model import LinearRegression

    db = root / "mlflow.db"
    db.unlink(missing_ok=True)  # a worker that died mid-build leaves a partial store behind
    uri = f"sqlite:///{db}"
    client = MlflowClient(uri, uri)
    experiment_id = client.create_experiment("deploy-tests", artifact_location=(root / "artifacts").as_uri())
    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(40, 3)), columns=FEATURES)
    with tracking_uri_scope(uri):
        for version, (weights, bias) in COEFFICIENTS.items():
            y = X.to_numpy() @ np.array(weights) + bias
            with mlflow.start_run(experiment_id=experiment_id, run_name=f"v{version}") as run:
                model = LinearRegression().fit(X, y)
                # Explicit requirements skip MLflow's slow dependency inference. The input
                # example becomes serving_input_example.json, the smoke test's fallback payload.
                example = X.head(2) if version != "3" else None
                mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"], input_example=example)
            registered = mlflow.register_model(f"runs:/{run.info.run_id}/model", MODEL)
            assert registered.version == int(version)
            if version in ("1", "2"):
                client.set_model_version_tag(MODEL, version, "mlci.validated", "true")


@dataclass
class Project:
    root: Path
    config: Path
    out: Path
    tracking_uri: str
    registry_mode: str = "alias"

    def registry(self):
        from mlci.adapters.ci_env import CiEnv
        from mlci.adapters.mlflow import Registry

        return Registry(self.tracking_uri, mode=self.registry_mode, ci=CiEnv())

    def marker(self, name: str) -> str | None:
        holder = self.registry().get_marker(MODEL, name)
        return holder.version if holder else None

    def write_config(self, deploy_yaml: str) -> None:
        self.config.write_text(
            textwrap.dedent(
                f"""\
                model:
                  name: {MODEL}
                mlflow:
                  tracking-uri: {self.tracking_uri}
                  registry-mode: {self.registry_mode}
                """
            )
            + textwrap.dedent(deploy_yaml),
            encoding="utf-8",
        )

    def cli(self, *args: str) -> list[str]:
        return ["--config", str(self.config), "--out-dir", str(self.out), *args]


def make_project(root: Path, store: Store) -> Project:
    root.mkdir(parents=True, exist_ok=True)
    db = root / "mlflow.db"
    shutil.copyfile(store.db, db)
    (root / "sample.csv").write_text(
        ",".join([*FEATURES, "label"]) + "\n" + "".join(",".join(map(str, [*r, 0])) + "\n" for r in SAMPLE_ROWS),
        encoding="utf-8",
    )
    return Project(root=root, config=root / "mlci.yml", out=root / "mlci-out", tracking_uri=f"sqlite:///{db}")


# Two environments whose targets are commands that record what they were given.
COMMAND_DEPLOY = """\
deploy:
  environments:
    - name: staging
      target: command
      url: http://staging.invalid
      command: 'printf "%s %s %s" "$MLCI_MODEL_URI" "$MLCI_MODEL_VERSION" "$MLCI_ENVIRONMENT" > deployed-staging.txt'
    - name: production
      target: command
      command: ["sh", "-c", "printf '%s' \\"$MLCI_MODEL_URI\\" > deployed-production.txt"]
"""


@pytest.fixture
def project(tmp_path, registry_store, clean_env) -> Project:
    """A project using command targets, run from its own directory (cwd) with no CI variables."""
    proj = make_project(tmp_path / "project", registry_store)
    proj.write_config(COMMAND_DEPLOY)
    clean_env.chdir(proj.root)
    return proj


def stop_serve_processes(state_dirs: list[Path]) -> None:
    """Stop every model server a test started: the recorded ones by PID, then any stray child."""
    import psutil

    from mlci.deploy.serve import ServerState, stop_server

    for state_dir in state_dirs:
        for path in Path(state_dir).glob("*.json"):
            with contextlib.suppress(Exception):
                stop_server(ServerState.from_json(json.loads(path.read_text())), grace=5)
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "serve" in child.cmdline() and "models" in child.cmdline():
                child.kill()
                child.wait(5)
