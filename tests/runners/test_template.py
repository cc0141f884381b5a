"""mlci-runners.yml under gitlab-ci-local: when the job exists in a merge request pipeline, and what it does.

gitlab-ci-local compares `rules:changes` with the default branch (origin/main), as GitLab does for
merge request pipelines, so each scenario commits on top of a fake origin/main.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.generate.conftest import CiProject
from tests.runners.conftest import FLEET, REPO_ROOT

pytestmark = pytest.mark.slow

MR = {"CI_PIPELINE_SOURCE": "merge_request_event", "CI_MERGE_REQUEST_IID": "4"}
VENV_BIN = str(Path(sys.executable).parent)


@pytest.fixture
def ci_project(tmp_path) -> CiProject:
    """A git repository with the committed templates and a fake origin (gitlab-ci-local needs one)."""
    root = tmp_path / "project"
    root.mkdir()
    for command in (["git", "init", "-q", "-b", "main"], ["git", "config", "user.email", "ci@example.com"],
                    ["git", "config", "user.name", "mlci tests"],
                    ["git", "remote", "add", "origin", "git@gitlab.example.com:group/project.git"]):
        subprocess.run(command, cwd=root, check=True)
    project = CiProject(root)
    for path in sorted((REPO_ROOT / "ci_templates").glob("*.yml")):
        project.write(f"ci_templates/{path.name}", path.read_text(encoding="utf-8"))
    project.write(".gitignore", ".gitlab-ci-local/\nmlci-out/\n")
    return project


def setup(ci_project, *, render: bool):
    ci_project.write(".gitlab-ci.yml", yaml.safe_dump({"include": [
        {"local": "ci_templates/mlci-runners.yml", "inputs": {"install": "preinstalled"}},
        {"local": "ci_templates/mlci-train.yml", "inputs": {"install": "preinstalled", "tags": ["gpu"]}},
    ]}, sort_keys=False))
    config = {"version": 1, "project": {"name": "demo"}, "gitlab": {"url": "https://gitlab.example.com"},
              "runners": copy.deepcopy(FLEET)}
    ci_project.write("mlci.yml", yaml.safe_dump(config, sort_keys=False))
    if render:
        done = subprocess.run([f"{VENV_BIN}/mlci", "-q", "runners", "render"], cwd=ci_project.root,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    ci_project.commit()  # origin/main: the target branch of the merge request
    return config


def change_and_commit(ci_project, config):
    ci_project.write("mlci.yml", yaml.safe_dump(config, sort_keys=False))
    subprocess.run(["git", "commit", "-qam", "change runners"], cwd=ci_project.root, check=True)


def run_job(ci_project):
    return ci_project.gcl("--force-shell-executor", "mlci-runners-render",
                          variables={**MR, "PATH": f"{VENV_BIN}:/usr/bin:/bin"}, timeout=300)


def test_the_job_checks_the_committed_folder_only_when_its_inputs_change(ci_project):
    config = setup(ci_project, render=True)
    assert "mlci-runners-render" not in ci_project.jobs(**MR)  # nothing it depends on changed

    config["runners"]["pools"][0]["max"] = 6  # changed in mlci.yml, not rendered
    change_and_commit(ci_project, config)
    assert "mlci-runners-render" in ci_project.jobs(**MR)
    assert "mlci-runners-render" not in ci_project.jobs(CI_PIPELINE_SOURCE="push")

    stale = run_job(ci_project)
    assert stale.returncode != 0
    assert "infra/runners/helm/a10g/values.yaml is not what mlci.yml renders" in stale.stdout + stale.stderr
    plan = json.loads((ci_project.root / "mlci-out" / "runners-plan.json").read_text())
    assert "helm/a10g/values.yaml" in plan["stale_files"]  # the report shows it either way

    done = subprocess.run([f"{VENV_BIN}/mlci", "-q", "runners", "render"], cwd=ci_project.root,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    subprocess.run(["git", "add", "-A"], cwd=ci_project.root, check=True)
    subprocess.run(["git", "commit", "-qm", "render"], cwd=ci_project.root, check=True)
    fresh = run_job(ci_project)
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert "PASS  mlci-runners-render" in fresh.stdout


def test_projects_without_a_rendered_fleet_get_no_job(ci_project):
    config = setup(ci_project, render=False)
    config["runners"]["pools"][0]["max"] = 6
    change_and_commit(ci_project, config)
    assert "mlci-runners-render" not in ci_project.jobs(**MR)
