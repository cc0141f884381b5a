"""`mlci tune` on a journal-file study: the budget, the MLflow runs, the run cache, pruning, trial timeouts."""

from __future__ import annotations

import json

import pytest

from tests.tune.conftest import tune_config


def tune_doc(project) -> dict:
    return json.loads((project.out / "tune.json").read_text())


def runs_by_role(project, experiment: str = "tune-demo") -> dict[str, list]:
    found: dict[str, list] = {}
    for run in project.runs(experiment):
        found.setdefault(run.data.tags.get("mlci.tune.role", ""), []).append(run)
    return found


def test_a_study_runs_exactly_its_budget_as_child_runs_and_exports_the_best_trial(tune_project, run_cli):
    code, out, err = run_cli("tune")
    assert code == 0, err
    doc = tune_doc(tune_project)
    assert doc["final"] and doc["counts"]["evaluations"] == 4 and doc["counts"]["complete"] == 4
    assert doc["this_job"] == [0, 1, 2, 3]
    values = [t["value"] for t in doc["trials"]]
    best = doc["best"]
    assert best["value"] == min(values), "loss is lower-is-better (model.metrics-direction)"
    for trial in doc["trials"]:
        expected = (trial["params"]["x"] - 2) ** 2 + (1 if trial["params"]["kind"] == "b" else 0)
        assert trial["value"] == pytest.approx(expected), "the objective is the metric the command logged"

    runs = runs_by_role(tune_project)
    (parent,) = runs["parent"]
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["mlci.tune.best_run_id"] == best["run_id"]
    assert len(runs["trial"]) == 4
    for run in runs["trial"]:
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.tags["mlci.tune.state"] == "COMPLETE"
        assert set(run.data.params) >= {"x", "kind"}, "sampled values are run params (MLCI_PARAM_*)"
        assert run.data.tags["mlci.fingerprint"], "each trial carries mlci train's lineage"

    train_env = tune_project.dotenv()
    assert train_env["MLCI_RUN_ID"] == best["run_id"]
    assert tune_project.summary()["run_id"] == best["run_id"]
    assert (tune_project.out / "tune-plots" / "optimization-history.png").stat().st_size > 1000
    assert "best: trial" in out

    # The MR report shows the study: a Tuning section and Optuna's plots among the images it uploads,
    # from the selection job's files or, without them, from the study's parent run in MLflow.
    for source in ("job artifacts", "parent run"):
        if source == "parent run":
            import shutil

            (tune_project.out / "tune.json").unlink()
            shutil.rmtree(tune_project.out / "tune-plots")
        code, _, err = run_cli("report", "--dry-run")
        assert code == 0, err
        report = (tune_project.out / "report.md").read_text()
        assert "Tuning" in report and f"best loss = {best['value']:.4g}" in report, (source, report[-2000:])
        assert (tune_project.out / "report-plots" / "tune-optimization-history.png").exists(), source
        assert "report-plots/tune-optimization-history.png" in report, source
        (tune_project.out / "report-plots" / "tune-optimization-history.png").unlink()

    # The study is finished: running the job again (a retry) trains nothing more.
    code, out, err = run_cli("tune")
    assert code == 0, err
    assert "this job ran 0" in out
    assert tune_doc(tune_project)["counts"]["evaluations"] == 4
    assert len(runs_by_role(tune_project)["trial"]) == 4


def test_a_trial_with_the_fingerprint_of_an_earlier_run_is_not_trained_again(project, run_cli):
    project.config(tune_config(n_trials=3, space="""
    kind: {type: categorical, choices: [a, b]}"""))
    code, _, err = run_cli("tune")
    assert code == 0, err
    doc = tune_doc(project)
    assert doc["counts"]["complete"] == 3
    hits = [t for t in doc["trials"] if t["cache_hit"]]
    assert hits, "three trials over two values repeat one"
    trained = runs_by_role(project)["trial"]
    assert len(trained) == len({t["params"]["kind"] for t in doc["trials"]})
    for hit in hits:
        assert hit["run_id"] in {r.info.run_id for r in trained}


def test_pruning_stops_a_bad_trial_early_and_marks_it_pruned_not_failed(project, run_cli, monkeypatch):
    project.config(tune_config(n_trials=2, pruner="median", sampler="{name: random, seed: 2}", space="""
    x: {type: categorical, choices: [2, -4]}""", extra="  start-from: {x: 2}\n"))
    monkeypatch.setenv("OBJ_STEPS", "6")
    monkeypatch.setenv("OBJ_STEP_SECONDS", "0.5")
    monkeypatch.setenv("OBJ_PROTOCOL", "file")  # the protocol that needs no mlci import
    code, out, err = run_cli("tune")
    assert code == 0, err
    doc = tune_doc(project)
    good, bad = doc["trials"]
    assert good["params"]["x"] == 2 and good["state"] == "COMPLETE"
    assert bad["params"]["x"] == -4, "seeded sampler: the second trial is the bad value"
    assert bad["state"] == "PRUNED" and doc["counts"] == {**doc["counts"], "failed": 0, "pruned": 1}
    assert bad["pruned_at_step"] < 5 and "pruned by the median pruner" in bad["reason"]
    assert bad["duration_seconds"] < good["duration_seconds"] - 1, "stopped well before its last step"
    run = project.client().get_run(bad["run_id"])
    assert run.info.status == "KILLED"
    assert run.data.tags["mlci.tune.state"] == "PRUNED"
    assert run.data.tags["mlci.killed_reason"].startswith("pruned by the median pruner")
    assert "trial 1 PRUNED" in out
    assert (project.out / "tune-plots" / "intermediate-values.png").exists()


def test_a_trial_past_its_timeout_fails_and_a_study_without_a_result_exits_1(project, run_cli, monkeypatch):
    project.config(tune_config(n_trials=1, extra="  trial-timeout: 1.5\n"))
    monkeypatch.setenv("OBJ_HANG", "1")
    code, _, err = run_cli("tune")
    assert code == 1
    doc = tune_doc(project)
    (trial,) = doc["trials"]
    assert trial["state"] == "FAIL" and "tune.trial-timeout" in trial["reason"]
    assert doc["counts"]["retried"] == 0 and doc["counts"]["waiting"] == 0, "its own timeout is not retried"
    assert project.client().get_run(trial["run_id"]).info.status == "KILLED"
    assert "finished without one completed trial" in err
