"""`mlci train-select`: the best run of this pipeline's sweep becomes the candidate."""

from __future__ import annotations

import json
import sys


def test_selects_the_best_of_a_three_job_sweep(project, run_cli, monkeypatch):
    # Three parallel:matrix jobs of one pipeline, each with its own MLCI_PARAM_C.
    project.config("train:\n  telemetry-interval: 1\n")
    monkeypatch.setenv("CI_PIPELINE_ID", "777")
    accuracy = {"0.1": 0.8, "0.3": 0.95, "0.9": 0.6}
    trained, own_json = {}, {}
    for job, c in (("1", "0.1"), ("2", "0.3"), ("3", "0.9")):
        monkeypatch.setenv("CI_JOB_ID", job)
        monkeypatch.setenv("CI_JOB_NAME", f"mlci-train: [{c}]")
        monkeypatch.setenv("MLCI_PARAM_C", c)
        code, _, err = run_cli("train", "--", sys.executable, "-c", "print('fit')")
        assert code == 0, err
        trained[c] = project.dotenv()["MLCI_RUN_ID"]
        own_json[c] = project.summary()
        # What the training script would have logged into its run (test_train_run covers a real one).
        project.client().log_metric(trained[c], "accuracy", accuracy[c])
    # A better run from another pipeline must not win.
    other = project.client().create_run(project.runs()[0].info.experiment_id,
                                        tags={"mlci.gitlab.pipeline_id": "778"})
    project.client().log_metric(other.info.run_id, "accuracy", 0.999)
    project.client().set_terminated(other.info.run_id)
    (project.out / "train.env").unlink()
    (project.out / "train.json").unlink()

    code, out, err = run_cli("train-select", "--metric", "accuracy")

    assert code == 0, err
    env = project.dotenv()
    assert env["MLCI_RUN_ID"] == trained["0.3"]
    assert env["MLCI_MODEL_URI"] == f"runs:/{trained['0.3']}/model"
    assert env["MLCI_CACHE_HIT"] == "false"
    summary = project.summary("train-select.json")
    assert summary["version"] == 1
    assert summary["goal"] == "max" and summary["pipeline_id"] == "777"
    assert [c["params"]["c"] for c in summary["candidates"]] == ["0.3", "0.1", "0.9"]
    assert [c["rank"] for c in summary["candidates"]] == [1, 2, 3]
    assert summary["selected"]["run_id"] == trained["0.3"]
    assert "selected run" in out
    # train.json of the chosen run, in the shape `mlci train` wrote it, for the report's training section.
    chosen = project.summary("train.json")
    written = own_json["0.3"]
    assert chosen["version"] == 1 and list(chosen) == list(written)
    same = ("run_id", "experiment_id", "experiment", "tracking_uri", "model_uri", "status", "exit_code",
            "killed_reason", "fingerprint", "cache_hit", "reused_from", "command", "params", "data", "telemetry")
    assert {k: chosen[k] for k in same} == {k: written[k] for k in same}
    assert chosen["telemetry"] and chosen["telemetry"] == json.loads(
        project.client().get_run(trained["0.3"]).data.tags["mlci.telemetry"])
    tagged = float(project.client().get_run(trained["0.3"]).data.tags["mlci.duration_seconds"])
    assert chosen["duration_seconds"] == round(tagged, 3)
    assert chosen["params"] == {"c": "0.3"}
    assert not list(project.out.glob("*.tmp*")) and not list(project.out.glob(".*"))


def _finished_run(client, experiment_id: str, pipeline: str, metrics: dict, status: str = "FINISHED") -> str:
    run = client.create_run(experiment_id, tags={"mlci.gitlab.pipeline_id": pipeline})
    for key, value in metrics.items():
        client.log_metric(run.info.run_id, key, value)
    client.set_terminated(run.info.run_id, status=status)
    return run.info.run_id


def test_goal_min_from_metrics_direction_and_failed_runs_are_ignored(project, run_cli, monkeypatch):
    project.config("""\
        model:
          metrics-direction: {"*loss": lower}
        """)
    client = project.client()
    experiment_id = client.create_experiment("mlci")
    low = _finished_run(client, experiment_id, "5", {"val_loss": 0.20})
    _finished_run(client, experiment_id, "5", {"val_loss": 0.35})
    _finished_run(client, experiment_id, "5", {"val_loss": 0.01}, status="FAILED")
    no_metric = _finished_run(client, experiment_id, "5", {"other": 1.0})
    monkeypatch.setenv("CI_PIPELINE_ID", "5")

    code, _, err = run_cli("train-select", "--metric", "val_loss")

    assert code == 0, err
    assert project.dotenv()["MLCI_RUN_ID"] == low
    summary = project.summary("train-select.json")
    assert summary["goal"] == "min"
    assert [c["run_id"] for c in summary["candidates"] if c["rank"] is None] == [no_metric]
    assert len(summary["candidates"]) == 3  # the FAILED run is not a candidate


def test_a_cache_hit_in_a_later_pipeline_is_still_a_candidate_there(project, run_cli, monkeypatch):
    project.config("train:\n  telemetry-interval: 1\n")
    quick = [sys.executable, "-c", "print('trained')"]
    monkeypatch.setenv("CI_PIPELINE_ID", "100")
    assert run_cli("train", "--", *quick)[0] == 0
    first = project.dotenv()["MLCI_RUN_ID"]
    project.client().log_metric(first, "accuracy", 0.9)

    monkeypatch.setenv("CI_PIPELINE_ID", "101")
    monkeypatch.setenv("CI_JOB_ID", "555")
    code, out, _ = run_cli("train", "--", *quick)
    assert code == 0 and "cache hit" in out
    assert project.client().get_run(first).data.tags["mlci.reused_in_pipeline.101"] == "555"

    code, _, err = run_cli("train-select", "--metric", "accuracy")

    assert code == 0, err
    assert project.dotenv()["MLCI_RUN_ID"] == first
    assert project.dotenv()["MLCI_CACHE_HIT"] == "true"
    assert project.summary("train-select.json")["candidates"][0]["reused"] is True
    chosen = project.summary("train.json")
    assert chosen["run_id"] == first and chosen["cache_hit"] is True
    assert chosen["reused_from"]["pipeline_id"] == "100"


def test_no_candidate_is_a_failed_check_and_no_metric_is_a_usage_error(project, run_cli, monkeypatch):
    monkeypatch.setenv("CI_PIPELINE_ID", "9")
    project.client().create_experiment("mlci")

    code, _, err = run_cli("train-select", "--metric", "accuracy")
    assert code == 1
    assert "pipeline 9 has no FINISHED run with metric 'accuracy'" in err
    assert not (project.out / "train.env").exists()

    code, _, err = run_cli("train-select")
    assert code == 2 and "--metric" in err


def test_without_a_pipeline_id_it_asks_for_one(project, run_cli):
    code, _, err = run_cli("train-select", "--metric", "accuracy")
    assert code == 2
    assert "CI_PIPELINE_ID is not set" in err and "--pipeline" in err
