"""YAML documents checked into pydantic models, with every problem as one line ``file:line:column field: reason``.

One flow for every YAML file of the project (pipeline files, backendai-lite's configuration, training recipes):
read the file, parse it keeping the line and column of each value, refuse duplicate keys, require a mapping at the
top level, apply ``key.sub=value`` overrides, validate with pydantic, and translate pydantic's errors into
:class:`Issue` lines (:func:`load_model`). The parser bounds what a document may expand to
(:data:`MAX_NODES`, :data:`MAX_DEPTH`), so a small file of nested aliases cannot stall a reader.

This module imports only PyYAML, pydantic and the standard library: the provider and ``training`` (which runs
where the provider is not installed) share it.
"""

from __future__ import annotations

import copy
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from training.exceptions import YamlDocumentError

__all__ = [
    "MAX_DEPTH",
    "MAX_NODES",
    "Issue",
    "Loc",
    "YamlDocument",
    "YamlDocumentError",
    "apply_overrides",
    "decode",
    "format_loc",
    "load_model",
    "parse_yaml",
    "validation_issues",
]

Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)

#: The most values (scalars, lists and mappings) a document may stand for, each alias counted as the values it
#: repeats: a 5,000-task pipeline has about 150,000; nine levels of nine-fold aliases in 526 bytes stand for 387
#: million.
MAX_NODES = 1_000_000
#: The deepest nesting of lists and mappings a document may have (a pipeline file needs six levels).
MAX_DEPTH = 100

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR_TAG = "tag:yaml.org,2002:str"
_MAP_TAG = "tag:yaml.org,2002:map"
_MERGE_TAG = "tag:yaml.org,2002:merge"
#: parts of pydantic's error locations that name union members or validators, not fields of the document
_UNION_TAGS = {"bool", "str", "int", "float", "datetime", "date", "none"}


@dataclass(frozen=True)
class Issue:
    """One problem found in a document: an error, or a warning that does not stop the build.

    ``line`` 0 means the problem has no position in a file (an unreadable file, a command-line override); ``file``
    then names where it came from.
    """

    file: str
    line: int
    column: int
    loc: Loc
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        prefix = "warning: " if self.severity == "warning" else ""
        message = prefix + " ".join(self.message.split())
        where = f"{self.file}:{self.line}:{self.column}" if self.line else f"{self.file}:"
        if self.loc:
            return f"{where} {format_loc(self.loc)}: {message}"
        return f"{where}: {message}" if self.line else f"{where} {message}"


def format_loc(loc: Loc) -> str:
    """``('tasks', 2, 'resources', 'mem')`` -> ``tasks[2].resources.mem``; dotted keys are quoted."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not _PLAIN_KEY.fullmatch(part):
            text += f"[{part!r}]"
        else:
            text += f".{part}" if text else part
    return text


class YamlDocument:
    """The parsed data of one YAML file; positions of keys and values are computed when first asked for.

    They come from ``node`` or, when the document keeps its ``text`` instead, from that text composed again: a
    document kept for long (a checked pipeline) then holds no tree of nodes for the garbage collector to scan.
    """

    def __init__(
        self, name: str, data: Any, node: yaml.Node | None = None, *, text: str | None = None
    ) -> None:
        self.name = name
        self.data = data
        self.duplicate_keys: list[Loc] = []
        self._node = node
        self._text = text
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
            node = self._node if self._node is not None or self._text is None else _compose(self._text)
            if node is not None:
                for loc, key_node, value_node in _walk(node, ()):
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


def load_model(
    source: Path | str,
    model: type[M],
    *,
    name: str | None = None,
    what: str = "the document",
    overrides: Sequence[str] = (),
    empty_is_mapping: bool = False,
    secret: Callable[[Loc], bool] | None = None,
    error: type[YamlDocumentError] = YamlDocumentError,
) -> tuple[M, YamlDocument]:
    """Read, parse and validate one YAML document into ``model``; raises ``error`` with every problem found.

    ``source`` is a file (a :class:`~pathlib.Path`) or the text itself (a ``str``, then ``name`` is required);
    ``name`` is the file name used in messages (default: the path). ``what`` names the document in the
    top-level message (``"<what> must be a mapping ..."``). ``overrides`` are ``key.sub=value`` items whose
    values are parsed as YAML; an error in a value they wrote names the override instead of a line.
    ``empty_is_mapping`` lets an empty file stand for ``{}``. Input values are echoed in messages except at
    locations where ``secret(loc)`` is true.
    """
    if isinstance(source, Path):
        name = name or str(source)
        text = _read(source, name, error)
    elif name is None:
        raise TypeError("load_model: a text source needs a name")
    else:
        text = source
    try:
        document = parse_yaml(text, name)
    except YamlDocumentError as exc:
        raise error(exc.issues) from None
    issues = document.duplicate_key_issues()
    data = {} if document.data is None and empty_is_mapping else document.data
    if not isinstance(data, dict):
        issues.append(document.issue((), f"{what} must be a mapping at the top level"))
        raise error(issues)
    try:
        data = apply_overrides(data, overrides)
        value = model.model_validate(data)
    except YamlDocumentError as exc:
        raise error([*issues, *exc.issues]) from None
    except ValidationError as exc:
        raise error(
            [*issues, *validation_issues(exc, document, overrides=overrides, secret=secret)]
        ) from None
    if issues:
        raise error(issues)
    return value, document


def _read(path: Path, name: str, error: type[YamlDocumentError]) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise error([Issue(name, 0, 0, (), f"cannot read the file: {exc.strerror or exc}")]) from None
    return decode(raw, name, error)


def decode(raw: bytes, name: str, error: type[YamlDocumentError] = YamlDocumentError) -> str:
    """The text of a file's bytes (UTF-8); raises ``error`` naming the first byte that is not."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line, column = before.count(b"\n") + 1, exc.start - (before.rfind(b"\n") + 1) + 1
        problem = f"cannot read the file: not UTF-8 text (byte 0x{raw[exc.start]:02x})"
        raise error([Issue(name, line, column, (), problem)]) from None


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of ``data`` with each ``key.sub=value`` item applied (the value parsed as YAML); ``data`` itself
    when there are none."""
    if not overrides:
        return data
    result = copy.deepcopy(data)
    for item in overrides:
        source = f"--set {item}"
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise YamlDocumentError([Issue(source, 0, 0, (), "expected key=value, e.g. sft.max_steps=10")])
        target = result
        *parents, leaf = key.split(".")
        for depth, part in enumerate(parents, 1):
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                loc = tuple(parents[:depth])
                raise YamlDocumentError([Issue(source, 0, 0, loc, "is not a section")])
        target[leaf] = parse_yaml(text, source).data
    return result


def validation_issues(
    exc: ValidationError,
    document: YamlDocument,
    *,
    overrides: Sequence[str] = (),
    secret: Callable[[Loc], bool] | None = None,
) -> list[Issue]:
    """One :class:`Issue` per pydantic error, located in ``document`` or at the override that wrote the value."""
    issues = []
    for err in exc.errors(include_url=False):
        loc = _clean_loc(tuple(err["loc"]), document)
        message = _message(err, hide_value=secret is not None and secret(loc))
        override = _override_for(loc, overrides)
        if override is not None:
            issues.append(Issue(f"--set {override}", 0, 0, loc, message))
        else:
            issues.append(document.issue(loc, message, key=err["type"] == "extra_forbidden"))
    return issues


def _message(err: Any, *, hide_value: bool) -> str:
    kind = err["type"]
    shown = "the value" if hide_value else _short(err.get("input"))
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind in ("value_error", "assertion_error"):
        return str(err.get("ctx", {}).get("error", err["msg"]))
    if kind == "literal_error":
        return f"{shown} is not allowed (use {err.get('ctx', {}).get('expected', '')})"
    return f"{shown} is not valid: {err['msg'][:1].lower() + err['msg'][1:]}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _clean_loc(loc: Loc, document: YamlDocument) -> Loc:
    """Drop pydantic's internal parts (union members, ``[key]``) so the path matches the YAML."""
    cleaned: list[str | int] = []
    for part in loc:
        internal = isinstance(part, str) and ("[" in part or part in _UNION_TAGS)
        if internal and (*cleaned, part) not in document.value_marks:
            continue
        cleaned.append(part)
    return tuple(cleaned)


def _override_for(loc: Loc, overrides: Sequence[str]) -> str | None:
    """The last override that wrote ``loc`` or a section above it."""
    for item in reversed(overrides):
        key = tuple(item.partition("=")[0].split("."))
        if loc[: len(key)] == key:
            return item
    return None


def parse_yaml(text: str, name: str) -> YamlDocument:
    """Parse one YAML document (YAML 1.1 like ``yaml.safe_load``); raises :class:`YamlDocumentError`."""
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            doc = YamlDocument(name=name, data=None, text=text)
            if node is not None:
                _check_extent(node)
                doc.data = _construct(loader, node, (), doc.duplicate_keys)
        finally:
            loader.dispose()
    except _TooLarge as exc:
        line, column = _mark(exc.node)
        raise YamlDocumentError([Issue(name, line, column, (), exc.problem)]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = " ".join(part for part in (exc.context, exc.problem) if part)
        raise YamlDocumentError([Issue(name, line, column, (), f"YAML syntax error: {problem}")]) from None
    except yaml.reader.ReaderError as exc:
        before = text[: exc.position]
        line, column = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
        problem = f"character {exc.character!r} is not allowed in YAML ({exc.reason})"
        raise YamlDocumentError([Issue(name, line, column, (), problem)]) from None
    except yaml.YAMLError as exc:
        problem = f"YAML error: {' '.join(str(exc).split())}"
        raise YamlDocumentError([Issue(name, 1, 1, (), problem)]) from None
    except RecursionError:  # the pure-Python composer, without libyaml's own nesting limit
        raise YamlDocumentError([Issue(name, 1, 1, (), _TOO_DEEP)]) from None
    return doc


_TOO_MANY = (
    f"the document expands to more than {MAX_NODES:,} values (each alias counts as the values it repeats)"
)
_TOO_DEEP = f"the document nests lists and mappings deeper than {MAX_DEPTH} levels"


def _compose(text: str) -> yaml.Node | None:
    """The node tree of a text that has been parsed before."""
    loader = _Loader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


class _TooLarge(Exception):
    def __init__(self, node: yaml.Node, problem: str) -> None:
        super().__init__(problem)
        self.node = node
        self.problem = problem


def _check_extent(root: yaml.Node) -> None:
    """Refuse a document that expands beyond :data:`MAX_NODES` values or :data:`MAX_DEPTH` levels.

    Aliases are shared nodes in the composed graph, so this measures each distinct list or mapping once (linear
    in the file) while computing the size of the tree that constructing the data, and locating its values, would
    walk. The walk goes no deeper than :data:`MAX_DEPTH` levels.
    """
    extent: dict[int, tuple[int, int]] = {}  # id(list or mapping) -> (values, levels) of its expanded tree
    on_path: set[int] = set()

    def measure(node: yaml.Node, level: int) -> tuple[int, int]:
        """(values, levels) of ``node``'s expanded tree; ``level``: the lists and mappings above it."""
        key = id(node)
        known = extent.get(key)
        if known is None:
            if key in on_path:
                raise _TooLarge(node, "an alias refers to a list or mapping that contains it")
            if level >= MAX_DEPTH:
                raise _TooLarge(node, _TOO_DEEP)
            on_path.add(key)
            size, depth = 1, 0
            below = level + 1
            items = node.value if isinstance(node, yaml.SequenceNode) else chain.from_iterable(node.value)
            for child in items:
                if isinstance(child, yaml.ScalarNode):
                    size += 1
                    continue
                child_size, child_depth = measure(child, below)
                size += child_size
                depth = max(depth, child_depth)
            on_path.discard(key)
            known = extent[key] = (size, depth + 1)
            if size > MAX_NODES:
                raise _TooLarge(node, _TOO_MANY)
        elif level + known[1] > MAX_DEPTH:  # a list or mapping met again, under more levels
            raise _TooLarge(node, _TOO_DEEP)
        return known

    if isinstance(root, yaml.CollectionNode):
        measure(root, 0)


def _construct(loader: Any, node: yaml.Node, loc: Loc, duplicates: list[Loc]) -> Any:
    """Plain data from a node, noting duplicate keys; non-text scalars and odd tags go to PyYAML.

    Text scalars, most of a document, are read in place rather than through another call.
    """
    if isinstance(node, yaml.ScalarNode):
        return node.value if node.tag == _STR_TAG else _construct_with_pyyaml(loader, node)
    if isinstance(node, yaml.SequenceNode):
        return [
            item.value
            if item.tag == _STR_TAG and isinstance(item, yaml.ScalarNode)
            else _construct(loader, item, (*loc, index), duplicates)
            for index, item in enumerate(node.value)
        ]
    if (
        isinstance(node, yaml.MappingNode)
        and node.tag == _MAP_TAG
        and _MERGE_TAG not in {key_node.tag for key_node, _ in node.value}
    ):
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _STR_TAG and isinstance(key_node, yaml.ScalarNode):
                key = key_node.value
            else:
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
            if value_node.tag == _STR_TAG and isinstance(value_node, yaml.ScalarNode):
                mapping[key] = value_node.value
            else:
                mapping[key] = _construct(loader, value_node, (*loc, key), duplicates)
        return mapping
    return _construct_with_pyyaml(loader, node)


def _construct_with_pyyaml(loader: Any, node: yaml.Node) -> Any:
    try:
        return loader.construct_object(node, deep=True)
    except ValueError as exc:  # e.g. an integer longer than Python converts from text
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:int":
            limit = sys.get_int_max_str_digits()
            raise _TooLarge(node, f"the integer has more than {limit} digits") from None
        raise _TooLarge(node, f"cannot read the value: {exc}") from None


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
