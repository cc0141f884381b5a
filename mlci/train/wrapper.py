"""One full, tracked training run: open the MLflow run, supervise the command, close the run.

The run is opened before the command starts and is always closed, with
FINISHED, FAILED or KILLED, whatever happens to the command; only a SIGKILL
of mlci itself can leave it RUNNING.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlci.errors import ExternalServiceError
from mlci.redact import Redactor
from mlci.train.fingerprint import DataFile
from mlci.train.lineage import child_environment, param_strings
from mlci.train.supervisor import GuardPolicy, Outcome, Supervisor
from mlci.train.telemetry import SystemSampler, gpu_tag, open_nvml, sample_metrics, summarize

# Telemetry is buffered and written in batches: fewer round trips, and less
# lock contention with the command's own writes to a sqlite store.
METRIC_FLUSH_SECONDS = 30.0
LOG_ARTIFACT_MAX_BYTES = 50 * 1024 * 1024


@dataclass
class TrainRequest:
    command: Sequence[str] | str
    experiment: str
    run_name: str | None
    tags: Mapping[str, str]
    params: Mapping[str, object]
    data: Sequence[tuple[Path, DataFile]]
    base_env: Mapping[str, str]
    policy: GuardPolicy
    telemetry_interval: float
    log_data_artifacts: bool = True
    data_artifacts_max_bytes: int = 100 * 1024 * 1024
    registry_uri: str | None = None
    cwd: str | None = None
    # Polled while the command runs; a returned reason stops it (see Supervisor.watch).
    watch: Callable[[], str | None] | None = None


@dataclass
class TrainResult:
    run_id: str
    experiment_id: str
    outcome: Outcome
    telemetry: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


class _MetricBuffer:
    def __init__(self, tracking, run_id: str, warn: Callable[[str], None]):
        self.tracking, self.run_id, self.warn = tracking, run_id, warn
        self.rows: list[tuple[str, float, int, int]] = []
        self.samples: list = []
        self.last_flush = time.monotonic()
        self.warned = False

    def add(self, sample) -> None:
        step = len(self.samples)
        self.samples.append(sample)
        self.rows.extend((key, value, sample.timestamp_ms, step) for key, value in sample_metrics(sample).items())
        if time.monotonic() - self.last_flush >= METRIC_FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        self.last_flush = time.monotonic()
        if not self.rows:
            return
        try:
            self.tracking.log_metrics(self.run_id, self.rows)
            self.rows = []
        except Exception as exc:  # kept for the next flush; telemetry never stops training
            if not self.warned:
                self.warn(f"could not log telemetry yet ({exc}); will retry")
                self.warned = True


def _data_artifact_dir(described: DataFile) -> str:
    parent = Path(described.path).parent.as_posix()
    if Path(described.path).is_absolute():
        return "mlci-data/external"
    return "mlci-data" if parent in ("", ".") else f"mlci-data/{parent}"


def _log_data_artifacts(tracking, run_id: str, request: TrainRequest, warn) -> str:
    """Logs data files under mlci-data/ up to the size cap; returns complete|partial|none|failed."""
    if not request.data:
        return "none"
    budget = request.data_artifacts_max_bytes
    logged = 0
    skipped = []
    local = [(path, described) for path, described in request.data if isinstance(path, Path)]
    if not local:
        return "none"  # object-store data and table versions stay where they live; lineage names them
    for path, described in local:
        if described.size_bytes > budget:
            skipped.append(described.path)
            continue
        try:
            tracking.log_artifact(run_id, path, _data_artifact_dir(described))
        except Exception as exc:
            warn(f"could not log data files as artifacts ({exc}); the drift check will have no reference snapshot")
            return "failed"
        budget -= described.size_bytes
        logged += 1
    if skipped:
        cap_mb = request.data_artifacts_max_bytes / 1024 / 1024
        warn(f"data artifacts capped at {cap_mb:g} MB (train.data-artifacts-max-mb); not logged: {', '.join(skipped)}")
    return "complete" if not skipped else ("partial" if logged else "none")


def run_tracked(
    request: TrainRequest,
    tracking,
    *,
    child_tracking_uri: str,
    output: Callable[[bytes], None],
    info: Callable[[str], None],
    warn: Callable[[str], None],
    nvml: Any = None,
) -> TrainResult:
    experiment_id = tracking.experiment_id(request.experiment)
    probe, gpu_reason = open_nvml(nvml)
    if probe is None:
        info(f"no GPU telemetry: {gpu_reason}; the run is tagged mlci.gpu=none")
    else:
        info(f"GPU telemetry: {gpu_tag(probe.devices)}")
    tags = {**request.tags, "mlci.gpu": gpu_tag(probe.devices if probe else [])}
    warnings: list[str] = []

    def note(text: str) -> None:
        warnings.append(text)
        warn(text)

    metrics: _MetricBuffer | None = None
    started = time.monotonic()
    sampler = SystemSampler(probe, started)
    supervisor = Supervisor(
        request.command, cwd=request.cwd, policy=request.policy, output=output, sampler=sampler,
        sample_interval=request.telemetry_interval, on_sample=lambda sample: metrics.add(sample), on_notice=info,
        on_warning=warn, watch=request.watch,
    )
    # From the moment the run exists, a cancel (SIGTERM) must end in a KILLED run, not a RUNNING one.
    with supervisor.handling_signals():
        run_id = tracking.start_run(experiment_id, run_name=request.run_name, tags=tags)
        info(f"MLflow run {run_id} in experiment {request.experiment!r} (id {experiment_id})")
        status = "FAILED"
        try:
            if request.params:
                tracking.log_params(run_id, param_strings(request.params))
            if request.data:
                try:
                    tracking.log_datasets(run_id, request.data)
                except ExternalServiceError as exc:  # GitLab's MLflow endpoint has no dataset inputs
                    note(f"could not log dataset inputs ({exc.message}); the mlci.data tags still record them")
            data_artifacts = (_log_data_artifacts(tracking, run_id, request, note)
                              if request.log_data_artifacts else "off")
            supervisor.env = child_environment(
                request.base_env, run_id=run_id, experiment_id=experiment_id, tracking_uri=child_tracking_uri,
                params=request.params, registry_uri=request.registry_uri,
            )
            metrics = _MetricBuffer(tracking, run_id, note)
            with tempfile.TemporaryDirectory(prefix="mlci-train-") as scratch:
                log_path = Path(scratch) / "train.log"
                with open(log_path, "wb") as log:
                    supervisor.log = log
                    outcome = supervisor.run()
                metrics.flush()
                if sampler.gpu_error:
                    note(sampler.gpu_error)
                _log_output(tracking, run_id, log_path, request.base_env, note)
            telemetry = summarize(metrics.samples, probe.devices if probe else [],
                                  interval=request.telemetry_interval, gpu_unavailable_reason=gpu_reason)
            final_tags = {
                "mlci.exit_code": str(outcome.exit_code),
                "mlci.duration_seconds": f"{outcome.duration_seconds:.3f}",
                "mlci.telemetry": json.dumps(telemetry, separators=(",", ":"))[:8000],
                "mlci.data_artifacts": data_artifacts,
            }
            if outcome.killed_reason:
                final_tags["mlci.killed_reason"] = outcome.killed_reason
            if outcome.idle_warnings:
                final_tags["mlci.idle_gpu_warning"] = outcome.idle_warnings[-1]
            tracking.set_tags(run_id, final_tags)
            status = outcome.status
        finally:
            if probe is not None:
                probe.close()
            # Always close the run; on an mlci error it is FAILED, never left RUNNING.
            try:
                tracking.terminate(run_id, status)
            except Exception as exc:
                if status != "FAILED":
                    raise
                warn(f"could not mark run {run_id} FAILED: {exc}")
    warnings.extend(outcome.idle_warnings)
    return TrainResult(run_id=run_id, experiment_id=experiment_id, outcome=outcome, telemetry=telemetry,
                       warnings=warnings)


def _log_output(tracking, run_id: str, log_path: Path, env: Mapping[str, str], note) -> None:
    """The command's output as mlci-logs/train.log, tokens masked like everything mlci writes."""
    size = log_path.stat().st_size
    if size == 0:
        return
    if size > LOG_ARTIFACT_MAX_BYTES:
        note(f"training output is {size / 1024 / 1024:.0f} MB; not logged as an artifact (the job log has it)")
        return
    text = log_path.read_text(encoding="utf-8", errors="replace")
    log_path.write_text(Redactor.from_env(env)(text), encoding="utf-8")
    try:
        tracking.log_artifact(run_id, log_path, "mlci-logs")
    except Exception as exc:
        note(f"could not log the training output as an artifact ({exc})")
