"""The verdict as artifacts: JSON, JUnit, OpenMetrics, markdown, and the incident's text."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from mlci.monitor.decide import NO_DATA, OK, Verdict
from mlci.outputs.junit import TestCase, TestSuite
from mlci.outputs.openmetrics import Sample

ICONS = {OK: "✅", "rollback": "⏪", "retrain": "🔁", NO_DATA: "⚪"}


@dataclass
class MonitorRun:
    """Everything one `mlci monitor --env ENV` knew and did."""

    model: str
    environment: str
    version: str | None
    verdict: Verdict
    prometheus: str
    baseline_version: str | None = None
    baseline_until: str | None = None
    actions: dict[str, Any] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    checked_at: str = ""

    def to_json(self) -> dict[str, Any]:
        verdict = self.verdict
        return {
            "version": 1,
            "model": self.model,
            "environment": self.environment,
            "model-version": self.version,
            "decision": verdict.decision,
            "reasons": verdict.reasons,
            "checked-at": self.checked_at,
            "prometheus": self.prometheus,
            "traffic": {"requests": _plain(verdict.traffic.requests), "status": verdict.traffic.status,
                        "min-requests": verdict.traffic.min_requests, "window": verdict.traffic.window,
                        "query": verdict.traffic.query},
            "baseline": {"version": self.baseline_version, "until": self.baseline_until},
            "rules": [rule.to_json() for rule in verdict.rules],
            "drift": {"status": verdict.drift.status, "rows": verdict.drift.rows, "min-rows": verdict.drift.min_rows,
                      "columns": verdict.drift.columns, "reason": verdict.drift.reason,
                      "details": verdict.drift.details},
            "actions": self.actions,
            "links": self.links,
        }


def _plain(value):
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return str(value)
    return value


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "no data"
    if unit == "seconds":
        return f"{value * 1000:.1f} ms"
    if unit == "ratio":
        return f"{value:.2%}"
    return f"{value:.4g}" + (f" {unit}" if unit and unit != "ratio" else "")


def to_junit(run: MonitorRun) -> list[TestSuite]:
    suite = TestSuite(name=f"monitor {run.model} {run.environment}")
    classname = f"monitor.{run.environment}"
    traffic = run.verdict.traffic
    case = suite.add(TestCase(name=f"traffic: at least {traffic.min_requests} requests in {traffic.window}",
                              classname=classname, stdout=traffic.query))
    if traffic.status != "ok" and run.verdict.rules:
        case.status, case.message = "failed", traffic.describe()
    for rule in run.verdict.rules:
        case = suite.add(TestCase(name=f"{rule.name}: {rule.threshold}", classname=classname,
                                  stdout=f"value: {_fmt(rule.value, rule.unit)}\nquery: {rule.query}"
                                         + (f"\nbaseline (version {rule.baseline_version} until {rule.baseline_end}): "
                                            f"{_fmt(rule.baseline, rule.unit)}\nbaseline query: {rule.baseline_query}"
                                            if rule.baseline_query else "")))
        if rule.status == "breached":
            case.status, case.message = "failed", f"{rule.reason} -> {rule.action}"
        elif rule.status in ("no-data", "skipped"):
            case.status, case.message = "failed", f"no data: {rule.reason}"
    drift = run.verdict.drift
    if drift.status != "off":
        case = suite.add(TestCase(name="live data drift", classname=classname, stdout=drift.reason))
        if drift.status == "drift":
            case.status, case.message = "failed", f"{drift.reason} -> {drift.action}"
        elif drift.status == "no-data":
            case.status, case.message = "failed", f"no data: {drift.reason}"
    return [suite]


def to_openmetrics(run: MonitorRun) -> list[Sample]:
    labels = {"environment": run.environment}
    samples = [Sample("mlci_monitor_ok", 1.0 if run.verdict.decision == OK else 0.0, dict(labels),
                      help="1 when mlci monitor found the deployment healthy")]
    if run.verdict.traffic.requests is not None:
        samples.append(Sample("mlci_monitor_requests", float(run.verdict.traffic.requests), dict(labels)))
    for rule in run.verdict.rules:
        if rule.value is not None:
            samples.append(Sample(f"mlci_monitor_{rule.name}", float(rule.value), dict(labels)))
        if rule.baseline is not None:
            samples.append(Sample(f"mlci_monitor_{rule.name}_baseline", float(rule.baseline), dict(labels)))
    if run.verdict.drift.status in ("ok", "drift"):
        samples.append(Sample("mlci_monitor_drifted_columns", float(len(run.verdict.drift.columns)), dict(labels)))
    return samples


def to_markdown(run: MonitorRun) -> str:
    verdict = run.verdict
    icon = ICONS.get(verdict.decision, "")
    lines = [f"### {icon} Monitor: `{verdict.decision}` for {run.model} in {run.environment}", ""]
    lines.append(f"Version {run.version or '(none)'}; {verdict.traffic.describe()}; Prometheus {run.prometheus}.")
    if run.baseline_version:
        lines.append(f"Baseline: version {run.baseline_version}, until {run.baseline_until}.")
    if verdict.reasons:
        lines += ["", "**Evidence**", ""] + [f"- {_md(reason)}" for reason in verdict.reasons]
    if verdict.rules:
        lines += ["", "| rule | value | threshold | baseline | status |", "|---|---|---|---|---|"]
        for rule in verdict.rules:
            baseline = f"{_fmt(rule.baseline, rule.unit)} (v{rule.baseline_version})" if rule.baseline_query else ""
            lines.append(f"| {_md(rule.name)} | {_fmt(rule.value, rule.unit)} | {_md(rule.threshold)} | {baseline} "
                         f"| {rule.status} |")
    if verdict.drift.status != "off":
        lines += ["", f"**Live data drift**: {verdict.drift.status}: {_md(verdict.drift.reason)}"]
    if run.actions:
        lines += ["", "**Actions**", ""]
        for name, action in run.actions.items():
            lines.append(f"- {name}: {_md(action.get('summary', ''))}")
    if run.links:
        lines += ["", " · ".join(f"[{name}]({url})" for name, url in run.links.items())]
    return "\n".join(lines) + "\n"


def incident_title(run: MonitorRun) -> str:
    return f"{run.model} in {run.environment}: monitor decided {run.verdict.decision} (version {run.version})"


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
