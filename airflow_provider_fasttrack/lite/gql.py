"""The slice of the manager's GraphQL API that clients use after termination, served with graphql-core.

``compute_session(id:)`` and ``compute_session_list(limit:, offset:, filter: "name == ...", status:)``,
terminated sessions included. JSON-typed fields (``status_data``, ``occupied_slots``, ...) are JSON strings,
as graphene's ``JSONString`` serialises them; timestamps are ISO 8601 strings.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from graphql import (
    GraphQLArgument,
    GraphQLError,
    GraphQLField,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLString,
    StringValueNode,
    ValueNode,
    graphql_sync,
)

__all__ = ["SCHEMA", "execute"]

Row = dict[str, Any]
SessionLoader = Callable[[str], Row | None]
KernelLoader = Callable[[str], list[Row]]
SessionLister = Callable[[], list[Row]]


def _parse_uuid(value: Any) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise GraphQLError(f"UUID cannot represent value: {value!r}") from None


def _parse_uuid_literal(node: ValueNode, _variables: dict[str, Any] | None = None) -> str:
    if not isinstance(node, StringValueNode):
        raise GraphQLError("UUID must be given as a string.", node)
    return _parse_uuid(node.value)


def _parse_json_literal(node: ValueNode, _variables: dict[str, Any] | None = None) -> Any:
    if not isinstance(node, StringValueNode):
        raise GraphQLError("JSONString must be given as a string.", node)
    return json.loads(node.value)


UUIDScalar = GraphQLScalarType(
    "UUID",
    description="A UUID in its canonical string form.",
    serialize=str,
    parse_value=_parse_uuid,
    parse_literal=_parse_uuid_literal,
)

JSONStringScalar = GraphQLScalarType(
    "JSONString",
    description="A JSON value sent as a string, like graphene's JSONString.",
    serialize=json.dumps,
    parse_value=json.loads,
    parse_literal=_parse_json_literal,
)


def _field(type_: GraphQLOutputType, read: Callable[[Row], Any]) -> GraphQLField:
    return GraphQLField(type_, resolve=lambda row, _info: read(row))


def _column(column: str) -> Callable[[Row], Any]:
    return lambda row: row[column]


CONTAINER_FIELDS: dict[str, GraphQLField] = {
    "id": _field(UUIDScalar, _column("id")),
    "session_id": _field(UUIDScalar, _column("session_id")),
    "cluster_role": _field(GraphQLString, _column("cluster_role")),
    "cluster_idx": _field(GraphQLInt, _column("cluster_idx")),
    "local_rank": _field(GraphQLInt, _column("local_rank")),
    "cluster_hostname": _field(GraphQLString, _column("hostname")),
    "status": _field(GraphQLString, _column("status")),
    "status_info": _field(GraphQLString, _column("status_info")),
    "status_data": _field(JSONStringScalar, _column("status_data")),
    "created_at": _field(GraphQLString, _column("created_at")),
    "terminated_at": _field(GraphQLString, _column("terminated_at")),
}

ComputeContainer = GraphQLObjectType("ComputeContainer", CONTAINER_FIELDS)


@dataclass(frozen=True)
class Loaders:
    """Where resolvers read rows from (the caller's sessions only); the execution context."""

    load_session: SessionLoader
    load_kernels: KernelLoader
    list_sessions: SessionLister


def _containers(row: Row, info: GraphQLResolveInfo) -> list[Row]:
    loaders: Loaders = info.context
    return loaders.load_kernels(row["id"])


SESSION_FIELDS: dict[str, GraphQLField] = {
    "id": _field(UUIDScalar, _column("id")),
    "session_id": _field(UUIDScalar, _column("id")),
    "name": _field(GraphQLString, _column("name")),
    "type": _field(GraphQLString, lambda row: row["type"].upper()),
    "image": _field(GraphQLString, _column("image")),
    "architecture": _field(GraphQLString, _column("architecture")),
    "tag": _field(GraphQLString, _column("tag")),
    "status": _field(GraphQLString, _column("status")),
    "status_info": _field(GraphQLString, _column("status_info")),
    "status_data": _field(JSONStringScalar, _column("status_data")),
    "result": _field(GraphQLString, _column("result")),
    "priority": _field(GraphQLInt, _column("priority")),
    "access_key": _field(GraphQLString, _column("access_key")),
    "domain_name": _field(GraphQLString, _column("domain_name")),
    "group_name": _field(GraphQLString, _column("group_name")),
    "scaling_group": _field(GraphQLString, _column("scaling_group")),
    "cluster_mode": _field(GraphQLString, _column("cluster_mode")),
    "cluster_size": _field(GraphQLInt, _column("cluster_size")),
    "occupied_slots": _field(JSONStringScalar, _column("occupied_slots")),
    "requested_slots": _field(JSONStringScalar, _column("requested_slots")),
    "created_at": _field(GraphQLString, _column("created_at")),
    "starts_at": _field(GraphQLString, _column("started_at")),
    "terminated_at": _field(GraphQLString, _column("terminated_at")),
    "startup_command": _field(GraphQLString, _column("startup_command")),
    "containers": GraphQLField(GraphQLList(ComputeContainer), resolve=_containers),
}

ComputeSession = GraphQLObjectType("ComputeSession", SESSION_FIELDS)

ComputeSessionList = GraphQLObjectType(
    "ComputeSessionList",
    {
        "items": GraphQLField(GraphQLList(ComputeSession)),
        "total_count": GraphQLField(GraphQLInt),
    },
)

_NAME_FILTER = re.compile(r'^\s*name\s*==\s*"((?:\\.|[^"\\])*)"\s*$')


def _compute_session(_root: None, info: GraphQLResolveInfo, id: str) -> Row | None:
    loaders: Loaders = info.context
    return loaders.load_session(id)


def _compute_session_list(
    _root: None,
    info: GraphQLResolveInfo,
    limit: int,
    offset: int,
    filter: str | None = None,
    status: str | None = None,
) -> dict[str, Any]:
    """Rows matching ``filter`` (only ``name == "<name>"``) and ``status`` (comma-separated), paged."""
    loaders: Loaders = info.context
    rows = loaders.list_sessions()
    if filter:
        match = _NAME_FILTER.match(filter)
        if match is None:
            raise GraphQLError('backendai-lite supports only filters of the form name == "<session name>".')
        name = json.loads(f'"{match.group(1)}"')
        rows = [row for row in rows if row["name"] == name]
    if status:
        wanted = {part.strip().upper() for part in status.split(",") if part.strip()}
        rows = [row for row in rows if row["status"] in wanted]
    return {"items": rows[max(offset, 0) : max(offset, 0) + max(limit, 0)], "total_count": len(rows)}


SCHEMA = GraphQLSchema(
    query=GraphQLObjectType(
        "Queries",
        {
            "compute_session": GraphQLField(
                ComputeSession,
                args={"id": GraphQLArgument(GraphQLNonNull(UUIDScalar))},
                resolve=_compute_session,
            ),
            "compute_session_list": GraphQLField(
                ComputeSessionList,
                args={
                    "limit": GraphQLArgument(GraphQLNonNull(GraphQLInt)),
                    "offset": GraphQLArgument(GraphQLNonNull(GraphQLInt)),
                    "filter": GraphQLArgument(GraphQLString),
                    "status": GraphQLArgument(GraphQLString),
                },
                resolve=_compute_session_list,
            ),
        },
    )
)


def execute(
    query: str,
    variables: dict[str, Any] | None,
    load_session: SessionLoader,
    load_kernels: KernelLoader,
    list_sessions: SessionLister = list,
) -> dict[str, Any]:
    """Run a query; answers ``{"data": ...}`` or ``{"data": ..., "errors": [...]}`` like graphene."""
    result = graphql_sync(
        SCHEMA,
        query,
        context_value=Loaders(load_session, load_kernels, list_sessions),
        variable_values=variables,
    )
    return dict(result.formatted)
