"""Leases in SQLite: `leases.db` in the data directory, for the processes of one machine.

A file of its own: renewals every few seconds must not look like changes of the
workspace state (which the servers watch to reload sources).
"""

import threading
import time
from collections.abc import Sequence
from pathlib import Path

from trackway.storage.leases import HEARTBEAT_PREFIX, HEARTBEAT_PURGE_S, heartbeat_key
from trackway.storage.sqlite.connect import connect, rollback

FILE = "leases.db"
MIGRATIONS = (
    """
    CREATE TABLE leases(
        key TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        expires_at REAL NOT NULL
    )
    """,
)


class SQLiteLeases:
    """The `Leases` in a SQLite file (one machine: every process reads the same clock)."""

    def __init__(self, path: Path) -> None:
        self._conn = connect(path, MIGRATIONS)
        self._lock = threading.Lock()

    def acquire(
        self, owner: str, keys: Sequence[str], ttl_s: float, limit: int | None = None
    ) -> set[str]:
        now = time.time()
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                if limit is not None:
                    own = {
                        key
                        for key in keys
                        if self._conn.execute(
                            "SELECT 1 FROM leases WHERE key = ? AND owner = ?", (key, owner)
                        ).fetchone()
                    }
                    keys = sorted(own) + sorted(k for k in set(keys) if k not in own)
                granted: set[str] = set()
                for key in keys:
                    if limit is not None and len(granted) >= limit:
                        break
                    row = self._conn.execute(
                        "INSERT INTO leases(key, owner, expires_at) VALUES (?, ?, ?)"
                        " ON CONFLICT(key) DO UPDATE SET owner = excluded.owner,"
                        " expires_at = excluded.expires_at"
                        " WHERE leases.owner = excluded.owner OR leases.expires_at <= ?"
                        " RETURNING key",
                        (key, owner, now + ttl_s, now),
                    ).fetchone()
                    if row is not None:
                        granted.add(key)
                self._conn.execute("COMMIT")
            except BaseException:
                rollback(self._conn)
                raise
        return granted

    def heartbeat(self, pool: str, owner: str, ttl_s: float) -> int:
        now = time.time()
        prefix = f"{HEARTBEAT_PREFIX}{pool}:"
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute(
                    "INSERT INTO leases(key, owner, expires_at) VALUES (?, ?, ?)"
                    " ON CONFLICT(key) DO UPDATE SET owner = excluded.owner,"
                    " expires_at = excluded.expires_at",
                    (heartbeat_key(pool, owner), owner, now + ttl_s),
                )
                self._conn.execute(
                    "DELETE FROM leases WHERE substr(key, 1, ?) = ? AND expires_at < ?",
                    (len(prefix), prefix, now - HEARTBEAT_PURGE_S),
                )
                (live,) = self._conn.execute(
                    "SELECT count(*) FROM leases WHERE substr(key, 1, ?) = ? AND expires_at > ?",
                    (len(prefix), prefix, now),
                ).fetchone()
                self._conn.execute("COMMIT")
            except BaseException:
                rollback(self._conn)
                raise
        return int(live)

    def release(self, owner: str, keys: Sequence[str]) -> None:
        with self._lock:
            self._conn.executemany(
                "DELETE FROM leases WHERE key = ? AND owner = ?", [(k, owner) for k in keys]
            )

    def close(self) -> None:
        self._conn.close()
