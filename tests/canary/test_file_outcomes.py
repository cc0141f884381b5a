"""A business outcome fed back as rows in a file: counted per version since the start, and decided on."""

from __future__ import annotations

import json
import textwrap
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from mlci.canary import decide, flow
from mlci.canary.outcomes import Arm, OutcomeReader

STARTED = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
STABLE, CANARY = Arm("3", "production"), Arm("4", "production-canary")

CONFIG = """\
model:
  name: shop
deploy:
  environments:
    - name: production
      target: mlserver
  canary:
    min-duration: 0s
    metrics:
      - name: conversion
        kind: custom
        better: higher
        min-effect: 0.05
        outcomes:
{outcomes}
"""


def settings_for(project, outcomes: str):
    from mlci.canary.settings import load_canary_settings
    from mlci.config import load_effective

    (project / "mlci.yml").write_text(CONFIG.format(outcomes=textwrap.indent(outcomes, " " * 10)), encoding="utf-8")
    return load_canary_settings(load_effective(project / "mlci.yml"))


def conversions(rng, version, rate: float, trials: int, start: datetime) -> dict[str, list]:
    return {"model_version": [version] * trials, "converted": rng.random(trials) < rate,
            "at": [start + timedelta(seconds=i) for i in range(trials)]}


@pytest.fixture
def project(tmp_path, clean_env):
    clean_env.chdir(tmp_path)
    return tmp_path


def test_rows_count_per_version_from_the_start_with_mixed_types_and_empty_outcomes(project):
    """Versions as numbers or text, naive timestamps read as UTC, rows before the start and empty outcomes skipped."""
    (project / "feedback").mkdir()
    pl.DataFrame({
        "version": [3, 3, 3, 4, 4, 4, 4, 3],
        "outcome": [1, 0, 1, 1, None, 0, 0, 1],
        "timestamp": [datetime(2026, 11, 30, 13, m) for m in range(7)] + [datetime(2026, 11, 30, 11, 59)],
    }).write_parquet(project / "feedback" / "part-1.parquet")
    pl.DataFrame({"version": [4], "outcome": [1], "timestamp": [datetime(2026, 11, 30, 14)]}).write_parquet(
        project / "feedback" / "part-2.parquet")
    settings = settings_for(project, "path: feedback/*.parquet\n")
    (metric,) = settings.metrics
    counts, shown = OutcomeReader(None, model="shop", selector="").counts(metric, STABLE, CANARY, STARTED)
    # canary 4: outcomes 1, 0, 0, 1 (the empty one is no trial); stable 3: 1, 0, 1 (11:59 is before the start)
    assert counts == decide.Counts(2, 4, 2, 3)
    assert "feedback/*.parquet" in shown["requests"]


def test_ndjson_with_text_outcomes_and_zoned_timestamps(project):
    lines = [{"v": "4", "ok": "yes", "t": "2026-11-30T14:00:00+02:00"},  # 12:00 UTC: counts
             {"v": "4", "ok": "no", "t": "2026-11-30T13:59:00+02:00"},  # 11:59 UTC: before the start
             {"v": "3", "ok": "True", "t": "2026-11-30T12:30:00Z"},
             {"v": "3", "ok": "", "t": "2026-11-30T12:31:00Z"}]
    (project / "outcomes.ndjson").write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    settings = settings_for(project, "path: outcomes.ndjson\nversion-column: v\noutcome-column: ok\ntime-column: t\n")
    counts, _ = OutcomeReader(None, model="shop", selector="").counts(settings.metrics[0], STABLE, CANARY, STARTED)
    assert counts == decide.Counts(1, 1, 1, 1)


def test_a_file_not_written_yet_means_no_trials_but_a_wrong_column_is_a_config_error(project, run_cli):
    from mlci.errors import ConfigError

    settings = settings_for(project, "path: outcomes.parquet\n")
    reader = OutcomeReader(None, model="shop", selector="")
    counts, _ = reader.counts(settings.metrics[0], STABLE, CANARY, STARTED)
    assert counts == decide.Counts(0, 0, 0, 0)
    pl.DataFrame({"version": ["4"], "converted": [True], "timestamp": [STARTED]}).write_parquet(
        project / "outcomes.parquet")
    with pytest.raises(ConfigError, match=r"no column 'outcome'.*columns: version, converted, timestamp"):
        reader.counts(settings.metrics[0], STABLE, CANARY, STARTED)


@pytest.mark.parametrize(("canary_rate", "expected"), [(0.10, decide.ROLLBACK), (0.20, decide.PROMOTE)])
def test_fed_back_conversions_plan_the_sample_and_decide(project, canary_rate, expected):
    """The stable version's recent rows plan the sample; a canary converting half as often rolls back."""
    rng = np.random.default_rng(7)
    now = flow.now_utc()
    history = conversions(rng, "3", 0.20, 1500, now - timedelta(minutes=50))
    pl.DataFrame(history).write_parquet(project / "history.parquet")
    settings = settings_for(project, "path: '*.parquet'\nversion-column: model_version\n"
                                     "outcome-column: converted\ntime-column: at\n")
    reader = OutcomeReader(None, model="shop", selector="")
    planned = flow.plan_metrics(settings, reader, STABLE, warn=pytest.fail)
    assert planned["conversion"]["baseline-source"] == "measured: stable version 3, 1500 requests"
    assert planned["conversion"]["baseline"] == pytest.approx(0.20, abs=0.03)

    started = now
    state = decide.new_state(mode=decide.CANARY, environment="production", stable="3", canary="4", percent=50,
                             settings={"alpha": settings.alpha, "power": settings.power,
                                       "max-looks": settings.max_looks, "min-duration": 0,
                                       "max-duration": 10**6, "on-max-duration": "rollback"},
                             metrics=planned, started_at=started)
    per_arm = state["metrics"]["conversion"]["design"]["n-canary"]
    experiment: dict[str, list] = {key: [] for key in history}
    for version, rate in (("4", canary_rate), ("3", 0.20)):
        rows = conversions(rng, version, rate, per_arm, started + timedelta(seconds=1))
        for key in experiment:
            experiment[key] += list(rows[key])
    pl.DataFrame(experiment).write_parquet(project / "experiment.parquet")

    counts, _ = reader.counts(settings.metrics[0], STABLE, CANARY, started)
    assert (counts.canary_n, counts.stable_n) == (per_arm, per_arm)  # the history before the start is not counted
    analysis = decide.analyze(state, {"conversion": counts}, started + timedelta(hours=2))
    assert analysis.decision == expected, analysis
    if expected == decide.ROLLBACK:
        _information, _critical, _z, p_value, *_samples = state["metrics"]["conversion"]["looks"][-1]
        assert p_value < settings.alpha


def test_credentials_in_an_outcomes_url_reach_no_message_or_report(project, clean_env):
    """Credentials belong in the environment; one pasted into the URL is still never shown."""
    from mlci.errors import MlciError

    # An S3 endpoint on a closed loopback port: the read fails at once, without looking for instance roles.
    for name, value in {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "not-the-canary",
                        "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ALLOW_HTTP": "true"}.items():
        clean_env.setenv(name, value)

    settings = settings_for(project, "path: 's3://AKIAEXAMPLE:CanaryOutcomeSecret@bucket/out.parquet"
                                     "?X-Amz-Signature=CanaryOutcomeSig'\n")
    reader = OutcomeReader(None, model="shop", selector="")
    from mlci.canary.outcomes import FileOutcomes

    assert FileOutcomes(settings.metrics[0].outcomes).shown_path == "s3://bucket/out.parquet"
    with pytest.raises(MlciError) as raised:
        reader.counts(settings.metrics[0], STABLE, CANARY, STARTED)
    assert "CanaryOutcome" not in str(raised.value) and "s3://bucket/out.parquet" in str(raised.value)
