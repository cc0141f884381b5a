"""Data contracts: the `contract` shape of mlci.yml's data section, parsed into rules.

The JSON Schema (mlci/config/schemas/data.schema.json) catches structural
mistakes. This module catches what a schema cannot: unknown type names, bad
regular expressions, SQL that polars cannot parse, min > max. Every problem
carries the file:line:col of the offending value, and all of them are
reported at once.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from mlci import durations
from mlci.errors import ConfigError, ConfigErrors

Locator = Callable[[tuple], str]

SEVERITIES = ("error", "warn")

# Exact type names -> polars dtype class name; families match several.
EXACT_DTYPES = {
    "int8": "Int8", "int16": "Int16", "int32": "Int32", "int64": "Int64",
    "uint8": "UInt8", "uint16": "UInt16", "uint32": "UInt32", "uint64": "UInt64",
    "float32": "Float32", "float64": "Float64",
    "string": "String", "str": "String", "utf8": "String",
    "boolean": "Boolean", "bool": "Boolean",
    "date": "Date", "datetime": "Datetime", "timestamp": "Datetime",
    "time": "Time", "duration": "Duration",
    "categorical": "Categorical",
}
INTEGER_NAMES = ("Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64")
FLOAT_NAMES = ("Float32", "Float64")
DTYPE_FAMILIES = {
    "integer": INTEGER_NAMES,
    "int": INTEGER_NAMES,
    "float": FLOAT_NAMES,
    "numeric": INTEGER_NAMES + FLOAT_NAMES,
    "number": INTEGER_NAMES + FLOAT_NAMES,
}
KNOWN_DTYPES = sorted({*EXACT_DTYPES, *DTYPE_FAMILIES})



def dtype_accepts(declared: str, actual_class_name: str) -> bool:
    """Does a polars dtype (by class name, e.g. 'Int64') satisfy the contract's type name?"""
    declared = declared.lower()
    if declared in DTYPE_FAMILIES:
        return actual_class_name in DTYPE_FAMILIES[declared]
    wanted = EXACT_DTYPES[declared]
    if wanted == "Categorical":
        return actual_class_name in ("Categorical", "Enum")
    return actual_class_name == wanted


def parse_duration(text: str) -> int:
    """'1d12h', '1d 12h', '36 hours' -> seconds, by mlci's one duration grammar (mlci.durations)."""
    return int(durations.parse_duration(text).total_seconds())



def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


@dataclass(frozen=True)
class Rule:
    """One check. `kind` selects the evaluation; `params` holds its values."""

    kind: str
    name: str
    severity: str
    column: str | None = None
    columns: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    where: str = ""


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    required: bool = True
    dtype: str | None = None
    format: str | None = None


@dataclass(frozen=True)
class Contract:
    origin: str  # file (or mlci.yml source) it came from, for messages
    columns: dict[str, ColumnSpec]
    rules: tuple[Rule, ...]

    def rules_for(self, column: str) -> list[Rule]:
        return [r for r in self.rules if r.column == column]


@functools.cache
def _data_schema() -> dict:
    # data.schema.json has no $refs, so it is read on its own, without building all of mlci.yml's schema.
    text = resources.files("mlci.config.schemas").joinpath("data.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def contract_schema() -> dict:
    """The JSON Schema of a stand-alone contract file (the inline contract's object form)."""
    node = copy.deepcopy(_data_schema()["properties"]["sources"]["additionalProperties"])
    schema = node["properties"]["contract"]
    schema["type"] = "object"
    schema.pop("minLength", None)
    return schema


# Keywords `certainly_valid` understands; a schema using any other is never judged by it.
_QUICK_KEYWORDS = frozenset({
    "type", "properties", "additionalProperties", "required", "enum", "minimum", "maximum", "exclusiveMinimum",
    "pattern", "items", "minItems", "minLength", "minProperties", "propertyNames", "default", "description",
})


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _has_type(value: Any, name: str) -> bool:
    if name == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer())
    if name == "number":
        return _is_number(value)
    if name == "null":
        return value is None
    return isinstance(value, {"object": dict, "array": list, "string": str, "boolean": bool}[name])


def certainly_valid(value: Any, schema: Any) -> bool:
    """True only when `value` surely satisfies `schema`; False means "ask jsonschema".

    Importing jsonschema costs more than checking a whole contract, and nearly
    every contract is valid, so `mlci data check` only pays for it when there is
    an error to explain. Conservative by construction: unknown keywords, odd
    keys or any doubt answer False.
    """
    if not isinstance(schema, dict) or not schema.keys() <= _QUICK_KEYWORDS:
        return False
    types = schema.get("type")
    if types is not None and not any(_has_type(value, t) for t in (types if isinstance(types, list) else [types])):
        return False
    if "enum" in schema and not any(type(value) is type(e) and value == e for e in schema["enum"]):
        return False
    if _is_number(value):
        if "minimum" in schema and not value >= schema["minimum"]:
            return False
        if "maximum" in schema and not value <= schema["maximum"]:
            return False
        if "exclusiveMinimum" in schema and not value > schema["exclusiveMinimum"]:
            return False
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            return False
        if "pattern" in schema and not re.search(schema["pattern"], value):
            return False
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            return False
        if "items" in schema and not all(certainly_valid(item, schema["items"]) for item in value):
            return False
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            return False
        if len(value) < schema.get("minProperties", 0) or not set(schema.get("required", ())) <= value.keys():
            return False
        if "propertyNames" in schema and not all(certainly_valid(k, schema["propertyNames"]) for k in value):
            return False
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in properties:
                if not certainly_valid(item, properties[key]):
                    return False
            elif extra is False or (extra is not True and not certainly_valid(item, extra)):
                return False
    return True


def load_contract_file(path: str | Path) -> Contract:
    """Read, schema-check and parse a contract YAML file; errors carry file:line:col."""
    from mlci.config import load_located_file, validate_document

    doc = load_located_file(path)
    if doc.data is None:
        raise ConfigError("the contract file is empty", location=f"{path}:1:1",
                          hint="a contract needs at least `columns:`")
    schema = contract_schema()
    if not certainly_valid(doc.data, schema):
        problems = validate_document(doc, schema=schema)
        if problems:
            raise ConfigErrors(problems)
    return parse_contract(doc.data, doc.where, origin=str(path))


def _split(raw: Any) -> tuple[Any, dict]:
    """A rule's short form (the value) or long form ({value, severity, ...})."""
    if isinstance(raw, dict):
        extra = {k: v for k, v in raw.items() if k != "value"}
        return raw.get("value"), extra
    return raw, {}


def _preview(values: list) -> str:
    shown = ", ".join(str(v) for v in values[:5])
    return f"{shown}, ... ({len(values)} values)" if len(values) > 5 else shown


def _check_regex(pattern: str) -> str | None:
    import polars as pl

    try:
        pl.select(pl.lit("").str.contains(pattern))
    except pl.exceptions.PolarsError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        reason = next((line for line in lines if line.startswith("error:")), lines[0] if lines else "")
        return reason.removeprefix("error:").strip() or "not a valid pattern"
    return None


def _check_sql(sql: str) -> str | None:
    import polars as pl

    try:
        pl.sql_expr(sql)
    except pl.exceptions.PolarsError as exc:
        return str(exc).strip().splitlines()[0]
    return None


def _bounds_problem(low: Any, high: Any) -> str | None:
    if low is not None and high is not None and low > high:
        return f"min ({_number(low)}) is greater than max ({_number(high)})"
    return None


def _range_text(low: Any, high: Any) -> str:
    if low is not None and high is not None:
        return f"in [{_number(low)}, {_number(high)}]"
    if low is not None:
        return f">= {_number(low)}"
    return f"<= {_number(high)}"


def parse_contract(data: dict, where: Locator, *, origin: str) -> Contract:
    """Turn a schema-valid contract mapping into rules, or raise every semantic problem at once.

    `where(path)` maps a path inside `data` to 'file:line:col'.
    """
    problems: list[ConfigError] = []
    rules: list[Rule] = []
    columns: dict[str, ColumnSpec] = {}
    default_severity = data.get("severity", "error")

    def problem(path: tuple, message: str, hint: str | None = None) -> None:
        problems.append(ConfigError(message, location=where(path), hint=hint))

    def add(kind: str, name: str, severity: str, path: tuple, **kwargs) -> None:
        rules.append(Rule(kind=kind, name=name, severity=severity, where=where(path), **kwargs))

    for key, spec in (data.get("columns") or {}).items():
        col = str(key)  # YAML reads `2024:` as a number; a column name is text
        base = ("columns", key)
        spec = spec or {}
        col_severity = spec.get("severity", default_severity)

        def sev(extra: dict, col_severity=col_severity) -> str:
            return extra.get("severity", col_severity)

        required, extra = _split(spec.get("required", True))
        dtype = None
        if "dtype" in spec:
            dtype, dtype_extra = _split(spec["dtype"])
            if dtype.lower() not in EXACT_DTYPES and dtype.lower() not in DTYPE_FAMILIES:
                import difflib

                close = difflib.get_close_matches(dtype.lower(), KNOWN_DTYPES, n=1)
                problem((*base, "dtype"), f"unknown column type {dtype!r}"
                        + (f"; did you mean '{close[0]}'?" if close else ""),
                        hint="known types: " + ", ".join(KNOWN_DTYPES))
                dtype = None
        columns[col] = ColumnSpec(name=str(col), required=bool(required), dtype=dtype.lower() if dtype else None,
                                  format=spec.get("format"))
        if required:
            add("present", f"{col}: present", sev(extra), (*base, "required"), column=col)
        if dtype:
            add("dtype", f"{col}: dtype {dtype.lower()}", sev(dtype_extra), (*base, "dtype"), column=col,
                params={"dtype": dtype.lower(), "format": spec.get("format")})

        if "not-null" in spec:
            value, extra = _split(spec["not-null"])
            if value:
                add("not-null", f"{col}: not null", sev(extra), (*base, "not-null"), column=col)
        if "max-null-fraction" in spec:
            value, extra = _split(spec["max-null-fraction"])
            add("null-fraction", f"{col}: null fraction <= {_number(value)}", sev(extra),
                (*base, "max-null-fraction"), column=col, params={"max": float(value)})
        if "unique" in spec:
            value, extra = _split(spec["unique"])
            if value:
                add("unique", f"{col}: unique", sev(extra), (*base, "unique"), column=col, columns=(col,))
        bound = {}
        for key, op, strict_op in (("min", ">=", ">"), ("max", "<=", "<")):
            if key in spec:
                value, extra = _split(spec[key])
                exclusive = bool(extra.get("exclusive", False))
                bound[key] = value
                add(key, f"{col}: {key} {strict_op if exclusive else op} {_number(value)}", sev(extra),
                    (*base, key), column=col, params={"value": value, "exclusive": exclusive})
        if "min" in bound and "max" in bound:
            message = _bounds_problem(bound["min"], bound["max"])
            if message:
                problem((*base, "min"), message)
        if "allowed" in spec:
            value, extra = _split(spec["allowed"])
            add("allowed", f"{col}: in [{_preview(value)}]", sev(extra), (*base, "allowed"), column=col,
                params={"values": list(value)})
        if "regex" in spec:
            value, extra = _split(spec["regex"])
            error = _check_regex(value)
            if error:
                problem((*base, "regex"), f"invalid regular expression {value!r}: {error}")
            else:
                add("regex", f"{col}: matches {value}", sev(extra), (*base, "regex"), column=col,
                    params={"pattern": value})
        if "length" in spec:
            low, high = spec["length"].get("min"), spec["length"].get("max")
            message = _bounds_problem(low, high)
            if message:
                problem((*base, "length"), message)
            elif low is not None or high is not None:
                add("length", f"{col}: length {_range_text(low, high)}", sev(spec["length"]), (*base, "length"),
                    column=col, params={"min": low, "max": high})
        if "max-age" in spec:
            value, extra = _split(spec["max-age"])
            try:
                seconds = parse_duration(value)
            except ValueError as exc:
                problem((*base, "max-age"), str(exc))
            else:
                add("max-age", f"{col}: newest value within {value.strip()}", sev(extra), (*base, "max-age"),
                    column=col, params={"seconds": seconds, "text": value.strip()})
        for stat in ("mean", "std"):
            if stat in spec:
                low, high = spec[stat].get("min"), spec[stat].get("max")
                message = _bounds_problem(low, high)
                if message:
                    problem((*base, stat), message)
                elif low is not None or high is not None:
                    add(stat, f"{col}: {stat} {_range_text(low, high)}", sev(spec[stat]), (*base, stat),
                        column=col, params={"min": low, "max": high})
        for index, item in enumerate(spec.get("quantiles") or []):
            low, high = item.get("min"), item.get("max")
            message = _bounds_problem(low, high)
            if message:
                problem((*base, "quantiles", index), message)
            elif low is None and high is None:
                problem((*base, "quantiles", index), "a quantile expectation needs min and/or max")
            else:
                add("quantile", f"{col}: quantile {_number(item['q'])} {_range_text(low, high)}", sev(item),
                    (*base, "quantiles", index), column=col, params={"q": float(item["q"]), "min": low, "max": high})

    if "no-extra-columns" in data:
        value, extra = _split(data["no-extra-columns"])
        if value:
            add("no-extra-columns", "no unexpected columns", extra.get("severity", default_severity),
                ("no-extra-columns",))
    for index, item in enumerate(data.get("unique") or []):
        keys, extra = (item, {}) if isinstance(item, list) else (item["columns"], item)
        if len(set(keys)) != len(keys):
            problem(("unique", index), f"column set {keys} names a column twice")
            continue
        add("unique", f"{', '.join(keys)}: unique together", extra.get("severity", default_severity),
            ("unique", index), columns=tuple(keys))
    if "rows" in data:
        low, high = data["rows"].get("min"), data["rows"].get("max")
        message = _bounds_problem(low, high)
        if message:
            problem(("rows",), message)
        elif low is not None or high is not None:
            add("rows", f"row count {_range_text(low, high)}", data["rows"].get("severity", default_severity),
                ("rows",), params={"min": low, "max": high})
    for index, item in enumerate(data.get("expressions") or []):
        error = _check_sql(item["sql"])
        if error:
            problem(("expressions", index, "sql"), f"invalid polars SQL expression {item['sql']!r}: {error}")
            continue
        add("sql", item.get("name") or f"expression: {item['sql']}", item.get("severity", default_severity),
            ("expressions", index), params={"sql": item["sql"]})

    names: dict[str, str] = {}
    for rule in rules:
        if rule.name in names:
            problems.append(ConfigError(f"two rules are both named {rule.name!r} (first at {names[rule.name]})",
                                        location=rule.where, hint="give custom expressions distinct `name`s"))
        names.setdefault(rule.name, rule.where)
    if problems:
        raise ConfigErrors(problems)
    return Contract(origin=origin, columns=columns, rules=tuple(rules))
