"""The dynamic child pipeline that `mlci retrain decide` writes (retrain-pipeline.yml).

The parent triggers it with `trigger: include: artifact`. When retraining, it
holds train -> gate -> conclude; otherwise a single light job that records
why nothing ran, so no GPU runner is ever claimed for nothing.

The YAML is built as Python data and emitted with yaml.safe_dump: a value
with newlines, quotes, `${...}`, anchors or tags stays one scalar. Values
GitLab would otherwise expand (`$VAR` inside `variables:`) are marked
`expand: false`. No value anyone typed is ever spliced into a script line:
the scripts are fixed text, and the values (the training command, the
install spec) reach the jobs as variables, so `; touch x`, `$(...)` or
backticks in them stay text. The training command runs inside `mlci train`
(its run, its timeout guard), read from MLCI_TRAIN_COMMAND.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from mlci.retrain.decision import Decision

TRAIN_JOB = "mlci-train"
GATE_JOB = "mlci-gate"
REPORT_JOB = "mlci-report"
CONCLUDE_JOB = "mlci-retrain-conclude"
SKIPPED_JOB = "mlci-retrain-skipped"

# Infrastructure failures only: a training run that timed out or crashed
# would burn the same GPU hours again on a retry.
TRAIN_RETRY_WHEN = ["runner_system_failure", "scheduler_failure", "api_failure"]


@dataclass(frozen=True)
class ChildPipelineSpec:
    """How the child jobs run; everything comes from flags or the decide job's environment."""

    image: str = ""                      # training image (must have mlci); empty -> runner default / shell
    train_tags: tuple[str, ...] = ()     # route mlci-train to GPU runners
    train_timeout: str = ""              # GitLab duration text, e.g. "3h"
    train_command: str = ""              # run by `mlci train` (as MLCI_TRAIN_COMMAND); empty -> train.* config
    light_image: str = ""                # image for gate/conclude/skipped; empty -> `image`
    light_tags: tuple[str, ...] = ()
    setup_script: tuple[str, ...] = ()   # before_script lines for every child job (mlci's install step)
    out_dir: str = "mlci-out"
    variables: dict[str, str] = field(default_factory=dict)  # pipeline-wide, never expanded by GitLab
    # pipeline-wide and expanded in each child job, e.g. an index URL holding ${CI_JOB_TOKEN}
    expanded_variables: dict[str, str] = field(default_factory=dict)
    parent_pipeline_id: str = ""
    data_job: str = ""                   # parent job whose artifacts (fresh data) mlci-train downloads
    train_retry_max: int = 2
    with_report: bool = False            # run `mlci report --dry-run` so the retrain MR gets report.md
    artifacts_expire_in: str = "30 days"


def _base_job(spec: ChildPipelineSpec, stage: str, *, image: str, tags: tuple[str, ...], extra: str) -> dict[str, Any]:
    job: dict[str, Any] = {"stage": stage}
    if image:
        job["image"] = image
    if tags:
        job["tags"] = list(tags)
    if spec.setup_script:
        job["before_script"] = list(spec.setup_script)
        # The install step installs the extra of the job's command, as the templates' jobs do.
        job["variables"] = {"MLCI_EXTRA": extra}
    return job


def _out(spec: ChildPipelineSpec, name: str) -> str:
    return f"{spec.out_dir.rstrip('/')}/{name}"


def _light(spec: ChildPipelineSpec, stage: str, extra: str) -> dict[str, Any]:
    return _base_job(spec, stage, image=spec.light_image or spec.image, tags=spec.light_tags, extra=extra)


def _variables(decision: Decision, spec: ChildPipelineSpec) -> dict[str, Any]:
    values = {
        **spec.variables,
        "MLCI_OUT_DIR": spec.out_dir,
        "MLCI_RETRAIN": "true" if decision.retrain else "false",
        "MLCI_RETRAIN_REASON": decision.summary,
    }
    if decision.retrain and spec.train_command.strip():
        values["MLCI_TRAIN_COMMAND"] = spec.train_command
    if spec.parent_pipeline_id:
        values["MLCI_PARENT_PIPELINE_ID"] = spec.parent_pipeline_id
    literal = {name: {"value": str(value), "expand": False} for name, value in values.items()}
    return {**literal, **{name: str(value) for name, value in spec.expanded_variables.items()}}


def build_child_pipeline(decision: Decision, spec: ChildPipelineSpec) -> dict[str, Any]:
    """The child pipeline as plain data, ready for yaml.safe_dump."""
    pipeline: dict[str, Any] = {"variables": _variables(decision, spec)}
    if not decision.retrain:
        pipeline[SKIPPED_JOB] = {
            **_light(spec, "test", "retrain"),
            "interruptible": True,
            "script": ["mlci retrain conclude --skipped"],
            "artifacts": {"when": "always", "paths": [_out(spec, "retrain-summary.json")]},
        }
        return pipeline

    pipeline["stages"] = ["train", "gate", "conclude"]
    train: dict[str, Any] = {
        **_base_job(spec, "train", image=spec.image, tags=spec.train_tags, extra="train"),
        "interruptible": True,
        "script": ["mlci train"],
        "artifacts": {
            "when": "always",
            "expire_in": spec.artifacts_expire_in,
            "paths": [_out(spec, "")],
            "reports": {"dotenv": _out(spec, "train.env")},
        },
    }
    if spec.train_timeout:
        train["timeout"] = spec.train_timeout
    if spec.train_retry_max:
        train["retry"] = {"max": spec.train_retry_max, "when": list(TRAIN_RETRY_WHEN)}
    if spec.data_job and spec.parent_pipeline_id:
        train["needs"] = [{"pipeline": spec.parent_pipeline_id, "job": spec.data_job, "artifacts": True}]
    else:
        train["needs"] = []
    pipeline[TRAIN_JOB] = train

    # Exit 1 (gate failed) is allowed so conclude still runs and records "blocked";
    # artifacts are kept on failure so the gate's dotenv verdict reaches conclude.
    pipeline[GATE_JOB] = {
        **_light(spec, "gate", "gate"),
        "needs": [TRAIN_JOB],
        "script": ["mlci gate"],
        "allow_failure": {"exit_codes": [1]},
        "artifacts": {
            "when": "always",
            "expire_in": spec.artifacts_expire_in,
            "paths": [_out(spec, "")],
            "reports": {
                "junit": _out(spec, "gate.junit.xml"),
                "metrics": _out(spec, "gate.metrics.txt"),
                "dotenv": _out(spec, "gate.env"),
            },
        },
    }
    conclude_needs: list[Any] = [GATE_JOB]
    if spec.with_report:
        pipeline[REPORT_JOB] = {
            **_light(spec, "gate", "report"),
            "needs": [GATE_JOB],
            "script": ["mlci report --dry-run"],
            "allow_failure": True,  # the MR then gets a generated summary instead
            "artifacts": {"expire_in": spec.artifacts_expire_in, "paths": [_out(spec, "report.md")]},
        }
        conclude_needs.append({"job": REPORT_JOB, "artifacts": True})
    pipeline[CONCLUDE_JOB] = {
        **_light(spec, "conclude", "retrain"),
        "needs": conclude_needs,
        "script": ["mlci retrain conclude"],
        "artifacts": {"when": "always", "paths": [_out(spec, "retrain-summary.json")]},
    }
    return pipeline


HEADER = (
    "# Generated by `mlci retrain decide`; triggered by the parent's mlci-retrain-run job.\n"
    "# Do not edit: it is rewritten on every scheduled pipeline.\n"
)


def render_child_pipeline(decision: Decision, spec: ChildPipelineSpec) -> str:
    data = build_child_pipeline(decision, spec)
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100000)
    return HEADER + body
