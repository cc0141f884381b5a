"""The effective config: every value with the layer it came from.

Precedence, highest first:
  1. command-line flags and `--set key=value`
  2. MLCI_* environment variables (MLCI_<SECTION>_<KEY>, dashes as underscores)
  3. mlci.yml
  4. GitLab predefined CI_* variables (project name, server URL, ...)
  5. schema defaults
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlci.config.schema import full_schema, validate_document
from mlci.config.yamlmarks import LocatedDocument, load_located_file
from mlci.errors import ConfigError, ConfigErrors

DEFAULT_CONFIG_FILE = "mlci.yml"

# Config keys that fall back to GitLab's predefined variables.
CI_FALLBACKS: dict[tuple[str, ...], str] = {
    ("project", "name"): "CI_PROJECT_NAME",
    ("mlflow", "experiment"): "CI_PROJECT_PATH",
    ("gitlab", "url"): "CI_SERVER_URL",
    ("gitlab", "project"): "CI_PROJECT_ID",
}

# Well-known non-MLCI variables that users already set for their tools.
TOOL_ENV: dict[tuple[str, ...], str] = {
    ("mlflow", "tracking-uri"): "MLFLOW_TRACKING_URI",
    ("mlflow", "registry-uri"): "MLFLOW_REGISTRY_URI",
}


def env_name(path: tuple[str, ...]) -> str:
    return "MLCI_" + "_".join(part.upper().replace("-", "_") for part in path)


@dataclass
class Config:
    data: dict[str, Any]
    sources: dict[tuple[str, ...], str] = field(default_factory=dict)
    document: LocatedDocument | None = None
    path: Path | None = None

    def get(self, *path: str, default: Any = None) -> Any:
        node: Any = self.data
        for part in path:
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def section(self, name: str) -> Any:
        return self.data.get(name, {})

    def source_of(self, *path: str) -> str:
        """The layer that set this value, or the one that set the mapping or list it sits in.

        Open-ended sections (data.sources.<name>, deploy.environments) are set as a whole, so a
        value inside one comes from wherever its enclosing entry came from.
        """
        probe = tuple(path)
        while probe:
            if probe in self.sources:
                source = self.sources[probe]
                if probe != tuple(path) and source.startswith("file ") and self.document is not None:
                    return f"file {self.document.where(tuple(path))}"  # the value's own line
                return source
            probe = probe[:-1]
        return "default"

    def where(self, path: tuple, *, key: bool = False) -> str:
        """'mlci.yml:LINE:COL' for a value, for errors found after schema validation."""
        if self.document is None:
            return str(self.path or DEFAULT_CONFIG_FILE)
        return self.document.where(tuple(path), key=key)

    def error(self, path: tuple, message: str, *, hint: str | None = None) -> ConfigError:
        return ConfigError(message, location=self.where(path), hint=hint)


def _defaults(schema: dict) -> Any:
    if schema.get("type") == "object" or "properties" in schema:
        base = copy.deepcopy(schema.get("default", {}))
        if not isinstance(base, dict):
            return base
        for key, sub in schema.get("properties", {}).items():
            if "default" in sub or sub.get("type") == "object":
                value = _defaults(sub)
                if value is not None and key not in base:
                    base[key] = value
        return base
    return copy.deepcopy(schema.get("default"))


def _scalar_leaves(schema: dict, path: tuple = ()):
    """(path, subschema) for every scalar setting reachable through objects only."""
    for key, sub in schema.get("properties", {}).items():
        types = sub.get("type")
        types = types if isinstance(types, list) else [types]
        if "properties" in sub:
            yield from _scalar_leaves(sub, (*path, key))
        elif "enum" in sub or any(t in ("string", "integer", "number", "boolean") for t in types):
            yield (*path, key), sub


def _coerce(raw: str, schema: dict, origin: str) -> Any:
    types = schema.get("type")
    types = types if isinstance(types, list) else [types]
    if "enum" in schema or types == ["string"]:
        return raw
    try:
        value = yaml.safe_load(raw) if raw.strip() else raw
    except yaml.YAMLError:
        value = raw
    if "boolean" in types and isinstance(value, bool):
        return value
    if "integer" in types and isinstance(value, int) and not isinstance(value, bool):
        return value
    if "number" in types and isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if "string" in types:
        return raw
    raise ConfigError(f"{origin}: expected {' or '.join(t for t in types if t)}, got {raw!r}")


def _set_path(target: dict, path: tuple, value: Any) -> None:
    node = target
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value


def _merge(base: dict, overlay: dict, sources: dict, origin_for, path: tuple = ()) -> None:
    for key, value in overlay.items():
        here = (*path, key)
        if isinstance(value, dict) and isinstance(base.get(key), dict) and value:
            _merge(base[key], value, sources, origin_for, here)
        else:
            base[key] = copy.deepcopy(value)
            sources[here] = origin_for(here)


def _parse_override(item: str) -> tuple[tuple[str, ...], str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
    return tuple(key.strip().split(".")), value


def load_effective(
    path: str | Path | None = None,
    *,
    env: dict[str, str] | None = None,
    overrides: list[str] | None = None,
    flags: dict[tuple[str, ...], Any] | None = None,
    required: bool = False,
) -> Config:
    import os

    env = dict(os.environ) if env is None else env
    schema = full_schema()
    explicit = path is not None
    config_path = Path(path) if path is not None else Path(DEFAULT_CONFIG_FILE)
    document: LocatedDocument | None = None
    if config_path.exists():
        document = load_located_file(config_path)
        if document.data is None:
            document.data = {}
        if not isinstance(document.data, dict):
            raise ConfigError("the top level must be a mapping of sections", location=document.where(()))
        problems = validate_document(document)
        if problems:
            raise ConfigErrors(problems)
    elif explicit or required:
        raise ConfigError(
            "config file not found",
            location=str(config_path),
            hint="run `mlci init` to write a starter mlci.yml, or pass --config",
        )

    data: dict[str, Any] = _defaults(schema)
    sources: dict[tuple[str, ...], str] = {}
    leaves = dict(_scalar_leaves(schema))

    ci_layer: dict = {}
    for key_path, variable in CI_FALLBACKS.items():
        if env.get(variable):
            _set_path(ci_layer, key_path, _coerce(env[variable], leaves[key_path], variable))
    _merge(data, ci_layer, sources, lambda p: f"env {CI_FALLBACKS[p]}")

    if document is not None:
        _merge(data, document.data, sources, lambda p: f"file {document.where(p)}")

    env_layer: dict = {}
    env_origin: dict[tuple, str] = {}
    for key_path, variable in TOOL_ENV.items():
        if env.get(variable):
            _set_path(env_layer, key_path, env[variable])
            env_origin[key_path] = f"env {variable}"
    for key_path, sub in leaves.items():
        variable = env_name(key_path)
        # Empty means unset: CI templates define every input as a variable, empty by default.
        if env.get(variable, "") != "":
            _set_path(env_layer, key_path, _coerce(env[variable], sub, f"environment variable {variable}"))
            env_origin[key_path] = f"env {variable}"
    _merge(data, env_layer, sources, lambda p: env_origin[p])

    flag_layer: dict = {}
    flag_origin: dict[tuple, str] = {}
    for item in overrides or []:
        key_path, raw = _parse_override(item)
        if key_path not in leaves:
            import difflib

            known = [".".join(p) for p in leaves]
            close = difflib.get_close_matches(".".join(key_path), known, n=1)
            raise ConfigError(
                f"--set {'.'.join(key_path)}: unknown setting" + (f"; did you mean '{close[0]}'?" if close else "")
            )
        _set_path(flag_layer, key_path, _coerce(raw, leaves[key_path], f"--set {'.'.join(key_path)}"))
        flag_origin[key_path] = "flag --set"
    for key_path, value in (flags or {}).items():
        if value is not None:
            _set_path(flag_layer, tuple(key_path), value)
            flag_origin[tuple(key_path)] = "flag"
    _merge(data, flag_layer, sources, lambda p: flag_origin[p])

    # The registered model is named after the project unless said otherwise.
    if not data.get("model", {}).get("name") and data.get("project", {}).get("name"):
        data.setdefault("model", {})["name"] = data["project"]["name"]
        sources[("model", "name")] = f"derived from project.name ({sources.get(('project', 'name'), 'default')})"

    merged_problems = validate_document(LocatedDocument(data=data, path="effective config"))
    if merged_problems:
        raise ConfigErrors(merged_problems)
    return Config(data=data, sources=sources, document=document, path=config_path if document else None)
