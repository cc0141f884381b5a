"""Lint reads a pipeline as GitLab does, says where a mistake is and what was meant, and checks mlci.yml with it."""

from __future__ import annotations

import json

import pytest

from tests.lint.conftest import found

CANONICAL = """\
.rules-mr:
  rules:
    - if: $CI_PIPELINE_SOURCE == "merge_request_event"
    - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH

.setup:
  before_script:
    - pip install -r requirements.txt
    - [echo one, echo two]
  needs: [prepare]

prepare:
  image: python:3.12-slim
  script: [python prepare.py]
  tags: [[docker], linux]

evaluate:
  image: python:3.12-slim
  stage: test
  rules:
    - !reference [.rules-mr, rules]
    - if: $CI_PIPELINE_SOURCE == "schedule"
      when: never
  before_script:
    - !reference [.setup, before_script]
    - echo ready
  needs:
    - !reference [.setup, needs]
  script:
    - python evaluate.py
"""


def test_gitlabs_canonical_reference_pattern_lints_clean_and_is_flattened(repo):
    result = repo.lint(CANONICAL)
    assert result.findings == []
    job = result.merged["evaluate"]
    assert [rule.get("if") for rule in job["rules"]] == [
        '$CI_PIPELINE_SOURCE == "merge_request_event"', "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH",
        '$CI_PIPELINE_SOURCE == "schedule"']
    assert job["before_script"] == ["pip install -r requirements.txt", "echo one", "echo two", "echo ready"]
    assert job["needs"] == ["prepare"] and result.merged["prepare"]["tags"] == ["docker", "linux"]


def test_a_mistake_inside_a_referenced_list_is_reported_where_it_was_written(repo):
    result = repo.lint(CANONICAL.replace("    - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH\n",
                                         "    - if: 3\n"))
    [finding] = found(result, "schema")
    assert finding.message == "evaluate.rules.1.if: expected string, got 3"
    assert (finding.line, finding.column) == (4, 11), "the line in .rules-mr, not the !reference"


def test_nesting_deeper_than_gitlab_allows_is_an_error(repo):
    deep = "x"
    for _ in range(11):
        deep = f"[{deep}]"
    result = repo.lint(f"job:\n  image: python:3.12-slim\n  script: {deep}\n")
    assert [f.message for f in found(result, "schema")] == [
        "job.script: nested more than 10 levels deep (GitLab flattens nested arrays up to 10 levels)"]


def test_a_misspelled_key_is_reported_at_the_key_with_what_was_meant(repo):
    result = repo.lint("train:\n  image: python:3.12-slim\n  script: [x]\n  stagee: test\n"
                       "stagess: [build]\n")
    messages = {(f.line, f.column): f.message for f in found(result, "schema")}
    assert messages[(4, 3)] == "train.stagee: unknown key 'stagee'; did you mean 'stage'?"
    assert messages[(5, 1)] == "unknown key 'stagess' (a job must be a mapping); did you mean 'stages'?"


@pytest.mark.parametrize(("job", "message", "where"), [
    ("  needs: null\n", "train.needs: expected array, got null", (4, 10)),
    ("  rules:\n    - {if: $X, when: sometimes}\n",
     'train.rules.0.when: "sometimes" is not one of', (5, 22)),
    ("  cache: {key: {files: package.json}}\n", "train.cache.key.files: expected array", (4, 24)),
])
def test_a_oneof_error_names_the_branch_that_fits_at_the_deepest_place(repo, job, message, where):
    result = repo.lint("train:\n  image: python:3.12-slim\n  script: [x]\n" + job)
    [finding] = found(result, "schema")
    assert finding.message.startswith(message), finding.message
    assert (finding.line, finding.column) == where


MLCI_YML = """\
version: 1
project: {name: demo}
train:
  command: python train.py
gate:
  rules:
    - metric: accuracy
      min: 0.9
      max-regresion: 0.01
deploy:
  environments: [{name: staging}]
"""


def _project(repo, pipeline: str, config: str | None = MLCI_YML):
    from mlci.generate import load_manifests, render_templates

    for name, text in render_templates(load_manifests()).items():
        repo.write(f"ci_templates/{name}", text)
    if config is not None:
        repo.write("mlci.yml", config)
    return repo.lint(pipeline)


def test_mlci_yml_typos_are_lint_errors_with_what_was_meant(repo):
    result = _project(repo, "include:\n  - local: ci_templates/mlci-gate.yml\n")
    [typo] = found(result, "mlci-config")
    assert typo.message == "unknown key 'max-regresion'; did you mean 'max-regression'?"
    assert (typo.file, typo.line, typo.column) == ("mlci.yml", 9, 7)


def test_config_for_a_stage_no_template_runs_is_a_warning_at_the_section(repo):
    result = _project(repo, "include:\n  - local: ci_templates/mlci-train.yml\n",
                      MLCI_YML.replace("      max-regresion: 0.01\n", ""))
    unused = {(f.line, f.message.split(",")[0]) for f in found(result, "mlci-config-unused")}
    assert unused == {(5, "mlci.yml configures `gate`"), (9, "mlci.yml configures `deploy`")}
    assert result.ok, "a warning"


def test_an_included_template_without_the_config_it_needs_is_an_error_at_the_include(repo):
    result = _project(repo, "include:\n  - local: ci_templates/mlci-train.yml\n  - local: ci_templates/mlci-data.yml\n",
                      "version: 1\nproject: {name: demo}\n")
    missing = {f.line: f.message for f in found(result, "mlci-config-missing")}
    assert set(missing) == {2, 3} and not result.ok
    assert "mlci-train is included but train.command is not set in mlci.yml or the include's `command` input" \
        in missing[2]
    assert "data.sources" in missing[3]


def test_an_include_input_or_a_jobs_own_mlci_config_supplies_what_mlci_yml_lacks(repo):
    repo.write("other/mlci.yml", "version: 1\ndata:\n  sources:\n    d: {path: d.csv}\n")
    pipeline = ("include:\n  - local: ci_templates/mlci-train.yml\n    inputs: {command: python train.py}\n"
                "  - local: ci_templates/mlci-data.yml\n"
                "mlci-data-check:\n  variables:\n    MLCI_CONFIG: other/mlci.yml\n")
    result = _project(repo, pipeline, "version: 1\nproject: {name: demo}\n")
    assert found(result, "mlci-config-missing") == []


def test_lint_names_files_relative_to_where_it_runs_and_owns_its_usage(repo, run_cli, monkeypatch):
    repo.write("ci/inner.yml", "job:\n  image: python:3.12-slim\n  script: [x]\n  stagee: test\n")
    repo.write(".gitlab-ci.yml", "include: [ci/inner.yml]\n")
    monkeypatch.chdir(repo.root / "ci")
    code, out, _ = run_cli("lint", "../.gitlab-ci.yml")
    assert code == 1 and out.startswith("inner.yml:4:3: error: job.stagee: unknown key 'stagee'")
    code, _, err = run_cli("lint", "../.gitlab-ci.yml", "--bogus")
    assert code == 2 and err.startswith("usage: mlci lint") and "unrecognized arguments: --bogus" in err
    code, out, _ = run_cli("lint", "../.gitlab-ci.yml", "--format", "json")
    assert json.loads(out)["findings"][0]["file"] == "ci/inner.yml", "reports stay relative to the repository"


def test_the_compiled_validator_is_cached_and_a_broken_cache_is_rebuilt(repo, tmp_path, monkeypatch):
    from mlci.lint import schema

    monkeypatch.setenv("MLCI_CACHE_DIR", str(tmp_path / "cache"))
    schema.fast_validator.cache_clear()
    try:
        assert schema.is_valid({"job": {"script": ["x"]}}) is True
        [cached] = (tmp_path / "cache").glob("gitlab-ci-validator-*.marshal")
        cached.write_bytes(b"not bytecode")
        schema.fast_validator.cache_clear()
        assert schema.is_valid({"job": {"script": 3}}) is False
        assert cached.stat().st_size > 100_000, "rebuilt"
    finally:
        schema.fast_validator.cache_clear()
