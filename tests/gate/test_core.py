"""The pure gate evaluation, table-driven. No MLflow, no files."""

from __future__ import annotations

import math

import pytest

from mlci.gate.core import FAILED, PASSED, SKIPPED, ModelEvidence, evaluate, relative_threshold
from mlci.gate.policy import Policy, Rule, default_name

NAN = math.nan


def rule(subject, **kw) -> Rule:
    r = Rule(name="", subject=subject, **kw)
    return Rule(**{**r.__dict__, "name": default_name(r)})


def ev(metrics=None, budgets=None, errors=None) -> ModelEvidence:
    return ModelEvidence(metrics=metrics or {}, budgets=budgets or {}, budget_errors=errors or {})


def verdict_of(r: Rule, candidate: ModelEvidence, champion: ModelEvidence | None = None, **policy):
    result = evaluate(Policy(rules=(r,), **policy), candidate, champion)
    return result, next(v for v in result.verdicts if v.rule == r.name)


# (id, rule, candidate metrics, expected status, reason fragment)
ABSOLUTE_CASES = [
    ("min-pass", rule("acc", minimum=0.8), {"acc": 0.9}, PASSED, "acc = 0.9 >= 0.8"),
    ("min-fail", rule("acc", minimum=0.8), {"acc": 0.79}, FAILED, "acc = 0.79 < min 0.8"),
    ("min-equal-passes", rule("acc", minimum=0.8), {"acc": 0.8}, PASSED, ""),
    ("max-equal-passes", rule("loss", maximum=0.3), {"loss": 0.3}, PASSED, ""),
    ("max-fail", rule("loss", maximum=0.3), {"loss": 0.31}, FAILED, "> max 0.3"),
    ("float-noise-at-threshold", rule("acc", minimum=0.3), {"acc": 0.1 + 0.2}, PASSED, ""),
    ("range-low", rule("p", minimum=0.1, maximum=0.9), {"p": 0.05}, FAILED, "< min 0.1"),
    ("range-high", rule("p", minimum=0.1, maximum=0.9), {"p": 0.95}, FAILED, "> max 0.9"),
    ("range-inside", rule("p", minimum=0.1, maximum=0.9), {"p": 0.5}, PASSED, ""),
    ("nan-fails", rule("acc", minimum=0.8), {"acc": NAN}, FAILED, "NaN"),
    ("nan-fails-max", rule("loss", maximum=1.0), {"loss": NAN}, FAILED, "NaN"),
    ("inf-loss-fails", rule("loss", maximum=1.0), {"loss": math.inf}, FAILED, "> max"),
    ("missing-fails", rule("acc", minimum=0.8), {"f1": 0.9}, FAILED, "'acc' was not logged by the candidate"),
    ("glob-all-pass", rule("acc_slice_*", minimum=0.7), {"acc_slice_a": 0.8, "acc_slice_b": 0.75}, PASSED,
     "all 2 metrics"),
    ("glob-one-fails", rule("acc_slice_*", minimum=0.7), {"acc_slice_a": 0.8, "acc_slice_b": 0.6}, FAILED,
     "1 of 2 metrics matching 'acc_slice_*' failed: acc_slice_b = 0.6 < min 0.7"),
    ("glob-none-match", rule("acc_slice_*", minimum=0.7), {"acc": 0.9}, FAILED, "no candidate metric matches"),
    ("glob-nan-member", rule("acc_slice_*", minimum=0.7), {"acc_slice_a": 0.8, "acc_slice_b": NAN}, FAILED, "NaN"),
]


@pytest.mark.parametrize(("r", "metrics", "status", "fragment"), [c[1:] for c in ABSOLUTE_CASES],
                         ids=[c[0] for c in ABSOLUTE_CASES])
def test_absolute_rules(r, metrics, status, fragment):
    result, verdict = verdict_of(r, ev(metrics), ev({}))
    assert verdict.status == status, verdict.reason
    assert fragment in verdict.reason
    assert result.passed is (status == PASSED)
    assert verdict.blocking is (status == FAILED)


def test_missing_candidate_metric_is_marked_missing():
    _, verdict = verdict_of(rule("acc", minimum=0.8), ev({}), ev({"acc": 0.9}))
    assert verdict.missing and verdict.status == FAILED and verdict.blocking


def test_glob_reports_the_worst_member_as_observed():
    _, verdict = verdict_of(rule("s_*", minimum=0.5), ev({"s_a": 0.9, "s_b": 0.55, "s_c": 0.7}), ev({}))
    assert (verdict.status, verdict.observed, verdict.threshold) == (PASSED, 0.55, 0.5)
    assert [c.metric for c in verdict.checks] == ["s_a", "s_b", "s_c"]


# (id, rule, candidate, champion, expected status, fragment)
RELATIVE_CASES = [
    ("higher-within-tolerance", rule("acc", direction="higher", tolerance_key="max-regression", tolerance=0.02),
     0.89, 0.90, PASSED, "vs champion 0.9"),
    ("higher-regression-too-big", rule("acc", direction="higher", tolerance_key="max-regression", tolerance=0.01),
     0.85, 0.90, FAILED, "needs >= 0.89"),
    ("higher-equal-at-tolerance", rule("acc", direction="higher", tolerance_key="max-regression", tolerance=0.01),
     0.89, 0.90, PASSED, ""),
    ("not-worse-zero-tolerance", rule("acc", direction="higher", tolerance_key="max-regression", tolerance=0),
     0.9, 0.9, PASSED, ""),
    ("lower-better-loss-regressed", rule("loss", direction="lower", tolerance_key="max-regression", tolerance=0.05),
     0.40, 0.30, FAILED, "lower is better"),
    ("lower-better-loss-improved", rule("loss", direction="lower", tolerance_key="max-regression", tolerance=0.0),
     0.20, 0.30, PASSED, ""),
    ("pct-within", rule("acc", direction="higher", tolerance_key="max-regression-pct", tolerance=5),
     0.86, 0.90, PASSED, ""),
    ("pct-exceeded", rule("acc", direction="higher", tolerance_key="max-regression-pct", tolerance=1),
     0.88, 0.90, FAILED, "max-regression-pct 1"),
    ("pct-negative-champion", rule("score", direction="higher", tolerance_key="max-regression-pct", tolerance=10),
     -1.05, -1.0, PASSED, ""),
    ("improvement-met", rule("acc", direction="higher", tolerance_key="min-improvement", tolerance=0.01),
     0.92, 0.90, PASSED, ""),
    ("improvement-equal", rule("acc", direction="higher", tolerance_key="min-improvement", tolerance=0.01),
     0.91, 0.90, PASSED, ""),
    ("improvement-missed", rule("acc", direction="higher", tolerance_key="min-improvement", tolerance=0.01),
     0.905, 0.90, FAILED, "min-improvement 0.01"),
    ("improvement-pct-lower", rule("rmse", direction="lower", tolerance_key="min-improvement-pct", tolerance=10),
     0.95, 1.0, FAILED, ""),
    ("candidate-nan", rule("acc", direction="higher", tolerance_key="max-regression", tolerance=1),
     NAN, 0.9, FAILED, "NaN"),
    ("champion-nan-skips", rule("acc", direction="higher", tolerance_key="max-regression", tolerance=0),
     0.9, NAN, SKIPPED, "champion value NaN"),
    ("champion-missing-skips", rule("acc", direction="higher", tolerance_key="max-regression", tolerance=0),
     0.9, None, SKIPPED, "champion value not logged"),
]


@pytest.mark.parametrize(("r", "cand", "champ", "status", "fragment"), [c[1:] for c in RELATIVE_CASES],
                         ids=[c[0] for c in RELATIVE_CASES])
def test_relative_rules(r, cand, champ, status, fragment):
    champion = ev({} if champ is None else {r.subject: champ})
    result, verdict = verdict_of(r, ev({r.subject: cand}), champion)
    assert verdict.status == status, verdict.reason
    assert fragment in verdict.reason
    assert result.passed is (status != FAILED)
    if status != SKIPPED and not math.isnan(champ):
        assert verdict.champion == champ


@pytest.mark.parametrize(
    ("direction", "key", "tolerance", "champion", "expected"),
    [
        ("higher", "max-regression", 0.1, 1.0, 0.9),
        ("higher", "min-improvement", 0.1, 1.0, 1.1),
        ("lower", "max-regression", 0.1, 1.0, 1.1),
        ("lower", "min-improvement", 0.1, 1.0, 0.9),
        ("higher", "max-regression-pct", 10, 2.0, 1.8),
        ("lower", "max-regression-pct", 10, 2.0, 2.2),
        ("higher", "min-improvement-pct", 10, -2.0, -1.8),
    ],
)
def test_relative_threshold(direction, key, tolerance, champion, expected):
    r = rule("m", direction=direction, tolerance_key=key, tolerance=tolerance)
    assert relative_threshold(r, champion) == pytest.approx(expected)


def test_relative_glob_skips_members_the_champion_lacks():
    r = rule("s_*", direction="higher", tolerance_key="max-regression", tolerance=0.0)
    _, verdict = verdict_of(r, ev({"s_a": 0.8, "s_new": 0.1}), ev({"s_a": 0.7}))
    assert verdict.status == PASSED
    assert "1 skipped" in verdict.reason
    statuses = {c.metric: c.status for c in verdict.checks}
    assert statuses == {"s_a": PASSED, "s_new": SKIPPED}


def test_relative_metric_missing_on_candidate_fails():
    r = rule("acc", direction="higher", tolerance_key="max-regression", tolerance=0.0)
    _, verdict = verdict_of(r, ev({}), ev({"acc": 0.9}))
    assert (verdict.status, verdict.missing, verdict.blocking) == (FAILED, True, True)


@pytest.mark.parametrize(
    ("r", "budgets", "champion_budgets", "status"),
    [
        (rule("model-size-mb", is_budget=True, maximum=10), {"model-size-mb": 9.9}, {}, PASSED),
        (rule("model-size-mb", is_budget=True, maximum=10), {"model-size-mb": 10.5}, {}, FAILED),
        (rule("latency-p95-ms", is_budget=True, direction="lower", tolerance_key="max-regression-pct", tolerance=20),
         {"latency-p95-ms": 11.0}, {"latency-p95-ms": 10.0}, PASSED),
        (rule("latency-p95-ms", is_budget=True, direction="lower", tolerance_key="max-regression-pct", tolerance=20),
         {"latency-p95-ms": 13.0}, {"latency-p95-ms": 10.0}, FAILED),
    ],
    ids=["size-under", "size-over", "latency-relative-ok", "latency-relative-regressed"],
)
def test_budgets(r, budgets, champion_budgets, status):
    _, verdict = verdict_of(r, ev({}, budgets), ev({}, champion_budgets))
    assert verdict.status == status
    assert verdict.kind.startswith("budget-")


def test_unmeasured_budget_fails_with_the_measurement_error():
    r = rule("latency-p50-ms", is_budget=True, maximum=5)
    _, verdict = verdict_of(r, ev({}, {}, {"latency-p50-ms": "no input_example logged"}), ev({}))
    assert verdict.status == FAILED and verdict.missing
    assert "no input_example logged" in verdict.reason


def test_unmeasured_champion_budget_skips_the_comparison():
    r = rule("latency-p50-ms", is_budget=True, direction="lower", tolerance_key="max-regression", tolerance=1)
    champion = ev({}, {}, {"latency-p50-ms": "columns differ"})
    _, verdict = verdict_of(r, ev({}, {"latency-p50-ms": 3.0}), champion)
    assert verdict.status == SKIPPED
    assert "columns differ" in verdict.reason


def test_warn_severity_reports_but_does_not_block():
    r = rule("acc", minimum=0.9, severity="warn")
    result, verdict = verdict_of(r, ev({"acc": 0.5}), ev({}))
    assert verdict.status == FAILED and not verdict.blocking
    assert result.passed
    assert result.warnings == [verdict]
    assert "does not block" in verdict.reason


def test_missing_metric_on_warn_rule_does_not_block():
    result, verdict = verdict_of(rule("acc", minimum=0.9, severity="warn"), ev({}), ev({}))
    assert verdict.missing and not verdict.blocking and result.passed


def test_warn_only_keeps_the_decision_honest():
    result, _ = verdict_of(rule("acc", minimum=0.9), ev({"acc": 0.5}), ev({}), warn_only=True)
    assert result.warn_only
    assert not result.passed and result.status == FAILED


POLICY_RULES = (
    rule("acc", minimum=0.8),
    rule("acc", direction="higher", tolerance_key="max-regression", tolerance=0.01),
)


@pytest.mark.parametrize(
    ("on_no_champion", "acc", "passed", "cold_status", "absolute_blocking"),
    [
        ("absolute-only", 0.9, True, PASSED, False),
        ("absolute-only", 0.5, False, PASSED, True),
        ("pass", 0.5, True, PASSED, False),
        ("fail", 0.9, False, FAILED, False),
    ],
)
def test_cold_start_is_explicit(on_no_champion, acc, passed, cold_status, absolute_blocking):
    result = evaluate(Policy(rules=POLICY_RULES, on_no_champion=on_no_champion), ev({"acc": acc}), None)
    cold, absolute, relative = result.verdicts
    assert result.cold_start
    assert (cold.rule, cold.kind, cold.status) == ("champion", "cold-start", cold_status)
    assert f"on-no-champion is '{on_no_champion}'" in cold.reason
    assert "1 champion comparison(s) skipped" in cold.reason
    assert relative.status == SKIPPED and "no champion" in relative.reason
    assert absolute.blocking is absolute_blocking
    assert result.passed is passed


def test_with_a_champion_there_is_no_cold_start_verdict():
    result = evaluate(Policy(rules=POLICY_RULES, on_no_champion="fail"), ev({"acc": 0.9}), ev({"acc": 0.895}))
    assert not result.cold_start
    assert [v.status for v in result.verdicts] == [PASSED, PASSED]
    assert result.summary() == "2 passed, 0 failed, 0 skipped"


def test_no_rules_passes_with_a_champion():
    assert evaluate(Policy(), ev({"acc": 0.1}), ev({})).passed


def test_verdict_json_encodes_nan_as_text():
    _, verdict = verdict_of(rule("acc", minimum=0.8), ev({"acc": NAN}), ev({}))
    assert verdict.as_dict()["observed"] == "NaN"
