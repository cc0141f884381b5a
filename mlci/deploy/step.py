"""One deploy, as `mlci deploy --to ENV` does it: used by that command and by retraining's promote-staging.

The deploy flow itself (validation, target, marker moves, audit) is
mlci.deploy.flow; this step adds what a caller in a CI job needs around it:
the registry and runtime for this job, deploy-ENV.json and deploy-ENV.env in
the output directory (also when the deploy is refused or fails), and the
lines a person reads in the job log.
"""

from __future__ import annotations


def deploy_to(ctx, config, *, environment: str, version: str | None):
    """Deploy `version` (or the one the flow picks) to `environment`; the flow's Outcome.

    Raises PromotionRefused (exit 1), DeployFailed (exit 1) or the adapters' errors, after writing the log.
    """
    from mlci.deploy import wiring
    from mlci.deploy.flow import DeployFailed, deploy
    from mlci.deploy.promotion import PromotionRefused
    from mlci.deploy.settings import load_settings
    from mlci.outputs import write_json
    from mlci.outputs.dotenv import write_dotenv

    settings = load_settings(config)
    model = wiring.model_name(config)
    ci = wiring.ci_env(ctx)
    log_path = ctx.out_path(f"deploy-{environment}.json")
    registry = wiring.registry_for(config, ci)
    try:
        outcome = deploy(
            registry, settings, model=model, to=environment, version_flag=version,
            version_env=ctx.env.get("MLCI_MODEL_VERSION"), runtime=wiring.runtime(ctx, config, ci),
        )
    except PromotionRefused as exc:
        write_json(log_path, wiring.refused_log("deploy", model, environment, exc.message, ci))
        raise
    except DeployFailed as exc:
        write_json(log_path, exc.outcome.to_json())
        kept = exc.outcome.from_version or "(none)"
        ctx.error(f"deploy target failed; the '{environment}' marker stays on version {kept}")
        raise
    write_json(log_path, outcome.to_json())
    write_dotenv(ctx.out_path(f"deploy-{environment}.env"), {
        "MLCI_DEPLOY_URL": outcome.url or "",
        "MLCI_MODEL_VERSION": outcome.to_version,
        "MLCI_ENVIRONMENT": outcome.environment,
        "MLCI_MODEL_ARTIFACT": outcome.details.get("artifact", "original"),
        "MLCI_SERVED_MODEL_URI": outcome.details.get("served-uri", ""),
    })
    moved = ", ".join(outcome.markers_moved) or "none (already held)"
    ctx.info(f"{outcome.details.get('target-summary', '')}")
    ctx.info(f"serving the {outcome.details.get('artifact', 'original')} model: {outcome.details.get('served-uri')}")
    ctx.info(
        f"{outcome.status} {model} version {outcome.to_version} to '{outcome.environment}' "
        f"(previously {outcome.from_version or 'none'}); markers moved: {moved}"
    )
    if outcome.url:
        ctx.info(f"url: {outcome.url}")
    return outcome
