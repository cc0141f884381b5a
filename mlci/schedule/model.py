"""The schedules mlci.yml asks for, validated with file:line:col errors."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from mlci.errors import ConfigError, ConfigErrors
from mlci.schedule.cron import cron_problem, timezone_problem

DEFAULT_REF = "main"


@dataclass(frozen=True)
class DesiredSchedule:
    key: str
    description: str
    cron: str
    cron_timezone: str
    ref: str
    active: bool
    variables: dict[str, str] = field(default_factory=dict)
    project: str = ""  # the mlci project (slug of project.name) that owns it; part of the marker


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:64] or "schedule"


def _variable_value(value) -> str:
    # YAML true/false must reach the pipeline as the strings a shell `if` compares against.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def project_marker(config) -> str:
    """This mlci project's name in schedule markers: project.name (CI_PROJECT_NAME by default), slugged."""
    name = config.get("project", "name")
    return slug(str(name)) if name else ""


def desired_schedules(config, env: Mapping[str, str]) -> list[DesiredSchedule]:
    """schedules: from the config, defaults applied; every problem reported at once with its location."""
    items = config.get("schedules", default=[]) or []
    default_ref = env.get("CI_DEFAULT_BRANCH") or DEFAULT_REF
    project = project_marker(config)
    problems: list[ConfigError] = []
    result: list[DesiredSchedule] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        where = ("schedules", index)
        cron = " ".join(str(item["cron"]).split())
        timezone = item.get("cron-timezone") or "UTC"
        problem = cron_problem(cron)
        if problem:
            problems.append(config.error((*where, "cron"), f"invalid cron {item['cron']!r}: {problem}",
                                         hint="for example '0 3 * * 1' runs Mondays at 03:00"))
        problem = timezone_problem(timezone)
        if problem:
            problems.append(config.error((*where, "cron-timezone"), f"{timezone!r}: {problem}"))
        key = item.get("key") or slug(item["description"])
        if key in seen:
            problems.append(config.error(
                (*where, "key") if item.get("key") else (*where, "description"),
                f"duplicate schedule key {key!r} (also schedules[{seen[key]}])",
                hint="give one of them a distinct `key:`",
            ))
        seen.setdefault(key, index)
        result.append(DesiredSchedule(
            key=key,
            description=str(item["description"]).strip(),
            cron=cron,
            cron_timezone=timezone,
            ref=item.get("ref") or default_ref,
            active=bool(item.get("active", True)),
            variables={str(k): _variable_value(v) for k, v in (item.get("variables") or {}).items()},
            project=project,
        ))
    if problems:
        raise ConfigErrors(problems)
    return result
