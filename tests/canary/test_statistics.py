"""The canary's statistics as a statistician would check them: simulated experiments, many peeks.

Pure and fast: binomial counts drawn with a fixed seed go through the same
`analyze` every `mlci canary analyze` run calls, one call per peek.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from scipy import stats

from mlci.canary import decide, design

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
SETTINGS = {"alpha": 0.05, "power": 0.8, "max-looks": 10, "min-duration": 0, "max-duration": 10**9,
            "on-max-duration": "rollback"}
BASELINE, MIN_EFFECT = 0.05, 0.03
PEEKS = 30  # runs of `analyze` per experiment, three times as many as planned looks


def experiment_state(*, mode: str = decide.CANARY, percent: float = 50.0, settings=None) -> dict:
    return decide.new_state(
        mode=mode, environment="production", stable="1", canary="2", percent=percent,
        settings={**SETTINGS, **(settings or {})}, started_at=START,
        metrics={"error-rate": {"kind": "error-rate", "better": "lower", "min-effect": MIN_EFFECT,
                                "baseline": BASELINE}},
    )


def run_experiment(rng, canary_rate: float, *, percent: float = 50.0, peeks: int = PEEKS,
                   overshoot: float = 1.3, mode: str = decide.CANARY) -> decide.Analysis:
    """Traffic arrives in equal batches up to `overshoot` times the planned sample; analyze after each batch."""
    state = experiment_state(mode=mode, percent=percent)
    planned = state["metrics"]["error-rate"]["design"]
    batch_canary = math.ceil(planned["n-canary"] * overshoot / peeks)
    batch_stable = math.ceil(planned["n-stable"] * overshoot / peeks)
    counts = [0, 0, 0, 0]
    analysis = None
    for peek in range(1, peeks + 1):
        counts[0] += int(rng.binomial(batch_canary, canary_rate))
        counts[1] += batch_canary
        counts[2] += int(rng.binomial(batch_stable, BASELINE))
        counts[3] += batch_stable
        analysis = decide.analyze(state, {"error-rate": decide.Counts(*counts)}, START + timedelta(minutes=peek))
        if analysis.decision != decide.CONTINUE:
            return analysis
    return analysis


def binomial_upper(rate: float, trials: int, z: float = 3.0) -> float:
    return rate + z * math.sqrt(rate * (1 - rate) / trials)


def test_boundaries_match_the_published_obrien_fleming_type_values():
    # Lan-DeMets O'Brien-Fleming-type spending, five equally spaced looks, one-sided 0.025
    # (Jennison & Turnbull table 7.6 / gsDesign's sfLDOF): 4.877, 3.357, 2.680, 2.290, 2.031.
    criticals = design.boundaries([0.2, 0.4, 0.6, 0.8, 1.0], 0.025, design.grid_step(5))
    assert criticals == pytest.approx([4.877, 3.357, 2.680, 2.290, 2.031], abs=2e-3)
    # Whatever the looks, the chance of ever crossing under H0 is the alpha spent, never more.
    fractions = [0.13, 0.31, 0.58, 0.77, 1.0]
    criticals = design.boundaries(fractions, 0.05, design.grid_step(10))
    crossing = sum(design.crossing_probabilities(fractions, criticals, 0.0, design.grid_step(10)))
    assert crossing == pytest.approx(0.05, abs=1e-5)


def test_aa_simulation_with_peeking_keeps_the_false_positive_rate_within_alpha():
    rng = np.random.default_rng(20260101)
    runs = 500
    outcomes = [run_experiment(rng, BASELINE) for _ in range(runs)]
    rollbacks = sum(result.decision == decide.ROLLBACK for result in outcomes)
    promotes = sum(result.decision == decide.PROMOTE for result in outcomes)
    assert rollbacks + promotes == runs, "every experiment ends within 1.3 times the planned sample"
    assert rollbacks / runs <= binomial_upper(SETTINGS["alpha"], runs), (
        f"{rollbacks} of {runs} equal versions rolled back with {PEEKS} peeks each")
    # Each rolled-back experiment states a p-value that clears its look's nominal level.
    for result in outcomes:
        if result.decision == decide.ROLLBACK:
            look = result.metrics[0].look or result.metrics[0].last_look
            assert look["p"] <= look["nominal-alpha"] + 1e-12


def test_the_same_peeking_with_a_naive_test_would_inflate_the_false_positive_rate():
    # The control: testing at alpha on every peek is what the design protects against.
    rng = np.random.default_rng(7)
    runs, peeks, n = 500, PEEKS, 4000
    false_alarms = 0
    for _ in range(runs):
        canary = rng.binomial(n // peeks, BASELINE, size=peeks).cumsum()
        stable = rng.binomial(n // peeks, BASELINE, size=peeks).cumsum()
        sizes = np.arange(1, peeks + 1) * (n // peeks)
        pooled = (canary + stable) / (2 * sizes)
        z = (canary - stable) / sizes / np.sqrt(pooled * (1 - pooled) * 2 / sizes)
        false_alarms += bool((z >= stats.norm.isf(SETTINGS["alpha"])).any())
    assert false_alarms / runs > 2 * SETTINGS["alpha"]


def test_power_at_the_minimum_detectable_effect_matches_the_configured_power():
    rng = np.random.default_rng(99)
    runs = 300
    outcomes = [run_experiment(rng, BASELINE + MIN_EFFECT, overshoot=1.0, peeks=20) for _ in range(runs)]
    detected = sum(result.decision == decide.ROLLBACK for result in outcomes) / runs
    sd = math.sqrt(SETTINGS["power"] * (1 - SETTINGS["power"]) / runs)
    assert detected >= SETTINGS["power"] - 3 * sd, f"found {detected:.1%} of regressions at the minimum effect"
    # A regression twice the minimum effect is found, and mostly long before the planned sample.
    large = [run_experiment(rng, BASELINE + 2 * MIN_EFFECT, overshoot=1.0, peeks=20) for _ in range(50)]
    assert sum(result.decision == decide.ROLLBACK for result in large) >= 48
    assert np.median([result.metrics[0].information for result in large]) < 0.6


def test_sample_size_follows_alpha_power_effect_and_split():
    base = dict(baseline=0.02, min_effect=0.01, better="lower", alpha=0.05, power=0.8, ratio=1.0)
    n = design.fixed_sample_size(**base)
    # Normal approximation with Cohen's h (variance 1/n1 + 1/n2), one-sided: n = 2 ((z_a + z_b) / h)^2 per arm.
    h = 2 * math.asin(math.sqrt(0.03)) - 2 * math.asin(math.sqrt(0.02))
    assert n == pytest.approx(2 * ((stats.norm.isf(0.05) + stats.norm.isf(0.2)) / h) ** 2, rel=1e-3)
    assert design.fixed_sample_size(**{**base, "min_effect": 0.005}) > 3 * n
    assert design.fixed_sample_size(**{**base, "alpha": 0.01}) > n
    assert design.fixed_sample_size(**{**base, "power": 0.95}) > n
    # A 10% canary needs fewer of its own requests than an even split, many more in all.
    ten = design.fixed_sample_size(**{**base, "ratio": 9.0})
    assert ten < n and ten * 10 > 2 * n * 2
    assert 1.0 < design.inflation_factor(10, 0.05, 0.8) < 1.1
    with pytest.raises(ValueError, match="leaves"):
        design.fixed_sample_size(**{**base, "baseline": 0.995, "min_effect": 0.01})


def test_without_enough_traffic_the_canary_continues_then_rolls_back_at_max_duration():
    state = experiment_state(settings={"max-duration": 3600})
    thin = {"error-rate": decide.Counts(1, 40, 2, 40)}
    first = decide.analyze(state, thin, START + timedelta(minutes=30))
    assert first.decision == decide.CONTINUE and not first.looked
    last = decide.analyze(state, thin, START + timedelta(minutes=61))
    assert last.decision == decide.ROLLBACK and "max-duration" in last.rule
    # A decided experiment reports its decision again and takes no new look.
    again = decide.analyze(state, {"error-rate": decide.Counts(0, 10**6, 0, 10**6)}, START + timedelta(hours=5))
    assert again.decision == decide.ROLLBACK and again.decided_before and not again.looked


def test_ab_mode_tests_once_at_the_horizon_and_reports_an_interval():
    rng = np.random.default_rng(3)
    before = experiment_state(mode=decide.AB)
    planned = before["metrics"]["error-rate"]["design"]
    half = decide.Counts(int(planned["n-canary"] * 0.5 * 0.2), int(planned["n-canary"] * 0.5),
                         int(planned["n-stable"] * 0.5 * 0.05), int(planned["n-stable"] * 0.5))
    early = decide.analyze(before, {"error-rate": half}, START + timedelta(hours=1))
    assert early.decision == decide.CONTINUE and not early.looked, "nothing is tested before the horizon"
    result = run_experiment(rng, BASELINE + 2 * MIN_EFFECT, mode=decide.AB, peeks=4, overshoot=1.05)
    assert result.decision == decide.ROLLBACK and result.looked
    metric = result.metrics[0].to_json()
    low, high = metric["effect"]["ci"]
    assert 0 < low < 2 * MIN_EFFECT < high
    assert metric["test"]["alternative"] == "two-sided" and metric["test"]["p"] < 0.05


@pytest.mark.parametrize("bad", [0, 100, -5])
def test_a_split_outside_zero_and_hundred_percent_is_refused(bad):
    with pytest.raises(ValueError, match="between 0 and 100"):
        experiment_state(percent=bad)
