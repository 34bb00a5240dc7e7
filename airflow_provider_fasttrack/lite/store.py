"""SQLite state in the data dir: sessions, kernels (with their logs), vfolders (transfer tokens stay in memory)."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["DEAD_STATUSES", "Store"]

#: statuses after which ``GET /session/{id}`` answers 404
DEAD_STATUSES = frozenset({"TERMINATED", "CANCELLED"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    name TEXT NOT NULL,
    access_key TEXT NOT NULL,
    image TEXT NOT NULL,
    architecture TEXT NOT NULL,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    status_info TEXT,
    status_data TEXT NOT NULL DEFAULT '{}',
    result TEXT NOT NULL DEFAULT 'UNDEFINED',
    tag TEXT,
    priority INTEGER NOT NULL DEFAULT 10,
    cluster_mode TEXT NOT NULL,
    cluster_size INTEGER NOT NULL,
    scaling_group TEXT NOT NULL,
    group_name TEXT NOT NULL,
    domain_name TEXT NOT NULL,
    requested_slots TEXT NOT NULL,
    kernel_slots TEXT NOT NULL,
    occupied_slots TEXT NOT NULL DEFAULT '{}',
    status_history TEXT NOT NULL DEFAULT '{}',
    config TEXT NOT NULL,
    startup_command TEXT,
    bootstrap_script TEXT,
    batch_timeout REAL,
    dependencies TEXT NOT NULL DEFAULT '[]',
    callback_url TEXT,
    created_at TEXT NOT NULL,
    scheduled_at TEXT,
    started_at TEXT,
    terminated_at TEXT
);
CREATE INDEX IF NOT EXISTS sessions_by_name ON sessions (name, access_key);
CREATE TABLE IF NOT EXISTS kernels (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    cluster_role TEXT NOT NULL,
    cluster_idx INTEGER NOT NULL,
    local_rank INTEGER NOT NULL,
    hostname TEXT NOT NULL,
    status TEXT NOT NULL,
    status_info TEXT,
    status_data TEXT NOT NULL DEFAULT '{}',
    exit_code INTEGER,
    pid INTEGER,
    log_path TEXT NOT NULL,
    logs TEXT,
    occupied_slots TEXT NOT NULL DEFAULT '{}',
    last_stat TEXT,
    created_at TEXT NOT NULL,
    terminated_at TEXT
);
CREATE INDEX IF NOT EXISTS kernels_by_session ON kernels (session_id);
CREATE TABLE IF NOT EXISTS vfolders (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    access_key TEXT NOT NULL,
    host TEXT NOT NULL,
    usage_mode TEXT NOT NULL,
    permission TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (name, access_key)
);
DROP TABLE IF EXISTS transfers;
"""

_JSON_COLUMNS = frozenset(
    {
        "status_data", "requested_slots", "kernel_slots", "occupied_slots", "config", "dependencies",
        "status_history", "last_stat",
    }
)  # fmt: skip
#: columns added since the first schema: ``(table, column, definition)``, added to an older data dir's tables
_ADDED_COLUMNS = (
    ("sessions", "status_history", "TEXT NOT NULL DEFAULT '{}'"),
    ("kernels", "occupied_slots", "TEXT NOT NULL DEFAULT '{}'"),
    ("kernels", "last_stat", "TEXT"),
)
#: the session columns that record the time of a status (its ``status_history`` entry takes the same time)
_STATUS_TIMES = ("terminated_at", "started_at", "scheduled_at")


def _decode(row: sqlite3.Row | None) -> dict[str, Any] | None:
    if row is None:
        return None
    record = dict(row)
    for key in _JSON_COLUMNS & record.keys():
        record[key] = json.loads(record[key]) if record[key] is not None else None
    return record


def _encode(values: dict[str, Any]) -> dict[str, Any]:
    return {key: json.dumps(val) if key in _JSON_COLUMNS else val for key, val in values.items()}


class Store:
    """All persistent state, in ``<data dir>/lite.sqlite3``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        for table, column, definition in _ADDED_COLUMNS:
            present = {row["name"] for row in self._db.execute(f"PRAGMA table_info({table})")}
            if column not in present:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def _execute(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, tuple(params))

    def _insert(self, table: str, values: dict[str, Any]) -> None:
        encoded = _encode(values)
        columns = ", ".join(encoded)
        marks = ", ".join("?" for _ in encoded)
        self._execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", encoded.values())

    def _update(self, table: str, key: str, values: dict[str, Any]) -> None:
        encoded = _encode(values)
        assignments = ", ".join(f"{column} = ?" for column in encoded)
        self._execute(f"UPDATE {table} SET {assignments} WHERE id = ?", [*encoded.values(), key])

    # sessions
    def insert_session(self, values: dict[str, Any]) -> None:
        """Record a new session; its ``status_history`` starts with its status at ``created_at``."""
        self._insert("sessions", {**values, "status_history": {values["status"]: values["created_at"]}})

    def update_session(self, session_id: str, **values: Any) -> None:
        """Change fields of a session; a new ``status`` is recorded in its ``status_history`` (status -> time,
        the latest time of each status, as the manager keeps it), at the time column given with it or now."""
        encoded = _encode(values)
        assignments = [f"{column} = ?" for column in encoded]
        params = list(encoded.values())
        if "status" in values:
            at = next((values[key] for key in _STATUS_TIMES if values.get(key)), None)
            assignments.append("status_history = json_set(status_history, ?, ?)")
            params += [f'$."{values["status"]}"', at or datetime.now(UTC).isoformat()]
        self._execute(f"UPDATE sessions SET {', '.join(assignments)} WHERE id = ?", [*params, session_id])

    def session(self, session_id: str) -> dict[str, Any] | None:
        """A session by UUID, in any status."""
        return _decode(self._execute("SELECT * FROM sessions WHERE id = ?", [session_id]).fetchone())

    def live_session_by_name(self, name: str, access_key: str) -> dict[str, Any] | None:
        """The live (not terminated or cancelled) session of this owner with this name."""
        marks = ", ".join("?" for _ in DEAD_STATUSES)
        row = self._execute(
            f"SELECT * FROM sessions WHERE name = ? AND access_key = ? AND status NOT IN ({marks}) "
            "ORDER BY seq DESC LIMIT 1",
            [name, access_key, *sorted(DEAD_STATUSES)],
        ).fetchone()
        return _decode(row)

    def sessions(self, statuses: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Sessions in creation order, optionally only those in ``statuses``."""
        if statuses is None:
            rows = self._execute("SELECT * FROM sessions ORDER BY seq").fetchall()
        else:
            wanted = sorted(set(statuses))
            marks = ", ".join("?" for _ in wanted)
            rows = self._execute(
                f"SELECT * FROM sessions WHERE status IN ({marks}) ORDER BY seq", wanted
            ).fetchall()
        return [record for record in map(_decode, rows) if record is not None]

    def dependents(self, session_id: str) -> list[dict[str, Any]]:
        """Sessions that list ``session_id`` among their dependencies."""
        rows = self._execute(
            "SELECT * FROM sessions WHERE dependencies LIKE ? ORDER BY seq", [f'%"{session_id}"%']
        ).fetchall()
        return [record for record in map(_decode, rows) if record is not None]

    # kernels
    def insert_kernel(self, values: dict[str, Any]) -> None:
        """Record a kernel (one process of a session)."""
        self._insert("kernels", values)

    def update_kernel(self, kernel_id: str, **values: Any) -> None:
        """Change fields of a kernel."""
        self._update("kernels", kernel_id, values)

    def kernels(self, session_id: str) -> list[dict[str, Any]]:
        """The kernels of a session, main first."""
        rows = self._execute(
            "SELECT * FROM kernels WHERE session_id = ? ORDER BY local_rank", [session_id]
        ).fetchall()
        return [record for record in map(_decode, rows) if record is not None]

    # vfolders
    def insert_vfolder(self, values: dict[str, Any]) -> None:
        """Record a vfolder."""
        self._insert("vfolders", values)

    def vfolder(self, name: str, access_key: str) -> dict[str, Any] | None:
        """A vfolder of this owner by name."""
        row = self._execute(
            "SELECT * FROM vfolders WHERE name = ? AND access_key = ?", [name, access_key]
        ).fetchone()
        return _decode(row)

    def vfolder_by_id(self, vfolder_id: str) -> dict[str, Any] | None:
        """A vfolder by id."""
        return _decode(self._execute("SELECT * FROM vfolders WHERE id = ?", [vfolder_id]).fetchone())

    def vfolders(self, access_key: str) -> list[dict[str, Any]]:
        """The vfolders of this owner."""
        rows = self._execute(
            "SELECT * FROM vfolders WHERE access_key = ? ORDER BY created_at", [access_key]
        ).fetchall()
        return [record for record in map(_decode, rows) if record is not None]

    def delete_vfolder(self, vfolder_id: str) -> None:
        """Forget a vfolder."""
        self._execute("DELETE FROM vfolders WHERE id = ?", [vfolder_id])
