"""The tune mode of mlci-train.yml under gitlab-ci-local: three parallel tuning jobs share one study in a
real PostgreSQL, the trial count adds up exactly, and the selection job exports the best trial."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml

from tests.e2e.harness import PROJECT_PATH, REPO_ROOT, Workspace, ensure_tools
from tests.servers.postgres import PASSWORD
from tests.tune.conftest import SCRIPTS

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("postgres")]


def tune_workspace(root, migrated_store) -> Workspace:
    root.mkdir()
    shutil.copytree(REPO_ROOT / "ci_templates", root / "ci_templates")
    shutil.copy(SCRIPTS / "objective.py", root / "objective.py")
    (root / ".mlci").mkdir()
    shutil.copyfile(migrated_store, root / ".mlci" / "mlflow.db")
    (root / "mlci.yml").write_text(
        "version: 1\nproject: {name: tune-demo}\nmodel:\n  metrics-direction: {loss: lower}\n"
        "train:\n  command: python objective.py\n  code-paths: [objective.py]\n"
        "tune:\n  metric: loss\n  n-trials: 7\n  heartbeat-seconds: 2\n  sampler: {name: tpe, seed: 11}\n"
        "  search-space:\n    x: {type: float, low: -4, high: 6}\n"
    )
    (root / ".gitignore").write_text(".mlci/\nmlci-out/\n.gitlab-ci-local/\n")
    (root / ".gitlab-ci.yml").write_text(yaml.safe_dump({
        "include": [{"local": "ci_templates/mlci-train.yml",
                     "inputs": {"install": "preinstalled", "tune": True, "tune-jobs": 3}}],
    }))
    for args in (["init", "-q", "-b", "main"], ["remote", "add", "origin", "git@gitlab.example.com:demo/tune.git"],
                 ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "tune"]):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)
    return Workspace(root=root)


def test_three_tuning_jobs_share_one_study_and_the_trial_count_adds_up(tmp_path, migrated_store, postgres_server):
    import optuna

    ensure_tools()
    url = postgres_server.create_database("tune_pipeline")
    ws = tune_workspace(tmp_path / "project", migrated_store)
    run = ws.run_pipeline("tune", {
        "MLCI_TUNE_STORAGE": url, "CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "main",
        "CI_COMMIT_REF_NAME": "main", "CI_COMMIT_REF_SLUG": "main",
    }, timeout=1200)
    assert run.returncode == 0, run.output[-5000:]
    assert run.output.count("created study") == 1, "exactly one job creates the study"
    assert run.output.count("joined study") == 2, "the other two attach to it"
    assert "mlci-train-select" in run.jobs and run.status("mlci-train-select") == "passed", run.output[-3000:]
    assert not run.ran("mlci-train"), "tuning replaces the single training job"
    assert PASSWORD not in run.output

    backend = optuna.storages.RDBStorage(url.replace("postgresql://", "postgresql+psycopg://"))
    (summary,) = optuna.get_all_study_summaries(backend)
    study = optuna.load_study(study_name=summary.study_name, storage=backend)
    trials = study.get_trials()
    assert len(trials) == 7 and all(t.state.name == "COMPLETE" for t in trials), "7 trials, no more, no less"
    assert sorted(t.number for t in trials) == list(range(7))

    doc = json.loads((ws.out_dir / "tune.json").read_text())
    assert doc["final"] and doc["counts"]["evaluations"] == 7 and doc["counts"]["complete"] == 7
    from mlci.outputs.dotenv import read_dotenv

    best = doc["best"]
    assert best["value"] == min(t.value for t in trials)
    assert read_dotenv(ws.out_dir / "train.env")["MLCI_RUN_ID"] == best["run_id"]
    assert (ws.out_dir / "tune-plots" / "optimization-history.png").exists()
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=ws.tracking_uri)
    experiment = client.get_experiment_by_name(PROJECT_PATH)  # mlflow.experiment defaults to CI_PROJECT_PATH
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("mlci.tune.role") == "parent"]
    children = [r for r in runs if r.data.tags.get("mlci.tune.role") == "trial"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(children) == 7 and {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}
    assert all(r.data.tags.get("mlci.gitlab.job_id") for r in children), "each trial names the job that ran it"
