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


def refuse_after_failed_gate(out_dir, model: str) -> None:
    """Exit 1 when the last gate in out_dir failed for this model and no version was asked for.

    Without a version, deploy takes the holder of the previous marker (the last model that passed),
    so deploying right after a failed gate would quietly ship an older model than the one just gated.
    """
    import json
    from pathlib import Path

    from mlci.deploy.promotion import PromotionRefused

    path = Path(out_dir) / "gate.json"
    try:
        gate = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if not isinstance(gate, dict) or gate.get("status") != "failed":
        return
    if gate.get("model") not in (None, "", model):
        return  # another model's gate
    run = (gate.get("candidate") or {}).get("run_id") if isinstance(gate.get("candidate"), dict) else None
    rules = [str(v.get("rule")) for v in gate.get("verdicts") or []
             if isinstance(v, dict) and v.get("status") == "failed" and v.get("blocking", True)]
    raise PromotionRefused(
        f"refusing to deploy: the last gate in {path} failed for model '{model}'"
        + (f" (run {run})" if run else "") + (f": {', '.join(rules[:3])}" if rules else "")
        + "; deploying now would ship an older version than the one just gated",
        hint="fix the model and run `mlci train && mlci gate` again, or pass --version N to deploy an earlier "
             "version on purpose",
    )
