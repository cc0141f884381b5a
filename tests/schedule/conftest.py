"""Schedule tests: a project directory with an mlci.yml, pointed at the loopback fake GitLab."""

from __future__ import annotations

import textwrap

import pytest


@pytest.fixture
def project(tmp_path, clean_env, fake_gitlab):
    """cwd = a temp project; the environment is that of a job on the fake instance."""
    clean_env.chdir(tmp_path)
    for name, value in fake_gitlab.env().items():
        clean_env.setenv(name, value)
    clean_env.setenv("MLCI_GITLAB_RETRY_BACKOFF", "0")

    def write(yaml_text: str):
        path = tmp_path / "mlci.yml"
        path.write_text(textwrap.dedent(yaml_text).lstrip(), encoding="utf-8")
        return path

    return write
