"""`mlci local-pipeline` runs a user's own pipeline under a real gitlab-ci-local, as the README says."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.e2e.harness import GCL, VENV_BIN, ensure_tools, make_workspace

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("e2e-local")]


def local_pipeline(root, *args: str) -> subprocess.CompletedProcess:
    """As a user types it: gitlab-ci-local on PATH, this mlci installed, no harness variables."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("MLFLOW_", "MLCI_", "CI_"))}
    env.update(PATH=f"{GCL.parent}:{VENV_BIN}:{os.environ['PATH']}", FORCE_COLOR="0",
               MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    return subprocess.run([str(VENV_BIN / "mlci"), "local-pipeline", *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)


def test_the_example_on_master_keeps_its_deploy_jobs_and_runs_isolated(tmp_path):
    ensure_tools()
    ws = make_workspace(tmp_path)
    ws.git("branch", "-m", "master")

    listed = local_pipeline(ws.root, "--list")
    assert listed.returncode == 0, listed.stderr
    assert "default branch master" in listed.stdout
    for job in ("mlci-data-check", "mlci-train", "mlci-gate", "mlci-deploy-staging", "mlci-smoke-test"):
        assert job in listed.stdout, (job, listed.stdout)

    ws.git("checkout", "-q", "-b", "feature/tune")
    on_feature = local_pipeline(ws.root, "--list")
    assert "mlci-train" in on_feature.stdout and "mlci-deploy-staging" not in on_feature.stdout
    ws.git("checkout", "-q", "master")

    run = local_pipeline(ws.root, "--job", "mlci-data-check")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "PASS  mlci-data-check" in run.stdout
    from mlci import __version__

    assert f"> mlci {__version__}" in run.stdout, "the installed mlci ran"
    assert "pip install" not in run.stdout and "uv pip" not in run.stdout
    assert (ws.root / ".gitlab-ci-local" / "builds" / "mlci-data-check" / "train.py").exists(), "its own copy"
    assert (ws.root / "mlci-out" / "data-check.junit.xml").exists(), "declared artifacts come back"
    assert subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ws.root,
                          capture_output=True, text=True).stdout == "", "the user's files are not edited"


def test_a_fresh_mlci_init_project_runs_and_its_exit_code_is_the_pipelines(tmp_path):
    ensure_tools()
    root = tmp_path / "churn"
    root.mkdir()
    subprocess.run([str(VENV_BIN / "mlci"), "init"], cwd=root, check=True, capture_output=True)
    (root / "data").mkdir()
    write = ("import polars as pl, sys; "
             "pl.DataFrame({'x': list(range(int(sys.argv[1])))}).write_parquet('data/train.parquet')")
    subprocess.run([sys.executable, "-c", write, "20"], cwd=root, check=True)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "start"]):
        subprocess.run(["git", *args], cwd=root, check=True)

    run = local_pipeline(root, "--job", "mlci-data-check")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "PASS  mlci-data-check" in run.stdout
    assert "data check PASSED" in run.stdout
    assert subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True).stdout == "", \
        "mlci init's .gitignore covers what a local run writes"

    subprocess.run([sys.executable, "-c", write, "0"], cwd=root, check=True)  # the contract wants at least one row
    failed = local_pipeline(root, "--job", "mlci-data-check")
    assert failed.returncode != 0
    assert "FAIL  mlci-data-check" in failed.stdout
    assert "the pipeline failed" in failed.stderr and "Traceback" not in failed.stderr
