"""A registry for canary releases: the tumor classifier as a good version, a failing one and a good successor.

v1 and v3: the example's scikit-learn pipeline. v2: the same pipeline behind a
pyfunc that fails a planted share of its requests (MLServer answers 500). All
declare the same pinned requirements as the monitoring tests, so MLServer's
serving environment is built once and shared.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from mlci.adapters.mlflow import tracking_uri_scope
from tests.monitor.conftest import EXAMPLE, MODEL, features, requirements

FAILURE_SHARE = 0.3

FAILING_MODEL_CODE = f'''
import random

import mlflow
from mlflow.pyfunc import PythonModel


class FailingClassifier(PythonModel):
    def load_context(self, context):
        self.inner = mlflow.sklearn.load_model(context.artifacts["inner"])

    def predict(self, context, model_input, params=None):
        if random.random() < {FAILURE_SHARE}:
            raise RuntimeError("planted failure")
        return self.inner.predict(model_input)


mlflow.models.set_model(FailingClassifier())
'''


def build_registry(root: Path) -> str:
    """v1 (good), v2 (fails 30% of requests), v3 (good), all gate-validated; returns the tracking URI."""
    import mlflow
    import mlflow.pyfunc
    import mlflow.sklearn
    import pandas as pd
    from mlflow import MlflowClient
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri, uri)
    experiment = client.create_experiment("canary", artifact_location=(root / "artifacts").as_uri())
    frame = pd.read_parquet(EXAMPLE / "data" / "patients.parquet")
    X, y = features(frame).astype("float64"), frame["target"]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X, y)
    pins = requirements()
    with tracking_uri_scope(uri):
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.sklearn.log_model(model, name="model", pip_requirements=pins, input_example=X.head(2))
        good = f"runs:/{run.info.run_id}/model"
        mlflow.register_model(good, MODEL)
        inner = root / "inner-model"
        mlflow.sklearn.save_model(model, str(inner), pip_requirements=pins)
        code = root / "failing_model.py"
        code.write_text(textwrap.dedent(FAILING_MODEL_CODE), encoding="utf-8")
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.pyfunc.log_model(name="model", python_model=str(code), artifacts={"inner": str(inner)},
                                    pip_requirements=pins, input_example=X.head(2))
        mlflow.register_model(f"runs:/{run.info.run_id}/model", MODEL)
        mlflow.register_model(good, MODEL)
    for version in ("1", "2", "3"):
        client.set_model_version_tag(MODEL, version, "mlci.validated", "true")
    return uri


@pytest.fixture(scope="module")
def nginx_server():
    from tests.servers.nginx import start_nginx

    server = start_nginx()
    yield server
    server.stop()
