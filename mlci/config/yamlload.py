"""The one YAML loader for every file mlci reads: mlci.yml, contracts, .gitlab-ci.yml and its includes,
template manifests, and YAML-typed values on the command line.

YAML can hurt: a 400-byte alias bomb expands to a billion nodes, a recursive alias never ends, a
deeply nested file exhausts the stack, a huge file takes minutes, and an unknown tag
(`!!python/object/apply:...`) silently means something else. Every input goes through limits
here, checked while the node tree is composed, so each failure is a located ConfigError (exit 2)
in well under a second:

- size: checked before reading (GitLab's own default limit for a CI file is 2 MB);
- depth of nesting (GitLab's is 150);
- nodes after alias expansion, counted per node as it is composed, so a bomb is caught at the
  anchor that explodes, never expanded;
- recursive aliases;
- explicit tags: only YAML's core ones (`!!str`, `!!int`, `!!map`, ...) and those a caller names
  (`!reference` for GitLab CI files);
- text must be UTF-8; a stray byte is reported with its line and column.

Parsing uses libyaml's C parser when present, with PyYAML's composer on top (the limits live there).
"""

from __future__ import annotations

import os
from collections import namedtuple
from collections.abc import Iterable
from pathlib import Path

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from mlci.errors import ConfigError

TYPE_CHECKING = False  # typing stays unimported on lint's path (see mlci.lint.source)
if TYPE_CHECKING:
    from typing import Any

CORE_TAGS = frozenset(f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "map", "seq"))


Limits = namedtuple("Limits", "max_bytes max_depth max_nodes")  # max_nodes counts after alias expansion


CONFIG_LIMITS = Limits(max_bytes=1 << 20, max_depth=100, max_nodes=250_000)
PIPELINE_LIMITS = Limits(max_bytes=2 << 20, max_depth=150, max_nodes=1_000_000)
VALUE_LIMITS = Limits(max_bytes=64 << 10, max_depth=20, max_nodes=10_000)


def _where(path: str, mark) -> str:
    return f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else path


def key_path(parts: Iterable[Any]) -> str:
    """('gate', 'rules', 2, 'min') -> 'gate.rules[2].min' (a very deep path keeps its ends)."""
    parts = list(parts)
    if len(parts) > 8:
        return f"{key_path(parts[:4])}...{key_path(parts[-2:])}"
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


class _LimitedComposer(Composer):
    """PyYAML's composer, counting depth, expanded nodes and checking tags as it goes."""

    def _setup(self, display_path: str, limits: Limits, tags: frozenset[str]) -> None:
        self.display_path = display_path
        self.limits = limits
        self.allowed_tags = CORE_TAGS | tags
        self.sizes: dict[int, int] = {}  # id(node) -> nodes it stands for once aliases are expanded
        self.keys: list[Any] = []

    def _fail(self, message: str, mark) -> ConfigError:
        at = key_path(self.keys)
        return ConfigError(f"{at}: {message}" if at else message, location=_where(self.display_path, mark))

    def compose_document(self):
        self.get_event()  # DocumentStartEvent
        node = self.compose_node(None, None)
        self.get_event()  # DocumentEndEvent
        self.anchors = {}
        self.sizes = {}
        return node

    def compose_node(self, parent, index):
        if self.check_event(AliasEvent):
            event = self.get_event()
            anchor = event.anchor
            if anchor not in self.anchors:
                raise self._fail(f"found undefined alias *{anchor}", event.start_mark)
            node = self.anchors[anchor]
            if id(node) not in self.sizes:
                raise self._fail(f"the alias *{anchor} refers to a node that contains it (a recursive alias)",
                                 event.start_mark)
            return node
        event = self.peek_event()
        if len(self.keys) >= self.limits.max_depth:
            raise self._fail(f"nested deeper than {self.limits.max_depth} levels", event.start_mark)
        tag = getattr(event, "tag", None)
        if tag not in (None, "!") and tag not in self.allowed_tags:
            shown = "!!" + tag[len("tag:yaml.org,2002:"):] if tag.startswith("tag:yaml.org,2002:") else tag
            raise self._fail(f"unknown YAML tag {shown}; mlci reads plain YAML only (remove the tag)",
                             event.start_mark)
        anchor = event.anchor
        if anchor is not None and anchor in self.anchors:
            raise self._fail(f"anchor &{anchor} is defined twice", event.start_mark)
        self.descend_resolver(parent, index)
        if self.check_event(ScalarEvent):
            node = self.compose_scalar_node(anchor)
            self.sizes[id(node)] = 1
        elif self.check_event(SequenceStartEvent):
            node = self.compose_sequence_node(anchor)
        elif self.check_event(MappingStartEvent):
            node = self.compose_mapping_node(anchor)
        self.ascend_resolver()
        return node

    def _sized(self, node: Node, children: Iterable[Node]) -> Node:
        total = 1 + sum(self.sizes[id(child)] for child in children)
        if total > self.limits.max_nodes:
            raise self._fail(
                f"expands to more than {self.limits.max_nodes:,} values once its aliases are resolved "
                "(an alias bomb?); write the values out or simplify the anchors", node.start_mark)
        self.sizes[id(node)] = total
        return node

    def compose_sequence_node(self, anchor):
        start_event = self.get_event()
        tag = start_event.tag
        if tag is None or tag == "!":
            tag = self.resolve(SequenceNode, None, start_event.implicit)
        node = SequenceNode(tag, [], start_event.start_mark, None, flow_style=start_event.flow_style)
        if anchor is not None:
            self.anchors[anchor] = node
        index = 0
        while not self.check_event(SequenceEndEvent):
            self.keys.append(index)
            node.value.append(self.compose_node(node, index))
            self.keys.pop()
            index += 1
        node.end_mark = self.get_event().end_mark
        return self._sized(node, node.value)

    def compose_mapping_node(self, anchor):
        start_event = self.get_event()
        tag = start_event.tag
        if tag is None or tag == "!":
            tag = self.resolve(MappingNode, None, start_event.implicit)
        node = MappingNode(tag, [], start_event.start_mark, None, flow_style=start_event.flow_style)
        if anchor is not None:
            self.anchors[anchor] = node
        while not self.check_event(MappingEndEvent):
            item_key = self.compose_node(node, None)
            self.keys.append(item_key.value if isinstance(item_key, ScalarNode) else "?")
            item_value = self.compose_node(node, item_key)
            self.keys.pop()
            node.value.append((item_key, item_value))
        node.end_mark = self.get_event().end_mark
        return self._sized(node, [n for pair in node.value for n in pair])


try:
    from yaml.cyaml import CParser as _Parser

    class _Loader(_LimitedComposer, _Parser, SafeConstructor, Resolver):
        def __init__(self, stream):
            _Parser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

except ImportError:  # PyYAML without libyaml: the same composer over the pure-Python parser
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Loader(_LimitedComposer, Reader, Scanner, Parser, SafeConstructor, Resolver):  # type: ignore[no-redef]
        def __init__(self, stream):
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)


def _check_size(size: int, display_path: str, limits: Limits) -> None:
    if size > limits.max_bytes:
        raise ConfigError(
            f"the file is {size / 1024 / 1024:.1f} MB; mlci reads YAML files of at most "
            f"{limits.max_bytes / 1024 / 1024:g} MB", location=f"{display_path}:1:1",
            hint="is this the right file? split it, or keep large data out of YAML",
        )


def decode(data: bytes, display_path: str) -> str:
    """UTF-8 text (a BOM is dropped); a stray byte is reported as file:line:col."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[:exc.start].decode("utf-8", "replace")
        line = before.count("\n") + 1
        column = len(before) - (before.rfind("\n") + 1) + 1
        raise ConfigError(f"not UTF-8 text: byte 0x{data[exc.start]:02x} cannot be read",
                          location=f"{display_path}:{line}:{column}",
                          hint="save the file as UTF-8") from None
    return text.removeprefix("\ufeff")


def read_text(path: str | os.PathLike, *, limits: Limits = CONFIG_LIMITS, display_path: str | None = None) -> str:
    path = Path(path)
    shown = display_path or str(path)
    try:
        _check_size(path.stat().st_size, shown, limits)
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError("file not found", location=shown) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, not a file", location=shown) from None
    except OSError as exc:
        raise ConfigError(f"cannot read file: {exc.strerror or exc}", location=shown) from None
    return decode(data, shown)


def compose_all(text: str, display_path: str, *, limits: Limits = CONFIG_LIMITS,
                tags: Iterable[str] = ()) -> list[Node | None]:
    """Every document's node tree, within the limits (a text with only comments has none)."""
    _check_size(len(text.encode("utf-8", "surrogatepass")), display_path, limits)
    loader = _Loader(text)
    loader._setup(display_path, limits, frozenset(tags))
    documents: list[Node | None] = []
    try:
        loader.get_event()  # StreamStartEvent
        while not loader.check_event(StreamEndEvent):
            documents.append(loader.compose_document())
        return documents
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise ConfigError(f"invalid YAML: {exc.problem or exc.context or exc}",
                          location=_where(display_path, mark)) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", location=display_path) from None
    finally:
        loader.dispose()


def compose(text: str, display_path: str, *, limits: Limits = CONFIG_LIMITS, tags: Iterable[str] = ()) -> Node | None:
    """The single document of `text` (None when it has no content)."""
    documents = compose_all(text, display_path, limits=limits, tags=tags)
    if len(documents) > 1:
        raise ConfigError("expected one YAML document, found several (a second `---`)",
                          location=f"{display_path}:1:1")
    return documents[0] if documents else None


def _construct(node: Node | None, display_path: str) -> Any:
    if node is None:
        return None
    try:
        return SafeConstructor().construct_document(node)
    except yaml.constructor.ConstructorError as exc:
        raise ConfigError(f"unsupported YAML value: {exc.problem}",
                          location=_where(display_path, exc.problem_mark)) from None


def safe_load(text: str, display_path: str = "<value>", *, limits: Limits = VALUE_LIMITS) -> Any:
    """yaml.safe_load with the limits (for command-line values and small generated texts)."""
    return _construct(compose(text, display_path, limits=limits), display_path)


def safe_load_all(text: str, display_path: str, *, limits: Limits = PIPELINE_LIMITS) -> list[Any]:
    """yaml.safe_load_all with the limits."""
    return [_construct(node, display_path) for node in compose_all(text, display_path, limits=limits)]

