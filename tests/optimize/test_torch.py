"""A PyTorch model through torch.onnx: the exporter, parity on raw outputs and class agreement."""

from __future__ import annotations

import pytest

from tests.optimize.conftest import EXAMPLE, NON_FEATURES, Project, Store

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("optimize")]


def _torch():
    try:
        import torch
    except ModuleNotFoundError:
        pytest.fail("torch is not installed: `make test` installs its CPU build (pip install torch==2.13.0)")
    return torch


def test_a_pytorch_classifier_is_exported_with_torch_onnx_and_keeps_its_answers(tmp_path, run_cli, clean_env):
    import mlflow
    import mlflow.pytorch
    import numpy as np
    import pandas as pd

    from mlci.adapters.mlflow import tracking_uri_scope

    torch = _torch()
    clean_env.chdir(tmp_path)
    clean_env.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    # A store of its own: the example runs of the other tests are not needed here.
    project = Project(tmp_path, Store(uri=f"sqlite:///{tmp_path / 'mlflow.db'}", root=tmp_path), run_cli)
    torch.manual_seed(0)
    frame = pd.read_parquet(EXAMPLE / "data" / "patients.parquet")
    features = frame.drop(columns=NON_FEATURES).to_numpy(np.float32)
    features = (features - features.mean(axis=0)) / features.std(axis=0)
    target = torch.from_numpy(frame["target"].to_numpy())
    net = torch.nn.Sequential(torch.nn.Linear(features.shape[1], 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    optimizer = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(30):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(net(torch.from_numpy(features)), target).backward()
        optimizer.step()
    pd.DataFrame(features, columns=[f"x{i}" for i in range(features.shape[1])]).to_parquet(
        project.root / "sample.parquet")
    with tracking_uri_scope(project.store.uri), mlflow.start_run() as run:
        # A pickled nn.Module: the TorchScript exporter traces it (MLflow's default pt2 format goes to dynamo).
        mlflow.pytorch.log_model(net.eval(), name="model", input_example=features[:3], serialization_format="pickle",
                                 pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"])
    project.write_config(optimize={"sample": str(project.root / "sample.parquet"), "rows": 200,
                                   "latency": {"repeats": 5, "warmup": 1, "batch-size": 50}})

    code, _, err = project.mlci("optimize", "--run", run.info.run_id)
    assert code == 0, err
    doc = project.json("optimize.json")
    assert doc["flavor"] == "pytorch" and doc["exporter"].startswith("torch.onnx") and "torchscript" in doc["exporter"]
    assert doc["parity"]["task"] == "classification"
    checks = {c["name"]: c for c in doc["parity"]["checks"]}
    assert checks["max-abs-diff"]["observed"] < 1e-4 and checks["agreement"]["observed"] == 1.0
    assert set(doc["latency"]) == {"1", "50"}
    assert doc["model-uri"].startswith("models:/")
