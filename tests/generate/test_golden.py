"""Golden cases: a user's include (the case's top half) and the pipeline it produces (the bottom half).

The bottom half is what `mlci lint` resolves (inputs interpolated, files merged,
extends and default applied), so a template change shows up as a readable diff
of jobs. `pytest --update-golden` rewrites the bottom halves after an intended change.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "templates"
SEPARATOR = "# ---- expected: the jobs GitLab would run (rewritten by pytest --update-golden) ----\n"
CASES = sorted(GOLDEN.glob("*.yml"))


def split_case(text: str) -> tuple[str, str]:
    given, _, expected = text.partition(SEPARATOR)
    return given, expected


def resolve(given: str, tmp_path: Path, rendered: dict[str, str]) -> str:
    from mlci.lint.resolve import load_pipeline

    for name, text in rendered.items():
        (tmp_path / "ci_templates").mkdir(exist_ok=True)
        (tmp_path / "ci_templates" / name).write_text(text)
    (tmp_path / ".gitlab-ci.yml").write_text(given)
    pipeline = load_pipeline(tmp_path / ".gitlab-ci.yml", root=tmp_path)
    errors = [f for f in pipeline.findings if f.severity == "error"]
    assert not errors, errors
    result = {"variables": pipeline.data.get("variables", {}), **pipeline.jobs}
    return yaml.safe_dump(result, sort_keys=True, width=110)


def test_there_are_golden_cases():
    assert len(CASES) >= 7


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_golden_case(case, tmp_path, rendered, update_golden):
    given, expected = split_case(case.read_text())
    actual = resolve(given, tmp_path, rendered)
    if update_golden:
        case.write_text(given.rstrip("\n") + "\n" + SEPARATOR + actual)
        return
    assert expected, f"{case.name} has no expected half yet: run pytest --update-golden"
    assert actual == expected, f"{case.name} differs from a fresh render; pytest --update-golden rewrites it"
