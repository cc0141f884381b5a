"""Integration point with mlci/deploy for retrain.on-pass: promote-staging.

Promotion to the first environment is exactly what `mlci deploy --to ENV
--version V` does (validation check, deploy target, marker moves, audit), so
this runs that command rather than re-implementing any of it. Going through
the documented CLI keeps the two parts independent: the deploy command's
exit code maps back onto the same error types (1 refused, 2 config, 3
external). Later environments are never touched: production stays manual.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlci.errors import EXIT_CHECK_FAILED, EXIT_CONFIG, CheckFailed, ConfigError, ExternalServiceError


def first_environment(config) -> str:
    from mlci.deploy.settings import load_settings

    settings = load_settings(config)
    if not settings.environments:
        raise config.error(("deploy",), "on-pass: promote-staging needs at least one deploy environment")
    return settings.environments[0].name


def promote_to_first_environment(
    config,
    *,
    model: str,
    version: str,
    out_dir: Path,
    env: Mapping[str, str],
) -> dict[str, Any]:
    """Deploy `version` to the first environment; what happened, for retrain-summary.json."""
    environment = first_environment(config)
    child_env = dict(env)
    child_env["MLCI_OUT_DIR"] = str(out_dir)
    child_env["MLCI_MODEL_VERSION"] = version
    child_env["MLCI_MODEL_NAME"] = model
    if getattr(config, "path", None):
        child_env["MLCI_CONFIG"] = str(config.path)
    command = [sys.executable, "-m", "mlci", "deploy", "--to", environment, "--version", version]
    # Output streams straight into the job log.
    code = subprocess.call(command, env=child_env)
    where = f"`mlci deploy --to {environment} --version {version}`"
    if code == EXIT_CHECK_FAILED:
        raise CheckFailed(f"{where} refused the promotion (exit 1)", hint="see the deploy output above")
    if code == EXIT_CONFIG:
        raise ConfigError(f"{where} failed with a usage or config error (exit 2)", hint="see the deploy output above")
    if code != 0:
        raise ExternalServiceError("deploy", environment, f"{where} failed with exit code {code}",
                                   hint="see the deploy output above")
    action: dict[str, Any] = {"environment": environment, "promoted": True}
    record = out_dir / f"deploy-{environment}.json"
    try:
        deployed = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        deployed = None
    if isinstance(deployed, dict):
        action["deploy"] = {k: v for k, v in deployed.items() if k != "version"}
    return action
