"""gitlab-ci-local and git, as `mlci local-pipeline` needs them: find the tool, read the repository, run."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from mlci.errors import UsageError
from mlci.localrun import INSTALL_HINT, GitFacts


def find_tool(cwd: Path, env: dict[str, str]) -> list[str] | None:
    """gitlab-ci-local on PATH, else the project's own ./node_modules/.bin copy."""
    found = shutil.which("gitlab-ci-local", path=env.get("PATH", os.defpath))
    if found:
        return [found]
    local = cwd / "node_modules" / ".bin" / "gitlab-ci-local"
    return [str(local)] if local.is_file() and os.access(local, os.X_OK) else None


def missing_tool_error(env: dict[str, str]) -> UsageError:
    path = env.get("PATH", os.defpath)
    missing = [name for name in ("node", "npm") if shutil.which(name, path=path) is None]
    needs = (f"it runs on Node.js; {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing too, "
             "install Node.js 18 or later first (https://nodejs.org)" if missing
             else "Node.js and npm are here, so one npm command gets it")
    return UsageError(
        "gitlab-ci-local is not installed: looked on PATH and in ./node_modules/.bin; " + needs,
        hint=INSTALL_HINT,
    )


def tool_version(tool: list[str]) -> str | None:
    try:
        done = subprocess.run([*tool, "--version"], capture_output=True, text=True, timeout=60, check=False)
    except OSError:
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)


def git_facts(cwd: Path) -> GitFacts:
    if shutil.which("git") is None:
        raise UsageError("git is not installed; gitlab-ci-local runs the pipeline of a git repository")
    if _git(cwd, "rev-parse", "--verify", "-q", "HEAD").returncode != 0:
        inside = _git(cwd, "rev-parse", "--is-inside-work-tree").returncode == 0
        raise UsageError(
            f"{cwd} has no commit yet" if inside else f"{cwd} is not a git repository",
            hint="gitlab-ci-local runs a git repository's pipeline: `git init`, `git add -A`, `git commit`",
        )
    current = _git(cwd, "symbolic-ref", "--short", "-q", "HEAD").stdout.strip() or None
    remote = _git(cwd, "symbolic-ref", "--short", "-q", "refs/remotes/origin/HEAD").stdout.strip()
    branches = _git(cwd, "for-each-ref", "--format=%(refname:short)", "refs/heads").stdout.split()
    return GitFacts(current_branch=current, remote_default=remote.removeprefix("origin/") or None,
                    branches=tuple(branches))


def untracked_files(cwd: Path) -> list[str]:
    """Files that are neither tracked nor ignored: a job's isolated copy does not have them."""
    done = _git(cwd, "ls-files", "--others", "--exclude-standard", "--directory")
    return [line for line in done.stdout.splitlines() if line and not line.startswith(".gitlab-ci-local/")]


def job_shell_environment(env: dict[str, str]) -> dict[str, str]:
    """`env` for gitlab-ci-local, such that its job shells keep the PATH the jobs are given.

    gitlab-ci-local feeds each job's bash through a socket. Bash takes a socket on stdin at shell level 0
    or 1 for a remote login and sources ~/.bashrc, where pyenv, conda or nvm put their shims in front of
    the job's PATH: `python` is then not the interpreter that has mlci and the model's libraries. That
    happens whenever mlci runs outside an interactive shell (a cron job, an IDE, `make` in the background),
    where SHLVL is 0 or unset.
    """
    try:
        level = int(env.get("SHLVL") or 0)
    except ValueError:
        level = 0
    return env if level >= 1 else {**env, "SHLVL": "1"}


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> int:
    """Run with the terminal attached: gitlab-ci-local's own output is the pipeline log."""
    return subprocess.run(cmd, cwd=cwd, env=job_shell_environment(env), check=False).returncode
