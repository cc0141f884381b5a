"""`mlci lint`: a .gitlab-ci.yml checked the way GitLab builds it, plus ML-specific rules.

lint_file() resolves include:local (with spec:inputs), merges, resolves
!reference, extends and default:, validates against GitLab's CI schema,
runs the rules in mlci.lint.rules and checks mlci.yml against the included
templates (mlci.lint.config). It raises ConfigError only when the file
itself cannot be read or parsed; everything else is a Finding.
"""

from __future__ import annotations

from pathlib import Path

from mlci.lint.findings import RULES, Finding, Rule

TYPE_CHECKING = False  # typing stays unimported on lint's path (see mlci.lint.source)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["RULES", "Finding", "LintResult", "Rule", "find_root", "lint_file"]


class LintResult:
    """Findings sorted by location; `root` is the repository root that `file` and each finding's file
    are relative to, and `server_content` the merged config for GitLab's lint API."""

    def __init__(self, file: str, findings: list[Finding], *, root: Path, files: list[str], jobs: list[str],
                 merged: dict[str, Any], server_content: dict[str, Any]) -> None:
        self.file = file
        self.findings = findings
        self.root = root
        self.files = files
        self.jobs = jobs
        self.merged = merged
        self.server_content = server_content

    @property
    def schema(self) -> str:
        from mlci.lint.schema import schema_source

        return schema_source()

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors


def find_root(path: Path) -> Path:
    """The repository root that include:local paths are relative to: the nearest parent with .git."""
    start = path.resolve().parent
    for candidate in (start, *start.parents):
        if (candidate / ".git").exists():
            return candidate
    return start


def lint_file(path: Path, *, root: Path | None = None, inputs: dict[str, Any] | None = None,
              config: Path | None = None, check_config: bool = True) -> LintResult:
    from mlci.lint import rules, schema
    from mlci.lint.resolve import load_pipeline

    root = root or find_root(path)
    pipeline = load_pipeline(path, root=root, inputs=inputs)
    findings = list(pipeline.findings)
    if pipeline.header is not None:
        header_data = {"spec": pipeline.header.data.get("spec")}
        findings.extend(schema.validate(header_data, pipeline.header.where, where_key=pipeline.header.where_key,
                                        header=True))
    findings.extend(schema.validate(pipeline.data, pipeline.where, where_key=pipeline.where_key))
    findings.extend(rules.check(pipeline))
    if check_config:
        from mlci.lint import config as config_checks

        findings.extend(config_checks.check(pipeline, root, config, ci_file=path))
    unique = sorted(set(findings), key=Finding.sort_key)
    # What GitLab's lint API gets: local includes inlined, the includes we could not fetch left to GitLab.
    server_content = {k: v for k, v in pipeline.data.items() if k != "include"}
    if pipeline.unresolved_includes:
        server_content = {"include": [entry for entry, _ in pipeline.unresolved_includes], **server_content}
    return LintResult(
        pipeline.main_file, unique, root=root, files=pipeline.files, jobs=sorted(pipeline.jobs),
        merged=pipeline.data, server_content=server_content,
    )
