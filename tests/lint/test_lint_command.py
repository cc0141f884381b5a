"""`mlci lint` from the command line: exit codes, report formats, and the templates and pipeline it guards."""

from __future__ import annotations

import json

import pytest

BAD = """\
train:
  image: python:latest
  tags: [gpu]
  script: [mlci train]
"""


@pytest.fixture
def in_repo(repo, monkeypatch, clean_env):
    monkeypatch.chdir(repo.root)
    return repo


def test_every_rendered_template_and_catalog_component_lints_clean(in_repo, run_cli, rendered, rendered_catalog):
    for folder, files in (("ci_templates", rendered), ("templates", rendered_catalog)):
        for name, text in files.items():
            in_repo.write(f"{folder}/{name}", text)
    for folder, files in (("ci_templates", rendered), ("templates", rendered_catalog)):
        for name in files:
            # Templates, not a project: there is no mlci.yml to hold them to.
            code, out, _err = run_cli("lint", f"{folder}/{name}", "--format", "json", "--no-config")
            report = json.loads(out)
            unchecked = {"include-not-checked"} if folder == "templates" and name == "all.yml" else set()
            assert {f["name"] for f in report["findings"]} == unchecked, (name, report["findings"])
            assert code == 0 and report["valid"], name


def test_this_projects_own_pipeline_lints_clean(run_cli, repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    code, out, _err = run_cli("lint", ".gitlab-ci.yml", "--format", "json")
    report = json.loads(out)
    assert report["findings"] == [] and code == 0
    assert "ci_templates/mlci-data.yml" in report["files"], "it dogfoods its own data template"
    assert {"ruff", "tests", "generated-files", "pipeline-lint", "mlci-data-check"} <= set(report["jobs"])


def test_errors_exit_1_with_file_line_and_rule_warnings_alone_exit_0(in_repo, run_cli):
    in_repo.write(".gitlab-ci.yml", BAD)
    code, out, _err = run_cli("lint")
    assert code == 1
    assert ".gitlab-ci.yml:3:3: error: job 'train' runs on GPU runners" in out
    assert "[MLCI001 gpu-job-unbounded]" in out
    assert ".gitlab-ci.yml:2:10: warning: job 'train' image python:latest uses the :latest tag" in out
    assert "FAILED: 1 error(s), 1 warning(s)" in out

    in_repo.write(".gitlab-ci.yml", BAD.replace("  tags: [gpu]\n", ""))
    code, out, _ = run_cli("lint")
    assert code == 0 and "ok: 0 error(s), 1 warning(s)" in out


@pytest.mark.parametrize(("files", "where"), [
    ({}, "missing.yml: file not found"),
    ({"missing.yml": "job:\n  script: [a\n"}, "missing.yml:3:1: invalid YAML"),
])
def test_unreadable_input_exits_2_with_a_location(in_repo, run_cli, files, where):
    for name, text in files.items():
        in_repo.write(name, text)
    code, _out, err = run_cli("lint", "missing.yml")
    assert code == 2
    assert where in err


def test_codequality_report_for_the_merge_request_widget(in_repo, run_cli):
    in_repo.write(".gitlab-ci.yml", BAD)
    code, out, _ = run_cli("lint", "--format", "codequality", "--output", "gl-code-quality.json")
    assert code == 1
    assert "report (codequality) written to gl-code-quality.json" in out
    issues = json.loads((in_repo.root / "gl-code-quality.json").read_text())
    assert [i["check_name"] for i in issues] == ["MLCI003 image-unpinned", "MLCI001 gpu-job-unbounded"]
    for issue in issues:
        assert set(issue) == {"description", "check_name", "fingerprint", "severity", "location"}
        assert issue["location"]["path"] == ".gitlab-ci.yml" and isinstance(issue["location"]["lines"]["begin"], int)
        assert issue["severity"] in ("info", "minor", "major", "critical", "blocker")
    assert [i["severity"] for i in issues] == ["minor", "major"]

    # Fingerprints follow the problem, not its line: an unrelated edit above keeps them, so GitLab's
    # MR widget shows no "new" issue.
    in_repo.write(".gitlab-ci.yml", "# a comment line\n\n" + BAD)
    run_cli("lint", "--format", "codequality", "--output", "gl-code-quality.json")
    moved = json.loads((in_repo.root / "gl-code-quality.json").read_text())
    assert [i["fingerprint"] for i in moved] == [i["fingerprint"] for i in issues]
    assert [i["location"]["lines"]["begin"] for i in moved] == [4, 5]


def test_json_report_is_versioned_and_lists_files_and_jobs(in_repo, run_cli):
    in_repo.write(".gitlab-ci.yml", BAD)
    _code, out, err = run_cli("lint", "--format", "json")
    report = json.loads(out)
    assert report["version"] == 1 and report["valid"] is False
    assert report["schema"].startswith("GitLab CI schema vendored by check-jsonschema")
    assert report["jobs"] == ["train"]
    assert report["findings"][1] == {
        "rule": "MLCI001", "name": "gpu-job-unbounded", "severity": "error", "file": ".gitlab-ci.yml", "line": 3,
        "column": 3, "job": "train", "message": report["findings"][1]["message"],
    }
    assert "FAILED" in err, "the summary goes to stderr so stdout stays valid JSON"


def test_a_template_is_linted_with_the_inputs_given_on_the_command_line(in_repo, run_cli, rendered):
    in_repo.write("ci_templates/mlci-train.yml", rendered["mlci-train.yml"])
    code, out, _ = run_cli("lint", "ci_templates/mlci-train.yml", "--input", "tags=[gpu]", "--input",
                           "interruptible=false", "--input", "image=python")
    assert code == 0, out
    assert "image $MLCI_TRAIN_IMAGE (= python) has no tag" in out
    code, out, _ = run_cli("lint", "ci_templates/mlci-train.yml", "--input", "retry=5", "--input", "colour=red")
    assert code == 1
    assert "input 'retry': 5 is not one of the options (0, 1, 2)" in out
    assert "unknown input 'colour'" in out


# -- --server: GitLab's CI lint API through python-gitlab, against the loopback fake --------------------

def _server_env(monkeypatch, fake) -> None:
    for key, value in fake.env().items():
        monkeypatch.setenv(key, value)


def test_server_lint_sends_the_merged_pipeline_and_keeps_unfetched_includes(in_repo, run_cli, monkeypatch,
                                                                             fake_gitlab, rendered):
    _server_env(monkeypatch, fake_gitlab)
    in_repo.write("ci_templates/mlci-gate.yml", rendered["mlci-gate.yml"])
    in_repo.write(".gitlab-ci.yml", """\
        include:
          - local: ci_templates/mlci-gate.yml
          - project: ml/shared
            file: lint.yml
        """)
    code, out, err = run_cli("lint", "--server")
    assert code == 0, out + err
    [request] = fake_gitlab.lint_requests
    import yaml

    sent = yaml.safe_load(request["content"])
    assert sent["include"] == [{"project": "ml/shared", "file": "lint.yml"}]
    assert sent["mlci-gate"]["script"] == ["mlci gate"], "local includes arrive inlined"
    assert fake_gitlab.token not in out + err


def test_server_lint_errors_become_findings_and_exit_1(in_repo, run_cli, monkeypatch, fake_gitlab):
    _server_env(monkeypatch, fake_gitlab)
    fake_gitlab.lint_result = {"valid": False, "errors": ["jobs:train config contains unknown keys: tagz"],
                               "warnings": ["jobs:train may allow multiple pipelines"], "merged_yaml": ""}
    in_repo.write(".gitlab-ci.yml", "train:\n  image: python:3.12-slim\n  script: [mlci train]\n")
    code, out, _ = run_cli("lint", "--server")
    assert code == 1
    assert "error: GitLab: jobs:train config contains unknown keys: tagz [MLCI017 server-lint]" in out
    assert "warning: GitLab: jobs:train may allow multiple pipelines" in out


def test_server_lint_without_a_token_or_with_a_bad_one_exits_3(in_repo, run_cli, monkeypatch, fake_gitlab):
    in_repo.write(".gitlab-ci.yml", "train:\n  image: python:3.12-slim\n  script: [mlci train]\n")
    _server_env(monkeypatch, fake_gitlab)
    monkeypatch.delenv("MLCI_GITLAB_TOKEN")
    code, _, err = run_cli("lint", "--server")
    assert code == 3 and "MLCI_GITLAB_TOKEN" in err and fake_gitlab.url in err

    monkeypatch.setenv("MLCI_GITLAB_TOKEN", "glpat-wrong-token-0123456789")
    code, out, err = run_cli("lint", "--server")
    assert code == 3 and "HTTP 401" in err
    assert "glpat-wrong-token-0123456789" not in out + err


def test_the_example_projects_pipeline_lints_clean(in_repo, run_cli, rendered, repo_root):
    """The example includes the templates the way a user would; what it gets must lint clean too."""
    for name in (".gitlab-ci.yml", "mlci.yml"):
        in_repo.write(name, (repo_root / "examples/tumor-classifier" / name).read_text())
    for name, text in rendered.items():
        in_repo.write(f"ci_templates/{name}", text)
    code, out, _ = run_cli("lint", "--format", "json")
    report = json.loads(out)
    assert (code, report["findings"]) == (0, [])
    assert "mlci-retrain-run" in report["jobs"] and "mlci-deploy-production" in report["jobs"]
