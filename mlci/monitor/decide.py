"""The monitor's verdict, a pure function of what was measured.

Each rule ends in one status: ok, breached, no-data (the query returned
nothing, or the baseline did not) or skipped (too few requests to judge).
The decision takes the most serious one: rollback, then retrain, then
no-data, then ok. "Could not judge" is never "ok".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

OK, ROLLBACK, RETRAIN, NO_DATA = "ok", "rollback", "retrain", "no-data"
DECISIONS = (OK, ROLLBACK, RETRAIN, NO_DATA)


@dataclass
class RuleResult:
    name: str
    status: str  # ok | breached | no-data | skipped
    action: str
    query: str
    value: float | None = None
    threshold: str = ""
    unit: str = ""
    window: str = ""
    baseline: float | None = None
    baseline_query: str = ""
    baseline_version: str | None = None
    baseline_end: str | None = None
    change_pct: float | None = None
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "status": self.status, "action": self.action, "value": _num(self.value),
            "threshold": self.threshold, "unit": self.unit, "window": self.window, "query": self.query,
            "baseline": _num(self.baseline), "baseline-version": self.baseline_version,
            "baseline-end": self.baseline_end, "baseline-query": self.baseline_query or None,
            "change-pct": _num(self.change_pct), "reason": self.reason,
        }


@dataclass
class Traffic:
    requests: float | None
    min_requests: int
    window: str
    query: str

    @property
    def status(self) -> str:
        if self.requests is None or (isinstance(self.requests, float) and math.isnan(self.requests)):
            return "no-data"
        return "too-few" if self.requests < self.min_requests else "ok"

    def describe(self) -> str:
        if self.status == "no-data":
            return f"no inference requests recorded in the last {self.window}"
        return f"{self.requests:.0f} inference requests in the last {self.window} (minimum {self.min_requests})"


@dataclass
class DriftResult:
    status: str  # ok | drift | no-data | off
    action: str = "retrain"
    rows: int = 0
    min_rows: int = 0
    columns: list[str] = field(default_factory=list)
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Verdict:
    decision: str
    reasons: list[str]
    rules: list[RuleResult]
    traffic: Traffic
    drift: DriftResult

    @property
    def evidence(self) -> str:
        return "; ".join(self.reasons)


def judge_value(value: float | None, *, minimum: float | None, maximum: float | None) -> tuple[str, str]:
    if value is None or math.isnan(value):
        return "no-data", "the query returned no value"
    if maximum is not None and value > maximum:
        return "breached", f"{value:.4g} > {maximum:g}"
    if minimum is not None and value < minimum:
        return "breached", f"{value:.4g} < {minimum:g}"
    return "ok", ""


def judge_regression(value: float | None, baseline: float | None, *, max_increase_pct: float | None,
                     max_decrease_pct: float | None) -> tuple[str, str, float | None]:
    if value is None or math.isnan(value):
        return "no-data", "this version has no value in the window", None
    if baseline is None or math.isnan(baseline):
        return "no-data", "the previous version has no value in its baseline window", None
    if baseline == 0:
        change = math.inf if value > 0 else 0.0
    else:
        change = (value - baseline) / abs(baseline) * 100
    if max_increase_pct is not None and change > max_increase_pct:
        return "breached", f"{value:.4g} vs {baseline:.4g}: +{change:.0f}% > +{max_increase_pct:g}%", change
    if max_decrease_pct is not None and change < -max_decrease_pct:
        return "breached", f"{value:.4g} vs {baseline:.4g}: {change:.0f}% < -{max_decrease_pct:g}%", change
    return "ok", "", change


def decide(rules: list[RuleResult], traffic: Traffic, drift: DriftResult) -> Verdict:
    reasons: list[str] = []
    actions: set[str] = set()
    for rule in rules:
        if rule.status == "breached":
            actions.add(rule.action)
            reasons.append(f"{rule.name}: {rule.reason}")
    if drift.status == "drift":
        actions.add(drift.action)
        reasons.append(f"live data drift: {drift.reason}")
    undecided = [rule for rule in rules if rule.status in ("no-data", "skipped")]
    if ROLLBACK in actions:
        decision = ROLLBACK
    elif RETRAIN in actions:
        decision = RETRAIN
    elif undecided or drift.status == "no-data":
        decision = NO_DATA
        if traffic.status != "ok" and rules:
            reasons.append(traffic.describe())
        for rule in undecided:
            if rule.status == "no-data":
                reasons.append(f"{rule.name}: {rule.reason}")
        if drift.status == "no-data":
            reasons.append(f"live data drift: {drift.reason}")
    else:
        decision = OK
    return Verdict(decision=decision, reasons=reasons, rules=rules, traffic=traffic, drift=drift)


def _num(value: float | None):
    if value is None:
        return None
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return str(value)
    return value
