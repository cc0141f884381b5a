"""Build the ReportModel from plain inputs (pure: no MLflow, GitLab or file access)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlci.adapters.ci_env import CiEnv
from mlci.report import sections
from mlci.report.metrics import metric_rows
from mlci.report.model import Header, Link, ParamChange, ReportModel, RunRef

# Tags the train wrapper puts on a run; read here to describe where a run came from.
REF_TAG = "mlci.gitlab.ref"
COMMIT_TAGS = ("mlci.gitlab.commit", "mlflow.source.git.commit")


@dataclass(frozen=True)
class RunData:
    """What the report needs from one MLflow run."""

    run_id: str
    name: str = ""
    experiment_id: str = ""
    start_ms: int = 0
    metrics: Mapping[str, float] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return self.tags.get(REF_TAG, "")

    @property
    def commit(self) -> str:
        return next((self.tags[t] for t in COMMIT_TAGS if self.tags.get(t)), "")


@dataclass(frozen=True)
class ReportOptions:
    metrics: tuple[str, ...] = ("*",)
    exclude_metrics: tuple[str, ...] = ("system/*",)
    directions: Mapping[str, str] = field(default_factory=dict)
    mlflow_ui_url: str = ""  # base of run links; empty: runs are named by id only

    @classmethod
    def from_config(cls, config) -> ReportOptions:
        from mlci.redact import credential_free_url

        ui = config.get("report", "mlflow-ui-url") or ""
        tracking = config.get("mlflow", "tracking-uri") or ""
        if not ui and tracking.startswith(("http://", "https://")) and "/api/v4/projects/" not in tracking:
            # GitLab's built-in MLflow endpoint has no MLflow UI under the tracking URI.
            ui = tracking
        # Every project member reads these links: never a password or token in them.
        ui = credential_free_url(ui) if ui else ""
        return cls(
            metrics=tuple(config.get("report", "metrics", default=["*"])),
            exclude_metrics=tuple(config.get("report", "exclude-metrics", default=["system/*"])),
            directions=dict(config.get("model", "metrics-direction", default={}) or {}),
            mlflow_ui_url=ui,
        )


@dataclass(frozen=True)
class ReportInputs:
    model_name: str
    ci: CiEnv = field(default_factory=CiEnv)
    candidate: RunData | None = None
    champion: RunData | None = None
    champion_version: str = ""
    target: RunData | None = None
    model_version: str = ""  # version the gate registered, if any
    gate: Mapping[str, Any] | None = None
    data_check: Mapping[str, Any] | None = None
    drift: Mapping[str, Any] | None = None
    train: Mapping[str, Any] | None = None
    tune: Mapping[str, Any] | None = None
    optimize: Mapping[str, Any] | None = None


def run_url(ui_base: str, run: RunData) -> str:
    if not ui_base or not run.experiment_id:
        return ""
    return f"{ui_base.rstrip('/')}/#/experiments/{run.experiment_id}/runs/{run.run_id}"


def _run_ref(run: RunData | None, ui_base: str, version: str = "") -> RunRef | None:
    if run is None:
        return None
    return RunRef(
        run_id=run.run_id, url=run_url(ui_base, run), name=run.name, version=version, ref=run.ref, commit=run.commit
    )


def _commit_link(ci: CiEnv, candidate: RunData | None) -> Link | None:
    sha = ci.commit_sha or (candidate.commit if candidate else "")
    if not sha:
        return None
    url = f"{ci.project_url.rstrip('/')}/-/commit/{sha}" if ci.project_url else ""
    return Link(sha[:8], url)


def build_header(inputs: ReportInputs, options: ReportOptions) -> Header:
    ci = inputs.ci
    project = ci.project_url.rstrip("/")
    pipeline_url = ci.pipeline_url or (f"{project}/-/pipelines/{ci.pipeline_id}" if project else "")
    job_url = ci.job_url or (f"{project}/-/jobs/{ci.job_id}" if project else "")
    return Header(
        model_name=inputs.model_name,
        candidate=_run_ref(inputs.candidate, options.mlflow_ui_url),
        champion=_run_ref(inputs.champion, options.mlflow_ui_url, inputs.champion_version),
        target=_run_ref(inputs.target, options.mlflow_ui_url),
        target_branch=ci.mr_target_branch,
        source_branch=ci.mr_source_branch or ci.commit_ref,
        mr_iid=ci.mr_iid,
        pipeline=Link(f"#{ci.pipeline_id}", pipeline_url) if ci.pipeline_id else None,
        job=Link(f"#{ci.job_id}", job_url) if ci.job_id else None,
        commit=_commit_link(ci, inputs.candidate),
        model_version=inputs.model_version,
    )


def params_diff(
    candidate: Mapping[str, str], champion: Mapping[str, str] | None, target: Mapping[str, str] | None
) -> list[ParamChange]:
    """Params whose value differs from at least one baseline that exists; unchanged ones are left out."""
    baselines = [b for b in (champion, target) if b is not None]
    if not baselines:
        return []
    names = set(candidate).union(*baselines)
    changes = []
    for name in sorted(names):
        value = candidate.get(name)
        if any(b.get(name) != value for b in baselines):
            changes.append(
                ParamChange(
                    name,
                    value,
                    champion.get(name) if champion is not None else None,
                    target.get(name) if target is not None else None,
                )
            )
    return changes


def build_report(inputs: ReportInputs, options: ReportOptions | None = None) -> ReportModel:
    options = options or ReportOptions()
    model = ReportModel(header=build_header(inputs, options))
    cand, champ, tgt = inputs.candidate, inputs.champion, inputs.target
    if cand is not None:
        model.metrics = metric_rows(
            cand.metrics,
            champ.metrics if champ else None,
            tgt.metrics if tgt else None,
            directions=options.directions,
            include=options.metrics,
            exclude=options.exclude_metrics,
        )
        model.params = params_diff(cand.params, champ.params if champ else None, tgt.params if tgt else None)
    else:
        model.notes.append("No candidate run was found (no MLCI_RUN_ID), so there is no metrics table.")
    if champ is None:
        model.notes.append(
            "No champion in the registry yet: this candidate is compared with thresholds only "
            "(see the gate's cold-start policy)."
        )
    if tgt is None and inputs.ci.mr_target_branch:
        model.notes.append(f"No finished run on the target branch {inputs.ci.mr_target_branch} to compare with.")
    for section in (
        sections.gate_section(inputs.gate),
        sections.data_check_section(inputs.data_check),
        sections.drift_section(inputs.drift),
        sections.telemetry_section(inputs.train),
        sections.tune_section(inputs.tune),
        sections.optimize_section(inputs.optimize),
    ):
        if section is not None:
            model.sections.append(section)
    return model
