"""The deploy section of mlci.yml as typed values, with schema defaults filled in.

The layered config fills defaults for objects only; environments are a list,
so each entry gets its defaults here, from the same schema file, so the schema
stays the single source of every default.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlci.deploy.promotion import RESERVED_MARKERS

# MLflow refuses aliases that look like version references ("v3", "V12").
_VERSION_LIKE = re.compile(r"^[vV]\d+$")


@dataclass(frozen=True)
class Environment:
    name: str
    index: int
    target: str
    url: str | None
    command: str | list[str] | None
    command_timeout: float
    serve: dict[str, Any]
    kubernetes: dict[str, Any]
    smoke: dict[str, Any]
    raw: dict[str, Any]  # as written in mlci.yml, for config.error paths
    artifact: str = "original"  # original | optimized (the ONNX model mlci optimize logged)
    mlserver: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DeploySettings:
    environments: tuple[Environment, ...]
    state_dir: Path
    base_dir: Path  # relative file paths in the deploy section are relative to mlci.yml

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(env.name for env in self.environments)

    def get(self, name: str) -> Environment | None:
        return next((env for env in self.environments if env.name == name), None)

    @property
    def last(self) -> Environment:
        return self.environments[-1]


def with_defaults(schema: dict, value: Any) -> Any:
    """`value` with every missing key that has a schema default filled in, recursively through objects."""
    if not isinstance(value, dict) or "properties" not in schema:
        return copy.deepcopy(value)
    filled = {key: copy.deepcopy(item) for key, item in value.items()}
    for key, sub in schema["properties"].items():
        if key not in filled and "default" in sub:
            filled[key] = copy.deepcopy(sub["default"])
        if key in filled:
            filled[key] = with_defaults(sub, filled[key])
    return filled


def environment_schema() -> dict:
    from mlci.config import section_schema

    return section_schema("deploy")["properties"]["environments"]["items"]


def smoke_defaults() -> dict[str, Any]:
    """The smoke settings of an environment that configures nothing (for `smoke-test --url`)."""
    return with_defaults(environment_schema()["properties"]["smoke"], {})


def load_settings(config) -> DeploySettings:
    """Typed deploy settings; semantic problems are ConfigErrors located in mlci.yml."""
    section = config.section("deploy") or {}
    schema = environment_schema()
    raw_environments = section.get("environments") or []
    environments: list[Environment] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_environments):
        path = ("deploy", "environments", index)
        entry = with_defaults(schema, raw)
        name = entry["name"]
        if name in seen:
            raise config.error((*path, "name"), f"environment '{name}' is listed twice")
        if name in RESERVED_MARKERS or _VERSION_LIKE.match(name):
            raise config.error(
                (*path, "name"),
                f"'{name}' cannot name an environment: it is a registry marker or alias with its own meaning",
            )
        seen.add(name)
        if entry["target"] == "command" and not entry.get("command"):
            raise config.error(path, f"environment '{name}' has target command but no `command`")
        if entry["target"] == "kubernetes" and not entry["kubernetes"].get("image"):
            raise config.error(path, f"environment '{name}' has target kubernetes but no `kubernetes.image`")
        scaling = entry["kubernetes"]["autoscaling"]
        if scaling["enabled"] and scaling["min-replicas"] > scaling["max-replicas"]:
            raise config.error(
                (*path, "kubernetes", "autoscaling"),
                f"min-replicas ({scaling['min-replicas']}) is larger than max-replicas ({scaling['max-replicas']})",
            )
        environments.append(
            Environment(
                name=name,
                index=index,
                target=entry["target"],
                url=entry.get("url"),
                command=entry.get("command"),
                command_timeout=float(entry["command-timeout"]),
                serve=entry["serve"],
                kubernetes=entry["kubernetes"],
                smoke=entry["smoke"],
                raw=raw,
                artifact=entry.get("artifact", "original"),
                mlserver=entry["mlserver"],
            )
        )
    base_dir = config.path.parent if getattr(config, "path", None) else Path.cwd()
    state_dir = Path(section.get("state-dir") or ".mlci/serve")
    return DeploySettings(
        environments=tuple(environments),
        state_dir=state_dir if state_dir.is_absolute() else base_dir / state_dir,
        base_dir=base_dir,
    )
