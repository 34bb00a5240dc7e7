"""The slice of the manager's GraphQL API that clients use after termination.

``compute_session(id:)`` and ``compute_session_list(filter: "name == ...")`` (terminated sessions included).

A small parser for the query subset (operation with variables, fields, arguments, aliases, nested
selections) and resolvers for ``ComputeSession`` and its ``containers``. JSON-typed fields
(``status_data``, ``occupied_slots``, ...) are JSON strings, as graphene's ``JSONString`` serialises them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["GraphQLError", "execute", "parse"]

_TOKEN_RE = re.compile(
    r'\s+|,|#[^\n]*|(?P<tok>"(?:\\.|[^"\\])*"|-?\d+(?:\.\d+)?|[_A-Za-z][_0-9A-Za-z]*|[{}():!$\[\]=])'
)


class GraphQLError(ValueError):
    """A query that cannot be parsed or asks for unknown fields."""


@dataclass
class Field:
    """One selected field."""

    name: str
    alias: str
    args: dict[str, Any] = field(default_factory=dict)
    selections: list[Field] = field(default_factory=list)


def _tokens(text: str) -> list[str]:
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            raise GraphQLError(f"Syntax Error: unexpected character {text[pos]!r} at {pos}")
        if match.group("tok"):
            tokens.append(match.group("tok"))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str, variables: dict[str, Any]) -> None:
        self.tokens = _tokens(text)
        self.pos = 0
        self.variables = variables

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise GraphQLError(
                f"Syntax Error: expected {expected or 'a token'}, found {token or 'end of query'}"
            )
        self.pos += 1
        return token

    def document(self) -> list[Field]:
        if self.peek() in ("query", "mutation", "subscription"):
            if self.take() != "query":
                raise GraphQLError("Only queries are supported by backendai-lite.")
            if self.peek() not in ("{", "("):
                self.take()
            if self.peek() == "(":
                self.skip_variable_definitions()
        selections = self.selection_set()
        if self.peek() is not None:
            raise GraphQLError("Syntax Error: only one operation is supported.")
        return selections

    def skip_variable_definitions(self) -> None:
        depth = 0
        while True:
            token = self.take()
            if token == "(":
                depth += 1
            elif token == ")":
                depth -= 1
                if depth == 0:
                    return

    def selection_set(self) -> list[Field]:
        self.take("{")
        fields = []
        while self.peek() != "}":
            fields.append(self.field())
        self.take("}")
        if not fields:
            raise GraphQLError("Syntax Error: empty selection set.")
        return fields

    def field(self) -> Field:
        name = self.take()
        alias = name
        if self.peek() == ":":
            self.take(":")
            name = self.take()
        result = Field(name=name, alias=alias)
        if self.peek() == "(":
            self.take("(")
            while self.peek() != ")":
                arg = self.take()
                self.take(":")
                result.args[arg] = self.value()
            self.take(")")
        if self.peek() == "{":
            result.selections = self.selection_set()
        return result

    def value(self) -> Any:
        token = self.take()
        if token == "$":
            name = self.take()
            if name not in self.variables:
                raise GraphQLError(f"Variable '${name}' was not provided.")
            return self.variables[name]
        if token.startswith('"'):
            return json.loads(token)
        if token in ("true", "false"):
            return token == "true"
        if token == "null":
            return None
        if re.match(r"-?\d", token):
            return float(token) if "." in token else int(token)
        return token


def parse(query: str, variables: dict[str, Any] | None = None) -> list[Field]:
    """Parse a query into its top-level fields."""
    return _Parser(query, variables or {}).document()


Resolver = Callable[[dict[str, Any]], Any]


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


CONTAINER_FIELDS: dict[str, Resolver] = {
    "id": lambda k: k["id"],
    "session_id": lambda k: k["session_id"],
    "cluster_role": lambda k: k["cluster_role"],
    "cluster_idx": lambda k: k["cluster_idx"],
    "local_rank": lambda k: k["local_rank"],
    "cluster_hostname": lambda k: k["hostname"],
    "status": lambda k: k["status"],
    "status_info": lambda k: k["status_info"],
    "status_data": lambda k: _json(k["status_data"]),
    "created_at": lambda k: k["created_at"],
    "terminated_at": lambda k: k["terminated_at"],
}

SESSION_FIELDS: dict[str, Resolver] = {
    "id": lambda s: s["id"],
    "session_id": lambda s: s["id"],
    "name": lambda s: s["name"],
    "type": lambda s: s["type"].upper(),
    "image": lambda s: s["image"],
    "architecture": lambda s: s["architecture"],
    "tag": lambda s: s["tag"],
    "status": lambda s: s["status"],
    "status_info": lambda s: s["status_info"],
    "status_data": lambda s: _json(s["status_data"]),
    "result": lambda s: s["result"],
    "priority": lambda s: s["priority"],
    "access_key": lambda s: s["access_key"],
    "domain_name": lambda s: s["domain_name"],
    "group_name": lambda s: s["group_name"],
    "scaling_group": lambda s: s["scaling_group"],
    "cluster_mode": lambda s: s["cluster_mode"],
    "cluster_size": lambda s: s["cluster_size"],
    "occupied_slots": lambda s: _json(s["occupied_slots"]),
    "requested_slots": lambda s: _json(s["requested_slots"]),
    "created_at": lambda s: s["created_at"],
    "starts_at": lambda s: s["started_at"],
    "terminated_at": lambda s: s["terminated_at"],
    "startup_command": lambda s: s["startup_command"],
}


def _select(
    obj: dict[str, Any], fields: list[Field], resolvers: dict[str, Resolver], type_name: str
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for sel in fields:
        if sel.name == "__typename":
            out[sel.alias] = type_name
            continue
        if sel.name not in resolvers:
            raise GraphQLError(f"Cannot query field '{sel.name}' on type '{type_name}'.")
        if sel.selections:
            raise GraphQLError(f"Field '{sel.name}' must not have a selection since type is a scalar.")
        out[sel.alias] = resolvers[sel.name](obj)
    return out


def _validate(selections: list[Field]) -> None:
    """Check the selection against the schema before resolving, as GraphQL validation does."""
    for sub in selections:
        if sub.name == "containers":
            if not sub.selections:
                raise GraphQLError("Field 'containers' of type '[ComputeContainer]' must have a selection.")
            for inner in sub.selections:
                if inner.name not in CONTAINER_FIELDS and inner.name != "__typename":
                    raise GraphQLError(f"Cannot query field '{inner.name}' on type 'ComputeContainer'.")
        elif sub.name not in SESSION_FIELDS and sub.name != "__typename":
            raise GraphQLError(f"Cannot query field '{sub.name}' on type 'ComputeSession'.")


_NAME_FILTER = re.compile(r'^\s*name\s*==\s*"((?:\\.|[^"\\])*)"\s*$')


def _session_list(
    sel: Field,
    list_sessions: Callable[[], list[dict[str, Any]]],
    load_kernels: Callable[[str], list[dict[str, Any]]],
) -> dict[str, Any]:
    """``compute_session_list(filter: "name == \"x\"", limit:, offset:) { items {...} total_count }``."""
    rows = list_sessions()
    text = sel.args.get("filter")
    if text:
        match = _NAME_FILTER.match(str(text))
        if match is None:
            raise GraphQLError('backendai-lite supports only filters of the form name == "<session name>".')
        rows = [row for row in rows if row["name"] == json.loads(f'"{match.group(1)}"')]
    offset = int(sel.args.get("offset") or 0)
    limit = int(sel.args.get("limit") or 100)
    out: dict[str, Any] = {}
    for sub in sel.selections:
        if sub.name == "total_count":
            out[sub.alias] = len(rows)
        elif sub.name == "items":
            _validate(sub.selections)
            out[sub.alias] = [
                _session_item(row, sub.selections, load_kernels) for row in rows[offset : offset + limit]
            ]
        else:
            raise GraphQLError(f"Cannot query field '{sub.name}' on type 'ComputeSessionList'.")
    return out


def _session_item(
    row: dict[str, Any], selections: list[Field], load_kernels: Callable[[str], list[dict[str, Any]]]
) -> dict[str, Any]:
    plain = [f for f in selections if f.name != "containers"]
    item = _select(row, plain, SESSION_FIELDS, "ComputeSession")
    for sub in selections:
        if sub.name == "containers":
            item[sub.alias] = [
                _select(k, sub.selections, CONTAINER_FIELDS, "ComputeContainer")
                for k in load_kernels(row["id"])
            ]
    return {f.alias: item[f.alias] for f in selections}


def execute(
    query: str,
    variables: dict[str, Any] | None,
    load_session: Callable[[str], dict[str, Any] | None],
    load_kernels: Callable[[str], list[dict[str, Any]]],
    list_sessions: Callable[[], list[dict[str, Any]]] = list,
) -> dict[str, Any]:
    """Run a query; answers ``{"data": ...}`` or ``{"data": None, "errors": [...]}`` like graphene."""
    try:
        top = parse(query, variables)
        data: dict[str, Any] = {}
        for sel in top:
            if sel.name == "compute_session_list":
                data[sel.alias] = _session_list(sel, list_sessions, load_kernels)
                continue
            if sel.name != "compute_session":
                raise GraphQLError(f"Cannot query field '{sel.name}' on type 'Queries'.")
            if not sel.selections:
                raise GraphQLError("Field 'compute_session' of type 'ComputeSession' must have a selection.")
            _validate(sel.selections)
            session_id = sel.args.get("id")
            row = load_session(str(session_id)) if session_id else None
            if row is None:
                data[sel.alias] = None
                continue
            data[sel.alias] = _session_item(row, sel.selections, load_kernels)
        return {"data": data}
    except GraphQLError as exc:
        return {"data": None, "errors": [{"message": str(exc), "locations": None, "path": None}]}
