"""Glue shared by `mlci deploy` and `mlci rollback`: config -> registry, runtime, artifacts."""

from __future__ import annotations

from typing import Any

from mlci.adapters.ci_env import CiEnv, read_ci_env
from mlci.deploy.flow import TargetRuntime
from mlci.errors import ConfigError


def model_name(config) -> str:
    name = config.get("model", "name")
    if not name:
        raise ConfigError(
            "model.name is not set (and there is no project.name or CI_PROJECT_NAME to derive it from)",
            location=config.where(("model",)),
            hint="set model.name in mlci.yml to the registered model's name",
        )
    return name


def ci_annotations(ci: CiEnv) -> dict[str, str]:
    """Links from deployed Kubernetes objects back to the pipeline that deployed them."""
    values = {
        "mlci/pipeline-url": ci.pipeline_url,
        "mlci/job-url": ci.job_url,
        "mlci/commit": ci.commit_sha,
        "mlci/deployed-by": ci.user_login,
    }
    return {key: value for key, value in values.items() if value}


def runtime(ctx, config, ci: CiEnv) -> TargetRuntime:
    return TargetRuntime(
        tracking_uri=config.get("mlflow", "tracking-uri"),
        registry_uri=config.get("mlflow", "registry-uri"),
        out_dir=ctx.out_dir,
        base_env=ctx.env,
        annotations=ci_annotations(ci),
        log=lambda line: ctx.info(f"  | {line}"),
        warn=ctx.warn,
    )


def registry_for(config, ci: CiEnv):
    from mlci.adapters.mlflow import Registry

    return Registry.from_config(config, ci=ci)


def ci_env(ctx) -> CiEnv:
    return read_ci_env(ctx.env)


def refused_log(action: str, model: str, environment: str, message: str, ci: CiEnv) -> dict[str, Any]:
    """The log artifact of a refused request: nothing ran and nothing moved."""
    return {
        "action": action,
        "status": "refused",
        "model": model,
        "environment": environment,
        "who": ci.user_login,
        "pipeline": ci.pipeline_id,
        "job": ci.job_id,
        "commit": ci.commit_sha,
        "error": message,
    }
