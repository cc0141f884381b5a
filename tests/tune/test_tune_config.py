"""Bad `tune:` config is a located error (mlci.yml:LINE:COL, exit 2) before any study or run exists."""

from __future__ import annotations

import re
import textwrap

import pytest

from tests.tune.conftest import tune_config

LOCATION = re.compile(r"mlci\.yml:(\d+):(\d+)")


@pytest.fixture
def in_project(tmp_path, clean_env, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def write(text: str):
        (tmp_path / "mlci.yml").write_text(text)
        return tmp_path

    return write


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def assert_located(err: str, config: str, needle: str) -> None:
    lines = {int(m[1]) for m in LOCATION.finditer(err)}
    assert line_of(config, needle) in lines, err


def test_an_empty_search_space_is_a_located_config_error(in_project, run_cli):
    config = tune_config(space=" {}")
    in_project(config)
    code, _, err = run_cli("tune")
    assert code == 2, err
    assert_located(err, config, "search-space")
    assert "Traceback" not in err


def test_a_low_above_its_high_names_the_parameter_and_its_line(in_project, run_cli, tmp_path):
    config = tune_config(space="""
    x: {type: float, low: 6, high: -4}""")
    in_project(config)
    code, _, err = run_cli("tune")
    assert code == 2
    assert "`low` (6) of 'x' is above its `high` (-4)" in err
    assert_located(err, config, "x: {type: float, low: 6")
    assert not (tmp_path / ".mlci" / "tune.journal").exists(), "no study is created for a bad config"


def test_an_unknown_sampler_is_refused_with_the_known_ones(in_project, run_cli):
    config = tune_config(sampler="{name: bayesian}")
    in_project(config)
    code, _, err = run_cli("tune")
    assert code == 2
    assert "bayesian" in err and "tpe" in err
    assert_located(err, config, "sampler:")


def test_every_search_space_mistake_is_reported_at_once(in_project, run_cli):
    config = tune_config(space="""
    lr: {type: float, low: 0, high: 0.1, log: true}
    depth: {type: int, low: 1.5, high: 8}
    optimizer: {type: categorical}
    width: {type: float, low: 1, high: 2, log: true, step: 0.5}""")
    in_project(config)
    code, _, err = run_cli("tune")
    assert code == 2
    assert "log-scale parameter needs `low` above 0" in err
    assert "must be a whole number" in err
    assert "categorical parameter 'optimizer' needs `choices`" in err
    assert "`step` and `log: true` cannot be combined" in err
    assert "4 configuration error(s)" in err
    for needle in ("lr:", "depth:", "optimizer:", "width:"):
        assert_located(err, config, needle)


def test_the_direction_comes_from_metrics_direction_or_must_be_given(in_project, run_cli):
    config = tune_config().replace("  metrics-direction: {loss: lower}\n", "  metrics-direction: {}\n")
    in_project(config)
    code, _, err = run_cli("tune")
    assert code == 2
    assert "is a larger or smaller 'loss' better?" in err and "tune.direction" in err
    assert_located(err, config, "metric: loss")


def test_start_from_values_must_lie_in_the_search_space(in_project, run_cli):
    config = tune_config(extra=textwrap.dedent("""\
      start-from:
        x: 99
        kind: c
    """).replace("start-from", "  start-from").replace("\n  x", "\n    x").replace("\n  kind", "\n    kind"))
    in_project(config)
    code, _, err = run_cli("tune")
    assert code == 2, err
    assert "99 is outside x in [-4, 6]" in err and "'c' is not one of the choices of 'kind'" in err


def test_a_project_without_a_tune_section_is_told_what_to_add(in_project, run_cli):
    in_project("version: 1\ntrain: {command: echo}\n")
    code, _, err = run_cli("tune")
    assert code == 2
    assert "no `tune:` section" in err and "tune.search-space" in err


def test_parallel_jobs_without_a_shared_storage_are_refused(in_project, run_cli, monkeypatch):
    in_project(tune_config())
    monkeypatch.setenv("CI_NODE_TOTAL", "3")
    monkeypatch.setenv("CI_JOB_ID", "5")
    code, _, err = run_cli("tune")
    assert code == 2
    assert "one of 3 parallel tuning jobs" in err and "MLCI_TUNE_STORAGE" in err


def test_a_job_scoped_database_refuses_parallel_jobs_and_points_selection_at_mlflow(in_project, run_cli,
                                                                                    monkeypatch):
    in_project(tune_config(storage="postgresql://mlci@mlci-tune-db:5432/optuna"))
    monkeypatch.setenv("MLCI_TUNE_STORAGE_SCOPE", "job")  # what the template's services: variant sets
    monkeypatch.setenv("CI_NODE_TOTAL", "2")
    code, _, err = run_cli("tune")
    assert code == 2
    assert "each job would run a study of its own" in err and "tune-jobs: 1" in err
    code, _, err = run_cli("tune", "best")
    assert code == 2
    assert "mlci train-select" in err
