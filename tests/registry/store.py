"""A real MLflow sqlite store with real sklearn models, built once per session.

Shared by tests/registry and tests/gate. Everything lives under a tmp dir:
the database, and the artifact root (MLflow would otherwise default to
./mlruns in the current directory, i.e. the repo tree).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from mlci.adapters.mlflow import tracking_uri_scope

# MLflow 3 sends usage telemetry unless told not to; without internet each
# event can stall for seconds. GitLab runners set GITLAB_CI, which MLflow
# already treats as "off"; tests must say so themselves. DO_NOT_TRACK survives
# the clean_env fixture (which drops MLFLOW_*).
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

_BUILT: dict[str, TrainedStore] = {}


@dataclass
class TrainedStore:
    uri: str
    root: Path
    experiment_id: str
    runs: dict[str, str] = field(default_factory=dict)  # label -> run id
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    sample_csv: Path | None = None


def _slow_model_class():
    """A pyfunc wrapper that sleeps in predict: a deliberately slow model."""
    import mlflow.pyfunc

    class SleepyWrapper(mlflow.pyfunc.PythonModel):
        def __init__(self, delay_s: float):
            self.delay_s = delay_s

        def predict(self, context, model_input, params=None):
            time.sleep(self.delay_s)
            return [0] * len(model_input)

    return SleepyWrapper


def _score(model, X, y, slices) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, log_loss

    predicted = model.predict(X)
    metrics = {
        "accuracy": float(accuracy_score(y, predicted)),
        "f1": float(f1_score(y, predicted)),
        "log_loss": float(log_loss(y, model.predict_proba(X))),
    }
    for name, mask in slices.items():
        metrics[f"accuracy_slice_{name}"] = float(accuracy_score(y[mask], predicted[mask]))
    return metrics


def build_store(root: Path, *, with_slow: bool = True) -> TrainedStore:
    """Train a good and a worse classifier (and a slow pyfunc) into a fresh sqlite store."""
    import mlflow
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from mlflow import MlflowClient
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    root.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri, uri)
    experiment_id = client.create_experiment("mlci-tests", artifact_location=(root / "artifacts").as_uri())
    store = TrainedStore(uri=uri, root=root, experiment_id=experiment_id)

    X, y = make_classification(n_samples=600, n_features=8, n_informative=5, random_state=7)
    columns = [f"f{i}" for i in range(X.shape[1])]
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=7)
    slices = {"low": X_test[:, 0] < 0, "high": X_test[:, 0] >= 0}
    frame_test = pd.DataFrame(X_test, columns=columns)
    store.sample_csv = root / "sample.csv"
    frame_test.assign(label=y_test).to_csv(store.sample_csv, index=False)

    rng = np.random.default_rng(7)
    models = {
        "good": LogisticRegression(max_iter=500).fit(pd.DataFrame(X_train, columns=columns), y_train),
        # Trained on two uninformative noise columns: clearly worse on every metric.
        "worse": LogisticRegression(max_iter=500).fit(
            pd.DataFrame(np.c_[X_train[:, :1] * 0, rng.normal(size=(len(X_train), 7))], columns=columns), y_train
        ),
    }

    with tracking_uri_scope(uri):
        for label, model in models.items():
            with mlflow.start_run(experiment_id=experiment_id, run_name=label) as run:
                metrics = _score(model, frame_test, y_test, slices)
                mlflow.log_metrics(metrics)
                mlflow.log_param("label", label)
                mlflow.set_tags({"mlci.gitlab.commit": f"commit-{label}", "gitlab.CI_JOB_ID": "4242",
                                 "mlci.fingerprint": f"fp-{label}"})
                mlflow.sklearn.log_model(model, name="model", input_example=frame_test.head(5),
                                         pip_requirements=["scikit-learn"])
            store.runs[label] = run.info.run_id
            store.metrics[label] = metrics
        if with_slow:
            with mlflow.start_run(experiment_id=experiment_id, run_name="slow") as run:
                # Same quality as the good model on paper, but 150 ms per call:
                # far above any budget a loaded CI machine could make a fast model miss.
                mlflow.log_metrics(store.metrics["good"])
                mlflow.pyfunc.log_model(name="model", python_model=_slow_model_class()(0.15),
                                        input_example=frame_test.head(5), pip_requirements=["mlflow"])
            store.runs["slow"] = run.info.run_id
            store.metrics["slow"] = store.metrics["good"]
        # A run with metrics but no model at all.
        with mlflow.start_run(experiment_id=experiment_id, run_name="no-model") as run:
            mlflow.log_metrics(store.metrics["good"])
        store.runs["no-model"] = run.info.run_id
    return store


def shared_store(tmp_path_factory) -> TrainedStore:
    """One store per test process, shared by tests/registry and tests/gate."""
    if "store" not in _BUILT:
        _BUILT["store"] = build_store(tmp_path_factory.mktemp("mlflow-store"))
    return _BUILT["store"]
