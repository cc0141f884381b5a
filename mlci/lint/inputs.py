"""`spec:inputs` checking and `$[[ inputs.x ]]` interpolation, as GitLab does it.

GitLab interpolates after parsing: a scalar that is exactly one `$[[ ... ]]`
block becomes the input's value with its type (a list stays a list); a block
inside a longer string is replaced by the value's text. Every problem is a
finding with a location, so one run reports all of them.
"""

from __future__ import annotations

import json
import re
import shlex

from mlci.lint.findings import Finding
from mlci.lint.source import Document, Location

TYPE_CHECKING = False  # typing stays unimported on lint's path (see mlci.lint.source)
if TYPE_CHECKING:
    from typing import Any

BLOCK = re.compile(r"\$\[\[\s*(?P<body>.*?)\s*\]\]")
_INPUT = re.compile(r"^inputs\.(?P<name>[A-Za-z0-9_-]+)$")
_FUNCTION = re.compile(r"^(?P<name>[a-z_]+)(?:\((?P<args>[^)]*)\))?$")
TYPES = ("string", "number", "boolean", "array")
MAX_FUNCTIONS = 3


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


class InputContext:
    """The inputs one file receives: its spec (may be None) and the values given to it."""

    def __init__(self, file: str, spec: dict[str, dict] | None, given: dict[str, Any], given_at: Location,
                 header: Document | None = None) -> None:
        self.file = file
        self.spec = spec
        self.given = given
        self.given_at = given_at
        self.header = header
        self.findings: list[Finding] = []
        self.values: dict[str, Any] = {}

    def error(self, message: str, location: Location, rule: str = "inputs") -> None:
        self.findings.append(Finding.make(rule, message, location))

    def resolve(self) -> None:
        """Check the given inputs against the spec and work out each input's value."""
        if self.spec is None:
            if self.given:
                self.error(f"inputs given ({', '.join(sorted(self.given))}) but {self.file} has no `spec:inputs` "
                           "header", self.given_at)
            return
        for name in self.given:
            if name not in self.spec:
                close = [known for known in self.spec if known.replace("_", "-") == str(name).replace("_", "-")]
                hint = f"; did you mean '{close[0]}'?" if close else f"; {self.file} accepts: {', '.join(self.spec)}"
                self.error(f"unknown input '{name}'{hint}", self.given_at)
        for name, entry in self.spec.items():
            entry = entry if isinstance(entry, dict) else {}
            where = self.header.where(("spec", "inputs", name)) if self.header else self.given_at
            kind = entry.get("type", "string")
            if kind not in TYPES:
                self.error(f"input '{name}': unknown type '{kind}' (one of {', '.join(TYPES)})", where)
                continue
            if name in self.given:
                value, origin = self.given[name], self.given_at
            elif "default" in entry:
                value, origin = entry["default"], where
            else:
                self.error(f"input '{name}' is required by {self.file} and was not given", self.given_at)
                continue
            if self._valid(name, entry, kind, value, origin):
                self.values[name] = value

    def _valid(self, name: str, entry: dict, kind: str, value: Any, origin: Location) -> bool:
        if _type_of(value) != kind:
            article = "an" if kind == "array" else "a"
            self.error(f"input '{name}': expected {article} {kind}, got {_type_of(value)} {json.dumps(value)[:60]}",
                       origin)
            return False
        options = entry.get("options")
        if options:
            values = value if kind == "array" else [value]
            for item in values:
                if item not in options:
                    allowed = ", ".join(json.dumps(option) for option in options)
                    self.error(f"input '{name}': {json.dumps(item)[:60]} is not one of the options ({allowed})", origin)
                    return False
        regex = entry.get("regex")
        if regex and kind == "string":
            pattern = regex[1:-1] if len(regex) > 1 and regex.startswith("/") and regex.endswith("/") else regex
            try:
                matched = re.search(pattern, value) is not None
            except re.error as exc:
                self.error(f"input '{name}': invalid regex {regex!r}: {exc}", origin)
                return False
            if not matched:
                self.error(f"input '{name}': {json.dumps(value)[:60]} does not match {regex}", origin)
                return False
        return True

    # -- interpolation --------------------------------------------------------
    def interpolate(self, text: str, location: Location) -> Any:
        blocks = list(BLOCK.finditer(text))
        if not blocks:
            if "$[[" in text:
                self.error("unterminated `$[[` interpolation block", location, rule="interpolation")
            return text
        if len(blocks) == 1 and blocks[0].span() == (0, len(text)):
            return self._evaluate(blocks[0]["body"], location)
        return BLOCK.sub(lambda match: _as_text(self._evaluate(match["body"], location)), text)

    def _evaluate(self, body: str, location: Location) -> Any:
        parts = [part.strip() for part in body.split("|")]
        reference, functions = parts[0], parts[1:]
        if reference.startswith("component."):
            return f"$[[ {body} ]]"  # component context: known only to GitLab when it includes a component
        match = _INPUT.match(reference)
        if not match:
            self.error(f"cannot interpolate `$[[ {body} ]]`: expected inputs.<name>", location, rule="interpolation")
            return ""
        name = match["name"]
        if self.spec is None or name not in self.spec:
            self.error(f"`$[[ {body} ]]` names input '{name}', which the spec does not declare", location,
                       rule="interpolation")
            return ""
        if name not in self.values:
            return ""  # already reported by resolve()
        value = self.values[name]
        if len(functions) > MAX_FUNCTIONS:
            self.error(f"at most {MAX_FUNCTIONS} functions in one interpolation block", location, rule="interpolation")
            return value
        for function in functions:
            value = self._apply(function, value, location)
        return value

    def _apply(self, function: str, value: Any, location: Location) -> Any:
        match = _FUNCTION.match(function)
        if not match:
            self.error(f"cannot parse interpolation function `{function}`", location, rule="interpolation")
            return value
        name, args = match["name"], [a.strip() for a in (match["args"] or "").split(",") if a.strip()]
        if name == "expand_vars":
            return value  # variables are expanded by GitLab at pipeline creation; nothing to check here
        if name == "truncate":
            if len(args) != 2 or not all(a.isdigit() for a in args):
                self.error("truncate takes two numbers: truncate(offset, length)", location, rule="interpolation")
                return value
            offset, length = int(args[0]), int(args[1])
            return _as_text(value)[offset: offset + length]
        if name == "posix_escape":
            return shlex.quote(_as_text(value))
        self.error(f"unknown interpolation function `{name}` (expand_vars, truncate, posix_escape)", location,
                   rule="interpolation")
        return value
