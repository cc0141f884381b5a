"""`mlci local-pipeline`: the gitlab-ci-local command line that runs a project's own pipeline as GitLab would.

Pure: git facts and options in, an argv out. The command finds the tool, reads git and runs it.
What it sets, and why:
- the shell executor with shell isolation: each job runs in its own copy of the tracked files and
  receives only the artifacts and caches it declares, as on a runner;
- CI_DEFAULT_BRANCH from the repository (origin/HEAD, else main or master), so jobs ruled to the default
  branch (deploys) run there and nowhere else, whatever the branch is called;
- MLCI_INSTALL=preinstalled and PATH with the running mlci first, so every job uses this mlci instead
  of installing one from a package index;
- MLFLOW_TRACKING_URI as the user has it, else the project's local store by its absolute path: a relative
  sqlite path would give every isolated job a store of its own;
- deploy.state-dir made absolute (MLCI_DEPLOY_STATE_DIR): a model server outlives the job that started it,
  and the smoke test, later deploys and rollbacks must find its record outside that job's copy;
- CI_PIPELINE_SOURCE and, for merge requests, the merge request variables GitLab predefines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

GITLAB_CI_LOCAL_VERSION = "4.73.0"
SOURCES = ("push", "merge_request_event", "schedule", "web")
INSTALL_HINT = (
    f"install it with `npm install -g gitlab-ci-local@{GITLAB_CI_LOCAL_VERSION}` (Node.js 18 or later), "
    f"or in this project with `npm install --save-dev gitlab-ci-local@{GITLAB_CI_LOCAL_VERSION}`, "
    f"or try it once with `npx gitlab-ci-local@{GITLAB_CI_LOCAL_VERSION} --version`"
)


@dataclass(frozen=True)
class GitFacts:
    current_branch: str | None  # None on a detached HEAD
    remote_default: str | None  # origin/HEAD's branch, when the clone knows it
    branches: tuple[str, ...] = ()


@dataclass(frozen=True)
class LocalRun:
    source: str = "push"
    jobs: tuple[str, ...] = ()
    manual: tuple[str, ...] = ()
    variables: tuple[tuple[str, str], ...] = ()
    default_branch: str | None = None  # None: from git
    file: str | None = None
    mlci_bin_dir: str | None = None
    tracking_uri: str | None = None
    deploy_state_dir: str | None = None
    path: str = ""


def default_branch(git: GitFacts) -> str:
    """origin/HEAD when known; else the current branch when it is main or master; else whichever exists."""
    if git.remote_default:
        return git.remote_default
    if git.current_branch in ("main", "master"):
        return git.current_branch
    for name in ("main", "master"):
        if name in git.branches:
            return name
    return git.current_branch or "main"


def parse_variable(text: str) -> tuple[str, str]:
    from mlci.errors import UsageError

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise UsageError(f"--variable {text[:60]!r}: expected KEY=VALUE")
    return key.strip(), value


def pipeline_variables(run: LocalRun, git: GitFacts) -> tuple[dict[str, str], list[str]]:
    """The variables to set and the predefined ones to unset, the user's --variable last (they win)."""
    if run.source not in SOURCES:
        from mlci.errors import UsageError

        raise UsageError(f"--source {run.source!r}: expected one of {', '.join(SOURCES)}")
    branch = run.default_branch or default_branch(git)
    variables = {"CI_DEFAULT_BRANCH": branch, "CI_PIPELINE_SOURCE": run.source, "MLCI_INSTALL": "preinstalled"}
    unset: list[str] = []
    if run.source == "merge_request_event":
        # GitLab's merge request pipelines carry the MR's branches and no CI_COMMIT_BRANCH.
        variables.update({
            "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": git.current_branch or "",
            "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": branch,
            "CI_MERGE_REQUEST_EVENT_TYPE": "detached",
        })
        unset.append("CI_COMMIT_BRANCH")
    if run.tracking_uri:
        variables["MLFLOW_TRACKING_URI"] = run.tracking_uri
    if run.deploy_state_dir:
        variables["MLCI_DEPLOY_STATE_DIR"] = run.deploy_state_dir
    if run.mlci_bin_dir:
        variables["PATH"] = f"{run.mlci_bin_dir}:{run.path}" if run.path else run.mlci_bin_dir
    variables.update(dict(run.variables))
    return variables, [name for name in unset if name not in variables]


def build_command(tool: Sequence[str], run: LocalRun, git: GitFacts) -> list[str]:
    variables, unset = pipeline_variables(run, git)
    cmd = [*tool, "--force-shell-executor", "--shell-isolation"]
    if run.file:
        cmd += ["--file", run.file]
    predefined = sorted(name for name in variables if name.startswith(("CI_", "GITLAB_")))
    if predefined:  # overriding a predefined variable on purpose: no warning per variable
        cmd += ["--ignore-predefined-vars", ",".join(predefined)]
    for name, value in variables.items():
        cmd += ["--variable", f"{name}={value}"]
    for name in unset:
        cmd += ["--unset-variable", name]
    for job in run.manual:
        cmd += ["--manual", job]
    if run.jobs:
        # Named jobs run with the jobs they need, so their artifacts exist in the isolated copies.
        cmd += ["--needs", *run.jobs]
    return cmd
