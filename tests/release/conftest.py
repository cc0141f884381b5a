from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# What a release commit holds that the release jobs and `scripts/release.py bump` touch.
RELEASE_FILES = (".gitlab-ci.yml", "pyproject.toml", "README.md", "CHANGELOG.md", "Containerfile")
RELEASE_DIRS = ("mlci", "scripts", "ci_templates", "templates", "tests/golden/templates")


def copy_release_tree(dest: Path) -> Path:
    """The parts of this checkout a release needs, as a fresh git repository (with a fake origin)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in RELEASE_FILES:
        shutil.copy2(REPO / name, dest / name)
    for name in RELEASE_DIRS:
        shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for command in (["init", "-q", "-b", "main"], ["config", "user.email", "ci@example.com"],
                    ["config", "user.name", "release test"],
                    ["remote", "add", "origin", "git@gitlab.example.com:mlci/mlci.git"]):
        subprocess.run(["git", *command], cwd=dest, check=True)
    return dest


def commit(repo: Path, message: str) -> str:
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-q", "-m", message], cwd=repo, check=True)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True,
                          text=True).stdout.strip()


def run_release_script(repo: Path, *args: str) -> subprocess.CompletedProcess:
    # The copy's own mlci, so `mlci generate` renders the copy's version.
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(repo), "HOME": str(repo)}
    return subprocess.run([sys.executable, "scripts/release.py", *args], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def release_tree(tmp_path) -> Path:
    return copy_release_tree(tmp_path / "mlci")
