"""YAML documents that remember where each value came from (line and column), for error messages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

__all__ = ["Issue", "Loc", "YamlDocument", "format_loc", "parse_yaml"]

Loc = tuple[str | int, ...]

_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Issue:
    """One problem found in a pipeline file: an error, or a warning that does not stop the build."""

    file: str
    line: int
    column: int
    loc: Loc
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        where = f" {format_loc(self.loc)}:" if self.loc else ""
        prefix = "warning: " if self.severity == "warning" else ""
        message = " ".join(self.message.split())
        return f"{self.file}:{self.line}:{self.column}{where} {prefix}{message}"


def format_loc(loc: Loc) -> str:
    """``('tasks', 2, 'resources', 'mem')`` -> ``tasks[2].resources.mem``; dotted keys are quoted."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not _PLAIN_KEY.match(part):
            text += f"[{part!r}]"
        else:
            text += f".{part}" if text else part
    return text


class YamlDocument:
    """The parsed data of one YAML file; positions of keys and values are computed when first asked for."""

    def __init__(self, name: str, data: Any, node: yaml.Node | None = None) -> None:
        self.name = name
        self.data = data
        self.duplicate_keys: list[Loc] = []
        self._node = node
        self._marks: tuple[dict[Loc, tuple[int, int]], dict[Loc, tuple[int, int]]] | None = None

    @property
    def value_marks(self) -> dict[Loc, tuple[int, int]]:
        return self._positions()[0]

    @property
    def key_marks(self) -> dict[Loc, tuple[int, int]]:
        return self._positions()[1]

    def _positions(self) -> tuple[dict[Loc, tuple[int, int]], dict[Loc, tuple[int, int]]]:
        if self._marks is None:
            values: dict[Loc, tuple[int, int]] = {}
            keys: dict[Loc, tuple[int, int]] = {}
            if self._node is not None:
                for loc, key_node, value_node in _walk(self._node, ()):
                    values[loc] = _mark(value_node)  # the last duplicate wins, as in the data
                    if key_node is not None:
                        keys[loc] = _mark(key_node)
            self._marks = (values, keys)
        return self._marks

    def position(self, loc: Loc, *, key: bool = False) -> tuple[int, int]:
        """1-based (line, column) of ``loc``, or of its nearest ancestor that exists in the file."""
        if key and loc in self.key_marks:
            return self.key_marks[loc]
        for end in range(len(loc), -1, -1):
            mark = self.value_marks.get(loc[:end])
            if mark is not None:
                return mark
        return (1, 1)

    def issue(self, loc: Loc, message: str, *, severity: str = "error", key: bool = False) -> Issue:
        line, column = self.position(loc, key=key)
        return Issue(self.name, line, column, loc, message, severity)

    def duplicate_key_issues(self) -> list[Issue]:
        """One error per key written twice in a mapping (YAML would keep only the last value)."""
        return [self.issue(loc, f"duplicate key {loc[-1]!r}", key=True) for loc in self.duplicate_keys]


_STR_TAG = "tag:yaml.org,2002:str"


def parse_yaml(text: str, name: str) -> YamlDocument:
    """Parse one YAML document (YAML 1.1 like ``yaml.safe_load``); raises ``yaml.YAMLError``."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        doc = YamlDocument(name=name, data=None, node=node)
        if node is not None:
            doc.data = _construct(loader, node, (), doc.duplicate_keys)
    finally:
        loader.dispose()
    return doc


def _construct(loader: Any, node: yaml.Node, loc: Loc, duplicates: list[Loc]) -> Any:
    """Plain data from a node, noting duplicate keys; non-text scalars and odd tags go to PyYAML."""
    if isinstance(node, yaml.ScalarNode):
        return node.value if node.tag == _STR_TAG else loader.construct_object(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return [_construct(loader, item, (*loc, i), duplicates) for i, item in enumerate(node.value)]
    if (
        isinstance(node, yaml.MappingNode)
        and node.tag == "tag:yaml.org,2002:map"
        and not any(k.tag == "tag:yaml.org,2002:merge" for k, _ in node.value)
    ):
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _construct(loader, key_node, loc, duplicates)
            if isinstance(key, list | dict):
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    "found an unhashable key",
                    key_node.start_mark,
                )
            if key in mapping:
                duplicates.append((*loc, key))
            mapping[key] = _construct(loader, value_node, (*loc, key), duplicates)
        return mapping
    return loader.construct_object(node, deep=True)


def _mark(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def _walk(node: yaml.Node, loc: Loc) -> Iterator[tuple[Loc, yaml.Node | None, yaml.Node]]:
    if not loc:
        yield loc, None, node
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.start_mark)
            child = (*loc, key)
            yield child, key_node, value_node
            yield from _walk(value_node, child)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = (*loc, index)
            yield child, None, item
            yield from _walk(item, child)
