"""Validation against GitLab's CI JSON Schema.

The schema is GitLab's own (app/assets/javascripts/editor/schema/ci.json),
as vendored and pinned by check-jsonschema. mlci ships a copy of that file
(mlci/lint/gitlab-ci.schema.json, with GitLab's license) so `mlci lint` works
offline from the light core install; scripts/refresh_gitlab_schema.py
updates it and a test fails when check-jsonschema's copy has moved on.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

from mlci.errors import ConfigError
from mlci.lint.findings import Finding
from mlci.lint.source import Location

SCHEMA_PACKAGE = "mlci.lint"
SCHEMA_FILE = "gitlab-ci.schema.json"
ORIGIN_FILE = "gitlab-ci.schema.origin.json"


def schema_source() -> str:
    try:
        origin = json.loads(resources.files(SCHEMA_PACKAGE).joinpath(ORIGIN_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):  # pragma: no cover - shipped with the package
        return "GitLab CI schema"
    return f"GitLab CI schema vendored by {origin['from']} {origin['from-version']}"


@functools.cache
def gitlab_schema() -> dict:
    try:
        text = resources.files(SCHEMA_PACKAGE).joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    except FileNotFoundError:  # pragma: no cover - a broken install
        raise ConfigError(
            f"GitLab's CI schema ({SCHEMA_FILE}) is missing from the mlci package",
            hint="reinstall mlci (pip install --force-reinstall mlci)",
        ) from None
    return json.loads(text)


@functools.cache
def _validator():
    from jsonschema import Draft7Validator

    return Draft7Validator(gitlab_schema())


def _jsonable(value: Any) -> Any:
    """YAML may hold dates or non-string keys; the schema speaks JSON."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _most_specific(error):
    """oneOf/anyOf errors say 'not valid under any schema'; the deepest sub-error says why."""
    from jsonschema.exceptions import best_match

    while error.context:
        candidate = best_match(error.context)
        if candidate is None:
            break
        error = candidate
    return error


def _message(error) -> str:
    path = ".".join(str(part) for part in error.absolute_path) or "(top level)"
    if error.validator == "additionalProperties":
        return f"{path}: {error.message}"
    if error.validator == "enum":
        allowed = ", ".join(json.dumps(v) for v in error.validator_value)
        return f"{path}: {json.dumps(error.instance)[:60]} is not one of {allowed}"
    if error.validator == "type":
        shown = json.dumps(error.instance, default=str)[:60]
        return f"{path}: expected {error.validator_value}, got {shown}"
    return f"{path}: {error.message[:300]}"


def validate(data: dict, where, *, header: bool = False) -> list[Finding]:
    """Schema findings for a merged configuration; `where(path)` gives each error's location."""
    findings = []
    seen = set()
    for error in _validator().iter_errors(_jsonable(data)):
        detail = _most_specific(error)
        message = _message(detail)
        path = tuple(detail.absolute_path)
        key = (path, message)
        if key in seen:
            continue
        seen.add(key)
        location: Location = where(path)
        findings.append(Finding.make("schema", ("header: " if header else "") + message, location))
    return findings
