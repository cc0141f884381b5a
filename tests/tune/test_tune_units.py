"""The pure parts of tuning: the reporting helper and its file protocol, pruning decisions, trial
accounting, study names, and keeping the database password out of everything shown."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

import mlci.tune
from mlci.tune.intermediate import PruningWatch, ReportFile
from mlci.tune.settings import Storage, default_study_name, env_value, normalize_db_url
from mlci.tune.study import counts


def test_report_appends_step_value_lines_and_is_a_no_op_outside_a_trial(tmp_path, monkeypatch):
    path = tmp_path / "reports.txt"
    monkeypatch.delenv(mlci.tune.REPORT_FILE_ENV, raising=False)
    mlci.tune.report(0, 1.5)
    assert not path.exists()
    monkeypatch.setenv(mlci.tune.REPORT_FILE_ENV, str(path))
    mlci.tune.report(0, 0.25)
    mlci.tune.report(3, float("nan"))
    assert path.read_text() == "0 0.25\n3 nan\n"
    with pytest.raises(ValueError):
        mlci.tune.report(-1, 0.5)


def test_the_report_file_yields_whole_lines_once_and_skips_what_is_not_step_value(tmp_path):
    path = tmp_path / "reports.txt"
    reader = ReportFile(path)
    assert reader.read_new() == []
    path.write_text("0 0.5\n1,0.75\nepoch 2 done\n2 0.")
    assert reader.read_new() == [(0, 0.5), (1, 0.75)]
    assert reader.bad_lines == ["epoch 2 done"]
    with path.open("a") as handle:
        handle.write("9\n-1 3\n3 inf\n")
    assert reader.read_new() == [(2, 0.9)], "a half-written line waits for its newline"
    assert reader.bad_lines == ["epoch 2 done", "-1 3", "3 inf"]


class FakeTrial:
    def __init__(self, prune_after: int):
        self.reports: list[tuple[float, int]] = []
        self.prune_after = prune_after

    def report(self, value, step):
        self.reports.append((value, step))

    def should_prune(self):
        return len(self.reports) > self.prune_after


def test_pruning_watch_forwards_each_step_once_and_says_why_it_stops(tmp_path):
    path = tmp_path / "reports.txt"
    trial = FakeTrial(prune_after=2)
    watch = PruningWatch(trial, ReportFile(path), "median")
    path.write_text("0 5\n0 4\n1 6\n")
    assert watch.poll() is None
    assert trial.reports == [(5.0, 0), (6.0, 1)], "a repeated step keeps its first value, as Optuna does"
    with path.open("a") as handle:
        handle.write("2 9.5\n")
    assert watch.poll() == "pruned by the median pruner at step 2 (value 9.5)"
    assert watch.pruned_at == (2, 9.5)


def test_a_failed_trial_that_was_queued_again_is_not_counted_twice():
    dist = {"x": FloatDistribution(0, 1)}
    lost = create_trial(state=TrialState.FAIL, params={"x": 0.3}, distributions=dist)
    lost.number = 0
    retry = create_trial(state=TrialState.COMPLETE, value=1.0, params={"x": 0.3}, distributions=dist,
                         system_attrs={"failed_trial": 0, "retry_history": [0]})
    retry.number = 2
    failed = create_trial(state=TrialState.FAIL, params={"x": 0.9}, distributions=dist)
    failed.number = 1
    pruned = create_trial(state=TrialState.PRUNED, params={"x": 0.1}, distributions=dist, intermediate_values={0: 3})
    pruned.number = 3
    tally = counts([lost, failed, retry, pruned])
    assert tally == {"complete": 1, "pruned": 1, "failed": 1, "running": 0, "waiting": 0, "retried": 1,
                     "evaluations": 3}


def test_every_job_and_a_retried_job_of_one_pipeline_name_the_same_study():
    ci = {"CI_PROJECT_PATH": "ml/fraud", "CI_COMMIT_REF_SLUG": "feature-x", "CI_PIPELINE_ID": "9001",
          "CI_NODE_INDEX": "2", "CI_JOB_ID": "77"}
    assert default_study_name(ci, "fraud") == "ml/fraud:feature-x:9001"
    assert default_study_name({**ci, "CI_NODE_INDEX": "3", "CI_JOB_ID": "78"}, "fraud") == "ml/fraud:feature-x:9001"
    assert default_study_name({}, "fraud", "main") == "fraud:main:local"


def test_the_storage_is_shown_without_its_password_and_the_password_is_masked():
    storage = Storage("rdb", url=normalize_db_url("postgres://tuner:p%40ss-w0rd!@db.internal:5432/optuna"))
    assert storage.url.startswith("postgresql+psycopg://")
    assert storage.display == "postgresql+psycopg://db.internal:5432/optuna"
    assert {"p%40ss-w0rd!", "p@ss-w0rd!"} <= set(storage.secrets)
    from mlci.redact import redact

    assert "p@ss" not in redact("auth failed for p@ss-w0rd! at " + storage.url, extra=storage.secrets)


def test_sampled_values_reach_the_command_as_text_it_can_parse():
    assert env_value(0.001) == "0.001" and float(env_value(1 / 3)) == 1 / 3
    assert env_value(True) == "true" and env_value(8) == "8" and env_value("adam") == "adam"


def test_seeded_samplers_draw_differently_per_trial_but_reproducibly():
    from mlci.tune.study import build_sampler

    settings = type("S", (), {"sampler": {"name": "random", "seed": 5}})()
    draws = []
    for number in (0, 1, 0):
        study = optuna.create_study(sampler=build_sampler(settings, number))
        draws.append(study.ask().suggest_float("x", 0, 1))
    assert draws[0] != draws[1], "a retried or parallel job must not repeat a peer's draw"
    assert draws[0] == draws[2], "the same trial number draws the same value: the study is reproducible"
