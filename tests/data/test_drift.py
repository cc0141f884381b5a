"""Drift statistics: quiet on a resample of the reference, loud on a real shift."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from mlci.data.drift import DriftSettings, Thresholds, compare, ks_2samp, psi, settings_from_config

N = 5_000


def reference_frame(seed: int = 1, n: int = N) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame({
        "income": rng.lognormal(10, 0.5, n),
        "age": rng.integers(18, 80, n),
        "score": rng.normal(0, 1, n),
        "segment": rng.choice(["retail", "online", "partner"], n, p=[0.5, 0.3, 0.2]),
        "active": rng.random(n) < 0.7,
    })


def _compare(reference, current, settings=None):
    return compare(reference, current, settings or DriftSettings(), label="current", reference_label="reference")


def _by_column(result):
    return {c.column: c for c in result.columns}


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_a_resample_of_the_reference_shows_no_drift(seed):
    reference = reference_frame()
    current = reference.sample(n=N, with_replacement=True, seed=seed)
    result = _compare(reference, current)
    assert not result.drifted, [(c.column, c.reasons) for c in result.columns]
    columns = _by_column(result)
    assert columns["score"].psi < 0.02
    assert columns["score"].ks_statistic < 0.05
    assert columns["segment"].psi < 0.01


def test_an_independent_sample_of_the_same_population_shows_no_drift():
    result = _compare(reference_frame(seed=1), reference_frame(seed=2))
    assert not result.drifted


def test_a_shifted_numeric_column_drifts_and_the_others_do_not():
    reference = reference_frame()
    current = reference_frame(seed=2).with_columns(pl.col("score") + 0.5)
    columns = _by_column(_compare(reference, current))
    score = columns["score"]
    assert score.drifted
    assert score.psi > 0.2
    assert score.ks_statistic > 0.15 and score.ks_pvalue < 1e-10
    assert score.reasons[0].startswith("PSI ")
    assert [c for c, r in columns.items() if r.drifted] == ["score"]


def test_a_spread_change_with_the_same_mean_is_caught():
    reference = reference_frame()
    current = reference_frame(seed=2).with_columns(pl.col("score") * 2.0)
    score = _by_column(_compare(reference, current))["score"]
    assert score.drifted
    assert score.psi > 0.2


def test_a_new_category_is_counted_as_unseen():
    reference = reference_frame()
    current = reference_frame(seed=2).with_columns(
        pl.when(pl.int_range(pl.len()) % 5 == 0).then(pl.lit("kiosk")).otherwise(pl.col("segment")).alias("segment"))
    segment = _by_column(_compare(reference, current))["segment"]
    assert segment.drifted
    assert segment.unseen_fraction == pytest.approx(0.2)
    assert segment.unseen_examples == ["kiosk"]
    assert segment.histogram.labels[-1] == "(unseen)"
    assert segment.histogram.current[-1] == pytest.approx(0.2)
    assert any("unseen" in reason for reason in segment.reasons)


def test_a_changed_category_mix_drifts():
    reference = reference_frame()
    rng = np.random.default_rng(5)
    current = reference_frame(seed=2).with_columns(
        pl.Series("segment", rng.choice(["retail", "online", "partner"], N, p=[0.2, 0.3, 0.5])))
    assert _by_column(_compare(reference, current))["segment"].drifted


def test_chi_square_verdict_when_asked_for():
    reference = reference_frame()
    rng = np.random.default_rng(5)
    # A small mix change: PSI stays under 0.2 but 5,000 rows make chi-square significant.
    current = reference_frame(seed=2).with_columns(
        pl.Series("segment", rng.choice(["retail", "online", "partner"], N, p=[0.44, 0.33, 0.23])))
    by_psi = _by_column(_compare(reference, current))["segment"]
    assert not by_psi.drifted and by_psi.chi2_pvalue < 0.05
    settings = DriftSettings(thresholds=Thresholds(categorical_test="chi2"))
    by_chi2 = _by_column(_compare(reference, current, settings))["segment"]
    assert by_chi2.drifted
    assert by_chi2.reasons[0].startswith("chi-square p=")


def test_per_column_thresholds_override_the_global_ones():
    reference = reference_frame()
    current = reference_frame(seed=2).with_columns(pl.col("score") + 0.5, pl.col("income") * 1.3)
    settings = settings_from_config({"thresholds": {"psi": 0.2},
                                     "column-thresholds": {"score": {"psi": 5, "ks-statistic": 0.9}}})
    columns = _by_column(_compare(reference, current, settings))
    assert not columns["score"].drifted
    assert columns["score"].thresholds.psi == 5
    assert columns["income"].drifted
    strict = settings_from_config({"thresholds": {"psi": 0.001, "ks-statistic": 0.001, "ks-pvalue": 0.99}})
    assert _compare(reference, reference_frame(seed=2), strict).drifted


def test_a_jump_in_nulls_is_drift():
    reference = reference_frame()
    current = reference_frame(seed=2).with_columns(
        pl.when(pl.int_range(pl.len()) % 3 == 0).then(None).otherwise(pl.col("income")).alias("income"))
    income = _by_column(_compare(reference, current))["income"]
    assert income.drifted
    assert income.histogram.labels[-1] == "(null)"
    assert income.current_null_fraction == pytest.approx(1 / 3, abs=1e-3)


def test_schema_changes_are_drift():
    reference = reference_frame()
    current = reference_frame(seed=2).drop("age").with_columns(pl.col("score").cast(pl.String))
    columns = _by_column(_compare(reference, current))
    assert columns["age"].drifted and columns["age"].reasons == ["column is missing from the current data"]
    assert columns["score"].kind == "schema"
    assert columns["score"].reasons == ["type changed: Float64 in the reference, String now"]


def test_identifiers_and_timestamps_are_skipped_unless_listed():
    n = 2_000
    start = datetime(2024, 1, 1)
    reference = pl.DataFrame({"user": [f"u{i}" for i in range(n)],
                              "at": [start + timedelta(minutes=i) for i in range(n)]})
    current = pl.DataFrame({"user": [f"u{i + n}" for i in range(n)],
                            "at": [start + timedelta(days=30, minutes=i) for i in range(n)]})
    columns = _by_column(_compare(reference, current))
    assert columns["user"].status == "skipped" and "identifier" in columns["user"].note
    assert columns["at"].status == "skipped" and "timestamps" in columns["at"].note
    listed = _by_column(_compare(reference, current, DriftSettings(columns=("user", "at"))))
    assert listed["at"].drifted
    assert listed["user"].drifted and listed["user"].unseen_fraction == 1.0


def test_excluded_columns_are_not_compared_and_new_columns_are_noted():
    reference = reference_frame()
    current = reference_frame(seed=2).with_columns(pl.lit(1).alias("extra"), pl.col("score") + 3)
    result = _compare(reference, current, DriftSettings(exclude=("score",)))
    assert "score" not in _by_column(result)
    assert not result.drifted
    assert result.notes == ["new in the current data, not compared: extra"]


def test_large_inputs_are_compared_on_a_seeded_sample():
    reference = reference_frame(n=3_000)
    result = _compare(reference, reference, DriftSettings(max_rows=1_000))
    assert result.sampled and result.reference_rows == 1_000 and result.current_rows == 1_000
    again = _compare(reference, reference, DriftSettings(max_rows=1_000))
    assert _by_column(result)["score"].psi == _by_column(again)["score"].psi  # reproducible


def test_psi_arithmetic():
    assert psi(np.array([50, 50]), np.array([50, 50])) == 0
    expected = 2 * 0.2 * math.log(0.6 / 0.4)
    assert psi(np.array([60, 40]), np.array([40, 60])) == pytest.approx(expected)
    # An empty bin is floored, not infinite.
    assert math.isfinite(psi(np.array([100, 0]), np.array([50, 50])))


def test_ks_statistic_and_pvalue():
    statistic, pvalue = ks_2samp(np.arange(50.0), np.arange(50.0) + 100)
    assert statistic == 1.0 and pvalue < 1e-10
    statistic, pvalue = ks_2samp(np.arange(50.0), np.arange(50.0))
    assert statistic == 0.0 and pvalue == 1.0


def test_a_column_that_became_all_null_drifts():
    reference = reference_frame()
    current = reference_frame(seed=2).with_columns(pl.lit(None, dtype=pl.Float64).alias("score"),
                                                   pl.lit(None, dtype=pl.String).alias("segment"))
    columns = _by_column(_compare(reference, current))
    assert columns["score"].reasons == ["no non-null values in the current data"]
    assert columns["segment"].reasons == ["no non-null values in the current data"]


def test_a_column_null_on_both_sides_is_skipped():
    frame = reference_frame().with_columns(pl.lit(None, dtype=pl.Float64).alias("score"))
    score = _by_column(_compare(frame, frame))["score"]
    assert (score.status, score.note) == ("skipped", "no non-null values on either side")


def test_an_empty_current_dataset_drifts():
    reference = reference_frame()
    columns = _by_column(_compare(reference, reference.head(0)))
    assert columns["score"].reasons == ["the current data has no rows"]
