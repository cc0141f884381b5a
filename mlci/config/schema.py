"""The mlci.yml JSON Schema: section files joined into one, plus validation
that reports every violation as file:line:col with a 'did you mean'."""

from __future__ import annotations

import copy
import functools
import json
import re
from pathlib import Path
from typing import Any

from mlci.config.yamlload import key_path
from mlci.config.yamlmarks import LocatedDocument
from mlci.errors import ConfigError

# Package data next to this module (importlib.resources would cost lint a few milliseconds of imports).
SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
ROOT_ID = "urn:mlci:schema:mlci"


@functools.cache
def _schema_files() -> dict[str, dict]:
    by_id = {}
    for entry in sorted(SCHEMA_DIR.iterdir()):
        if entry.name.endswith(".schema.json"):
            doc = json.loads(entry.read_text(encoding="utf-8"))
            by_id[doc["$id"]] = doc
    return by_id


def _inline(node: Any, by_id: dict[str, dict]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node and node["$ref"] in by_id:
            target = copy.deepcopy(by_id[node["$ref"]])
            target.pop("$schema", None)
            target.pop("$id", None)
            merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
            return _inline(merged, by_id)
        return {k: _inline(v, by_id) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v, by_id) for v in node]
    return node


@functools.cache
def full_schema() -> dict:
    """The whole mlci.yml schema with section $refs resolved inline."""
    by_id = _schema_files()
    return _inline(copy.deepcopy(by_id[ROOT_ID]), by_id)


def section_schema(*path: str) -> dict:
    node = full_schema()
    for part in path:
        node = node["properties"][part]
    return node


def _subschema_at(schema: dict, path: tuple) -> dict | None:
    node = schema
    for part in path:
        if not isinstance(node, dict):
            return None
        if isinstance(part, int):
            node = node.get("items")
        elif part in node.get("properties", {}):
            node = node["properties"][part]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return None
    return node


def _describe(error) -> str:
    if error.validator == "enum":
        options = ", ".join(json.dumps(v) for v in error.validator_value)
        return f"{json.dumps(error.instance)} is not one of: {options}"
    if error.validator == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        shown = json.dumps(error.instance, default=str)[:80]
        return f"expected {expected}, got {type(error.instance).__name__} {shown}"
    if error.validator == "pattern" and isinstance(error.instance, str):
        # A URL written where a variable name belongs may carry a password: never echo it.
        shown = _URL_PASSWORD.sub(r"\1***@", error.instance)
        return f"{shown!r} does not match {error.validator_value!r}"
    return error.message


_URL_PASSWORD = re.compile(r"(://[^/@\s:]*:)[^/@\s]*@")


def validate_document(doc: LocatedDocument, schema: dict | None = None, *, root_path: tuple = ()) -> list[ConfigError]:
    """Every schema violation in `doc` as a located ConfigError, in file order."""
    from jsonschema import Draft202012Validator

    schema = schema or full_schema()
    validator = Draft202012Validator(schema)
    problems: list[tuple[tuple[int, int], ConfigError]] = []

    def add(path: tuple, message: str, *, key: bool = False, hint: str | None = None) -> None:
        full = (*root_path, *path)
        location = doc.where(full, key=key)
        line_col = tuple(int(x) for x in location.rsplit(":", 2)[1:])
        # Which setting, not only where: "gate.rules[2].min: expected number, got str ...";
        # an unknown key is named by the section it sits in.
        shown = full[:-1] if key else full
        named = f"{key_path(shown)}: {message}" if shown else message
        problems.append((line_col, ConfigError(named, location=location, hint=hint)))

    for error in validator.iter_errors(doc.data):
        path = tuple(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            sub = _subschema_at(schema, path) or {}
            known = sorted(sub.get("properties", {}))
            for key in error.instance:
                if key in known:
                    continue
                import difflib  # only for a file with an unknown key

                close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
                suffix = f"; did you mean '{close[0]}'?" if close else (
                    f"; known keys: {', '.join(known)}" if known else ""
                )
                add((*path, key), f"unknown key '{key}'{suffix}", key=True)
        elif error.validator == "required":
            add(path, error.message.replace("is a required property", "is required"))
        else:
            add(path, _describe(error))
    problems.sort(key=lambda item: item[0])
    return [problem for _, problem in problems]
