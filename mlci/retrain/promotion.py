"""Integration point with mlci/deploy for retrain.on-pass: promote-staging.

Promotion to the first environment is exactly what `mlci deploy --to ENV
--version V` does (validation check, deploy target, marker moves, audit,
deploy-ENV.json/.env): both call mlci.deploy.step.deploy_to, so nothing is
re-implemented here. Its errors keep their types (refused -> exit 1,
config -> 2, external -> 3).
Later environments are never touched: production stays manual.
"""

from __future__ import annotations

from typing import Any


def first_environment(config) -> str:
    from mlci.deploy.settings import load_settings

    settings = load_settings(config)
    if len(settings.environments) < 2:
        # The only environment is also the last one, which carries the champion: never automatic.
        only = settings.environments[0].name if settings.environments else "none"
        raise config.error(
            ("retrain", "on-pass"),
            f"on-pass: promote-staging needs a staging environment before production, but deploy.environments "
            f"has only '{only}'; promoting there would replace the champion without a manual step",
            hint="add an environment before the last one in deploy.environments, or use on-pass: merge-request",
        )
    return settings.environments[0].name


def promote_to_first_environment(ctx, config, *, version: str) -> dict[str, Any]:
    """Deploy `version` to the first environment; what happened, for retrain-summary.json."""
    from mlci.deploy.step import deploy_to

    environment = first_environment(config)
    ctx.info(f"mlci: promoting version {version} to '{environment}' (mlci deploy --to {environment})")
    outcome = deploy_to(ctx, config, environment=environment, version=str(version))
    deployed = outcome.to_json()
    return {"environment": environment, "promoted": True,
            "deploy": {k: v for k, v in deployed.items() if k != "version"}}
