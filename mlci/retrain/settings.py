"""The `retrain` section of mlci.yml as typed values, checked beyond the schema.

Problems the schema cannot express (a duration that does not parse, a webhook
with both or neither of url/url-variable) become ConfigErrors located at the
offending value, so the job log says `mlci.yml:LINE:COL`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from mlci.durations import parse_duration

_VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ALL_EVENTS = ("drift", "gate", "retrained", "skipped", "blocked")
ON_PASS_MODES = ("register-only", "promote-staging", "merge-request")


@dataclass(frozen=True)
class Webhook:
    url: str = ""
    url_variable: str = ""
    events: tuple[str, ...] = ALL_EVENTS
    headers: dict[str, str] = field(default_factory=dict)  # header -> environment variable name
    timeout: float = 10.0
    max_retries: int = 3

    @property
    def label(self) -> str:
        """How logs name this webhook: never the URL when it lives in a (secret) variable."""
        return f"${self.url_variable}" if self.url_variable else _without_query(self.url)


def _without_query(url: str) -> str:
    # Query strings often carry tokens (?key=...); logs show scheme, host and path only.
    return url.split("?", 1)[0].split("#", 1)[0]


@dataclass(frozen=True)
class Hook:
    name: str
    command: str | tuple[str, ...]   # str -> /bin/sh -c, tuple -> argv
    environment: dict[str, str] = field(default_factory=dict)
    timeout: timedelta | None = None
    working_directory: str = ""
    location: str = ""               # mlci.yml:LINE:COL of the definition


@dataclass(frozen=True)
class RetrainSettings:
    max_model_age: timedelta | None = None
    on_pass: str = "register-only"
    mr_target_branch: str = ""
    mr_branch_prefix: str = "mlci/retrain/"
    hooks: dict[str, Hook] = field(default_factory=dict)
    notify: tuple[Webhook, ...] = ()


def _duration(config, path: tuple, raw: Any) -> timedelta | None:
    if raw is None or raw == "":
        return None
    try:
        return parse_duration(str(raw))
    except ValueError as exc:
        raise config.error(path, f"{'.'.join(map(str, path))}: {exc}") from None


def _hook(config, name: str, raw: Any) -> Hook:
    path = ("retrain", "hooks", name)
    location = config.where(path)
    if isinstance(raw, str):
        return Hook(name=name, command=raw, location=location)
    if isinstance(raw, list):
        return Hook(name=name, command=tuple(str(part) for part in raw), location=location)
    command = raw["command"]
    return Hook(
        name=name,
        command=command if isinstance(command, str) else tuple(str(part) for part in command),
        environment={str(k): _env_text(v) for k, v in (raw.get("environment") or {}).items()},
        timeout=_duration(config, (*path, "timeout"), raw.get("timeout")),
        working_directory=str(raw.get("working-directory") or ""),
        location=location,
    )


def _env_text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _webhook(config, index: int, raw: dict) -> Webhook:
    path = ("retrain", "notify", index)
    url, variable = raw.get("url", ""), raw.get("url-variable", "")
    if bool(url) == bool(variable):
        raise config.error(
            path,
            "a notify webhook needs exactly one of 'url' or 'url-variable'",
            hint="put a secret webhook URL in a masked CI/CD variable and name it with url-variable",
        )
    headers = dict(raw.get("headers") or {})
    for header, header_variable in headers.items():
        if not _VARIABLE_NAME.match(str(header_variable)):
            # Never echo the value: it is probably the secret itself.
            raise config.error(
                (*path, "headers", header),
                f"header {header} must name an environment variable that holds its value, not the value itself",
                hint="store the value in a masked CI/CD variable, e.g. ALERT_WEBHOOK_AUTH, and write "
                f"'{header}: ALERT_WEBHOOK_AUTH'",
            )
    return Webhook(
        url=url,
        url_variable=variable,
        events=tuple(raw.get("events") or ALL_EVENTS),
        headers=headers,
        timeout=float(raw.get("timeout", 10)),
        max_retries=int(raw.get("max-retries", 3)),
    )


def load_settings(config) -> RetrainSettings:
    section = config.section("retrain") or {}
    merge_request = section.get("merge-request") or {}
    return RetrainSettings(
        max_model_age=_duration(config, ("retrain", "max-model-age"), section.get("max-model-age")),
        on_pass=section.get("on-pass", "register-only"),
        mr_target_branch=merge_request.get("target-branch", ""),
        mr_branch_prefix=merge_request.get("branch-prefix", "mlci/retrain/"),
        hooks={name: _hook(config, name, raw) for name, raw in (section.get("hooks") or {}).items()},
        notify=tuple(_webhook(config, i, raw) for i, raw in enumerate(section.get("notify") or [])),
    )
