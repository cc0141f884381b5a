"""A registry for canary releases: the tumor classifier as a good version, a failing one and two good successors.

v1, v3 and v4: the example's scikit-learn pipeline. v2: the same pipeline behind a
pyfunc that fails a planted share of its requests (MLServer answers 500). All
declare the same pinned requirements as the monitoring tests, so MLServer's
serving environment is built once and shared.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.monitor.conftest import build_planted_registry

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
    """v1 (good), v2 (fails 30% of requests), v3 and v4 (good), all gate-validated; returns the tracking URI."""
    return build_planted_registry(root, "canary", FAILING_MODEL_CODE, layout="good planted good good")


@pytest.fixture(scope="module")
def nginx_server():
    from tests.servers.nginx import start_nginx

    server = start_nginx()
    yield server
    server.stop()
