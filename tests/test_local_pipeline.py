"""`mlci local-pipeline`: the gitlab-ci-local command it builds, and what it says when the tool is missing."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from mlci.cli import main
from mlci.errors import UsageError
from mlci.localrun import GitFacts, LocalRun, build_command, default_branch


def variables_of(cmd: list[str]) -> dict[str, str]:
    pairs = [cmd[i + 1] for i, token in enumerate(cmd) if token == "--variable"]
    return dict(pair.split("=", 1) for pair in pairs)


@pytest.mark.parametrize(("git", "expected"), [
    (GitFacts("feature/x", "develop", ("develop", "feature/x", "main")), "develop"),  # origin/HEAD wins
    (GitFacts("master", None, ("master",)), "master"),  # no renaming to main
    (GitFacts("feature/x", None, ("feature/x", "master")), "master"),
    (GitFacts("feature/x", None, ("feature/x", "main", "master")), "main"),
    (GitFacts("trunk", None, ("trunk",)), "trunk"),
    (GitFacts(None, None, ()), "main"),
])
def test_the_default_branch_comes_from_the_repository(git, expected):
    assert default_branch(git) == expected


def test_every_job_runs_isolated_with_the_installed_mlci_on_the_repositorys_default_branch():
    cmd = build_command(["gcl"], LocalRun(mlci_bin_dir="/venv/bin", path="/usr/bin", tracking_uri="sqlite:////p/db"),
                        GitFacts("master", None, ("master",)))
    assert cmd[:3] == ["gcl", "--force-shell-executor", "--shell-isolation"]
    variables = variables_of(cmd)
    assert variables["CI_DEFAULT_BRANCH"] == "master"
    assert variables["CI_PIPELINE_SOURCE"] == "push"
    assert variables["MLCI_INSTALL"] == "preinstalled"
    assert variables["PATH"] == "/venv/bin:/usr/bin"
    assert variables["MLFLOW_TRACKING_URI"] == "sqlite:////p/db"
    assert "--needs" not in cmd


def test_merge_request_pipelines_carry_the_mr_branches_and_no_commit_branch():
    cmd = build_command(["gcl"], LocalRun(source="merge_request_event", jobs=("mlci-report",)),
                        GitFacts("feature/x", "main", ("main", "feature/x")))
    variables = variables_of(cmd)
    assert variables["CI_MERGE_REQUEST_SOURCE_BRANCH_NAME"] == "feature/x"
    assert variables["CI_MERGE_REQUEST_TARGET_BRANCH_NAME"] == "main"
    assert cmd[cmd.index("--unset-variable") + 1] == "CI_COMMIT_BRANCH"
    assert cmd[-2:] == ["--needs", "mlci-report"], "a named job brings the jobs it needs"


def test_the_users_variables_win_and_predefined_overrides_are_not_warned_about():
    run = LocalRun(source="schedule", variables=(("MLCI_INSTALL", "pip"), ("CI_COMMIT_BRANCH", "x")),
                   default_branch="release")
    cmd = build_command(["gcl"], run, GitFacts("main", None, ("main",)))
    variables = variables_of(cmd)
    assert variables["MLCI_INSTALL"] == "pip" and variables["CI_DEFAULT_BRANCH"] == "release"
    ignored = cmd[cmd.index("--ignore-predefined-vars") + 1].split(",")
    assert {"CI_COMMIT_BRANCH", "CI_DEFAULT_BRANCH", "CI_PIPELINE_SOURCE"} <= set(ignored)


def test_an_unknown_source_is_a_usage_error():
    with pytest.raises(UsageError, match="--source 'tag'"):
        build_command(["gcl"], LocalRun(source="tag"), GitFacts("main", None))


@pytest.fixture
def committed_project(tmp_path, monkeypatch):
    (tmp_path / ".gitlab-ci.yml").write_text("job:\n  script: [echo hi]\n")
    for args in (["init", "-q", "-b", "master"], ["add", "-A"],
                 ["-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "init"]):
        subprocess.run(["git", *args], cwd=tmp_path, check=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_without_gitlab_ci_local_it_says_how_to_get_it(committed_project, monkeypatch, capsys):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert shutil.which("gitlab-ci-local") is None
    assert main(["local-pipeline"]) == 2
    err = capsys.readouterr().err
    assert "gitlab-ci-local is not installed" in err
    assert "npm install -g gitlab-ci-local@4.73.0" in err and "npx gitlab-ci-local@4.73.0" in err
    assert "Traceback" not in err


def test_without_node_it_says_node_is_needed_first(committed_project, tmp_path_factory, monkeypatch, capsys):
    only_git = tmp_path_factory.mktemp("bin")
    (only_git / "git").symlink_to(shutil.which("git"))
    monkeypatch.setenv("PATH", str(only_git))
    assert main(["local-pipeline", "--job", "build"]) == 2
    err = capsys.readouterr().err
    assert "node and npm are missing too" in err and "Node.js 18" in err


def test_dry_run_prints_the_command_without_running_it(committed_project, capsys):
    assert main(["local-pipeline", "--dry-run", "--source", "web", "--variable", "A=b c"]) == 0
    out = capsys.readouterr().out
    assert "--shell-isolation" in out and "CI_DEFAULT_BRANCH=master" in out
    assert "CI_PIPELINE_SOURCE=web" in out and "'A=b c'" in out
    assert f"MLCI_DEPLOY_STATE_DIR={committed_project / '.mlci' / 'serve'}" in out, "one server record for all jobs"
    assert not (committed_project / ".gitlab-ci-local").exists()


def test_outside_a_git_repository_it_says_so(tmp_path, monkeypatch, capsys):
    (tmp_path / ".gitlab-ci.yml").write_text("job:\n  script: [echo hi]\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert main(["local-pipeline"]) == 2
    assert "is not a git repository" in capsys.readouterr().err
