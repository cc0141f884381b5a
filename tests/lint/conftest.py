"""Fixtures for the lint tests: a throwaway repository to write CI files into."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

# The freshly rendered templates, shared with the generator tests.
from tests.generate.conftest import manifests, rendered, rendered_catalog  # noqa: F401


class Repo:
    def __init__(self, root: Path):
        self.root = root
        (root / ".git").mkdir()  # include:local paths are relative to the repository root

    def write(self, name: str, text: str) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    def lint(self, text: str | None = None, name: str = ".gitlab-ci.yml", **kwargs):
        from mlci.lint import lint_file

        if text is not None:
            self.write(name, text)
        return lint_file(self.root / name, **kwargs)


@pytest.fixture
def repo(tmp_path) -> Repo:
    return Repo(tmp_path)


def found(result, rule: str) -> list:
    return [f for f in result.findings if f.rule == rule]
