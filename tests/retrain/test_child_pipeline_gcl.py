"""The child pipeline run as GitLab would run it: gitlab-ci-local, `trigger: include: artifact`, shell executor.

A minimal parent (decide, then trigger) stands in for ci_templates/mlci-retrain.yml,
so this proves what `mlci retrain decide` writes, not the template: the dotenv
chain train -> gate -> conclude, a blocked gate still reaching conclude, and the
light skip branch.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
GCL = REPO_ROOT / "node_modules" / ".bin" / "gitlab-ci-local"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not GCL.exists() or shutil.which("rsync") is None,
                       reason="gitlab-ci-local (npm ci) and rsync are needed; `make test` installs both"),
]

PARENT = """
stages: [decide, run]
decide:
  stage: decide
  script:
    - mlci retrain decide --train-command "python train.py" --data-job none
  artifacts:
    paths: [mlci-out/]
    reports:
      dotenv: mlci-out/retrain.env
run:
  stage: run
  needs: [decide]
  trigger:
    include:
      - artifact: mlci-out/retrain-pipeline.yml
        job: decide
    strategy: depend
"""

TRAIN = """
import mlflow, mlflow.sklearn, numpy as np
from sklearn.linear_model import LogisticRegression
rng = np.random.default_rng(0)
x = rng.normal(size=(200, 3)); y = (x[:, 0] > 0).astype(int)
model = LogisticRegression().fit(x, y)
with mlflow.start_run():
    mlflow.log_metric("accuracy", float(model.score(x, y)))
    mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
"""


def _workspace(root: Path, tracking_uri: str) -> Path:
    work = root / "project"
    work.mkdir()
    (work / ".gitlab-ci.yml").write_text(textwrap.dedent(PARENT).lstrip())
    (work / "train.py").write_text(textwrap.dedent(TRAIN).lstrip())
    (work / ".gitignore").write_text(".gitlab-ci-local/\nmlci-out/\n")
    (work / "mlci.yml").write_text(textwrap.dedent(f"""
        model:
          name: gcl-retrain
        mlflow:
          tracking-uri: {tracking_uri}
        retrain:
          max-model-age: 30d
        gate:
          rules:
            - metric: accuracy
              min: 1.01   # impossible: this gate always blocks
    """).lstrip())
    git = ["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=work, check=True)
    subprocess.run(["git", "remote", "add", "origin", "https://gitlab.example.com/demo/retrain.git"], cwd=work,
                   check=True)
    subprocess.run(["git", "add", "-A"], cwd=work, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=work, check=True)
    return work


def _run_pipeline(work: Path, *variables: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CI_", "MLCI_", "MLFLOW_", "GITLAB_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    args = [str(GCL), "--force-shell-executor", "--no-color"]
    for variable in variables:
        args += ["--variable", variable]
    return subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, timeout=600)


def _child_summary(work: Path, job: str) -> dict:
    return json.loads((work / ".gitlab-ci-local" / "artifacts" / job / "mlci-out" / "retrain-summary.json").read_text())


def test_drift_trains_gates_and_a_blocked_gate_still_concludes_then_no_drift_skips(tmp_path):
    from mlflow import MlflowClient

    tracking_uri = f"sqlite:///{tmp_path}/mlflow.db"
    work = _workspace(tmp_path, tracking_uri)

    drifted = _run_pipeline(work, "MLCI_DRIFT=true")
    log = drifted.stdout + drifted.stderr
    for job in ("mlci-train", "mlci-gate", "mlci-retrain-conclude"):
        assert f"-> {job}" in log, log[-4000:]
    assert "mlci-retrain-skipped" not in log
    summary = _child_summary(work, "mlci-retrain-conclude")
    # The gate exited 1 (allowed), its dotenv still reached conclude, which recorded the block.
    assert summary["outcome"] == "blocked" and summary["gate"] == "failed", log[-4000:]
    assert "data drift detected" in " ".join(summary["reasons"])

    # A champion appears (registered by hand here); undrifted data then needs no training at all.
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    [run] = client.search_runs([e.experiment_id for e in client.search_experiments()])
    client.create_registered_model("gcl-retrain")
    version = client.create_model_version("gcl-retrain", f"{run.info.artifact_uri}/model", run.info.run_id).version
    client.set_registered_model_alias("gcl-retrain", "champion", version)

    calm = _run_pipeline(work, "MLCI_DRIFT=false")
    log = calm.stdout + calm.stderr
    assert calm.returncode == 0, log[-4000:]
    assert "-> mlci-retrain-skipped" in log and "-> mlci-train" not in log
    summary = _child_summary(work, "mlci-retrain-skipped")
    assert summary["outcome"] == "skipped"
    assert summary["reasons"][0] == "no data drift"
    assert "retrain skipped: no data drift" in log
