"""YAML documents that remember where each value came from (line and column), for error messages."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import re

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


@dataclass
class YamlDocument:
    """The parsed data of one YAML file plus the position of every key and value in it."""

    name: str
    data: Any
    value_marks: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    duplicate_keys: list[Loc] = field(default_factory=list)

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


def parse_yaml(text: str, name: str) -> YamlDocument:
    """Parse one YAML document; raises ``yaml.YAMLError`` on a syntax error."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    doc = YamlDocument(name=name, data=data)
    if node is not None:
        for loc, key_node, value_node in _walk(node, ()):
            doc.value_marks.setdefault(loc, _mark(value_node))
            if key_node is not None:
                if loc in doc.key_marks:
                    doc.duplicate_keys.append(loc)
                    doc.key_marks[loc] = _mark(key_node)
                    doc.value_marks[loc] = _mark(value_node)
                else:
                    doc.key_marks[loc] = _mark(key_node)
    return doc


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
