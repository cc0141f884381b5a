"""Deploying `artifact: optimized`: a real `mlflow models serve` runs the ONNX model and the smoke test calls it."""

from __future__ import annotations

import pytest

from tests.optimize.conftest import EXAMPLE, NON_FEATURES

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("optimize")]


def test_staging_with_artifact_optimized_serves_the_onnx_model_and_the_smoke_test_passes(optimized, project):
    import mlflow
    from mlflow import MlflowClient
    from mlflow.models import Model

    from mlci.deploy.serve import read_state, stop_server

    code, optimized_project = optimized
    assert code == 0
    onnx_uri = optimized_project.json("optimize.json")["model-uri"]
    state_dir = project.root / "serve-state"
    staging = {
        "name": "staging", "target": "mlflow-serve", "artifact": "optimized",
        "serve": {"start-timeout": 600},
        "smoke": {"data": str(EXAMPLE / "data" / "reference.parquet"), "drop-columns": NON_FEATURES,
                  "rows": 5, "requests": 5, "p95-budget-ms": 10000, "wait": 60},
    }
    project.write_config(gate={"rules": [{"metric": "accuracy", "min": 0.9}]},
                         deploy={"state-dir": str(state_dir), "environments": [staging, {"name": "production"}]})
    code, out, err = project.mlci("gate", "--run", project.store.runs["example"])
    assert code == 0, err
    version = project.json("gate.json")["registered_version"]

    state = None
    try:
        code, out, err = project.mlci("deploy", "--to", "staging")
        assert code == 0, err
        state = read_state(state_dir, "staging")
        assert state.artifact == "optimized" and state.model_uri == onnx_uri
        deployed = project.json("deploy-staging.json")
        assert deployed["details"]["artifact"] == "optimized" and deployed["details"]["served-uri"] == onnx_uri
        assert deployed["audit"]["artifact"] == "optimized"

        # What runs is the ONNX model of the onnx flavour, not the pickled pipeline.
        mlflow.set_tracking_uri(project.store.uri)
        served_dir = mlflow.artifacts.download_artifacts(state.model_uri, dst_path=str(project.root / "served"))
        assert "onnx" in Model.load(served_dir).flavors and "sklearn" not in Model.load(served_dir).flavors

        code, out, err = project.mlci("smoke-test", "--env", "staging")
        assert code == 0, err
        assert "serves the optimized model" in out
        smoke = project.json("smoke-staging.json")
        assert smoke["status"] == "passed" and smoke["served"]["artifact"] == "optimized"
        assert smoke["served"]["model-uri"] == onnx_uri
        assert all(set(p) == {"label"} for p in smoke["predictions-sample"])

        tags = MlflowClient(project.store.uri).get_model_version("tumor-classifier", version).tags
        assert tags["mlci.served.staging"] == "optimized"
        assert tags["mlci.optimize.model_uri"] == onnx_uri
    finally:
        if state is not None:
            stop_server(state)
