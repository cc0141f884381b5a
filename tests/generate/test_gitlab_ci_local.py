"""The templates as GitLab's runner sees them: included with inputs, listed, previewed and run by gitlab-ci-local.

Each test builds a throwaway git repository with the freshly rendered templates
under ci_templates/ and a .gitlab-ci.yml that includes them the way a user would.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.generate.conftest import GITLAB_CI_LOCAL as GCL

VENV_BIN = str(Path(sys.executable).parent)


def include(*entries: dict) -> str:
    return yaml.safe_dump({"include": list(entries)}, sort_keys=False)


ALONE = {
    # template: (inputs, pipeline variables, jobs expected in that pipeline)
    "data": ({"drift-reference": "champion", "install": "preinstalled"}, {},
             {"mlci-data-check", "mlci-data-drift"}),
    "train": ({"sweep": True, "matrix": [{"SEED": ["1", "2"]}], "tags": ["gpu-a100"]}, {},
              {"mlci-train: [1]", "mlci-train: [2]", "mlci-train-select"}),
    "gate": ({"warn-only": True}, {}, {"mlci-gate"}),
    "report": ({}, {"CI_PIPELINE_SOURCE": "merge_request_event", "CI_MERGE_REQUEST_IID": "7"}, {"mlci-report"}),
    "deploy": ({"credentials": "vault"}, {},
               {"mlci-deploy-staging", "mlci-smoke-test", "mlci-deploy-production", "mlci-rollback-production"}),
    "retrain": ({"fetch-command": "python fetch.py"}, {"CI_PIPELINE_SOURCE": "schedule"},
                {"mlci-retrain-fetch-data", "mlci-retrain-data-check", "mlci-retrain-data-drift",
                 "mlci-retrain-decide", "mlci-retrain-run"}),
    "monitor": ({"auto-rollback": True, "environment": "staging"},
                {"CI_PIPELINE_SOURCE": "schedule", "MLCI_PIPELINE": "monitor"}, {"mlci-monitor"}),
}


@pytest.mark.parametrize("stage", list(ALONE))
def test_each_template_works_included_alone_with_inputs(ci_project, stage):
    inputs, variables, expected = ALONE[stage]
    ci_project.write(".gitlab-ci.yml", include({"local": f"ci_templates/mlci-{stage}.yml", "inputs": inputs}))
    ci_project.commit()
    assert set(ci_project.jobs(**variables)) == expected


def test_an_unknown_input_value_is_refused_by_the_spec(ci_project):
    ci_project.write(".gitlab-ci.yml", include({"local": "ci_templates/mlci-data.yml",
                                                "inputs": {"install": "conda"}}))
    ci_project.commit()
    done = ci_project.gcl("--list")
    assert done.returncode != 0
    assert "not in the list of allowed options" in done.stdout + done.stderr


PIPELINES = {
    "push to the default branch": (
        {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "main", "CI_COMMIT_REF_NAME": "main"},
        {"mlci-data-check", "mlci-train", "mlci-gate", "mlci-deploy-staging", "mlci-smoke-test",
         "mlci-deploy-production", "mlci-rollback-production"},
    ),
    "push to a feature branch": (
        {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "feature", "CI_COMMIT_REF_NAME": "feature"},
        {"mlci-data-check", "mlci-train", "mlci-gate"},
    ),
    "merge request": (
        {"CI_PIPELINE_SOURCE": "merge_request_event", "CI_COMMIT_BRANCH": "", "CI_MERGE_REQUEST_IID": "3"},
        {"mlci-data-check", "mlci-train", "mlci-gate", "mlci-report"},
    ),
    "tag": (
        {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "", "CI_COMMIT_TAG": "v1.0.0",
         "CI_COMMIT_REF_NAME": "v1.0.0"},
        {"mlci-data-check", "mlci-train", "mlci-gate", "mlci-deploy-production", "mlci-rollback-production"},
    ),
    "schedule": (
        {"CI_PIPELINE_SOURCE": "schedule"},
        {"mlci-retrain-fetch-data", "mlci-retrain-data-check", "mlci-retrain-data-drift", "mlci-retrain-decide",
         "mlci-retrain-run"},
    ),
    "trigger asking for a retrain": (
        {"CI_PIPELINE_SOURCE": "trigger", "MLCI_PIPELINE": "retrain"},
        {"mlci-retrain-fetch-data", "mlci-retrain-data-check", "mlci-retrain-data-drift", "mlci-retrain-decide",
         "mlci-retrain-run"},
    ),
    "scheduled monitoring": (
        {"CI_PIPELINE_SOURCE": "schedule", "MLCI_PIPELINE": "monitor", "MLCI_MONITOR_ENVIRONMENT": "production"},
        {"mlci-monitor"},
    ),
    "an alert asking for monitoring on the default branch": (
        {"CI_PIPELINE_SOURCE": "trigger", "MLCI_PIPELINE": "monitor", "CI_COMMIT_BRANCH": "main",
         "CI_COMMIT_REF_NAME": "main"},
        {"mlci-monitor"},
    ),
}


@pytest.mark.parametrize("pipeline", list(PIPELINES))
def test_all_in_one_include_puts_the_right_jobs_in_each_kind_of_pipeline(ci_project, pipeline):
    variables, expected = PIPELINES[pipeline]
    ci_project.write(".gitlab-ci.yml", include({"local": "ci_templates/mlci-all.yml",
                                                "inputs": {"install": "preinstalled"}}))
    ci_project.commit()
    jobs = ci_project.jobs(**variables)
    assert set(jobs) == expected
    for manual in ("mlci-deploy-production", "mlci-rollback-production"):
        if manual in jobs:
            assert jobs[manual]["when"] == "manual"
            assert jobs[manual]["environment"] == "production"


def normal(key: str, value):
    """gitlab-ci-local spells out defaults GitLab leaves implicit (needs: optional false, artifacts true)."""
    if key == "needs" and isinstance(value, list):
        return [{"artifacts": True, "optional": False, **({"job": n} if isinstance(n, str) else n)} for n in value]
    return value


def test_preview_shows_inputs_interpolated_and_matches_mlci_lints_merge(ci_project):
    """gitlab-ci-local's merged YAML and mlci lint's resolver agree job by job on what matters."""
    from mlci.lint.resolve import load_pipeline

    inputs = {"install": "preinstalled", "train-tags": ["gpu-h100"], "train-timeout": "8h", "train-retry": 1,
              "gate-warn-only": True, "deploy-staging-environment": "stage", "data-drift-reference": "ref.parquet"}
    ci_project.write(".gitlab-ci.yml", include({"local": "ci_templates/mlci-all.yml", "inputs": inputs}))
    ci_project.commit()
    done = ci_project.gcl("--preview", schema=True)
    assert done.returncode == 0, done.stdout + done.stderr
    preview = yaml.safe_load(done.stdout[done.stdout.index("---"):])
    train = preview["mlci-train"]
    assert train["tags"] == ["gpu-h100"] and train["timeout"] == "8h" and train["retry"]["max"] == 1
    assert preview["mlci-gate"]["allow_failure"] is True
    assert preview["mlci-deploy-staging"]["environment"]["name"] == "stage"
    assert preview["variables"]["MLCI_DATA_DRIFT_REFERENCE"] == "ref.parquet"

    ours = load_pipeline(ci_project.root / ".gitlab-ci.yml", root=ci_project.root)
    assert not [f for f in ours.findings if f.severity == "error"], ours.findings
    keys = ("stage", "script", "before_script", "tags", "timeout", "interruptible", "allow_failure", "needs",
            "rules", "environment", "resource_group", "trigger", "parallel")
    assert set(ours.jobs) == {k for k, v in preview.items() if isinstance(v, dict) and ("script" in v or
                                                                                      "trigger" in v)}
    for name, job in ours.jobs.items():
        theirs = preview[name]
        for key in keys:
            if key in job or key in theirs:
                assert normal(key, job.get(key)) == normal(key, theirs.get(key)), f"{name}.{key}"
        assert job.get("variables", {}).items() <= theirs.get("variables", {}).items(), name


def test_a_data_check_job_really_runs_in_shell_mode_and_reports_junit(ci_project):
    ci_project.write(".gitlab-ci.yml", include({"local": "ci_templates/mlci-data.yml", "inputs": {
        "install": "preinstalled", "contract": "contract.yml", "paths": "data.csv"}}))
    ci_project.write("contract.yml", "columns:\n  x:\n    not-null: true\n    min: 1\n")
    ci_project.write("data.csv", "x,name\n1,a\n2,b\n")
    ci_project.commit()
    path = f"PATH={VENV_BIN}:/usr/local/bin:/usr/bin:/bin"
    done = ci_project.gcl("--force-shell-executor", "--variable", path, "mlci-data-check", timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    from mlci import __version__

    assert f"mlci {__version__}" in done.stdout, "the install step shows the preinstalled mlci's version"
    assert " installs mlci" not in done.stdout, "nothing is installed"
    junit = ci_project.root / ".gitlab-ci-local/artifacts/mlci-data-check/mlci-out/data-check.junit.xml"
    assert junit.exists()
    assert 'failures="0"' in junit.read_text()

    # The same job goes red on a planted bad row, and still hands over its JUnit report.
    ci_project.write("data.csv", "x,name\n1,a\n0,b\n")
    ci_project.commit()
    done = ci_project.gcl("--force-shell-executor", "--variable", path, "mlci-data-check", timeout=180)
    assert done.returncode != 0
    assert "FAIL" in done.stdout and "mlci-data-check" in done.stdout
    assert 'failures="1"' in junit.read_text()


def test_job_shells_keep_the_path_they_are_given_outside_an_interactive_shell(ci_project, tmp_path):
    """Run from cron, an IDE or a background `make` (SHLVL 0), a job's bash would source ~/.bashrc, where
    pyenv or conda put their shims before the job's PATH; mlci's environment for gitlab-ci-local stops that."""
    import os

    from mlci.adapters.gitlab_ci_local import job_shell_environment

    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text('export PATH="/planted-shims:$PATH"\n')
    ci_project.write(".gitlab-ci.yml", "probe:\n  script:\n    - echo \"job PATH=$PATH\"\n")
    ci_project.commit()
    background = {**os.environ, "HOME": str(home), "SHLVL": "0"}

    def job_path(env: dict[str, str]) -> str:
        done = subprocess.run([str(GCL), "--no-color", "--json-schema-validation=false", "--force-shell-executor",
                               "probe"], cwd=ci_project.root, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return next(line for line in done.stdout.splitlines() if "> job PATH=" in line)

    assert "/planted-shims" in job_path(background), "the shell quirk this guards against is real"
    assert "/planted-shims" not in job_path(job_shell_environment(background))
