"""Fixtures for `mlci tune`: the train tests' project (a migrated sqlite MLflow store) plus a tuning config."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.train.conftest import migrated_store, mlci_process_env, project, start_mlci  # noqa: F401

SCRIPTS = Path(__file__).resolve().parent / "scripts"


def tune_config(*, storage: str = "", n_trials: int = 4, pruner: str = "none", extra: str = "",
                sampler: str = "{name: tpe, seed: 7}", space: str | None = None) -> str:
    space = space or """
    x: {type: float, low: -4, high: 6}
    kind: {type: categorical, choices: [a, b]}"""
    storage_line = f"  storage: {storage}\n" if storage else ""
    return (
        "version: 1\n"
        "project: {name: tune-demo}\n"
        "model:\n  metrics-direction: {loss: lower}\n"
        "train:\n"
        f"  command: [{sys.executable}, {SCRIPTS / 'objective.py'}]\n"
        "  code-paths: [mlci.yml]\n"
        "tune:\n"
        "  metric: loss\n"
        f"  n-trials: {n_trials}\n"
        f"{storage_line}"
        "  heartbeat-seconds: 1\n"
        "  grace-seconds: 3\n"
        f"  sampler: {sampler}\n"
        f"  pruner: {{name: {pruner}, n-startup-trials: 1}}\n"
        "  search-space:" + space.replace("\n    ", "\n    ") + "\n" + extra
    )


@pytest.fixture
def tune_project(project):  # noqa: F811
    project.config(tune_config())
    return project
