"""GitLab's own CI schema fixtures, checked the way GitLab's schema test checks them, then linted whole.

Schema level: every document of a positive fixture is accepted and every
document of a negative one rejected, both by the cached compiled validator
(the fast path for valid files) and by jsonschema (which explains errors).
Beyond the schema, a positive fixture linted as a whole pipeline may still be
rejected, as GitLab itself would reject it; SEMANTIC_REJECTIONS names each
case and docs/lint.md gives GitLab's own message for it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlci.lint import lint_file, schema
from mlci.lint.source import Location, Reference, parse_source

CORPUS = Path(__file__).parent / "gitlab_yaml_tests"
POSITIVE = sorted(p.relative_to(CORPUS).as_posix() for p in (CORPUS / "positive_tests").rglob("*.yml"))
NEGATIVE = sorted(p.relative_to(CORPUS).as_posix() for p in (CORPUS / "negative_tests").rglob("*.yml"))

# GitLab's test validates each value of these files as a whole configuration ("global" tests).
WHOLE_DOCUMENT_FILES = {
    "positive_tests/workflow/auto_cancel/on_job_failure.yml",
    "positive_tests/workflow/auto_cancel/on_new_commit.yml",
    "negative_tests/workflow/auto_cancel/on_job_failure.yml",
    "negative_tests/workflow/auto_cancel/on_new_commit.yml",
}

# Fixture documents older than the schema check-jsonschema vendors: the schema changed after them.
STALE_FIXTURES = {
    ("positive_tests/run.yml", "step_using_action"):
        "`run:` steps with `action:` (GitHub actions) are no longer in GitLab's schema; steps are `step`, "
        "`func` or `script`",
}

# Positive fixtures (linted whole) that GitLab's pipeline creation rejects too, and the mlci rule that says so.
SEMANTIC_REJECTIONS = {
    "positive_tests/artifacts.yml": {"job-script-missing"},
    "positive_tests/dast_configuration.yml": {"job-script-missing"},
    "positive_tests/filter.yml": {"job-script-missing", "extends"},
    "positive_tests/identity_provider.yml": {"job-script-missing"},
    "positive_tests/image.yml": {"job-script-missing"},
    "positive_tests/include.yml": {"include"},
    "positive_tests/needs_parallel_matrix.yml": {"needs-unknown-job"},
    "positive_tests/rules.yml": {"job-script-missing"},
    "positive_tests/services.yml": {"job-script-missing"},
    "positive_tests/spec_inputs.yml": {"include"},
    "positive_tests/run.yml": {"schema"},  # the stale `action:` step above
}


def _documents(relative: str) -> list[tuple[str, dict]]:
    text = (CORPUS / relative).read_text(encoding="utf-8")
    data = parse_source(text, relative).body().data or {}
    assert not _has_reference(data), "fixtures are plain YAML"
    if relative in WHOLE_DOCUMENT_FILES:
        return [(str(key), value) for key, value in data.items()]
    return [(str(key), {key: value}) for key, value in data.items()]


def _has_reference(value) -> bool:
    if isinstance(value, Reference):
        return True
    if isinstance(value, dict):
        return any(_has_reference(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_reference(v) for v in value)
    return False


def _schema_verdicts(document: dict) -> tuple[bool, bool, list]:
    """(fast validator accepts, jsonschema accepts, mlci's schema findings)."""
    data = schema._jsonable(document)
    fast = schema.is_valid(data)
    thorough = not any(True for _ in schema._validator().iter_errors(data))
    findings = schema.validate(document, lambda _path: Location("fixture", 1, 1))
    return fast, thorough, findings


def test_the_corpus_is_all_there():
    assert len(POSITIVE) == 34 and len(NEGATIVE) == 74
    assert (CORPUS / "LICENSE").read_text().count("MIT License") == 1


@pytest.mark.parametrize("relative", POSITIVE)
def test_every_positive_document_passes_the_schema(relative):
    for key, document in _documents(relative):
        fast, thorough, findings = _schema_verdicts(document)
        assert fast == thorough, f"{relative} {key!r}: the compiled validator and jsonschema disagree"
        if (relative, key) in STALE_FIXTURES:
            assert findings, f"{relative} {key!r} passes now: drop it from STALE_FIXTURES"
            continue
        assert findings == [], (relative, key, [f.message for f in findings])


@pytest.mark.parametrize("relative", NEGATIVE)
def test_every_negative_document_fails_the_schema(relative):
    for key, document in _documents(relative):
        fast, thorough, findings = _schema_verdicts(document)
        assert fast is False and thorough is False, f"{relative} {key!r}: accepted (fast={fast}, full={thorough})"
        assert findings, (relative, key)


def _lint_copy(relative: str, tmp_path: Path):
    (tmp_path / ".git").mkdir(exist_ok=True)
    shutil.copy(CORPUS / relative, tmp_path / ".gitlab-ci.yml")
    return lint_file(tmp_path / ".gitlab-ci.yml")


@pytest.mark.parametrize("relative", [p for p in POSITIVE if p not in WHOLE_DOCUMENT_FILES])
def test_positive_fixtures_linted_whole_fail_only_where_gitlab_would(relative, tmp_path):
    result = _lint_copy(relative, tmp_path)
    rejected_by = {finding.rule for finding in result.errors}
    assert rejected_by == SEMANTIC_REJECTIONS.get(relative, set()), [f.message for f in result.errors]


@pytest.mark.parametrize("relative", NEGATIVE)
def test_negative_fixtures_linted_whole_fail(relative, tmp_path):
    assert not _lint_copy(relative, tmp_path).ok


def test_the_tables_name_only_fixtures_that_exist():
    assert set(SEMANTIC_REJECTIONS) <= set(POSITIVE)
    assert {file for file, _ in STALE_FIXTURES} <= set(POSITIVE)
    assert not WHOLE_DOCUMENT_FILES - set(POSITIVE) - set(NEGATIVE)
