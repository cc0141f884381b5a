"""Fixtures for the template generator tests: rendered templates and a gitlab-ci-local runner."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
GITLAB_CI_LOCAL = REPO_ROOT / "node_modules" / ".bin" / "gitlab-ci-local"


@pytest.fixture(scope="session")
def manifests():
    from mlci.generate import load_manifests

    return load_manifests()


@pytest.fixture(scope="session")
def rendered(manifests) -> dict[str, str]:
    """file name -> text of every template, freshly rendered (include:local layout)."""
    from mlci.generate import render_templates

    return render_templates(manifests)


@pytest.fixture(scope="session")
def rendered_catalog(manifests) -> dict[str, str]:
    from mlci.generate import render_templates
    from mlci.generate.render import Layout

    return render_templates(manifests, Layout("catalog"))


def _ensure_gitlab_ci_local() -> Path:
    if not GITLAB_CI_LOCAL.exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=REPO_ROOT, check=True)
    assert shutil.which("rsync"), "gitlab-ci-local needs rsync on the PATH (make tools installs it)"
    return GITLAB_CI_LOCAL


@dataclass
class CiProject:
    """A throwaway git repository with the rendered templates, run with gitlab-ci-local."""

    root: Path

    def write(self, name: str, text: str) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def commit(self) -> None:
        subprocess.run(["git", "add", "-A"], cwd=self.root, check=True)
        subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", "pipeline"], cwd=self.root, check=True)
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=self.root, check=True, capture_output=True,
                              text=True).stdout.strip()
        # A fake origin with a HEAD, so gitlab-ci-local finds the default branch without a network.
        subprocess.run(["git", "update-ref", "refs/remotes/origin/main", head], cwd=self.root, check=True)
        subprocess.run(["git", "symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/main"],
                       cwd=self.root, check=True)

    def gcl(self, *args: str, variables: dict[str, str] | None = None, timeout: float = 120,
            schema: bool = False) -> subprocess.CompletedProcess:
        """Run gitlab-ci-local here. Its own schema check (~1.5 s) is off unless asked for: the generator
        tests validate every template against GitLab's schema already."""
        command = [str(_ensure_gitlab_ci_local()), "--no-color"]
        if not schema:
            command.append("--json-schema-validation=false")
        overridden = sorted(k for k in (variables or {}) if k.startswith("CI_"))
        if overridden:
            command += ["--ignore-predefined-vars", ",".join(overridden)]
        for key, value in (variables or {}).items():
            command += ["--variable", f"{key}={value}"]
        env = {**os.environ, "FORCE_COLOR": "0"}
        return subprocess.run([*command, *args], cwd=self.root, capture_output=True, text=True, timeout=timeout,
                              env=env)

    def jobs(self, **variables: str) -> dict[str, dict[str, str]]:
        """`gitlab-ci-local --list` as {job: {stage, when, allow_failure, needs}} for these pipeline variables."""
        done = self.gcl("--list", variables=variables)
        assert done.returncode == 0, done.stdout + done.stderr
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        header = next(i for i, line in enumerate(lines) if line.startswith("name"))
        columns = ["stage", "when", "allow_failure", "environment", "needs"]
        jobs = {}
        starts = [lines[header].index(col) for col in ["name", "description", *columns]]
        for line in lines[header + 1:]:
            cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
            jobs[cells[0]] = dict(zip(columns, cells[2:], strict=True))
        return jobs


@pytest.fixture
def ci_project(tmp_path, rendered) -> CiProject:
    root = tmp_path / "project"
    root.mkdir()
    for command in (["git", "init", "-q", "-b", "main"],
                    ["git", "config", "user.email", "ci@example.com"],
                    ["git", "config", "user.name", "mlci tests"],
                    ["git", "remote", "add", "origin", "git@gitlab.example.com:group/project.git"]):
        subprocess.run(command, cwd=root, check=True)
    project = CiProject(root)
    for name, text in rendered.items():
        project.write(f"ci_templates/{name}", text)
    project.write(".gitignore", ".gitlab-ci-local/\nmlci-out/\n")
    return project
