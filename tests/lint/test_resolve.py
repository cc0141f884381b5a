"""How mlci lint builds the pipeline: include:local, spec:inputs, merging, !reference, extends, default."""

from __future__ import annotations

import pytest

from mlci.errors import ConfigError
from tests.lint.conftest import found

TEMPLATE = """\
spec:
  inputs:
    stage:
      default: test
    tags:
      type: array
      default: [gpu]
    retries:
      type: number
      default: 1
      options: [0, 1, 2]
    gpu:
      type: boolean
      default: true
    env:
      regex: ^[a-z]+$
---
train-$[[ inputs.env ]]:
  stage: $[[ inputs.stage ]]
  image: python:3.12-slim
  tags: $[[ inputs.tags ]]
  interruptible: $[[ inputs.gpu ]]
  timeout: 1h
  retry: $[[ inputs.retries ]]
  script:
    - mlci train --note "$[[ inputs.env ]] on $[[ inputs.tags ]] | truncate? no"
    - echo $[[ inputs.env | truncate(0,3) ]]
"""


def test_inputs_are_interpolated_with_their_types_and_keys_can_be_interpolated(repo):
    repo.write("ci/train.yml", TEMPLATE)
    result = repo.lint("""\
        include:
          - local: /ci/train.yml
            inputs:
              env: staging
              tags: [a100, spot]
              retries: 2
              gpu: false
        """)
    assert result.findings == []
    job = result.merged["train-staging"]
    assert job["tags"] == ["a100", "spot"] and job["retry"] == 2 and job["interruptible"] is False
    assert job["script"] == ['mlci train --note "staging on ["a100", "spot"] | truncate? no"', "echo sta"]
    assert result.files == [".gitlab-ci.yml", "ci/train.yml"]


@pytest.mark.parametrize(("inputs", "message"), [
    ({}, "input 'env' is required by ci/train.yml and was not given"),
    ({"env": "prod", "colour": "red"}, "unknown input 'colour'; ci/train.yml accepts: stage, tags, retries, gpu, env"),
    ({"env": "prod", "retries": "2"}, "input 'retries': expected a number, got string \"2\""),
    ({"env": "prod", "retries": 5}, "input 'retries': 5 is not one of the options (0, 1, 2)"),
    ({"env": "Prod-1"}, "input 'env': \"Prod-1\" does not match ^[a-z]+$"),
    ({"env": "prod", "tags": "gpu"}, "input 'tags': expected an array, got string \"gpu\""),
])
def test_input_mistakes_are_errors_at_the_include(repo, inputs, message):
    import yaml

    repo.write("ci/train.yml", TEMPLATE)
    text = yaml.safe_dump({"include": [{"local": "ci/train.yml", "inputs": inputs}]}, sort_keys=False)
    result = repo.lint(text)
    messages = [f.message for f in found(result, "inputs")]
    assert message in messages
    finding = next(f for f in found(result, "inputs") if f.message == message)
    assert (finding.file, finding.line) == (".gitlab-ci.yml", 2)
    assert not result.ok


def test_interpolating_an_undeclared_input_or_an_unknown_function_is_an_error(repo):
    repo.write("ci/t.yml", """\
        spec:
          inputs:
            name:
              default: x
        ---
        job:
          image: python:3.12-slim
          script:
            - echo $[[ inputs.nmae ]]
            - echo $[[ inputs.name | shout ]]
        """)
    result = repo.lint("include: [{local: ci/t.yml}]\n")
    messages = [(f.file, f.line, f.message) for f in found(result, "interpolation")]
    assert messages == [
        ("ci/t.yml", 9, "`$[[ inputs.nmae ]]` names input 'nmae', which the spec does not declare"),
        ("ci/t.yml", 10, "unknown interpolation function `shout` (expand_vars, truncate, posix_escape)"),
    ]


def test_inputs_given_to_a_file_without_a_spec_are_an_error(repo):
    repo.write("ci/plain.yml", "job: {image: 'python:3.12-slim', script: [mlci gate]}\n")
    result = repo.lint("include: [{local: ci/plain.yml, inputs: {stage: test}}]\n")
    [finding] = found(result, "inputs")
    assert "has no `spec:inputs` header" in finding.message


def test_missing_local_include_and_include_cycles_are_errors(repo):
    repo.write("ci/a.yml", "include: [{local: ci/b.yml}]\na: {image: 'python:3.12-slim', script: [x]}\n")
    repo.write("ci/b.yml", "include: [{local: ci/a.yml}]\nb: {image: 'python:3.12-slim', script: [x]}\n")
    result = repo.lint("include:\n  - local: ci/a.yml\n  - local: ci/nope.yml\n")
    messages = [f.message for f in found(result, "include")]
    assert any("'ci/a.yml' includes itself" in m for m in messages)
    assert any("local include 'ci/nope.yml' does not exist" in m for m in messages)


def test_later_files_override_earlier_ones_and_the_including_file_wins(repo):
    repo.write("ci/base.yml", """\
        variables: {LEVEL: base, KEEP: base}
        job:
          image: python:3.12-slim
          script: [echo base]
          variables: {A: base, B: base}
        """)
    repo.write("ci/second.yml", "job:\n  variables: {B: second}\n")
    result = repo.lint("""\
        include: [ci/base.yml, {local: ci/second.yml}]
        variables: {LEVEL: main}
        job:
          script: [echo main]
        """)
    assert result.findings == []
    job = result.merged["job"]
    assert job["script"] == ["echo main"] and job["image"] == "python:3.12-slim"
    assert job["variables"] == {"A": "base", "B": "second"}
    assert result.merged["variables"] == {"LEVEL": "main", "KEEP": "base"}


def test_glob_includes_bring_every_matching_file(repo):
    repo.write("ci/jobs/a.yml", "a: {image: 'python:3.12-slim', script: [x]}\n")
    repo.write("ci/jobs/b.yml", "b: {image: 'python:3.12-slim', script: [x]}\n")
    result = repo.lint("include: {local: 'ci/jobs/*.yml'}\n")
    assert result.jobs == ["a", "b"]


def test_reference_tags_extends_and_default_are_applied(repo):
    result = repo.lint("""\
        default:
          image: python:3.12-slim
          retry: 1
        .setup:
          before_script: [pip install mlci]
          variables: {A: "1"}
        .gpu:
          extends: .setup
          tags: [gpu]
          timeout: 1h
          interruptible: true
        train:
          extends: [.gpu]
          variables: {B: "2"}
          script:
            - !reference [.setup, before_script]
            - mlci train
        """)
    assert result.findings == []
    from mlci.lint.resolve import load_pipeline

    pipeline = load_pipeline(repo.root / ".gitlab-ci.yml", root=repo.root)
    train = pipeline.jobs["train"]
    assert train["script"] == ["pip install mlci", "mlci train"]
    assert train["variables"] == {"A": "1", "B": "2"}
    assert train["tags"] == ["gpu"] and train["image"] == "python:3.12-slim" and train["retry"] == 1
    assert str(pipeline.job_where("train", ("tags",))) == ".gitlab-ci.yml:9:3"
    assert str(pipeline.job_where("train", ("image",))) == ".gitlab-ci.yml:2:10"


def test_broken_extends_and_references_are_findings(repo):
    result = repo.lint("""\
        a:
          extends: .missing
          image: python:3.12-slim
          script: [!reference [.nowhere, script]]
        b:
          extends: c
          image: python:3.12-slim
          script: [x]
        c:
          extends: b
          image: python:3.12-slim
          script: [x]
        """)
    messages = [f.message for f in found(result, "extends")]
    assert "job 'a' extends '.missing', which does not exist" in messages
    assert "!reference ['.nowhere', 'script'] points at nothing" in messages
    assert any(m.startswith("circular extends: b -> c -> b") for m in messages)


def test_schema_errors_point_at_the_file_and_line_that_holds_them(repo):
    repo.write("ci/t.yml", "job:\n  image: python:3.12-slim\n  script: [x]\n  when: sometimes\n")
    result = repo.lint("include: [ci/t.yml]\nother:\n  script: [x]\n  image: python:3.12-slim\n  timeout: 5\n")
    schema = {(f.file, f.line): f.message for f in found(result, "schema")}
    assert schema[("ci/t.yml", 4)].startswith("job.when: \"sometimes\" is not one of")
    assert schema[(".gitlab-ci.yml", 5)] == "other.timeout: expected string, got 5"


def test_a_job_without_script_or_trigger_is_an_error(repo):
    result = repo.lint("lonely:\n  image: python:3.12-slim\n  stage: test\n")
    messages = [f.message for f in found(result, "job-script-missing")]
    assert messages == ["job 'lonely' has no script, run or trigger (after extends)"]


def test_duplicate_keys_are_warned_about(repo):
    result = repo.lint("job:\n  image: python:3.12-slim\n  script: [a]\n  script: [b]\n")
    [finding] = found(result, "duplicate-key")
    assert finding.line == 4 and finding.severity == "warning"


@pytest.mark.parametrize(("text", "where"), [
    ("job: [unclosed\n", ".gitlab-ci.yml:2:1"),
    ("spec: {inputs: {}}\n---\na: 1\n---\nb: 2\n", ".gitlab-ci.yml:5:1"),
    ("job: !!python/object:os.system {}\n", ".gitlab-ci.yml:1:6"),
])
def test_unparseable_main_file_raises_a_located_config_error(repo, text, where):
    with pytest.raises(ConfigError) as caught:
        repo.lint(text)
    assert caught.value.location == where


def test_a_location_is_the_deepest_marked_node_on_the_path():
    """One lookup serves a document, the merged pipeline and each expanded job."""
    from mlci.lint.source import Location, deepest_mark

    marks = {("job",): Location("a.yml", 3), ("job", "script"): Location("a.yml", 5),
             (): Location("a.yml", 1)}
    assert deepest_mark(marks, ("job", "script", 0)) == Location("a.yml", 5)
    assert deepest_mark(marks, ("job", "tags", 1)) == Location("a.yml", 3)
    assert deepest_mark(marks, ("other",)) is None, "the root mark is each caller's own fallback"
