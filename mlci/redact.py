"""Keep secrets out of every line mlci prints or writes."""

from __future__ import annotations

import os
import re

# Variables whose values must never be printed, whatever the message.
SECRET_ENV_VARS = (
    "MLCI_GITLAB_TOKEN",
    "MLCI_TRIGGER_TOKEN",
    "CI_JOB_TOKEN",
    "GITLAB_TOKEN",
    "CI_JOB_JWT",
    "CI_JOB_JWT_V2",
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_PASSWORD",
    "CI_REGISTRY_PASSWORD",
    "CI_DEPLOY_PASSWORD",
    "MLCI_TUNE_STORAGE",  # a database URL with its password (mlci tune)
)

_TOKEN_SHAPES = re.compile(r"\b(glpat|glptt|gldt|glrt|glcbt|glft|glimt|glagent|gloas)-[A-Za-z0-9_\-.]{8,}")


def secret_values(env: dict[str, str] | None = None) -> list[str]:
    env = os.environ if env is None else env
    values = [env.get(name, "") for name in SECRET_ENV_VARS]
    # Very short values would blank out ordinary words.
    return sorted({v for v in values if len(v) >= 6}, key=len, reverse=True)


def redact(text: str, extra: list[str] | None = None, env: dict[str, str] | None = None) -> str:
    for value in [*(extra or []), *secret_values(env)]:
        if value:
            text = text.replace(value, "[MASKED]")
    return _TOKEN_SHAPES.sub(lambda m: f"{m.group(1)}-[MASKED]", text)
