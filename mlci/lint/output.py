"""Lint results as text for people, JSON for tools, and GitLab Code Quality for the MR widget."""

from __future__ import annotations

import json
import os
from pathlib import Path

from mlci.lint import LintResult
from mlci.lint.findings import RULES, Finding


def shown_path(result: LintResult, file: str) -> str:
    """A finding's file as a person types it: relative to the current directory."""
    path = Path(file) if Path(file).is_absolute() else result.root / file
    try:
        return os.path.relpath(path, Path.cwd())
    except ValueError:  # another drive
        return str(path)


def _line(finding: Finding, result: LintResult) -> str:
    rule = RULES[finding.rule]
    where = f"{shown_path(result, finding.file)}:{finding.line}:{finding.column}"
    return f"{where}: {finding.severity}: {finding.message} [{rule.id} {rule.name}]"


def summary(result: LintResult) -> str:
    counts = {level: sum(f.severity == level for f in result.findings) for level in ("error", "warning", "info")}
    verdict = "FAILED" if counts["error"] else "ok"
    return (f"mlci lint {shown_path(result, result.file)}: {verdict}: {counts['error']} error(s), "
            f"{counts['warning']} warning(s), {counts['info']} note(s); "
            f"{len(result.jobs)} job(s) from {len(result.files)} file(s)")


def as_text(result: LintResult) -> str:
    return "\n".join([*(_line(f, result) for f in result.findings), summary(result)]) + "\n"


def as_json(result: LintResult) -> str:
    payload = {
        "version": 1,
        "file": result.file,
        "valid": result.ok,
        "schema": result.schema,
        "files": result.files,
        "jobs": result.jobs,
        "findings": [
            {
                "rule": RULES[f.rule].id, "name": f.rule, "severity": f.severity, "message": f.message,
                "file": f.file, "line": f.line, "column": f.column, "job": f.job,
            }
            for f in result.findings
        ],
    }
    return json.dumps(payload, indent=2) + "\n"


def as_codequality(result: LintResult) -> str:
    """GitLab Code Quality report: a JSON array for artifacts:reports:codequality."""
    issues = []
    for finding in result.findings:
        rule = RULES[finding.rule]
        severity = rule.codequality if finding.severity == rule.severity else (
            "minor" if finding.severity == "warning" else "info" if finding.severity == "info" else "major")
        issues.append({
            "description": finding.message,
            "check_name": f"{rule.id} {rule.name}",
            "fingerprint": finding.fingerprint(),
            "severity": severity,
            "location": {"path": finding.file, "lines": {"begin": finding.line}},
        })
    return json.dumps(issues, indent=2) + "\n"


FORMATS = {"text": as_text, "json": as_json, "codequality": as_codequality}
