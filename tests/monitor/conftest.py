"""A real registry for the monitoring loop: the tumor classifier as a fast and a deliberately slow version.

v1: the example's scikit-learn pipeline. v2: the same pipeline behind a pyfunc
(models from code) that sleeps before answering, a planted latency regression.
Both declare the same pinned requirements, so MLServer's serving environment
is built once and shared.
"""

from __future__ import annotations

import importlib.metadata
import os
import textwrap
from pathlib import Path

from mlci.adapters.mlflow import tracking_uri_scope

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tumor-classifier"
NON_FEATURES = ["sample_id", "site", "collected_at", "target"]
MODEL = "tumor-classifier"
SLOW_SECONDS = 0.5

SLOW_MODEL_CODE = f'''
import time

import mlflow
from mlflow.pyfunc import PythonModel


class SlowClassifier(PythonModel):
    def load_context(self, context):
        self.inner = mlflow.sklearn.load_model(context.artifacts["inner"])

    def predict(self, context, model_input, params=None):
        time.sleep({SLOW_SECONDS})
        return self.inner.predict(model_input)


mlflow.models.set_model(SlowClassifier())
'''


def requirements() -> list[str]:
    names = ["mlflow", "scikit-learn", "numpy", "pandas", "scipy", "skops", "cloudpickle"]
    return [f"{name}=={importlib.metadata.version(name)}" for name in names]


def features(frame):
    return frame.drop(columns=NON_FEATURES)


def build_planted_registry(root: Path, experiment_name: str, planted_code: str, *, layout: str) -> str:
    """A sqlite registry of the example classifier; returns its tracking URI.

    `layout` names the versions in order: "good" is the scikit-learn pipeline, "planted" the same pipeline
    behind a pyfunc from `planted_code` (models from code, the pipeline as its "inner" artifact). Every
    version is gate-validated.
    """
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
    experiment = client.create_experiment(experiment_name, artifact_location=(root / "artifacts").as_uri())
    frame = pd.read_parquet(EXAMPLE / "data" / "patients.parquet")
    X, y = features(frame).astype("float64"), frame["target"]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X, y)
    pins = requirements()
    logged: dict[str, str] = {}
    with tracking_uri_scope(uri):
        for kind in layout.split():
            if kind not in logged:
                logged[kind] = _log_version(root, experiment, kind, model, X, pins, planted_code)
            mlflow.register_model(logged[kind], MODEL)
    for version in range(1, len(layout.split()) + 1):
        client.set_model_version_tag(MODEL, str(version), "mlci.validated", "true")
    return uri


def _log_version(root: Path, experiment: str, kind: str, model, X, pins: list[str], planted_code: str) -> str:
    import mlflow

    with mlflow.start_run(experiment_id=experiment) as run:
        if kind == "good":
            mlflow.sklearn.log_model(model, name="model", pip_requirements=pins, input_example=X.head(2))
        else:
            inner = root / "inner-model"
            mlflow.sklearn.save_model(model, str(inner), pip_requirements=pins)
            code = root / "planted_model.py"
            code.write_text(textwrap.dedent(planted_code), encoding="utf-8")
            mlflow.pyfunc.log_model(name="model", python_model=str(code), artifacts={"inner": str(inner)},
                                    pip_requirements=pins, input_example=X.head(2))
    return f"runs:/{run.info.run_id}/model"


def build_registry(root: Path) -> str:
    """Register v1 (fast) and v2 (slow), both gate-validated; returns the tracking URI."""
    return build_planted_registry(root, "monitor", SLOW_MODEL_CODE, layout="good planted")
