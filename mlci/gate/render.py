"""A GateResult as the artifacts GitLab and the MR report read.

Pure: each function returns data (suites, samples, text, dicts); the command
writes them through mlci.outputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mlci.gate.core import FAILED, SKIPPED, GateResult, ModelEvidence, RuleVerdict
from mlci.outputs.junit import TestCase, TestSuite
from mlci.outputs.openmetrics import Sample, metric_name

SUITE = "mlci-gate"


@dataclass(frozen=True)
class GateReport:
    result: GateResult
    model: str
    candidate: ModelEvidence
    champion: ModelEvidence | None
    registered_version: str | None = None
    registry_mode: str = ""
    champion_marker: str = "champion"
    budget_artifacts: dict | None = None  # which model the budgets measured, when the optimized one was asked for

    @property
    def outcome(self) -> str:
        if self.result.passed:
            return "passed"
        return "failed (warn-only: not blocking)" if self.result.warn_only else "failed"


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    return "NaN" if math.isnan(value) else f"{value:.6g}"


def _case_details(verdict: RuleVerdict) -> str:
    lines = [verdict.reason]
    lines += [f"  {c.metric}: {c.status} - {c.note}" for c in verdict.checks if len(verdict.checks) > 1]
    return "\n".join(lines)


def junit_suites(report: GateReport) -> list[TestSuite]:
    """One testcase per verdict: failure for a failed rule, error when the candidate lacks the value."""
    suite = TestSuite(name=SUITE)
    for verdict in report.result.verdicts:
        if verdict.status == FAILED:
            status = "error" if verdict.missing else "failed"
            prefix = "" if verdict.blocking else "non-blocking: "
            message = prefix + verdict.reason
        else:
            status, message = verdict.status, verdict.reason if verdict.status == SKIPPED else ""
        suite.add(TestCase(
            name=verdict.rule,
            classname=f"{SUITE}.{verdict.kind}",
            status=status,
            message=message,
            details=_case_details(verdict),
            stdout=_case_details(verdict),
        ))
    return [suite]


def metric_samples(report: GateReport) -> list[Sample]:
    """Candidate and champion metrics and budgets, labelled model="candidate"|"champion"."""
    samples: list[Sample] = []
    families: dict[str, str] = {}  # family -> raw metric that claimed it

    def family_for(raw: str) -> str:
        base = metric_name(raw)
        name, n = base, 1
        while families.setdefault(name, raw) != raw:  # two raw names that sanitize alike
            n += 1
            name = f"{base}_{n}"
        return name

    sides = [("candidate", report.candidate)] + ([("champion", report.champion)] if report.champion else [])
    for role, evidence in sides:
        for raw, value in sorted(evidence.metrics.items()):
            samples.append(Sample(family_for(raw), float(value), {"model": role}))
        for budget, value in sorted(evidence.budgets.items()):
            samples.append(Sample(family_for("mlci_" + budget.replace("-", "_")), float(value), {"model": role}))
    counts = report.result.counts()
    samples.append(Sample("mlci_gate_passed", 1.0 if report.result.passed else 0.0, help="1 when the gate passed"))
    for status, count in counts.items():
        samples.append(Sample("mlci_gate_rules", float(count), {"status": status}, help="gate verdicts by status"))
    return samples


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


_ICONS = {"passed": "✅ passed", "failed": "❌ failed", "skipped": "⏭️ skipped"}


def markdown(report: GateReport) -> str:
    result = report.result
    head = "✅" if result.passed else ("⚠️" if result.warn_only else "❌")
    lines = [f"### {head} Model gate {report.outcome}: `{_cell(report.model)}`", ""]
    champion = (f"version {report.champion.version}" if report.champion and report.champion.version
                else "none (cold start, on-no-champion: " + result.on_no_champion + ")")
    facts = [f"candidate run `{report.candidate.run_id}`", f"{report.champion_marker}: {champion}",
             f"{result.summary()}"]
    if report.registered_version:
        facts.append(f"registered as version {report.registered_version}")
    lines += ["; ".join(facts), "",
              "| Rule | Result | Candidate | Champion | Threshold | Details |",
              "|---|---|---|---|---|---|"]
    for v in result.verdicts:
        status = _ICONS.get(v.status, v.status)
        if v.status == FAILED and not v.blocking:
            status = "⚠️ failed (non-blocking)"
        # Absolute comparisons already carry their bounds (">= 0.8 and <= 0.99").
        threshold = v.comparison if "relative" not in v.kind else (
            f"{v.comparison} {_fmt(v.threshold)}" if v.threshold is not None else "")
        lines.append(f"| {_cell(v.rule)} | {status} | {_fmt(v.observed)} | {_fmt(v.champion)} | "
                     f"{_cell(threshold)} | {_cell(v.reason)} |")
    return "\n".join(lines) + "\n"


def _evidence(evidence: ModelEvidence | None) -> dict | None:
    if evidence is None:
        return None
    return {
        "run_id": evidence.run_id or None,
        "version": evidence.version or None,
        "metrics": {k: (v if not math.isnan(v) else "NaN") for k, v in sorted(evidence.metrics.items())},
        "budgets": dict(sorted(evidence.budgets.items())),
        "budget_errors": dict(sorted(evidence.budget_errors.items())),
    }


def json_payload(report: GateReport) -> dict:
    result = report.result
    return {
        "status": result.status,
        "passed": result.passed,
        "warn_only": result.warn_only,
        "model": report.model,
        "registered_version": report.registered_version,
        "registry_mode": report.registry_mode,
        "cold_start": result.cold_start,
        "on_no_champion": result.on_no_champion,
        "summary": {**result.counts(), "blocking": len(result.blocking), "warnings": len(result.warnings)},
        "candidate": _evidence(report.candidate),
        "champion": _evidence(report.champion),
        "verdicts": [v.as_dict() for v in result.verdicts],
        **({"budget-artifacts": report.budget_artifacts} if report.budget_artifacts else {}),
    }


def dotenv_values(report: GateReport) -> dict[str, str]:
    return {
        "MLCI_GATE": report.result.status,
        "MLCI_MODEL_NAME": report.model,
        "MLCI_MODEL_VERSION": report.registered_version or "",
        "MLCI_RUN_ID": report.candidate.run_id,
    }
