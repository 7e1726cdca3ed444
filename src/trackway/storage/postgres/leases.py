"""Leases in PostgreSQL, shared by worker processes on any number of machines.

Expiry is measured on the database's clock (`now()`), so the machines' clocks need not
agree. Rows being taken by another process are skipped (`FOR UPDATE SKIP LOCKED`):
a process never waits for another to decide.
"""

import threading
from collections.abc import Sequence
from typing import Any

import psycopg

from trackway.storage.leases import HEARTBEAT_PREFIX, HEARTBEAT_PURGE_S, heartbeat_key
from trackway.storage.postgres.connect import connect, unavailable


class PostgresLeases:
    """The `Leases` in the `trackway.leases` table."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.url)
        return self._conn

    def acquire(
        self, owner: str, keys: Sequence[str], ttl_s: float, limit: int | None = None
    ) -> set[str]:
        with self._lock:
            return self._acquire(owner, keys, ttl_s, limit)

    def _acquire(
        self, owner: str, keys: Sequence[str], ttl_s: float, limit: int | None
    ) -> set[str]:
        try:
            conn = self._connection()
            with conn.transaction():
                conn.execute(
                    "INSERT INTO leases(key, owner, expires_at)"
                    " SELECT unnest(%s::text[]), '', '-infinity' ON CONFLICT DO NOTHING",
                    (list(keys),),
                )
                # the owner's own first, then free ones in key order
                free = [
                    key
                    for (key,) in conn.execute(
                        "SELECT key FROM leases WHERE key = ANY(%s)"
                        " AND (owner = %s OR expires_at <= now())"
                        " ORDER BY owner = %s DESC, key LIMIT %s FOR UPDATE SKIP LOCKED",
                        (list(keys), owner, owner, limit),
                    )
                ]
                if free:
                    conn.execute(
                        "UPDATE leases SET owner = %s,"
                        " expires_at = now() + make_interval(secs => %s) WHERE key = ANY(%s)",
                        (owner, ttl_s, free),
                    )
        except psycopg.Error as exc:
            self._drop()
            raise unavailable(exc) from exc
        return set(free)

    def heartbeat(self, pool: str, owner: str, ttl_s: float) -> int:
        prefix = f"{HEARTBEAT_PREFIX}{pool}:"
        with self._lock:
            try:
                conn = self._connection()
                with conn.transaction():
                    conn.execute(
                        "INSERT INTO leases(key, owner, expires_at)"
                        " VALUES (%s, %s, now() + make_interval(secs => %s))"
                        " ON CONFLICT (key) DO UPDATE SET owner = excluded.owner,"
                        " expires_at = excluded.expires_at",
                        (heartbeat_key(pool, owner), owner, ttl_s),
                    )
                    conn.execute(
                        "DELETE FROM leases WHERE key IN (SELECT key FROM leases"
                        " WHERE left(key, %s) = %s"
                        " AND expires_at < now() - make_interval(secs => %s)"
                        " FOR UPDATE SKIP LOCKED)",
                        (len(prefix), prefix, HEARTBEAT_PURGE_S),
                    )
                    row = conn.execute(
                        "SELECT count(*) FROM leases WHERE left(key, %s) = %s"
                        " AND expires_at > now()",
                        (len(prefix), prefix),
                    ).fetchone()
            except psycopg.Error as exc:
                self._drop()
                raise unavailable(exc) from exc
        assert row is not None
        return int(row[0])

    def release(self, owner: str, keys: Sequence[str]) -> None:
        with self._lock:
            self._release(owner, keys)

    def _release(self, owner: str, keys: Sequence[str]) -> None:
        try:
            self._connection().execute(
                "UPDATE leases SET expires_at = '-infinity' WHERE key = ANY(%s) AND owner = %s",
                (list(keys), owner),
            )
        except psycopg.Error as exc:
            self._drop()
            raise unavailable(exc) from exc

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
