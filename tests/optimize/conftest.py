"""A real sqlite MLflow store holding the example project's model, trained by its own train.py.

Runs (built once per worker, in-process):
  example    the tumor classifier as examples/tumor-classifier/train.py logs it; `optimized` exports it
  strict     the same model again, for a parity check that must fail (its tags change)
  unsupported a custom scikit-learn estimator skl2onnx cannot convert
  plain      a classifier nobody optimizes
"""

from __future__ import annotations

import json
import os
import runpy
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from mlci.adapters.mlflow import tracking_uri_scope

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tumor-classifier"
NON_FEATURES = ["sample_id", "site", "collected_at", "target"]
MODEL = "tumor-classifier"

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")


@dataclass
class Store:
    uri: str
    root: Path
    runs: dict[str, str] = field(default_factory=dict)


def _train_example(uri: str, experiment_id: str) -> str:
    """Run the example's train.py in this process, the way `mlci train` would run it."""
    import mlflow

    argv, cwd = sys.argv, os.getcwd()
    os.environ["MLFLOW_EXPERIMENT_ID"] = experiment_id
    try:
        os.chdir(EXAMPLE)
        sys.argv = ["train.py"]
        with tracking_uri_scope(uri):
            runpy.run_path(str(EXAMPLE / "train.py"), run_name="__main__")
            return mlflow.last_active_run().info.run_id
    finally:
        os.chdir(cwd)
        sys.argv = argv
        os.environ.pop("MLFLOW_EXPERIMENT_ID", None)


def _build(root: Path) -> Store:
    import mlflow
    import mlflow.sklearn
    import pandas as pd
    from mlflow import MlflowClient
    from sklearn.linear_model import LogisticRegression

    from tests.optimize.estimators import MedianRegressor

    root.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    experiment_id = MlflowClient(uri).create_experiment("optimize-tests", artifact_location=(root / "a").as_uri())
    store = Store(uri=uri, root=root)
    store.runs["example"] = _train_example(uri, experiment_id)
    store.runs["strict"] = _train_example(uri, experiment_id)
    frame = pd.read_parquet(EXAMPLE / "data" / "patients.parquet")
    features = frame.drop(columns=NON_FEATURES)
    with tracking_uri_scope(uri), mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.sklearn.log_model(MedianRegressor().fit(features, frame["mean_area"]), name="model",
                                 input_example=features.head(3), pip_requirements=["scikit-learn"],
                                 skops_trusted_types=["tests.optimize.estimators.MedianRegressor"])
    store.runs["unsupported"] = run.info.run_id
    with tracking_uri_scope(uri), mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_metric("accuracy", 0.9)
        mlflow.sklearn.log_model(LogisticRegression(max_iter=50).fit(features, frame["target"]), name="model",
                                 input_example=features.head(3), pip_requirements=["scikit-learn"])
    store.runs["plain"] = run.info.run_id
    return store


@pytest.fixture(scope="session")
def optimize_store(tmp_path_factory) -> Store:
    return _build(tmp_path_factory.mktemp("optimize-store"))


class Project:
    """A directory with an mlci.yml pointing at the store and the example's data."""

    def __init__(self, root: Path, store: Store, run_cli):
        self.root, self.store, self._run_cli = root, store, run_cli
        self.out = root / "mlci-out"

    def write_config(self, **sections) -> Path:
        doc = {
            "model": {"name": MODEL},
            "mlflow": {"tracking-uri": self.store.uri},
            "gate": {"latency": {"sample": str(EXAMPLE / "data" / "reference.parquet"),
                                 "drop-columns": NON_FEATURES, "batch-rows": 20, "repeats": 5}},
            "optimize": {"latency": {"repeats": 5, "warmup": 1}},
        }
        for key, value in sections.items():
            doc[key] = {**doc.get(key, {}), **value} if isinstance(value, dict) else value
        path = self.root / "mlci.yml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        return path

    def mlci(self, *args: str):
        return self._run_cli("--config", str(self.root / "mlci.yml"), "--out-dir", str(self.out), *args)

    def json(self, name: str) -> dict:
        return json.loads((self.out / name).read_text(encoding="utf-8"))

    def run_tags(self, label: str) -> dict[str, str]:
        from mlflow import MlflowClient

        return dict(MlflowClient(self.store.uri).get_run(self.store.runs[label]).data.tags)


QUANTIZED = {
    "quantize": "dynamic-int8",
    "label-column": "target",
    "parity": {"max-abs-diff": 0.1, "min-agreement": 0.98, "metric": {"name": "accuracy", "max-delta": 0.01}},
}


@pytest.fixture
def project(tmp_path, optimize_store, run_cli, clean_env) -> Project:
    clean_env.chdir(tmp_path)
    return Project(tmp_path, optimize_store, run_cli)


@pytest.fixture(scope="session")
def optimized(optimize_store, tmp_path_factory):
    """`mlci optimize` on the example run, quantized, once: (exit code, stdout, stderr, project)."""
    from mlci.cli import main

    root = tmp_path_factory.mktemp("optimized")
    project = Project(root, optimize_store, None)
    project.write_config(optimize={**QUANTIZED, "latency": {"repeats": 5, "warmup": 1}})
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith(("CI_", "MLCI_", "MLFLOW_"))}
    try:
        code = main(["--config", str(root / "mlci.yml"), "--out-dir", str(project.out), "optimize",
                     "--run", optimize_store.runs["example"]])
    finally:
        os.environ.update(saved)
    return code, project
