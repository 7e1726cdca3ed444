"""Workspace state in PostgreSQL: sources, write keys, admin tokens, objects.

Every write also bumps the one-row `state_version`, in the same transaction, so that
`changed()` notices commits of any process (CLI commands, other API nodes).
"""

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg

from trackway import codec
from trackway.storage.base import SourceNotFound
from trackway.storage.postgres.connect import connect, unavailable
from trackway.storage.postgres.migrations import migrate
from trackway.storage.records import Source, WriteKey
from trackway.workspace.keys import new_public_id, new_write_key

_SOURCE_COLUMNS = "id, public_id, name, type, enabled, created_at"
_BUMP = "UPDATE state_version SET version = version + 1"
_PUT = (
    "INSERT INTO objects(kind, name, spec, updated_at) VALUES (%s, %s, %s, %s)"
    " ON CONFLICT (kind, name) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at"
)

T = TypeVar("T")


class PostgresStateStore:
    """The `StateStore` in a PostgreSQL database shared by any number of processes."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = connect(url)
        migrate(self._conn)
        self._version: int | None = None

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @contextmanager
    def _session(self) -> Iterator[psycopg.Connection[Any]]:
        """The connection, opened again after a failure; errors become StorageUnavailable."""
        with self._lock:
            if self._conn is None or self._conn.closed:
                self._conn = connect(self.url)
            try:
                yield self._conn
            except psycopg.errors.IntegrityError:
                raise
            except psycopg.Error as exc:
                self._conn.close()
                raise unavailable(exc) from exc

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self._session() as conn:
            return conn.execute(sql, params).fetchall()

    def _write(self, fn: Callable[[psycopg.Connection[Any]], T]) -> T:
        """Run `fn` in a transaction that also bumps the state version."""
        with self._session() as conn, conn.transaction():
            result = fn(conn)
            conn.execute(_BUMP)
            return result

    def create_source(self, name: str, type: str, write_key: str | None = None) -> Source:
        now = _now()

        def create(conn: psycopg.Connection[Any]) -> None:
            try:
                [(source_id,)] = conn.execute(
                    "INSERT INTO sources(public_id, name, type, enabled, created_at)"
                    " VALUES (%s, %s, %s, true, %s) RETURNING id",
                    (new_public_id("src"), name, type, now),
                ).fetchall()
            except psycopg.errors.UniqueViolation as exc:
                raise ValueError(f"a source named '{name}' already exists") from exc
            try:
                conn.execute(
                    "INSERT INTO write_keys(key, source_id, created_at) VALUES (%s, %s, %s)",
                    (write_key or new_write_key(), source_id, now),
                )
            except psycopg.errors.UniqueViolation as exc:
                raise ValueError("that write key is already in use") from exc

        self._write(create)
        return self.get_source(name)

    def list_sources(self) -> list[Source]:
        return [
            _source(row) for row in self._rows(f"SELECT {_SOURCE_COLUMNS} FROM sources ORDER BY id")
        ]

    def get_source(self, name: str) -> Source:
        rows = self._rows(f"SELECT {_SOURCE_COLUMNS} FROM sources WHERE name = %s", (name,))
        if not rows:
            raise SourceNotFound(f"no source named '{name}'")
        return _source(rows[0])

    def set_enabled(self, name: str, enabled: bool) -> Source:
        updated = self._write(
            lambda conn: (
                conn.execute(
                    "UPDATE sources SET enabled = %s WHERE name = %s", (enabled, name)
                ).rowcount
            )
        )
        if updated == 0:
            raise SourceNotFound(f"no source named '{name}'")
        return self.get_source(name)

    def delete_source(self, name: str) -> Source:
        source = self.get_source(name)

        def delete(conn: psycopg.Connection[Any]) -> None:
            conn.execute("DELETE FROM write_keys WHERE source_id = %s", (source.id,))
            conn.execute("DELETE FROM sources WHERE id = %s", (source.id,))

        self._write(delete)
        return source

    def write_keys(self, source_id: int | None = None) -> list[WriteKey]:
        sql = "SELECT key, source_id, expires_at FROM write_keys"
        args: tuple[int, ...] = ()
        if source_id is not None:
            sql += " WHERE source_id = %s"
            args = (source_id,)
        rows = self._rows(sql + " ORDER BY expires_at IS NULL, expires_at", args)
        return [WriteKey(*row) for row in rows]

    def rotate_key(self, name: str, grace_s: float, new_key: str | None = None) -> str:
        source = self.get_source(name)
        key = new_key or new_write_key()
        now = time.time()

        def rotate(conn: psycopg.Connection[Any]) -> None:
            conn.execute(
                "UPDATE write_keys SET expires_at = %s"
                " WHERE source_id = %s AND (expires_at IS NULL OR expires_at > %s)",
                (now + grace_s, source.id, now + grace_s),
            )
            conn.execute(
                "DELETE FROM write_keys WHERE source_id = %s AND expires_at <= %s",
                (source.id, now),
            )
            try:
                conn.execute(
                    "INSERT INTO write_keys(key, source_id, created_at) VALUES (%s, %s, %s)",
                    (key, source.id, _now()),
                )
            except psycopg.errors.UniqueViolation as exc:
                raise ValueError("that write key is already in use") from exc

        self._write(rotate)
        return key

    def add_admin_token(self, token_hash: str) -> None:
        self._write(
            lambda conn: conn.execute(
                "INSERT INTO admin_tokens(hash, created_at) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (token_hash, _now()),
            )
        )

    def has_admin_token(self, token_hash: str) -> bool:
        return bool(self._rows("SELECT 1 FROM admin_tokens WHERE hash = %s", (token_hash,)))

    def admin_token_count(self) -> int:
        return int(self._rows("SELECT count(*) FROM admin_tokens")[0][0])

    def put_object(self, kind: str, name: str, spec: dict[str, Any]) -> None:
        self._write(lambda conn: conn.execute(_PUT, (kind, name, codec.dumps_text(spec), _now())))

    def objects(self, kind: str) -> dict[str, dict[str, Any]]:
        rows = self._rows("SELECT name, spec FROM objects WHERE kind = %s ORDER BY name", (kind,))
        return {name: codec.loads(spec) for name, spec in rows}

    def delete_object(self, kind: str, name: str) -> bool:
        deleted = self._write(
            lambda conn: (
                conn.execute(
                    "DELETE FROM objects WHERE kind = %s AND name = %s", (kind, name)
                ).rowcount
            )
        )
        return deleted > 0

    def write_objects(
        self,
        put: Sequence[tuple[str, str, dict[str, Any]]],
        delete: Sequence[tuple[str, str]] = (),
    ) -> None:
        now = _now()

        def write(conn: psycopg.Connection[Any]) -> None:
            with conn.cursor() as cur:
                if put:
                    cur.executemany(_PUT, [(k, n, codec.dumps_text(s), now) for k, n, s in put])
                if delete:
                    cur.executemany("DELETE FROM objects WHERE kind = %s AND name = %s", delete)

        self._write(write)

    def changed(self) -> bool:
        """Whether any process committed a change since the last call."""
        version = self._rows("SELECT version FROM state_version")[0][0]
        changed = version != self._version
        self._version = version
        return bool(changed)

    def ping(self) -> None:
        self._rows("SELECT 1 FROM state_version")


def _source(row: tuple[int, str, str, str, bool, str]) -> Source:
    return Source(row[0], row[1], row[2], row[3], bool(row[4]), row[5])


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
