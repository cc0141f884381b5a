"""GitLab CI YAML as data that remembers where each value came from.

GitLab files differ from plain YAML in three ways this loader handles: an
optional `spec:` header document before `---`, the `!reference [job, key]`
tag, and `$[[ inputs.x ]]` interpolation (done while building, so keys that
are interpolated get their final names and still keep their line numbers).
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping

import yaml

from mlci.errors import ConfigError

# `mlci lint` runs in pre-commit hooks, so its import path stays off `typing` and `dataclasses`
# (together a fifth of its start-up): records are named tuples or small classes.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    Interpolator = Callable[[str, "Location"], Any]

Path_ = tuple  # tuple[str | int, ...]


class Location(namedtuple("Location", "file line column", defaults=(1,))):
    __slots__ = ()

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class _KeyMark:
    """Path suffix under which a mapping key's own location is kept (a misspelled key is reported there)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<key>"


KEY = _KeyMark()


def deepest_mark(marks: Mapping[Path_, Location], path: Path_) -> Location | None:
    """Where the deepest node on `path` that has a location was written (path itself, else a parent)."""
    probe = tuple(path)
    while probe:
        if probe in marks:
            return marks[probe]
        probe = probe[:-1]
    return None


class Reference:
    """`!reference [.job, key, ...]`: replaced by the value it points to once files are merged."""

    __slots__ = ("location", "target")

    def __init__(self, target: tuple[str, ...], location: Location) -> None:
        self.target = target
        self.location = location

    def __repr__(self) -> str:
        return f"Reference({list(self.target)!r} at {self.location})"


class Document:
    """One YAML document: plain data plus the location of every node (keyed by its path)."""

    __slots__ = ("data", "file", "marks")

    def __init__(self, data: Any, file: str, marks: dict[Path_, Location] | None = None) -> None:
        self.data = data
        self.file = file
        self.marks = {} if marks is None else marks

    def where(self, path: Path_) -> Location:
        return deepest_mark(self.marks, path) or self.marks.get((), Location(self.file, 1, 1))

    def where_key(self, path: Path_) -> Location:
        return self.marks.get((*path, KEY)) or self.where(path)


_COLLECTION_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}


class _Builder:
    def __init__(self, file: str, interpolate: Interpolator | None):
        self.file = file
        self.interpolate = interpolate
        self.marks: dict[Path_, Location] = {}
        self.duplicates: list[tuple[str, Location]] = []
        self._constructor = yaml.SafeLoader("")

    def location(self, node: yaml.Node) -> Location:
        return Location(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def build(self, node: yaml.Node, path: Path_ = ()) -> Any:
        here = self.location(node)
        self.marks[path] = here
        if node.tag == "!reference":
            if not isinstance(node, yaml.SequenceNode) or not all(isinstance(i, yaml.ScalarNode) for i in node.value):
                raise ConfigError("!reference takes a list of names, e.g. !reference [.setup, script]",
                                  location=str(here))
            return Reference(tuple(str(item.value) for item in node.value), here)
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _COLLECTION_TAGS:
            raise ConfigError(f"unsupported YAML tag {node.tag}", location=str(here))
        if isinstance(node, yaml.MappingNode):
            self._constructor.flatten_mapping(node)
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self.scalar(key_node)
                if not isinstance(key, (str, int, float, bool)):
                    raise ConfigError("mapping keys must be plain scalars", location=str(self.location(key_node)))
                if key in result:
                    self.duplicates.append((str(key), self.location(key_node)))
                self.marks[(*path, key, KEY)] = self.location(key_node)
                result[key] = self.build(value_node, (*path, key))
                if isinstance(value_node, (yaml.MappingNode, yaml.SequenceNode)):
                    # A block collection starts on the line after its key; people look for the key.
                    self.marks[(*path, key)] = self.location(key_node)
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
        return self.scalar(node)

    def scalar(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise ConfigError("mapping keys must be plain scalars", location=str(self.location(node)))
        try:
            value = self._constructor.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            raise ConfigError(f"unsupported YAML value: {exc.problem}", location=str(self.location(node))) from None
        if isinstance(value, str) and self.interpolate is not None and "$[[" in value:
            return self.interpolate(value, self.location(node))
        return value


class SourceFile:
    """A GitLab CI file: an optional `spec:` header and the configuration body."""

    __slots__ = ("body_node", "duplicates", "header", "path")

    def __init__(self, path: str, header: Document | None, body_node: yaml.Node | None) -> None:
        self.path = path
        self.header = header
        self.body_node = body_node
        self.duplicates: list[tuple[str, Location]] = []

    def body(self, interpolate: Interpolator | None = None) -> Document:
        if self.body_node is None:
            return Document({}, self.path, {(): Location(self.path, 1, 1)})
        builder = _Builder(self.path, interpolate)
        data = builder.build(self.body_node)
        self.duplicates.extend(builder.duplicates)
        return Document(data, self.path, builder.marks)


def parse_source(text: str, file: str) -> SourceFile:
    """Split a CI file into header and body nodes. A first document holding only `spec:` is the header."""
    from mlci.config.yamlload import PIPELINE_LIMITS, compose_all

    nodes = compose_all(text, file, limits=PIPELINE_LIMITS, tags=("!reference",))
    header = None
    if len(nodes) >= 2:
        first = nodes[0]
        if first is None or not _is_header(first):
            line = first.start_mark.line + 1 if first is not None else 1
            raise ConfigError("a file with two YAML documents must start with a `spec:` header",
                              location=f"{file}:{line}:1")
        builder = _Builder(file, None)
        header = Document(builder.build(first), file, builder.marks)
        nodes = nodes[1:]
    if len(nodes) > 1:
        extra = nodes[1]
        line = extra.start_mark.line + 1 if extra is not None else 1
        raise ConfigError("a CI file holds at most a `spec:` header and one configuration document",
                          location=f"{file}:{line}:1")
    source = SourceFile(file, header, nodes[0] if nodes else None)
    if header is not None and not isinstance(header.data, dict):
        raise ConfigError("the header must be a mapping with `spec:`", location=str(header.where(())))
    return source


def _is_header(node: yaml.Node) -> bool:
    return (
        isinstance(node, yaml.MappingNode)
        and len(node.value) >= 1
        and all(isinstance(k, yaml.ScalarNode) and k.value == "spec" for k, _ in node.value)
    )
