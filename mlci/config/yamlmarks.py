"""YAML loading that remembers where every value came from.

jsonschema reports errors as paths (['gate', 'rules', 2, 'min']); users need
'mlci.yml:14:9'. We compose the node tree once, then build plain Python data
plus a path -> (line, column) map from it. Duplicate keys are errors, because
YAML silently keeps the last one and a user loses a setting without noticing.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from mlci.config.yamlload import CONFIG_LIMITS, Limits, compose, key_path, read_text
from mlci.errors import ConfigError

TYPE_CHECKING = False  # typing stays unimported on lint's path (see mlci.lint.source)
if TYPE_CHECKING:
    from typing import Any

JsonPath = tuple  # tuple[str | int, ...]


class LocatedDocument:
    """Data and the (line, column) of each value (`marks`) and of each mapping key (`key_marks`)."""

    def __init__(self, data: Any, path: str, marks: dict[JsonPath, tuple[int, int]] | None = None,
                 key_marks: dict[JsonPath, tuple[int, int]] | None = None) -> None:
        self.data = data
        self.path = path
        self.marks = {} if marks is None else marks
        self.key_marks = {} if key_marks is None else key_marks

    def where(self, json_path: JsonPath, *, key: bool = False) -> str:
        """'file:line:col' of the deepest known node on json_path (1-based)."""
        table = self.key_marks if key else self.marks
        probe = tuple(json_path)
        while probe:
            if probe in table:
                line, col = table[probe]
                return f"{self.path}:{line}:{col}"
            if not key and probe in self.key_marks:
                line, col = self.key_marks[probe]
                return f"{self.path}:{line}:{col}"
            probe = probe[:-1]
        line, col = self.marks.get((), (1, 1))
        return f"{self.path}:{line}:{col}"


def _at(path: JsonPath) -> str:
    return f"{key_path(path)}: " if path else ""


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Builder:
    def __init__(self, display_path: str):
        self.display_path = display_path
        self.marks: dict[JsonPath, tuple[int, int]] = {}
        self.key_marks: dict[JsonPath, tuple[int, int]] = {}
        self._constructor = yaml.SafeLoader("")

    def build(self, node: yaml.Node, path: JsonPath = ()) -> Any:
        self.marks[path] = _mark(node)
        if isinstance(node, yaml.MappingNode):
            self._constructor.flatten_mapping(node)
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self._constructor.construct_object(key_node, deep=True)
                if not isinstance(key, (str, int, float, bool)) or key is None:
                    raise ConfigError(f"{_at(path)}mapping keys must be plain scalars", location=self._loc(key_node))
                if key in result:
                    raise ConfigError(f"{_at((*path, key))}duplicate key {key!r}", location=self._loc(key_node))
                self.key_marks[(*path, key)] = _mark(key_node)
                result[key] = self.build(value_node, (*path, key))
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
        return self._constructor.construct_object(node, deep=True)

    def _loc(self, node: yaml.Node) -> str:
        line, col = _mark(node)
        return f"{self.display_path}:{line}:{col}"


def load_located(text: str, display_path: str, *, limits: Limits = CONFIG_LIMITS) -> LocatedDocument:
    root = compose(text, display_path, limits=limits)
    if root is None:
        return LocatedDocument(data=None, path=display_path)
    builder = _Builder(display_path)
    try:
        data = builder.build(root)
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        location = f"{display_path}:{mark.line + 1}:{mark.column + 1}" if mark else display_path
        raise ConfigError(f"unsupported YAML value: {exc.problem}", location=location) from None
    return LocatedDocument(data=data, path=display_path, marks=builder.marks, key_marks=builder.key_marks)


def load_located_file(path: str | Path, *, limits: Limits = CONFIG_LIMITS) -> LocatedDocument:
    return load_located(read_text(path, limits=limits), str(path), limits=limits)
