"""The `train:` config section (plus the bits of `mlflow:` and `model:` it needs) as one value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TRACKING_URI = "sqlite:///.mlci/mlflow.db"
# Not MLflow's "Default": that experiment keeps artifacts in ./mlruns of
# whoever created the store; ours keep them next to a local store.
DEFAULT_EXPERIMENT = "mlci"
# Time kept back from CI_JOB_TIMEOUT so that, after a runaway command is
# stopped, mlci still has time to mark the run and GitLab to upload artifacts.
MIN_TIMEOUT_MARGIN_SECONDS = 60
TIMEOUT_MARGIN_FRACTION = 0.05


@dataclass(frozen=True)
class TrainSettings:
    command: list[str] | str | None
    params: dict[str, Any]
    matrix_variables: list[str]
    code_paths: list[str]
    data: list[str]
    image: str
    max_runtime: float | None
    max_runtime_origin: str
    kill_grace: float
    telemetry_interval: float
    idle_threshold_percent: float
    idle_minutes: float
    idle_action: str
    cache: bool
    cache_exclude: list[str]
    cache_env_ignore: list[str]
    log_data_artifacts: bool
    data_artifacts_max_bytes: int
    artifact_path: str
    tracking_uri: str
    registry_uri: str | None
    experiment: str
    select_metric: str | None = None
    select_goal: str | None = None
    metrics_direction: dict[str, str] = field(default_factory=dict)

    def guard_policy(self, max_runtime: float | None):
        """The supervisor's runaway and idle-GPU guard for one run, stopping after `max_runtime` seconds."""
        from mlci.train.supervisor import GuardPolicy

        return GuardPolicy(
            max_runtime=max_runtime,
            kill_grace=self.kill_grace,
            idle_threshold_percent=self.idle_threshold_percent,
            idle_window_seconds=self.idle_minutes * 60,
            idle_action=self.idle_action,
        )


def runtime_guard(configured: float | None, ci_job_timeout: str | None) -> tuple[float | None, str]:
    """(seconds, where it came from). Without a setting, stop before GitLab's own job timeout.

    GitLab kills the whole job at its timeout, so the MLflow run would stay
    RUNNING and the log would be cut; stopping first keeps both.
    """
    if configured:
        return float(configured), "train.max-runtime / --max-runtime"
    try:
        timeout = float(ci_job_timeout or "")
    except ValueError:
        return None, "no limit"
    if timeout <= 0:
        return None, "no limit"
    margin = max(MIN_TIMEOUT_MARGIN_SECONDS, TIMEOUT_MARGIN_FRACTION * timeout)
    if margin >= timeout / 2:  # a very short job: keep most of it for training
        margin = timeout / 10
    return timeout - margin, f"CI_JOB_TIMEOUT={timeout:g}s minus {margin:g}s for logs and artifacts"


def _names(value: list[str] | str | None) -> list[str]:
    """A list of variable names, or the same as one comma-separated string (how an env variable carries it)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return list(value or [])


def experiment_name(flag: str | None, config) -> str:
    """--experiment, mlflow.experiment (defaults to CI_PROJECT_PATH), project.name, then 'mlci'."""
    return (flag or config.get("mlflow", "experiment") or config.get("project", "name") or DEFAULT_EXPERIMENT)


def load_settings(config, env: Mapping[str, str], *, experiment_flag: str | None = None,
                  max_runtime_flag: float | None = None) -> TrainSettings:
    train = config.section("train")
    idle = train.get("idle-gpu", {})
    select = train.get("select", {})
    max_runtime, origin = runtime_guard(max_runtime_flag or train.get("max-runtime"), env.get("CI_JOB_TIMEOUT"))
    return TrainSettings(
        command=train.get("command"),
        params=dict(train.get("params") or {}),
        matrix_variables=_names(train.get("matrix-variables")),
        code_paths=list(train.get("code-paths") or ["."]),
        data=list(train.get("data") or []),
        image=train.get("image") or env.get("CI_JOB_IMAGE", ""),
        max_runtime=max_runtime,
        max_runtime_origin=origin,
        kill_grace=float(train.get("kill-grace-seconds", 10)),
        telemetry_interval=float(train.get("telemetry-interval", 15)),
        idle_threshold_percent=float(idle.get("threshold-percent", 5)),
        idle_minutes=float(idle.get("minutes", 30)),
        idle_action=idle.get("action", "warn"),
        cache=bool(train.get("cache", True)),
        cache_exclude=list(train.get("cache-exclude") or []),
        cache_env_ignore=list(train.get("cache-env-ignore") or []),
        log_data_artifacts=bool(train.get("log-data-artifacts", True)),
        data_artifacts_max_bytes=int(float(train.get("data-artifacts-max-mb", 100)) * 1024 * 1024),
        artifact_path=config.get("model", "artifact-path") or "model",
        tracking_uri=config.get("mlflow", "tracking-uri") or DEFAULT_TRACKING_URI,
        registry_uri=config.get("mlflow", "registry-uri"),
        experiment=experiment_name(experiment_flag, config),
        select_metric=select.get("metric"),
        select_goal=select.get("goal"),
        metrics_direction=dict(config.get("model", "metrics-direction") or {}),
    )
