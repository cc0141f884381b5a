"""The child pipeline YAML: valid for GitLab in both branches, and injection-safe."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlci.retrain.child_pipeline import (
    CONCLUDE_JOB,
    GATE_JOB,
    REPORT_JOB,
    SKIPPED_JOB,
    TRAIN_JOB,
    ChildPipelineSpec,
    build_child_pipeline,
    render_child_pipeline,
)
from mlci.retrain.decision import Decision

RETRAIN = Decision(True, ["data drift detected against the champion's reference data"])
SKIP = Decision(False, ["no data drift", "the champion is 3d old, within max-model-age 30d"])

SPEC = ChildPipelineSpec(
    image="registry.example.com/ml/train:cuda12",
    train_tags=("gpu", "a100"),
    train_timeout="3h",
    train_command="python train.py --epochs 3",
    light_image="python:3.11-slim",
    setup_script=("pip install mlci",),
    variables={"MLCI_CONFIG": "mlci.yml", "MLFLOW_TRACKING_URI": "https://mlflow.example.com"},
    parent_pipeline_id="4242",
    data_job="mlci-retrain-fetch-data",
)

ADVERSARIAL = [
    "line one\nline two: {x: 1}\n- item",
    "${CI_JOB_TOKEN} and $MLCI_GITLAB_TOKEN",
    "$[[ inputs.image ]]",
    "&anchor value",
    "*alias",
    "!!python/object/apply:os.system ['id']",
    "'single' \"double\" `backtick`",
    "key: value # not a comment",
    "--- \n...",
    "%YAML 1.1",
]


@functools.cache
def gitlab_ci_schema() -> dict:
    import check_jsonschema

    path = Path(check_jsonschema.__file__).parent / "builtin_schemas" / "vendor" / "gitlab-ci.json"
    return json.loads(path.read_text(encoding="utf-8"))


def assert_valid_gitlab_ci(text: str) -> dict:
    from jsonschema import Draft7Validator

    data = yaml.safe_load(text)
    errors = sorted(Draft7Validator(gitlab_ci_schema()).iter_errors(data), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)
    return data


def test_retrain_branch_is_valid_gitlab_ci_with_train_gate_conclude():
    data = assert_valid_gitlab_ci(render_child_pipeline(RETRAIN, SPEC))
    jobs = {k for k, v in data.items() if isinstance(v, dict) and "script" in v}
    assert jobs == {TRAIN_JOB, GATE_JOB, CONCLUDE_JOB}
    train = data[TRAIN_JOB]
    assert train["image"] == SPEC.image
    assert train["tags"] == ["gpu", "a100"]
    assert train["timeout"] == "3h"
    assert train["interruptible"] is True
    assert train["retry"]["max"] == 2
    assert "script_failure" not in train["retry"]["when"]  # a crashed run must not burn GPU hours twice
    assert train["script"] == ["mlci train"]  # the command runs inside mlci train, never in the job shell
    assert data["variables"]["MLCI_TRAIN_COMMAND"] == {"value": "python train.py --epochs 3", "expand": False}
    assert train["needs"] == [{"pipeline": "4242", "job": "mlci-retrain-fetch-data", "artifacts": True}]
    assert train["artifacts"]["reports"]["dotenv"] == "mlci-out/train.env"

    gate = data[GATE_JOB]
    assert gate["needs"] == [TRAIN_JOB]
    assert "tags" not in gate and gate["image"] == "python:3.11-slim"  # no GPU runner for the light jobs
    assert gate["artifacts"]["reports"] == {
        "junit": "mlci-out/gate.junit.xml", "metrics": "mlci-out/gate.metrics.txt", "dotenv": "mlci-out/gate.env"}
    # A failed gate (exit 1) must still hand its verdict to conclude, which records "blocked".
    assert gate["allow_failure"] == {"exit_codes": [1]}
    assert gate["artifacts"]["when"] == "always"

    conclude = data[CONCLUDE_JOB]
    assert conclude["needs"] == [GATE_JOB]
    assert conclude["script"] == ["mlci retrain conclude"]
    for job in jobs:
        assert data[job]["before_script"] == ["pip install mlci"]
    assert data["variables"]["MLCI_RETRAIN"] == {"value": "true", "expand": False}


def test_skip_branch_is_valid_gitlab_ci_with_one_light_job():
    data = assert_valid_gitlab_ci(render_child_pipeline(SKIP, SPEC))
    jobs = [k for k, v in data.items() if isinstance(v, dict) and "script" in v]
    assert jobs == [SKIPPED_JOB]
    job = data[SKIPPED_JOB]
    assert job["script"] == ["mlci retrain conclude --skipped"]
    assert job["image"] == "python:3.11-slim" and "tags" not in job and "timeout" not in job
    reason = data["variables"]["MLCI_RETRAIN_REASON"]
    assert reason == {"value": SKIP.summary, "expand": False}


def test_merge_request_mode_adds_a_soft_report_job():
    data = assert_valid_gitlab_ci(render_child_pipeline(RETRAIN, ChildPipelineSpec(with_report=True)))
    assert data[REPORT_JOB]["allow_failure"] is True
    assert {"job": REPORT_JOB, "artifacts": True} in data[CONCLUDE_JOB]["needs"]


def test_minimal_spec_runs_in_shell_mode_without_image_or_data_job():
    data = assert_valid_gitlab_ci(render_child_pipeline(RETRAIN, ChildPipelineSpec()))
    assert "image" not in data[TRAIN_JOB] and "timeout" not in data[TRAIN_JOB]
    assert data[TRAIN_JOB]["script"] == ["mlci train"]
    assert data[TRAIN_JOB]["needs"] == []  # no parent pipeline id: nothing to download


@pytest.mark.parametrize("value", ADVERSARIAL)
def test_adversarial_values_stay_single_scalars(value):
    spec = ChildPipelineSpec(
        image=value,
        train_tags=(value,),
        light_image=value,
        train_command=value,
        variables={"MLCI_CONFIG": value, "MLFLOW_TRACKING_URI": value},
        parent_pipeline_id=value,
        data_job=value,
        setup_script=(value,),
        out_dir="mlci-out",
    )
    decision = Decision(True, [value, "second reason"])
    text = render_child_pipeline(decision, spec)
    data = yaml.safe_load(text)
    # Structure unchanged and every value round-trips exactly.
    assert data == build_child_pipeline(decision, spec)
    assert set(data) == {"variables", "stages", TRAIN_JOB, GATE_JOB, CONCLUDE_JOB}
    assert data[TRAIN_JOB]["image"] == value
    assert data[TRAIN_JOB]["tags"] == [value]
    assert data["variables"]["MLCI_RETRAIN_REASON"]["value"] == f"{value}; second reason"
    # GitLab must not expand $VARS smuggled into our variables.
    assert all(v["expand"] is False for v in data["variables"].values())
    assert_valid_gitlab_ci(text)


def test_yaml_special_reason_survives_in_the_skip_branch():
    nasty = "no drift\n\"quoted\": {a: [1, 2]}\n!!binary AAAA"
    data = assert_valid_gitlab_ci(render_child_pipeline(Decision(False, [nasty]), ChildPipelineSpec()))
    assert data["variables"]["MLCI_RETRAIN_REASON"]["value"] == nasty
    assert [k for k in data if k != "variables"] == [SKIPPED_JOB]


@pytest.mark.parametrize("decision", [RETRAIN, SKIP], ids=["retrain", "skip"])
def test_check_jsonschema_accepts_the_file(tmp_path, decision):
    """The same check a user runs: check-jsonschema's vendored GitLab CI schema, offline."""
    path = tmp_path / "retrain-pipeline.yml"
    path.write_text(render_child_pipeline(decision, SPEC), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.gitlab-ci", str(path)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_itself_can_fail():
    """Guard against a validator that accepts anything."""
    bad = render_child_pipeline(RETRAIN, SPEC).replace("allow_failure:\n    exit_codes:", "allow_failure:\n    codes:")
    with pytest.raises(AssertionError):
        assert_valid_gitlab_ci(bad)
