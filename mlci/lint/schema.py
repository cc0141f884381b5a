"""Validation against GitLab's CI JSON Schema.

The schema is GitLab's own (app/assets/javascripts/editor/schema/ci.json),
as vendored and pinned by check-jsonschema. mlci ships a copy of that file
(mlci/lint/gitlab-ci.schema.json, with GitLab's license) so `mlci lint` works
offline from the light core install; scripts/refresh_gitlab_schema.py
updates it and a test fails when check-jsonschema's copy has moved on.

Speed: lint runs in pre-commit hooks and in every pipeline. A valid file is
checked by a validator that fastjsonschema compiles from the schema once and
that is cached as bytecode (`$MLCI_CACHE_DIR`, else `$XDG_CACHE_HOME/mlci`, else
`~/.cache/mlci`); jsonschema is imported only to explain a file that fails.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from mlci.errors import ConfigError
from mlci.lint.findings import Finding
from mlci.lint.source import Location

TYPE_CHECKING = False  # typing stays unimported on lint's path (see mlci.lint.source)
if TYPE_CHECKING:
    from typing import Any

# Package data next to this module (importlib.resources would cost every lint a few milliseconds of imports).
SCHEMA_DIR = Path(__file__).resolve().parent
SCHEMA_FILE = "gitlab-ci.schema.json"
ORIGIN_FILE = "gitlab-ci.schema.origin.json"

# Where GitLab is stricter than the schema check-jsonschema vendors. Each entry is pinned by a fixture from
# GitLab's own schema tests (tests/lint/gitlab_yaml_tests) and listed in docs/lint.md.
SCHEMA_CORRECTIONS: list[tuple[tuple, Any, str]] = [
    (("definitions", "services", "items", "oneOf", 1, "properties", "command"),
     {"type": "array", "minItems": 1, "items": {"type": "string"},
      "markdownDescription": "The service container's command, one argument per item."},
     "GitLab validates services:command as an array of strings (Entry::Service); the schema also accepts a "
     "string (negative_tests/services.yml, invalid_command)"),
]


def _package_dir(name: str) -> Path | None:
    """Where an installed package lives, found without importing it."""
    import sys

    for entry in sys.path:
        candidate = Path(entry or ".") / name
        if (candidate / "__init__.py").is_file():
            return candidate
    import importlib.util  # unusual layouts (zip imports, editable finders)

    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def schema_file() -> Path:
    return SCHEMA_DIR / SCHEMA_FILE


@functools.cache
def schema_source() -> str:
    try:
        origin = json.loads((SCHEMA_DIR / ORIGIN_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):  # pragma: no cover - shipped with the package
        return "GitLab CI schema"
    return f"GitLab CI schema vendored by {origin['from']} {origin['from-version']}"


@functools.cache
def _schema_text() -> str:
    path = schema_file()
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:  # pragma: no cover - a broken install
        raise ConfigError(
            f"GitLab's CI schema ({SCHEMA_FILE}) is missing from the mlci package",
            hint="reinstall mlci (pip install --force-reinstall mlci)",
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read GitLab's CI schema: {exc}", location=str(path)) from None


@functools.cache
def gitlab_schema() -> dict:
    """GitLab's schema with SCHEMA_CORRECTIONS applied."""
    schema = json.loads(_schema_text())
    for path, replacement, _reason in SCHEMA_CORRECTIONS:
        node = schema
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = copy.deepcopy(replacement)
    return schema


# -- the fast path ------------------------------------------------------------------------------------

def cache_dir(env: dict[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("MLCI_CACHE_DIR"):
        return Path(env["MLCI_CACHE_DIR"])
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mlci"


class SchemaViolation(Exception):
    """Raised by the compiled validator (stands in for fastjsonschema's exceptions, so running it imports nothing)."""

    def __init__(self, message: str = "", value: Any = None, name: str = "", definition: Any = None,
                 rule: str = ""):
        super().__init__(message)
        self.rule = rule


class _NeverDecimal:
    """The generated code tests isinstance(x, Decimal); YAML never produces one, so skip importing decimal."""


# Lines of the generated module that would import fastjsonschema and decimal on every run.
_GENERATED_IMPORTS = ("from fastjsonschema import JsonSchemaValueException, JsonSchemaValuesException\n",
                      "from decimal import Decimal\n")


def _validator_key(fastjsonschema_dir: Path) -> str:
    import sys
    import zlib

    version_file = fastjsonschema_dir / "version.py"
    version = version_file.read_text(encoding="utf-8") if version_file.is_file() else ""
    # The schema file's size and mtime stand for its text: reading and hashing 200 kB on every lint is slower.
    schema = schema_file().stat()
    key = "\0".join([f"{schema.st_size}:{schema.st_mtime_ns}", repr(SCHEMA_CORRECTIONS), version, sys.version])
    return f"{zlib.crc32(key.encode('utf-8')):08x}{len(key):x}"


def _compile_validator(path: Path) -> Any:
    """Generate the validator's Python code, compile it and keep the bytecode at `path`."""
    import fastjsonschema

    # use_default=False: fastjsonschema would otherwise write defaults into the data it checks.
    # use_formats=False: GitLab accepts `$VARIABLE` where the schema says "uri"; jsonschema skips formats too.
    source = fastjsonschema.compile_to_code(gitlab_schema(), use_default=False, use_formats=False)
    for line in _GENERATED_IMPORTS:
        source = source.replace(line, "")
    code = compile(source, "<gitlab-ci schema validator>", "exec")
    try:
        import marshal

        from mlci.outputs.atomic import atomic_write

        atomic_write(path, marshal.dumps(code))
    except OSError:
        pass  # a read-only home still lints, only without the cache
    return code


@functools.cache
def fast_validator() -> Callable[[Any], Any] | None:
    """A compiled validator that raises SchemaViolation on the first error, or None without fastjsonschema."""
    package = _package_dir("fastjsonschema")
    if package is None:
        return None
    path = cache_dir() / f"gitlab-ci-validator-{_validator_key(package)}.marshal"
    try:
        import marshal

        code = marshal.loads(path.read_bytes())
    except (OSError, ValueError, EOFError, TypeError):
        code = _compile_validator(path)
    namespace: dict[str, Any] = {"Decimal": _NeverDecimal, "JsonSchemaValueException": SchemaViolation,
                                 "JsonSchemaValuesException": SchemaViolation}
    exec(code, namespace)
    # The generated module defines the root validator first.
    root = next(name for name, value in namespace.items() if name.startswith("validate") and callable(value))
    return namespace[root]


def is_valid(data: Any) -> bool | None:
    """True/False from the fast validator; None when it is not available."""
    validate = fast_validator()
    if validate is None:
        return None
    try:
        validate(data)
    except SchemaViolation:
        return False
    except (RecursionError, TypeError, NameError):
        return None  # let jsonschema give the real answer
    return True


# -- explaining errors ---------------------------------------------------------------------------------

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


def _shown(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _dotted(path) -> str:
    return ".".join(str(part) for part in path) or "(top level)"


def _best_branch(error) -> list:
    """The errors of the oneOf/anyOf branch the value came closest to matching.

    A branch that rejects the value's own type never fitted; among the rest the
    one whose complaint is deepest in the value is the one the author meant.
    """
    branches: dict[Any, list] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    base = len(error.absolute_path)

    def score(errors: list) -> tuple:
        fits_type = not any(e.validator == "type" and len(e.absolute_path) == base for e in errors)
        return fits_type, max(len(e.absolute_path) for e in errors), -len(errors)

    return max(branches.values(), key=score)


def _explain(error) -> Iterator[tuple[tuple, str, bool]]:
    """(path, message, at_key) for one jsonschema error, most specific first."""
    if error.validator in ("oneOf", "anyOf") and error.context:
        for sub in _best_branch(error):
            yield from _explain(sub)
        return
    path = tuple(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = sorted(error.schema.get("properties", {}))
        patterns = list(error.schema.get("patternProperties", {}))
        for key in error.instance:
            if key in known or any(re.search(p, key) for p in patterns):
                continue
            yield (*path, key), f"{_dotted((*path, key))}: unknown key '{key}'{_did_you_mean(key, known)}", True
        return
    if error.validator == "enum":
        allowed = ", ".join(json.dumps(v) for v in error.validator_value)
        hint = _did_you_mean(error.instance, [v for v in error.validator_value if isinstance(v, str)]) \
            if isinstance(error.instance, str) else ""
        yield path, f"{_dotted(path)}: {_shown(error.instance)} is not one of {allowed}{hint}", False
        return
    if error.validator == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        yield path, f"{_dotted(path)}: expected {expected}, got {_shown(error.instance)}", False
        return
    if error.validator == "required":
        yield path, f"{_dotted(path)}: {error.message.replace('is a required property', 'is required')}", False
        return
    yield path, f"{_dotted(path)}: {error.message[:300]}", False


def _did_you_mean(word: str, known: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(str(word), known, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _misspelled_global(data: dict, path: tuple) -> str | None:
    """A top-level key that is not a mapping was probably meant as a global keyword (`stagess:`)."""
    if len(path) != 1 or isinstance(data.get(path[0]), dict):
        return None
    known = sorted(k for k in gitlab_schema().get("properties", {}) if not k.startswith(("$", "!")))
    hint = _did_you_mean(str(path[0]), known)
    if not hint:
        return None
    return f"unknown key '{path[0]}' (a job must be a mapping){hint}"


def validate(data: dict, where: Callable[[tuple], Location], *, where_key: Callable[[tuple], Location] | None = None,
             header: bool = False) -> list[Finding]:
    """Schema findings for a merged configuration; `where(path)` gives each error's location."""
    data = _jsonable(data)
    if is_valid(data):
        return []
    where_key = where_key or where
    findings = []
    seen = set()
    for error in _validator().iter_errors(data):
        for path, message, at_key in _explain(error):
            if len(path) == 1 and not at_key:
                message = _misspelled_global(data, path) or message
            if (path, message) in seen:
                continue
            seen.add((path, message))
            location = where_key(path) if at_key else where(path)
            findings.append(Finding.make("schema", ("header: " if header else "") + message, location))
    return findings
