"""On the example project, tuning with the budget of a three-point grid finds an objective at least as good."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.e2e.harness import EXAMPLE

pytestmark = [pytest.mark.slow]

GRID = ("0.1", "1.0", "10.0")  # a parallel:matrix sweep of MLCI_PARAM_C


def test_tuning_matches_or_beats_the_grid_with_the_same_budget(tmp_path, clean_env, migrated_store, run_cli,
                                                                monkeypatch):
    root = tmp_path / "example"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("__pycache__", "mlci-out", ".mlci"))
    (root / ".mlci").mkdir()
    shutil.copyfile(migrated_store, root / ".mlci" / "mlflow.db")
    monkeypatch.chdir(root)
    # train.command is `python train.py`: the python with mlflow and scikit-learn, as in a training image.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{root / '.mlci' / 'mlflow.db'}")
    grid: dict[str, float] = {}
    for c in GRID:
        monkeypatch.setenv("MLCI_PARAM_C", c)
        code, out, err = run_cli("train")
        assert code == 0, out[-2000:] + err
        run_id = json.loads((root / "mlci-out" / "train.json").read_text())["run_id"]
        grid[c] = client.get_run(run_id).data.metrics["log_loss"]
    monkeypatch.delenv("MLCI_PARAM_C")

    code, out, err = run_cli("tune")
    assert code == 0, out[-2000:] + err
    doc = json.loads((root / "mlci-out" / "tune.json").read_text())
    assert doc["n_trials"] == len(GRID) and doc["counts"]["complete"] == len(GRID), "the same budget"
    best_grid = min(grid.values())
    assert doc["best"]["value"] <= best_grid, f"tuned {doc['best']} vs grid {grid}"
    first = doc["trials"][0]
    assert first["params"] == {"c": 1.0} and first["cache_hit"], "today's value was trained once, by the grid"
    print(f"grid log_loss {grid}; tuned best {doc['best']['value']:.4f} at c={doc['best']['params']['c']:.3g}")
