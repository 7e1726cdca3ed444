"""Workspace state in SQLite: sources, write keys, admin tokens."""

import sqlite3
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trackway import codec
from trackway.storage.base import SourceNotFound, StorageUnavailable
from trackway.storage.records import Source, WriteKey
from trackway.storage.sqlite.connect import connect
from trackway.workspace.keys import new_public_id, new_write_key

MIGRATIONS = (
    """
    CREATE TABLE sources(
        id INTEGER PRIMARY KEY,
        public_id TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL,
        enabled INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL
    );
    CREATE TABLE write_keys(
        key TEXT PRIMARY KEY,
        source_id INTEGER NOT NULL REFERENCES sources(id),
        created_at TEXT NOT NULL,
        expires_at REAL
    );
    CREATE INDEX write_keys_by_source ON write_keys(source_id);
    CREATE TABLE admin_tokens(
        hash TEXT PRIMARY KEY,
        created_at TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE objects(
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        spec TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (kind, name)
    )
    """,
    # Deleted sources keep their id here, so that a new source never gets it: the log's
    # events of a deleted source must not become another's (PostgreSQL's serial never
    # reuses an id).
    """
    CREATE TABLE deleted_sources(
        id INTEGER PRIMARY KEY,
        public_id TEXT NOT NULL,
        name TEXT NOT NULL,
        deleted_at TEXT NOT NULL
    )
    """,
)

_SOURCE_COLUMNS = "id, public_id, name, type, enabled, created_at"
_PUT = (
    "INSERT INTO objects(kind, name, spec, updated_at) VALUES (?, ?, ?, ?)"
    " ON CONFLICT(kind, name) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at"
)


class SQLiteStateStore:
    """The `StateStore` on a SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = connect(path, MIGRATIONS)
        self._lock = threading.Lock()
        self._version: tuple[int, int] | None = None

    def close(self) -> None:
        self._conn.close()

    def create_source(self, name: str, type: str, write_key: str | None = None) -> Source:
        now = _now()
        with self._lock, self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                cur = self._conn.execute(
                    "INSERT INTO sources(id, public_id, name, type, enabled, created_at)"
                    " VALUES ((SELECT coalesce(max(id), 0) + 1 FROM"
                    " (SELECT id FROM sources UNION ALL SELECT id FROM deleted_sources)),"
                    " ?, ?, ?, 1, ?)",
                    (new_public_id("src"), name, type, now),
                )
            except sqlite3.IntegrityError as exc:
                raise ValueError(f"a source named '{name}' already exists") from exc
            try:
                self._conn.execute(
                    "INSERT INTO write_keys(key, source_id, created_at) VALUES (?, ?, ?)",
                    (write_key or new_write_key(), cur.lastrowid, now),
                )
            except sqlite3.IntegrityError as exc:
                raise ValueError("that write key is already in use") from exc
        return self.get_source(name)

    def list_sources(self) -> list[Source]:
        rows = self._conn.execute(f"SELECT {_SOURCE_COLUMNS} FROM sources ORDER BY id")
        return [_source(row) for row in rows]

    def get_source(self, name: str) -> Source:
        row = self._conn.execute(
            f"SELECT {_SOURCE_COLUMNS} FROM sources WHERE name = ?", (name,)
        ).fetchone()
        if row is None:
            raise SourceNotFound(f"no source named '{name}'")
        return _source(row)

    def set_enabled(self, name: str, enabled: bool) -> Source:
        with self._lock, self._conn:
            cur = self._conn.execute(
                "UPDATE sources SET enabled = ? WHERE name = ?", (int(enabled), name)
            )
        if cur.rowcount == 0:
            raise SourceNotFound(f"no source named '{name}'")
        return self.get_source(name)

    def delete_source(self, name: str) -> Source:
        source = self.get_source(name)
        with self._lock, self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute(
                "INSERT INTO deleted_sources(id, public_id, name, deleted_at) VALUES (?, ?, ?, ?)",
                (source.id, source.public_id, source.name, _now()),
            )
            self._conn.execute("DELETE FROM write_keys WHERE source_id = ?", (source.id,))
            self._conn.execute("DELETE FROM sources WHERE id = ?", (source.id,))
        return source

    def write_keys(self, source_id: int | None = None) -> list[WriteKey]:
        sql = "SELECT key, source_id, expires_at FROM write_keys"
        args: tuple[int, ...] = ()
        if source_id is not None:
            sql += " WHERE source_id = ?"
            args = (source_id,)
        rows = self._conn.execute(sql + " ORDER BY expires_at IS NULL, expires_at", args)
        return [WriteKey(*row) for row in rows]

    def rotate_key(self, name: str, grace_s: float, new_key: str | None = None) -> str:
        source = self.get_source(name)
        key = new_key or new_write_key()
        now = time.time()
        with self._lock, self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute(
                "UPDATE write_keys SET expires_at = ?"
                " WHERE source_id = ? AND (expires_at IS NULL OR expires_at > ?)",
                (now + grace_s, source.id, now + grace_s),
            )
            self._conn.execute(
                "DELETE FROM write_keys WHERE source_id = ? AND expires_at <= ?",
                (source.id, now),
            )
            try:
                self._conn.execute(
                    "INSERT INTO write_keys(key, source_id, created_at) VALUES (?, ?, ?)",
                    (key, source.id, _now()),
                )
            except sqlite3.IntegrityError as exc:
                raise ValueError("that write key is already in use") from exc
        return key

    def add_admin_token(self, token_hash: str) -> None:
        with self._lock, self._conn:
            self._conn.execute(
                "INSERT OR IGNORE INTO admin_tokens(hash, created_at) VALUES (?, ?)",
                (token_hash, _now()),
            )

    def has_admin_token(self, token_hash: str) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM admin_tokens WHERE hash = ?", (token_hash,)
        ).fetchone()
        return row is not None

    def admin_token_count(self) -> int:
        return int(self._conn.execute("SELECT count(*) FROM admin_tokens").fetchone()[0])

    def put_object(self, kind: str, name: str, spec: dict[str, Any]) -> None:
        with self._lock, self._conn:
            self._conn.execute(_PUT, (kind, name, codec.dumps_text(spec), _now()))

    def objects(self, kind: str) -> dict[str, dict[str, Any]]:
        rows = self._conn.execute(
            "SELECT name, spec FROM objects WHERE kind = ? ORDER BY name", (kind,)
        )
        return {name: codec.loads(spec) for name, spec in rows}

    def delete_object(self, kind: str, name: str) -> bool:
        with self._lock, self._conn:
            cur = self._conn.execute(
                "DELETE FROM objects WHERE kind = ? AND name = ?", (kind, name)
            )
        return cur.rowcount > 0

    def write_objects(
        self,
        put: Sequence[tuple[str, str, dict[str, Any]]],
        delete: Sequence[tuple[str, str]] = (),
    ) -> None:
        now = _now()
        with self._lock, self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany(_PUT, [(k, n, codec.dumps_text(s), now) for k, n, s in put])
            self._conn.executemany("DELETE FROM objects WHERE kind = ? AND name = ?", delete)

    def changed(self) -> bool:
        """Whether any connection (another process too) committed since the last call."""
        # data_version moves only for other connections' commits; this connection's own
        # writes (the admin API's, in the server) show in its total_changes.
        with self._lock:
            data_version = self._conn.execute("PRAGMA data_version").fetchone()[0]
            version = (int(data_version), self._conn.total_changes)
        changed = version != self._version
        self._version = version
        return changed

    def ping(self) -> None:
        try:
            self._conn.execute("SELECT 1 FROM sources LIMIT 1").fetchall()
        except sqlite3.Error as exc:
            raise StorageUnavailable(str(exc)) from exc


def _source(row: tuple[int, str, str, str, int, str]) -> Source:
    return Source(row[0], row[1], row[2], row[3], bool(row[4]), row[5])


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
