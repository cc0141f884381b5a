"""Ask Prometheus what each rule needs, and judge the answers (mlci.monitor.decide).

The client is anything with `query_value(expr, at=None)`: the Prometheus
adapter in production, the same adapter against a test server in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mlci.monitor.decide import RuleResult, Traffic, judge_regression, judge_value
from mlci.monitor.rules import Labels, MonitorSettings, Rule, render_query


@dataclass(frozen=True)
class Baseline:
    """The previous version of the environment and when the current one took over."""

    version: str
    until: datetime


def traffic(client, settings: MonitorSettings, labels: Labels, *, at: datetime | None = None) -> Traffic:
    query = render_query(settings.requests_query, labels, selector=settings.selector, window=settings.window)
    return Traffic(requests=client.query_value(query, at=at), min_requests=settings.min_requests,
                   window=settings.window, query=query)


def evaluate_rule(client, settings: MonitorSettings, rule: Rule, labels: Labels, *, baseline: Baseline | None,
                  at: datetime | None = None) -> RuleResult:
    query = render_query(rule.query, labels, selector=settings.selector, window=rule.window)
    result = RuleResult(name=rule.name, status="ok", action=rule.action, query=query,
                        threshold=rule.describe_threshold(), unit=rule.unit, window=rule.window)
    result.value = client.query_value(query, at=at)
    status, reason = judge_value(result.value, minimum=rule.min, maximum=rule.max)
    if status != "breached" and rule.regression is not None:
        if baseline is None:
            # A first version has nothing to regress from: said in the report, not counted as missing data.
            reason = "regression not judged: no previous version in this environment"
        else:
            previous = Labels(model=labels.model, version=baseline.version, environment=labels.environment)
            result.baseline_query = render_query(rule.query, previous, selector=settings.selector,
                                                 window=rule.baseline_window)
            result.baseline_version = baseline.version
            result.baseline_end = baseline.until.isoformat(timespec="seconds")
            result.baseline = client.query_value(result.baseline_query, at=baseline.until)
            regression_status, regression_reason, result.change_pct = judge_regression(
                result.value, result.baseline, max_increase_pct=rule.regression.max_increase_pct,
                max_decrease_pct=rule.regression.max_decrease_pct)
            if regression_status == "breached" or status == "ok":
                status, reason = regression_status, regression_reason
                if regression_status == "breached":
                    reason = f"{reason} (version {labels.version} vs {baseline.version})"
    result.status, result.reason = status, reason
    return result


def evaluate(client, settings: MonitorSettings, labels: Labels, *, baseline: Baseline | None,
             at: datetime | None = None) -> tuple[Traffic, list[RuleResult]]:
    """Traffic first: with too few requests the rules are reported as skipped, not judged."""
    seen = traffic(client, settings, labels, at=at)
    results = []
    for rule in settings.rules:
        if seen.status != "ok":
            results.append(RuleResult(
                name=rule.name, status="skipped", action=rule.action,
                query=render_query(rule.query, labels, selector=settings.selector, window=rule.window),
                threshold=rule.describe_threshold(), unit=rule.unit, window=rule.window,
                reason=f"not judged: {seen.describe()}",
            ))
            continue
        results.append(evaluate_rule(client, settings, rule, labels, baseline=baseline, at=at))
    return seen, results
