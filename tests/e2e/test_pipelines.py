"""The example project's pipelines, run end to end under gitlab-ci-local.

Real MLflow (sqlite store, and a real `mlflow server` for the MR scenario),
real `mlflow models serve` for deploys, and the loopback GitLab fake.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from tests.e2e.harness import REPO_ROOT, workspace_with_services
from tests.e2e.scenarios import (
    MAIN_PUSH,
    SCHEDULE,
    dotenv,
    prepare_data,
    served,
    set_training_default,
)
from tests.fakes.pypi_registry import FakePyPIRegistry
from tests.tools import uv

pytestmark = [pytest.mark.slow]

CHILD = "mlci-retrain-run"
DEPLOY_JOBS = ("mlci-deploy-staging", "mlci-smoke-test", "mlci-deploy-production")


def junit_counts(path) -> tuple[int, int]:
    root = ET.parse(path).getroot()
    return int(root.get("tests")), int(root.get("failures")) + int(root.get("errors"))


@pytest.mark.xdist_group("e2e-mr")
def test_merge_request_pipeline_posts_one_living_report(tmp_path):
    with workspace_with_services(tmp_path, mlflow_server=True) as ws:
        iid = ws.open_merge_request("feature/tune-c", "Tune regularisation")
        variables = ws.merge_request_variables(iid, "feature/tune-c")
        run = ws.run_pipeline("merge-request", variables)
        assert run.returncode == 0, run.output[-4000:]
        for job in ("mlci-data-check", "mlci-train", "mlci-gate", "mlci-report"):
            assert run.status(job) == "passed", (job, run.output[-4000:])
        assert not any(run.ran(job) for job in DEPLOY_JOBS), "merge requests never deploy"

        # dotenv flowed train -> gate: the gate judged exactly the run training produced.
        train_env, gate_env = dotenv(ws, "train.env"), dotenv(ws, "gate.env")
        assert gate_env["MLCI_RUN_ID"] == train_env["MLCI_RUN_ID"]
        assert gate_env["MLCI_GATE"] == "passed" and gate_env["MLCI_MODEL_VERSION"] == "1"
        assert train_env["MLCI_MODEL_URI"].startswith("runs:/")
        assert junit_counts(ws.out_dir / "data-check.junit.xml")[1] == 0
        tests, failures = junit_counts(ws.out_dir / "gate.junit.xml")
        assert tests >= 5 and failures == 0

        state = ws.fake_state()
        notes = state["notes"][iid]
        assert len(notes) == 1
        body = notes[0]["body"]
        assert "<!-- mlci-report:tumor-classifier -->" in body
        assert "| Metric |" in body and "`accuracy`" in body
        uploads = state["uploads"]
        assert uploads, "plots are uploaded to the GitLab instance itself"
        for upload in uploads:
            assert f"{ws.fake_gitlab.url}{upload['full_path']}" in body

        # A second push to the MR updates the same note instead of adding one.
        rerun = ws.run_pipeline("merge-request-again", variables, jobs=["mlci-report"], extra_args=["--needs"])
        assert rerun.returncode == 0, rerun.output[-3000:]
        assert len(ws.fake_state()["notes"][iid]) == 1


@pytest.mark.xdist_group("e2e-lifecycle")
def test_model_lifecycle_deploys_rolls_back_and_retrains_on_schedule(tmp_path):
    """Scenario 2 (default branch: staging, smoke, production, rollback), then scenario 5
    (schedules with and without drift) on the champion it leaves behind."""
    with workspace_with_services(tmp_path) as ws:
        default_branch_deploys_staging_then_production_then_rolls_back(ws)
        scheduled_retraining_skips_without_drift_and_retrains_on_drift(ws)


def default_branch_deploys_staging_then_production_then_rolls_back(ws):
    first = ws.run_pipeline("main-v1", MAIN_PUSH, manual=["mlci-deploy-production"])
    assert first.returncode == 0, first.output[-4000:]
    for job in ("mlci-data-check", "mlci-train", "mlci-gate", *DEPLOY_JOBS):
        assert first.status(job) == "passed", (job, first.output[-4000:])
    assert served(ws, "staging")["process-model-uri"] == "models:/tumor-classifier/1"
    assert served(ws, "production")["process-model-uri"] == "models:/tumor-classifier/1"

    set_training_default(ws, c=0.3)
    ws.commit("Stronger regularisation")
    second = ws.run_pipeline("main-v2", MAIN_PUSH, manual=["mlci-deploy-production"])
    assert second.returncode == 0, second.output[-4000:]
    assert dotenv(ws, "gate.env")["MLCI_MODEL_VERSION"] == "2"
    assert served(ws, "staging")["process-model-uri"] == "models:/tumor-classifier/2"
    assert served(ws, "production")["process-model-uri"] == "models:/tumor-classifier/2"

    rollback = ws.run_pipeline(
        "rollback", {**MAIN_PUSH, "MLCI_ROLLBACK_REASON": "latency complaints"},
        jobs=["mlci-rollback-production"], manual=["mlci-rollback-production"],
    )
    assert rollback.returncode == 0, rollback.output[-4000:]
    production = served(ws, "production")
    assert production["process-model-uri"] == "models:/tumor-classifier/1"
    assert served(ws, "staging")["process-model-uri"] == "models:/tumor-classifier/2"


def scheduled_retraining_skips_without_drift_and_retrains_on_drift(ws):
    # The parent pipeline decides; its trigger job runs the generated child pipeline
    # (gitlab-ci-local follows `trigger: include: artifact`), whose jobs are keyed "mlci-retrain-run/<job>".
    quiet = ws.run_pipeline("schedule-quiet", SCHEDULE)
    assert quiet.returncode == 0, quiet.output[-4000:]
    assert quiet.status("mlci-retrain-decide") == "passed"
    assert dotenv(ws, "drift.env")["MLCI_DRIFT"] == "false"
    assert dotenv(ws, "retrain.env")["MLCI_RETRAIN"] == "false"
    assert quiet.status(f"{CHILD}/mlci-retrain-skipped") == "passed", quiet.output[-3000:]
    assert not any(job.startswith(f"{CHILD}/mlci-train") for job in quiet.jobs), "no GPU job for nothing"
    assert not quiet.ran("mlci-train") and not quiet.ran("mlci-deploy-staging")
    assert '"outcome": "skipped"' in (ws.out_dir / "retrain-summary.json").read_text()

    drifted = ws.run_pipeline("schedule-drift", {**SCHEDULE, "EXAMPLE_DATA_VARIANT": "drifted"})
    assert drifted.returncode == 0, drifted.output[-4000:]
    assert dotenv(ws, "drift.env")["MLCI_DRIFT"] == "true"
    assert dotenv(ws, "retrain.env")["MLCI_RETRAIN"] == "true"
    for job in ("mlci-train", "mlci-gate", "mlci-retrain-conclude"):
        assert drifted.status(f"{CHILD}/{job}") == "passed", (job, drifted.output[-4000:])
    summary = (ws.out_dir / "retrain-summary.json").read_text()
    assert '"outcome": "promoted"' in summary
    assert served(ws, "staging")["process-model-uri"] == "models:/tumor-classifier/3"
    assert served(ws, "production")["process-model-uri"] == "models:/tumor-classifier/1", "production stays manual"


@pytest.mark.xdist_group("e2e-gate")
def test_a_worse_model_stops_the_pipeline_before_any_deploy(tmp_path):
    with workspace_with_services(tmp_path, fake_gitlab=False) as ws:
        set_training_default(ws, variant="worse")
        ws.commit("Try a single feature")
        run = ws.run_pipeline("gate-must-fail", MAIN_PUSH, manual=["mlci-deploy-production"])
        assert run.returncode != 0
        assert run.status("mlci-train") == "passed"
        assert run.status("mlci-gate") == "failed"
        assert not any(run.ran(job) for job in DEPLOY_JOBS), run.output[-3000:]
        gate_env = dotenv(ws, "gate.env")
        assert gate_env["MLCI_GATE"] == "failed" and gate_env["MLCI_MODEL_VERSION"] == ""
        assert "accuracy &gt;= 0.9" in (ws.out_dir / "gate.md").read_text() or "accuracy >= 0.9" in (
            ws.out_dir / "gate.md").read_text()


@pytest.mark.xdist_group("e2e-data")
def test_bad_data_stops_the_pipeline_at_the_data_check(tmp_path):
    """Installed as a user's runner would: the data check job installs mlci itself, with pip, from the
    hosting project's GitLab PyPI registry at the URL its template computes (a loopback stand-in that
    serves the wheel built here), into an empty virtualenv; the extra's dependencies come from the
    machine's normal index."""
    wheel_dir = tmp_path / "dist"
    subprocess.run([uv(), "build", "-q", "--wheel", "-o", str(wheel_dir), str(REPO_ROOT)], check=True, timeout=600)
    (wheel,) = wheel_dir.glob("mlci-*.whl")
    runner_venv = tmp_path / "runner-python"
    subprocess.run([sys.executable, "-m", "venv", str(runner_venv)], check=True, timeout=300)
    token = "glcbt-64_e2e-job-token"
    with FakePyPIRegistry(projects={"77": "mlci/mlci"}, job_tokens=(token,)) as registry, \
            workspace_with_services(tmp_path, fake_gitlab=False) as ws:
        registry.add_file("mlci/mlci", wheel)
        prepare_data(ws, "bad")
        ws.commit("New export")
        run = ws.run_pipeline("bad-data", {
            **MAIN_PUSH, "MLCI_INSTALL": "pip", "CI_SERVER_PROTOCOL": "http",
            "CI_SERVER_FQDN": registry.server_fqdn, "CI_JOB_TOKEN": token,
            "PATH": f"{runner_venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        })
        assert run.returncode != 0
        assert run.status("mlci-data-check") == "failed"
        assert not run.ran("mlci-train") and not run.ran("mlci-gate")
        tests, failures = junit_counts(ws.out_dir / "data-check.junit.xml")
        assert failures == 2 and tests >= 20
        report = (ws.out_dir / "data-check.json").read_text()
        assert "mean_radius" in report and "site" in report

        from mlci import __version__

        assert f"mlci: python installs mlci=={__version__} from the mlci package index, then " \
               f"mlci[data]=={__version__}" in run.output
        downloads = [r for r in registry.requests if r.path.endswith(wheel.name)]
        assert downloads and {(r.status, r.user) for r in downloads} == {(200, "gitlab-ci-token")}
        assert token not in run.output, "GitLab masks the job token; pip must not print it either"
        assert (runner_venv / "bin" / "mlci").exists(), "mlci went into the runner's Python"
        installed = subprocess.run([str(runner_venv / "bin" / "python"), "-m", "pip", "list", "--format=json"],
                                   capture_output=True, text=True, check=True).stdout
        names = {item["name"].lower() for item in json.loads(installed)}
        assert {"mlci", "polars"} <= names and not names & {"mlflow", "mlflow-skinny", "scipy", "matplotlib"}


@pytest.mark.xdist_group("e2e-isolation")
def test_a_job_that_reads_what_its_needs_did_not_bring_goes_red(tmp_path):
    """Shell isolation holds as on a runner: only declared
    artifacts of the jobs a job needs reach it, and the same pipeline passes only when jobs share a tree."""
    pipeline = (REPO_ROOT / "tests" / "e2e" / "pipelines" / "isolation.yml").read_text()
    with workspace_with_services(tmp_path, fake_gitlab=False) as ws:
        (ws.root / "isolation.gitlab-ci.yml").write_text(pipeline)
        ws.commit("A pipeline that leans on a shared work tree")
        run = ws.run_pipeline("isolation-must-fail", file="isolation.gitlab-ci.yml")
        assert run.returncode != 0
        assert run.status("produce") == "passed"
        assert run.status("reads-its-artifact") == "passed", run.output[-3000:]
        assert run.status("reads-an-undeclared-file") == "failed", "scratch.txt was not an artifact"
        assert run.status("reads-without-needs") == "failed", "needs: [] brings no artifacts"

        shared = ws.run_pipeline("shared-tree", file="isolation.gitlab-ci.yml", isolated=False)
        assert shared.status("reads-an-undeclared-file") == "passed", "without isolation the leak goes unseen"
