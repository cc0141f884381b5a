"""Renderers for `mlci data check` results: JSON payload, JUnit suites, markdown, terminal table."""

from __future__ import annotations

from dataclasses import dataclass

from mlci.data.check import FileResult, RuleResult
from mlci.outputs.junit import TestCase, TestSuite

TERMINAL_WIDTH = 100
MAX_TERMINAL_LINES = 30


@dataclass
class CheckSummary:
    files: list[FileResult]

    def total(self, outcome: str | None = None) -> int:
        return sum(len(f.rules) if outcome is None else f.count(outcome) for f in self.files)

    @property
    def passed(self) -> bool:
        return self.total("failed") == 0

    @property
    def status(self) -> str:
        return "passed" if self.passed else "failed"

    def counts(self) -> dict[str, int]:
        return {
            "files": len(self.files),
            "rules": self.total(),
            "passed": self.total("passed"),
            "failed": self.total("failed"),
            "warnings": self.total("warning"),
            "skipped": self.total("skipped"),
        }


def _percent(fraction: float | None) -> str:
    if fraction is None:
        return ""
    if fraction == 0:
        return "0%"
    if fraction < 0.0001:
        return "<0.01%"
    return f"{fraction * 100:.2f}%"


def rows_text(rule: RuleResult) -> str:
    if rule.failing_rows is None:
        return ""
    noun = "row" if rule.failing_rows == 1 else "rows"
    return f"{rule.failing_rows:,} {noun} ({_percent(rule.failing_fraction)})"


def describe(rule: RuleResult) -> str:
    """What went wrong, in one line: the failing-row count and the message, whichever exist."""
    parts = [p for p in (rows_text(rule) if rule.status == "failed" else "", rule.message) if p]
    return ": ".join(parts) if parts else rule.status


def example_text(example) -> str:
    return f"row {example.row}: {example.value}" if example.row is not None else example.value


def _examples(rule: RuleResult, limit: int = 5) -> str:
    return "; ".join(example_text(e) for e in rule.examples[:limit])


def _rule_json(rule: RuleResult, path: str) -> dict:
    return {
        "name": rule.name,
        "file": path,
        "kind": rule.kind,
        "column": rule.column,
        "severity": rule.severity,
        "status": rule.status,
        "outcome": rule.outcome,
        "failing_rows": rule.failing_rows,
        "failing_fraction": rule.failing_fraction,
        "observed": rule.observed,
        "message": rule.message,
        "examples": [{"row": e.row, "value": e.value} for e in rule.examples],
    }


def to_json(summary: CheckSummary) -> dict:
    return {
        "status": summary.status,
        "summary": summary.counts(),
        "files": [
            {
                "path": f.path,
                "source": f.source,
                "format": f.format,
                "rows": f.rows,
                "seconds": f.seconds,
                "engine": f.engine,
                "version": f.version,
                "note": f.note,
                "rules": [_rule_json(r, f.path) for r in f.rules],
            }
            for f in summary.files
        ],
    }


def to_junit(summary: CheckSummary) -> list[TestSuite]:
    """One suite per file, one testcase per rule. Warn-severity failures are failures marked [warn]."""
    suites = []
    for f in summary.files:
        suite = TestSuite(name=f"data-check {f.path}")
        for rule in f.rules:
            case = TestCase(name=rule.name, classname=f"data.{f.source}", time=0.0)
            if rule.status == "failed":
                case.status = "failed"
                prefix = "[warn] " if rule.severity == "warn" else ""
                case.message = prefix + describe(rule)
                lines = [case.message, f"file: {f.path}"]
                if rule.examples:
                    lines.append("examples (0-based row index):" if rule.examples[0].row is not None else "examples:")
                    lines += [f"  {example_text(e)}" for e in rule.examples]
                case.details = "\n".join(lines)
            elif rule.status == "skipped":
                case.status = "skipped"
                case.message = rule.message
            suite.add(case)
        if suite.cases:
            suite.cases[0].time = f.seconds  # the fused query's time, once per file
        suites.append(suite)
    return suites


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_code(text: str) -> str:
    """Inline code, so regexes and SQL in rule names are shown as written."""
    return "`" + _md_escape(text).replace("`", "'") + "`"


def to_markdown(summary: CheckSummary) -> str:
    icon = "✅" if summary.passed else "❌"
    c = summary.counts()
    lines = [
        f"### {icon} Data check {summary.status}",
        "",
        f"{c['rules']} rules on {c['files']} file(s): {c['passed']} passed, {c['failed']} failed, "
        f"{c['warnings']} warning(s), {c['skipped']} skipped.",
        "",
        "| file | rows | passed | failed | warnings | skipped |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for f in summary.files:
        lines.append(f"| {_md_code(f.path)} | {f.rows:,} | {f.count('passed')} | {f.count('failed')} | "
                     f"{f.count('warning')} | {f.count('skipped')} |")
    problems = [(f, r) for f in summary.files for r in f.rules if r.outcome in ("failed", "warning")]
    if problems:
        lines += ["", "| | file | rule | severity | failing | examples (row: value) |",
                  "|---|---|---|---|---|---|"]
        for f, r in problems:
            mark = "❌" if r.outcome == "failed" else "⚠️"
            lines.append(f"| {mark} | {_md_code(f.path)} | {_md_code(r.name)} | {r.severity} | "
                         f"{_md_escape(describe(r))} | {_md_code(_examples(r, 3)) if r.examples else ''} |")
    return "\n".join(lines) + "\n"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def to_terminal(summary: CheckSummary) -> str:
    """One screen: a header per file, every non-passing rule, passing rules as a count."""
    lines: list[str] = []
    budget = MAX_TERMINAL_LINES
    hidden = 0
    for f in summary.files:
        note = f", {f.note}" if f.note else ""
        lines.append(f"{f.path}  [{f.source}, {f.format}, {f.rows:,} rows, {f.seconds:.2f} s{note}]")
        shown = [r for r in f.rules if r.outcome != "passed"]
        order = {"failed": 0, "warning": 1, "skipped": 2}
        shown.sort(key=lambda r: order[r.outcome])
        name_width = min(44, max([len(r.name) for r in shown] + [10]))
        for r in shown:
            if budget <= 0:
                hidden += 1
                continue
            tag = {"failed": "FAIL", "warning": "WARN", "skipped": "skip"}[r.outcome]
            detail = describe(r) if r.outcome != "skipped" else r.message
            if r.examples:
                detail = f"{detail}  e.g. {_examples(r, 3)}"
            lines.append(_clip(f"  {tag}  {r.name.ljust(name_width)}  {detail}", TERMINAL_WIDTH))
            budget -= 1
        lines.append(f"  ok    {f.count('passed')} of {len(f.rules)} rules passed")
    if hidden:
        lines.append(f"  ... {hidden} more; see data-check.md / data-check.json")
    c = summary.counts()
    verdict = "PASSED" if summary.passed else "FAILED"
    lines.append(f"data check {verdict}: {c['failed']} failed, {c['warnings']} warning(s), {c['skipped']} skipped, "
                 f"{c['passed']} passed ({c['rules']} rules, {c['files']} file(s))")
    return "\n".join(lines)
