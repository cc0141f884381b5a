"""The gate decision as a pure function: policy + candidate + champion -> GateResult.

No MLflow, no files. Rules of thumb a user can rely on:
- a value exactly at a threshold passes (float noise at 1e-9 counts as equal);
- NaN on the candidate fails; a metric the candidate did not log fails;
- a metric the champion lacks skips that comparison, with the reason;
- without a champion, `on-no-champion` decides, and the result says so in
  a verdict of its own (never a silent skip).
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field

from mlci.gate.policy import Policy, Rule

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
COLD_START_RULE = "champion"


@dataclass(frozen=True)
class ModelEvidence:
    """What the gate knows about one model: logged metrics and measured budgets."""

    metrics: dict[str, float]
    budgets: dict[str, float] = field(default_factory=dict)
    budget_errors: dict[str, str] = field(default_factory=dict)  # budget -> why it was not measured
    run_id: str = ""
    version: str = ""


@dataclass(frozen=True)
class MetricCheck:
    """One concrete metric checked by a rule (a glob rule has several)."""

    metric: str
    status: str
    observed: float | None
    threshold: float | None
    champion: float | None = None
    note: str = ""
    margin: float = math.inf  # distance from failing; negative when failing, -inf for NaN


@dataclass(frozen=True)
class RuleVerdict:
    rule: str
    kind: str  # absolute | relative | budget-absolute | budget-relative | cold-start
    subject: str
    status: str  # passed | failed | skipped
    severity: str
    blocking: bool  # a failure that blocks the gate
    reason: str
    observed: float | None = None
    threshold: float | None = None
    champion: float | None = None
    comparison: str = ""
    missing: bool = False  # the candidate lacks the metric/budget at all
    checks: tuple[MetricCheck, ...] = ()

    def as_dict(self) -> dict:
        return {
            "rule": self.rule, "kind": self.kind, "subject": self.subject, "status": self.status,
            "severity": self.severity, "blocking": self.blocking, "reason": self.reason,
            "observed": _json_number(self.observed), "threshold": _json_number(self.threshold),
            "champion": _json_number(self.champion), "comparison": self.comparison, "missing": self.missing,
            "checks": [
                {"metric": c.metric, "status": c.status, "observed": _json_number(c.observed),
                 "threshold": _json_number(c.threshold), "champion": _json_number(c.champion), "note": c.note}
                for c in self.checks
            ],
        }


@dataclass(frozen=True)
class GateResult:
    verdicts: tuple[RuleVerdict, ...]
    cold_start: bool
    on_no_champion: str
    warn_only: bool

    @property
    def passed(self) -> bool:
        """No blocking failure. Warn-only does not change this; it only keeps the job green."""
        return not self.blocking

    @property
    def status(self) -> str:
        return PASSED if self.passed else FAILED

    @property
    def blocking(self) -> list[RuleVerdict]:
        return [v for v in self.verdicts if v.blocking]

    @property
    def warnings(self) -> list[RuleVerdict]:
        return [v for v in self.verdicts if v.status == FAILED and not v.blocking]

    def counts(self) -> dict[str, int]:
        return {status: sum(v.status == status for v in self.verdicts) for status in (PASSED, FAILED, SKIPPED)}

    def summary(self) -> str:
        counts = self.counts()
        text = f"{counts[PASSED]} passed, {counts[FAILED]} failed, {counts[SKIPPED]} skipped"
        if self.warnings:
            text += f" ({len(self.warnings)} non-blocking)"
        return text


def _json_number(value: float | None):
    if value is None:
        return None
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    return "NaN" if math.isnan(value) else f"{value:.6g}"


def _at_least(value: float, threshold: float) -> bool:
    return value >= threshold or math.isclose(value, threshold, rel_tol=1e-9, abs_tol=1e-12)


def _at_most(value: float, threshold: float) -> bool:
    return value <= threshold or math.isclose(value, threshold, rel_tol=1e-9, abs_tol=1e-12)


def _is_number(value: float | None) -> bool:
    return value is not None and not math.isnan(value)


def _candidate_values(rule: Rule, evidence: ModelEvidence) -> dict[str, float]:
    if rule.is_budget:
        return {rule.subject: evidence.budgets[rule.subject]} if rule.subject in evidence.budgets else {}
    if rule.is_pattern:
        return {k: v for k, v in sorted(evidence.metrics.items()) if fnmatch.fnmatchcase(k, rule.subject)}
    return {rule.subject: evidence.metrics[rule.subject]} if rule.subject in evidence.metrics else {}


def _missing_reason(rule: Rule, evidence: ModelEvidence, whose: str) -> str:
    if rule.is_budget:
        why = evidence.budget_errors.get(rule.subject)
        return f"{rule.subject} of the {whose} was not measured" + (f": {why}" if why else "")
    if rule.is_pattern:
        return f"no {whose} metric matches {rule.subject!r}"
    return f"metric {rule.subject!r} was not logged by the {whose} run"


def _comparison(rule: Rule) -> str:
    if rule.relative:
        return ">=" if rule.direction == "higher" else "<="
    parts = []
    if rule.minimum is not None:
        parts.append(f">= {_fmt(rule.minimum)}")
    if rule.maximum is not None:
        parts.append(f"<= {_fmt(rule.maximum)}")
    return " and ".join(parts)


def _check_absolute(rule: Rule, metric: str, value: float) -> MetricCheck:
    if math.isnan(value):
        threshold = rule.minimum if rule.minimum is not None else rule.maximum
        return MetricCheck(metric, FAILED, value, threshold, note=f"{metric} is NaN", margin=-math.inf)
    bounds = []  # (margin, threshold, passes, failure note)
    if rule.minimum is not None:
        bounds.append((value - rule.minimum, rule.minimum, _at_least(value, rule.minimum),
                       f"{metric} = {_fmt(value)} < min {_fmt(rule.minimum)}"))
    if rule.maximum is not None:
        bounds.append((rule.maximum - value, rule.maximum, _at_most(value, rule.maximum),
                       f"{metric} = {_fmt(value)} > max {_fmt(rule.maximum)}"))
    for margin, threshold, passes, note in bounds:
        if not passes:
            return MetricCheck(metric, FAILED, value, threshold, note=note, margin=min(margin, -1e-300))
    margin, threshold, _, _ = min(bounds)
    return MetricCheck(metric, PASSED, value, threshold, note=f"{metric} = {_fmt(value)} {_comparison(rule)}",
                       margin=max(margin, 0.0))


def relative_threshold(rule: Rule, champion: float) -> float:
    """The value the candidate must reach (higher) or stay under (lower), given the champion's."""
    margin = rule.tolerance if rule.tolerance_key in ("max-regression", "min-improvement") else (
        abs(champion) * rule.tolerance / 100.0
    )
    better_by = -margin if rule.tolerance_key.startswith("max-regression") else margin
    return champion + better_by if rule.direction == "higher" else champion - better_by


def _check_relative(rule: Rule, metric: str, value: float, champion: float | None) -> MetricCheck:
    if champion is None or math.isnan(champion):
        why = "NaN" if champion is not None else "not logged"
        return MetricCheck(metric, SKIPPED, value, None, champion,
                           note=f"{metric}: champion value {why}, comparison skipped")
    threshold = relative_threshold(rule, champion)
    if math.isnan(value):
        return MetricCheck(metric, FAILED, value, threshold, champion, note=f"{metric} is NaN", margin=-math.inf)
    ok = _at_least(value, threshold) if rule.direction == "higher" else _at_most(value, threshold)
    delta = value - champion
    sign = "+" if delta >= 0 else ""
    note = (f"{metric} = {_fmt(value)} vs champion {_fmt(champion)} ({sign}{_fmt(delta)}); "
            f"{rule.direction} is better, needs {_comparison(rule)} {_fmt(threshold)} "
            f"({rule.tolerance_key} {_fmt(rule.tolerance)})")
    margin = value - threshold if rule.direction == "higher" else threshold - value
    if ok:
        margin = max(margin, 0.0)
    elif margin >= 0:  # failed by float noise on the wrong side of isclose: still a failure
        margin = -1e-300
    return MetricCheck(metric, PASSED if ok else FAILED, value, threshold, champion, note=note, margin=margin)


def _rule_verdict(rule: Rule, candidate: ModelEvidence, champion: ModelEvidence | None,
                  policy: Policy) -> RuleVerdict:
    base = {"rule": rule.name, "kind": rule.kind, "subject": rule.subject, "severity": rule.severity,
            "comparison": _comparison(rule)}
    values = _candidate_values(rule, candidate)
    if rule.relative and champion is None:
        return RuleVerdict(**base, status=SKIPPED, blocking=False,
                           reason=f"no champion to compare with (on-no-champion: {policy.on_no_champion})")
    if not values:
        return RuleVerdict(**base, status=FAILED, blocking=rule.severity == "error", missing=True,
                           reason=_missing_reason(rule, candidate, "candidate"))
    if rule.relative:
        champion_values = (
            {rule.subject: champion.budgets.get(rule.subject)} if rule.is_budget else champion.metrics
        )
        checks = [_check_relative(rule, m, v, champion_values.get(m)) for m, v in values.items()]
        if rule.is_budget and champion_values.get(rule.subject) is None and rule.subject in champion.budget_errors:
            checks = [MetricCheck(c.metric, SKIPPED, c.observed, None, None,
                                  note=_missing_reason(rule, champion, "champion")) for c in checks]
    else:
        checks = [_check_absolute(rule, m, v) for m, v in values.items()]

    failed = [c for c in checks if c.status == FAILED]
    judged = [c for c in checks if c.status != SKIPPED]
    if failed:
        status = FAILED
        shown = min(failed, key=lambda c: c.margin)
        reason = "; ".join(c.note for c in failed[:5]) + (f"; and {len(failed) - 5} more" if len(failed) > 5 else "")
        if rule.is_pattern:
            reason = f"{len(failed)} of {len(checks)} metrics matching {rule.subject!r} failed: {reason}"
    elif not judged:
        status = SKIPPED
        shown = checks[0]
        reason = "; ".join(c.note for c in checks)
    else:
        status = PASSED
        shown = min(judged, key=lambda c: c.margin)
        reason = shown.note if len(checks) == 1 else (
            f"all {len(judged)} metrics matching {rule.subject!r} pass; closest: {shown.note}"
        )
        skipped = len(checks) - len(judged)
        if skipped:
            reason += f" ({skipped} skipped: not logged by the champion)"
    blocking = status == FAILED and rule.severity == "error"
    if status == FAILED and rule.severity == "warn":
        reason += " [severity warn: does not block]"
    if blocking and champion is None and policy.on_no_champion == "pass":
        blocking = False
        reason += " [no champion and on-no-champion: pass: does not block]"
    return RuleVerdict(**base, status=status, blocking=blocking, reason=reason, observed=shown.observed,
                       threshold=shown.threshold, champion=shown.champion, checks=tuple(checks))


def _cold_start_verdict(policy: Policy) -> RuleVerdict:
    relative = sum(r.relative for r in policy.rules)
    skipped = f"{relative} champion comparison(s) skipped" if relative else "no champion comparisons configured"
    base = {"rule": COLD_START_RULE, "kind": "cold-start", "subject": policy.champion_marker, "severity": "error"}
    if policy.on_no_champion == "fail":
        return RuleVerdict(**base, status=FAILED, blocking=True,
                           reason=f"no model holds the {policy.champion_marker!r} marker and on-no-champion is "
                           f"'fail'; {skipped}")
    if policy.on_no_champion == "pass":
        return RuleVerdict(**base, status=PASSED, blocking=False,
                           reason=f"no model holds the {policy.champion_marker!r} marker; on-no-champion is 'pass': "
                           f"the first model passes, absolute rules are reported but do not block; {skipped}")
    return RuleVerdict(**base, status=PASSED, blocking=False,
                       reason=f"no model holds the {policy.champion_marker!r} marker; on-no-champion is "
                       f"'absolute-only': absolute rules and budgets apply, {skipped}")


def evaluate(policy: Policy, candidate: ModelEvidence, champion: ModelEvidence | None) -> GateResult:
    """One verdict per rule, plus a 'champion' verdict on a cold start."""
    verdicts = [_rule_verdict(rule, candidate, champion, policy) for rule in policy.rules]
    if champion is None:
        verdicts.insert(0, _cold_start_verdict(policy))
    return GateResult(
        verdicts=tuple(verdicts),
        cold_start=champion is None,
        on_no_champion=policy.on_no_champion,
        warn_only=policy.warn_only,
    )
