"""The slice of the manager's GraphQL API that clients use, served with graphql-core.

``compute_session(id:)``, ``compute_session_list(limit:, offset:, filter: "name == ...", order:, status:,
access_key:, domain_name:)`` (terminated sessions included) and ``keypair(access_key:)``. Who sees what follows the
manager's ``scoped_query``: an admin keypair (a superadmin's) sees every owner, others only their own.
JSON-typed fields (``status_data``, ``occupied_slots``, ...) are JSON strings, as graphene's ``JSONString``
serialises them; timestamps are ISO 8601 strings.
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
    GraphQLBoolean,
    GraphQLError,
    GraphQLField,
    GraphQLID,
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

from airflow_provider_fasttrack.lite.config import KeypairConfig
from airflow_provider_fasttrack.lite.store import DEAD_STATUSES

__all__ = ["Loaders", "SCHEMA", "execute"]

Row = dict[str, Any]


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
    "occupied_slots": _field(JSONStringScalar, _column("occupied_slots")),
    # the manager resolves both from the same figures; lite keeps them after the kernel has ended
    "live_stat": _field(JSONStringScalar, _column("last_stat")),
    "last_stat": _field(JSONStringScalar, _column("last_stat")),
}

ComputeContainer = GraphQLObjectType("ComputeContainer", CONTAINER_FIELDS)


@dataclass(frozen=True)
class Loaders:
    """Where resolvers read from, and who asks: the execution context."""

    caller: KeypairConfig
    load_session: Callable[[str], Row | None]
    load_kernels: Callable[[str], list[Row]]
    list_sessions: Callable[[], list[Row]]
    load_keypair: Callable[[str], KeypairConfig | None]

    def owner_scope(self, access_key: str | None) -> str | None:
        """The owner a query may read (``None``: every owner), as the manager's ``scoped_query`` decides it."""
        if self.caller.is_admin:
            return access_key
        if access_key is not None and access_key != self.caller.access_key:
            raise GraphQLError("Forbidden operation: only an admin keypair can read another keypair's data.")
        return self.caller.access_key


def _status_changed(row: Row) -> str | None:
    """The time of the session's latest recorded status change."""
    times = [
        row[key] for key in ("created_at", "scheduled_at", "started_at", "terminated_at") if row.get(key)
    ]
    return max(times) if times else None


def _owner_field(row: Row, info: GraphQLResolveInfo, name: str) -> Any:
    """A field of the session owner's keypair (``None`` for an owner no longer configured)."""
    loaders: Loaders = info.context
    owner = loaders.load_keypair(row["access_key"])
    return getattr(owner, name) if owner is not None else None


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
    "status_history": _field(JSONStringScalar, _column("status_history")),
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
    "occupying_slots": _field(JSONStringScalar, _column("occupied_slots")),
    "created_at": _field(GraphQLString, _column("created_at")),
    "scheduled_at": _field(GraphQLString, _column("scheduled_at")),
    "starts_at": _field(GraphQLString, _column("started_at")),
    "terminated_at": _field(GraphQLString, _column("terminated_at")),
    "status_changed": _field(GraphQLString, lambda row: _status_changed(row)),
    "startup_command": _field(GraphQLString, _column("startup_command")),
    "user_email": GraphQLField(
        GraphQLString, resolve=lambda row, info: _owner_field(row, info, "user_email")
    ),
    "user_id": GraphQLField(UUIDScalar, resolve=lambda row, info: _owner_field(row, info, "user_uuid")),
    "abusing_reports": _field(GraphQLList(JSONStringScalar), lambda _row: []),
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

UserInfo = GraphQLObjectType(
    "UserInfo", {"email": GraphQLField(GraphQLString), "full_name": GraphQLField(GraphQLString)}
)


def _live_sessions(keypair: KeypairConfig, info: GraphQLResolveInfo) -> int:
    loaders: Loaders = info.context
    return sum(
        1
        for row in loaders.list_sessions()
        if row["access_key"] == keypair.access_key and row["status"] not in DEAD_STATUSES
    )


def _keypair_field(type_: GraphQLOutputType, read: Callable[[KeypairConfig], Any]) -> GraphQLField:
    return GraphQLField(type_, resolve=lambda keypair, _info: read(keypair))


KEYPAIR_FIELDS: dict[str, GraphQLField] = {
    "id": _keypair_field(GraphQLID, lambda keypair: keypair.access_key),
    "user_id": _keypair_field(GraphQLString, lambda keypair: keypair.user_email),
    "full_name": _keypair_field(GraphQLString, lambda _keypair: None),
    "user_info": _keypair_field(UserInfo, lambda keypair: {"email": keypair.user_email, "full_name": None}),
    "user": _keypair_field(UUIDScalar, lambda keypair: keypair.user_uuid),
    "access_key": _keypair_field(GraphQLString, lambda keypair: keypair.access_key),
    "secret_key": _keypair_field(GraphQLString, lambda keypair: keypair.secret_key),
    "is_active": _keypair_field(GraphQLBoolean, lambda _keypair: True),
    "is_admin": _keypair_field(GraphQLBoolean, lambda keypair: keypair.is_admin),
    "resource_policy": _keypair_field(GraphQLString, lambda _keypair: "default"),
    "created_at": _keypair_field(GraphQLString, lambda _keypair: None),
    "last_used": _keypair_field(GraphQLString, lambda _keypair: None),
    "rate_limit": _keypair_field(GraphQLInt, lambda _keypair: None),
    "projects": _keypair_field(GraphQLList(GraphQLString), lambda _keypair: []),
    "ssh_public_key": _keypair_field(GraphQLString, lambda _keypair: None),
    "concurrency_used": GraphQLField(GraphQLInt, resolve=_live_sessions),
    "concurrency_limit": _keypair_field(GraphQLInt, lambda _keypair: 0),
}

KeyPair = GraphQLObjectType("KeyPair", KEYPAIR_FIELDS)

_NAME_FILTER = re.compile(r'^\s*name\s*==\s*"((?:\\.|[^"\\])*)"\s*$')
_ORDER_ITEM = re.compile(r"^\s*([+-]?)\s*([A-Za-z_][A-Za-z0-9_]*)\s*$")
#: ``order`` names -> row columns, the manager's ordering keys that backendai-lite records
ORDER_COLUMNS = {
    "id": "id",
    "type": "type",
    "name": "name",
    "priority": "priority",
    "image": "image",
    "images": "image",
    "domain_name": "domain_name",
    "access_key": "access_key",
    "scaling_group": "scaling_group",
    "cluster_mode": "cluster_mode",
    "cluster_size": "cluster_size",
    "status": "status",
    "status_info": "status_info",
    "result": "result",
    "created_at": "created_at",
    "terminated_at": "terminated_at",
    "starts_at": "started_at",
    "scheduled_at": "scheduled_at",
}


def _ordered(rows: list[Row], order: str | None) -> list[Row]:
    """Rows sorted by ``order`` (``[+-]key`` items, comma-separated), by default newest activity first."""
    if not order:
        return sorted(rows, key=lambda row: max(row["created_at"], row["terminated_at"] or ""), reverse=True)
    ordered = list(rows)
    items = order.split(",")
    for item in reversed(items):  # stable sorts, last key first
        match = _ORDER_ITEM.match(item)
        if match is None or match.group(2) not in ORDER_COLUMNS:
            known = ", ".join(sorted(ORDER_COLUMNS))
            raise GraphQLError(
                f"Unknown or unsupported order key {item.strip()!r}; backendai-lite orders by {known}."
            )
        column = ORDER_COLUMNS[match.group(2)]
        present = [row for row in ordered if row[column] is not None]
        missing = [row for row in ordered if row[column] is None]
        present.sort(key=lambda row: row[column], reverse=match.group(1) == "-")
        ordered = present + missing
    return ordered


def _compute_session(_root: None, info: GraphQLResolveInfo, id: str) -> Row | None:
    loaders: Loaders = info.context
    row = loaders.load_session(id)
    owner = loaders.owner_scope(None)
    return row if row is not None and owner in (None, row["access_key"]) else None


def _compute_session_list(
    _root: None,
    info: GraphQLResolveInfo,
    limit: int,
    offset: int,
    filter: str | None = None,
    order: str | None = None,
    domain_name: str | None = None,
    group_id: str | None = None,
    access_key: str | None = None,
    status: str | None = None,
) -> dict[str, Any]:
    """Sessions in the caller's scope matching the arguments, ordered and paged."""
    loaders: Loaders = info.context
    owner = loaders.owner_scope(access_key)
    if group_id is not None:
        raise GraphQLError(
            "backendai-lite has no project ids; sessions carry only a project name (group_name)."
        )
    rows = [row for row in loaders.list_sessions() if owner in (None, row["access_key"])]
    if domain_name is not None:
        rows = [row for row in rows if row["domain_name"] == domain_name]
    if filter:
        match = _NAME_FILTER.match(filter)
        if match is None:
            raise GraphQLError('backendai-lite supports only filters of the form name == "<session name>".')
        name = json.loads(f'"{match.group(1)}"')
        rows = [row for row in rows if row["name"] == name]
    if status:
        wanted = {part.strip().upper() for part in status.split(",") if part.strip()}
        rows = [row for row in rows if row["status"] in wanted]
    rows = _ordered(rows, order)
    return {"items": rows[max(offset, 0) : max(offset, 0) + max(limit, 0)], "total_count": len(rows)}


def _keypair(
    _root: None, info: GraphQLResolveInfo, domain_name: str | None = None, access_key: str | None = None
) -> KeypairConfig | None:
    """The caller's keypair, or (for an admin) the one named by ``access_key``; ``None`` when unknown."""
    loaders: Loaders = info.context
    return loaders.load_keypair(loaders.owner_scope(access_key) or loaders.caller.access_key)


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
                    "order": GraphQLArgument(GraphQLString),
                    "domain_name": GraphQLArgument(GraphQLString),
                    "group_id": GraphQLArgument(GraphQLString),
                    "access_key": GraphQLArgument(GraphQLString),
                    "status": GraphQLArgument(GraphQLString),
                },
                resolve=_compute_session_list,
            ),
            "keypair": GraphQLField(
                KeyPair,
                args={
                    "domain_name": GraphQLArgument(GraphQLString),
                    "access_key": GraphQLArgument(GraphQLString),
                },
                resolve=_keypair,
            ),
        },
    )
)


def execute(query: str, variables: dict[str, Any] | None, loaders: Loaders) -> dict[str, Any]:
    """Run a query; answers ``{"data": ...}`` or ``{"data": ..., "errors": [...]}`` like graphene."""
    result = graphql_sync(SCHEMA, query, context_value=loaders, variable_values=variables)
    return dict(result.formatted)
