"""train.env / train.json / train-select.json payloads (pure; written by the commands)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from mlci.train.fingerprint import DataFile
from mlci.train.select import Candidate, Selection


def model_uri(run_id: str, artifact_path: str) -> str:
    return f"runs:/{run_id}/{artifact_path.strip('/')}"


def dotenv_values(*, run_id: str, experiment_id: str, artifact_path: str, cache_hit: bool) -> dict[str, object]:
    """The variables later jobs get through `artifacts:reports:dotenv` (same for train and train-select)."""
    return {
        "MLCI_RUN_ID": run_id,
        "MLCI_MODEL_URI": model_uri(run_id, artifact_path),
        "MLCI_EXPERIMENT_ID": experiment_id,
        "MLCI_CACHE_HIT": cache_hit,
    }


def train_summary(
    *,
    run_id: str,
    experiment_id: str,
    experiment: str,
    tracking_uri: str,
    status: str,
    exit_code: int,
    duration_seconds: float,
    fingerprint: str,
    cache_hit: bool,
    artifact_path: str,
    command: str,
    params: Mapping[str, object],
    data: Sequence[DataFile],
    telemetry: Mapping[str, Any] | None,
    killed_reason: str | None = None,
    reused_from: Mapping[str, str] | None = None,
    warnings: Sequence[str] = (),
    step_seconds: float | None = None,
    metrics: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """train.json. `duration_seconds` is the training command's own run time (also the run's
    `mlci.duration_seconds` tag and what `mlci train` prints); `step_seconds` is the whole `mlci train`
    step of this job (fingerprint, MLflow run, telemetry, uploads; zero training on a cache hit)."""
    return {
        "run_id": run_id,
        "experiment_id": experiment_id,
        "experiment": experiment,
        "tracking_uri": tracking_uri,
        "model_uri": model_uri(run_id, artifact_path),
        "status": status,
        "exit_code": exit_code,
        "killed_reason": killed_reason,
        "duration_seconds": round(duration_seconds, 3),
        "step_seconds": round(step_seconds, 3) if step_seconds is not None else None,
        "fingerprint": fingerprint,
        "cache_hit": cache_hit,
        "reused_from": dict(reused_from) if reused_from else None,
        "command": command,
        "params": dict(params),
        "data": [asdict(f) for f in data],
        "telemetry": dict(telemetry) if telemetry else None,
        "warnings": list(warnings),
        "metrics": dict(metrics) if metrics is not None else None,
    }


def final_metrics_table(metrics: Mapping[str, float], *, limit: int = 25) -> list[str]:
    """The run's final metrics as aligned lines for the job log (telemetry's system/* left out)."""
    shown = sorted((name, value) for name, value in metrics.items() if not name.startswith("system/"))
    if not shown:
        return ["  (the training command logged no metrics)"]
    width = max(len("metric"), *(len(name) for name, _ in shown[:limit]))
    lines = [f"  {'metric':<{width}}  value"]
    lines += [f"  {name:<{width}}  {value:.6g}" for name, value in shown[:limit]]
    if len(shown) > limit:
        lines.append(f"  ... {len(shown) - limit} more in train.json")
    return lines


def where_to_see(*, tracking_uri: str, ui_url: str, experiment_id: str, run_id: str) -> str:
    """Where a person opens the run: an MLflow UI link, GitLab's page, or the command for a local store."""
    if ui_url:
        return f"{ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
    if "/api/v4/projects/" in tracking_uri:
        return "GitLab: the project's Analyze > Model experiments page (run " + run_id + ")"
    if tracking_uri.startswith("sqlite:"):
        return f"mlflow ui --backend-store-uri {tracking_uri}  (experiment {experiment_id}, run {run_id})"
    return f"{tracking_uri} (experiment {experiment_id}, run {run_id})"


def _json_tag(tags: Mapping[str, str], key: str) -> Any:
    try:
        return json.loads(tags[key]) if tags.get(key) else None
    except ValueError:  # cut at the tag's size limit, or not mlci's
        return None


def _number_tag(tags: Mapping[str, str], key: str, convert: type) -> Any:
    try:
        return convert(tags[key]) if tags.get(key) else None
    except ValueError:
        return None


def run_train_summary(
    *,
    run_id: str,
    experiment_id: str,
    experiment: str,
    tracking_uri: str,
    status: str,
    start_time_ms: int | None,
    end_time_ms: int | None,
    tags: Mapping[str, str],
    params: Mapping[str, str],
    artifact_path: str,
    cache_hit: bool,
    run_name: str = "",
) -> dict[str, Any]:
    """train.json for an existing run (train-select's choice), rebuilt from what `mlci train` tagged it with."""
    duration = _number_tag(tags, "mlci.duration_seconds", float)
    if duration is None:
        duration = max(0, (end_time_ms or 0) - (start_time_ms or 0)) / 1000 if end_time_ms and start_time_ms else 0.0
    exit_code = _number_tag(tags, "mlci.exit_code", int)
    data = _json_tag(tags, "mlci.data")
    files = [
        DataFile(path=str(f.get("path", "")), sha256=str(f.get("sha256", "")), size_bytes=int(f.get("size_bytes") or 0),
                 rows=f.get("rows"))
        for f in (data if isinstance(data, list) else []) if isinstance(f, Mapping)
    ]
    telemetry = _json_tag(tags, "mlci.telemetry")
    reused_from = None
    if cache_hit:
        reused_from = {
            key: tags[f"mlci.gitlab.{key}"] for key in ("pipeline_id", "pipeline_url", "job_url", "commit")
            if tags.get(f"mlci.gitlab.{key}")
        } | {"run_name": run_name}
    return train_summary(
        run_id=run_id, experiment_id=experiment_id, experiment=experiment, tracking_uri=tracking_uri,
        status=status, exit_code=exit_code if exit_code is not None else (0 if status == "FINISHED" else 1),
        duration_seconds=duration, fingerprint=tags.get("mlci.fingerprint", ""), cache_hit=cache_hit,
        artifact_path=artifact_path, command=tags.get("mlci.command", ""), params=params, data=files,
        telemetry=telemetry if isinstance(telemetry, Mapping) else None,
        killed_reason=tags.get("mlci.killed_reason") or None, reused_from=reused_from,
    )


def _candidate_json(candidate: Candidate, rank: int | None) -> dict[str, Any]:
    return {
        "rank": rank,
        "run_id": candidate.run_id,
        "run_name": candidate.run_name,
        "metric": candidate.metric,
        "params": dict(candidate.params),
        "job_url": candidate.job_url,
        "reused": candidate.reused,
    }


def select_summary(*, metric: str, goal: str, pipeline_id: str, experiment: str, selection: Selection,
                   artifact_path: str) -> dict[str, Any]:
    best = selection.best
    return {
        "metric": metric,
        "goal": goal,
        "pipeline_id": pipeline_id,
        "experiment": experiment,
        "selected": _candidate_json(best, 1) | {"model_uri": model_uri(best.run_id, artifact_path)} if best else None,
        "candidates": [_candidate_json(c, i) for i, c in enumerate(selection.ranked, 1)]
        + [_candidate_json(c, None) for c in selection.ineligible],
    }
