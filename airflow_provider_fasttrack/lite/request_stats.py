"""Request counts per route, for measuring what clients ask of the server (``request_stats: true``).

Off by default. When on, every API request is counted under its route's method and path template
(``GET /session/{session_ref}``) when its answer starts, GraphQL queries also under their first top-level field
(a ``compute_session`` query that asks for ``status_history`` counts as ``compute_session (usage)``), and each
distinct client address (host and port: one TCP connection) once. ``GET /lite/requests`` answers the counts.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

__all__ = ["RequestStats", "graphql_kind"]

_FIRST_FIELD = re.compile(r"\{\s*(\w+)")
#: what a usage read asks for besides the state (see airflow_provider_fasttrack.usage)
_USAGE_FIELDS = ("status_history", "last_stat")


def graphql_kind(query: str) -> str:
    """The first top-level field of a query, with ``(usage)`` for a ``compute_session`` read of usage."""
    match = _FIRST_FIELD.search(query)
    field = match.group(1) if match else "unparsed"
    if field == "compute_session" and any(name in query for name in _USAGE_FIELDS):
        return "compute_session (usage)"
    return field


class RequestStats:
    """Counters since the server started; one instance per server."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.in_flight: Counter[str] = Counter()
        #: the most answers of a route in flight at once (event streams open together)
        self.most_in_flight: Counter[str] = Counter()
        self.graphql: Counter[str] = Counter()
        self._clients: set[tuple[str, int]] = set()

    def started(self, route: str, client: tuple[str, int] | None) -> None:
        """An answer on ``route`` (``METHOD /template``) started; it is in flight until :meth:`ended`."""
        self.requests[route] += 1
        self.in_flight[route] += 1
        self.most_in_flight[route] = max(self.most_in_flight[route], self.in_flight[route])
        if client is not None:
            self._clients.add((str(client[0]), int(client[1])))

    def ended(self, route: str) -> None:
        """The answer on ``route`` is complete (a stream: closed)."""
        self.in_flight[route] -= 1

    def query(self, text: str) -> None:
        """A GraphQL query was asked."""
        self.graphql[graphql_kind(text)] += 1

    def snapshot(self) -> dict[str, Any]:
        """The counts as JSON: ``requests``, ``in_flight`` and ``most_in_flight`` per route, ``graphql`` per kind,
        ``connections``."""
        return {
            "requests": dict(self.requests),
            "in_flight": {route: count for route, count in self.in_flight.items() if count},
            "most_in_flight": dict(self.most_in_flight),
            "graphql": dict(self.graphql),
            "connections": len(self._clients),
        }
