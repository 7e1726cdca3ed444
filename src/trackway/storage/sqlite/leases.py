"""Leases in SQLite: `leases.db` in the data directory, for the processes of one machine.

A file of its own: renewals every few seconds must not look like changes of the
workspace state (which the servers watch to reload sources).
"""

import threading
import time
from collections.abc import Sequence
from pathlib import Path

from trackway.storage.sqlite.connect import connect

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

    def acquire(self, owner: str, keys: Sequence[str], ttl_s: float) -> set[str]:
        now = time.time()
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                granted: set[str] = set()
                for key in keys:
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
                self._conn.execute("ROLLBACK")
                raise
        return granted

    def release(self, owner: str, keys: Sequence[str]) -> None:
        with self._lock:
            self._conn.executemany(
                "DELETE FROM leases WHERE key = ? AND owner = ?", [(k, owner) for k in keys]
            )

    def close(self) -> None:
        self._conn.close()
