"""The event log in SQLite: one writer thread with group commit.

Each request's accepted events are stored as one chunk row (a JSON array) whose key
is the position of its first event, so a 100-event batch costs one row insert. The
writer drains every append waiting in its queue, commits them in one transaction
(one fsync with `synchronous=FULL`), and only then resolves the callers' futures.
"""

import sqlite3
import threading
from pathlib import Path
from typing import Any

from trackway.storage.base import StorageUnavailable
from trackway.storage.chunk_reads import ChunkReads
from trackway.storage.group_commit import (
    GroupCommitLog,
    Pending,
    current_ms,
)
from trackway.storage.records import (
    Status,
)
from trackway.storage.sqlite.connect import Synchronous, connect, rollback

MIGRATIONS = (
    """
    CREATE TABLE chunks(
        pos INTEGER PRIMARY KEY,
        count INTEGER NOT NULL,
        source_id INTEGER NOT NULL,
        received_at INTEGER NOT NULL,
        events BLOB NOT NULL,
        hashes BLOB NOT NULL
    );
    CREATE INDEX chunks_by_source ON chunks(source_id, pos);
    CREATE TABLE failures(
        id INTEGER PRIMARY KEY,
        source_id INTEGER NOT NULL,
        received_at INTEGER NOT NULL,
        idx INTEGER NOT NULL,
        code TEXT NOT NULL,
        message TEXT NOT NULL,
        raw BLOB
    );
    CREATE INDEX failures_by_source ON failures(source_id, id);
    CREATE TABLE duplicates(
        id INTEGER PRIMARY KEY,
        source_id INTEGER NOT NULL,
        received_at INTEGER NOT NULL,
        message_id TEXT NOT NULL,
        body BLOB NOT NULL
    );
    CREATE INDEX duplicates_by_source ON duplicates(source_id, id)
    """,
)

_TABLES: dict[Status, str] = {
    "accepted": "chunks",
    "rejected": "failures",
    "duplicate": "duplicates",
}
_LAST_END = "SELECT pos + count FROM chunks ORDER BY pos DESC LIMIT 1"
"""The position after the last event: one index step (max(pos + count) scans the table,
and the warehouse loader asks several times a second)."""
_PAGE_SIZE = 65536
"""Chunks are ~50 KB: large pages mean fewer page writes per chunk (measured: writer CPU
4.2-5.0 → 3.7-3.9 µs per event, bench/RESULTS.md)."""


class SQLiteEventLog(GroupCommitLog, ChunkReads):
    """The `EventLog` on a SQLite file (WAL mode)."""

    def __init__(
        self,
        path: Path,
        *,
        synchronous: Synchronous = "full",
        dedup_window_s: float = 86_400,
        retention_s: float = 7 * 86_400,
    ) -> None:
        super().__init__(dedup_window_s)
        self.path = path
        self.synchronous = synchronous
        self.retention_ms = int(retention_s * 1000)
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._writer: sqlite3.Connection | None = None
        self._next_pos = 1
        connect(path, MIGRATIONS, synchronous, _PAGE_SIZE).close()

    # -- writing -----------------------------------------------------------------

    def close(self) -> None:
        """Commit everything queued, stop the writer and close every connection."""
        self._stop_writer()
        for conn in self._readers:
            conn.close()
        self._readers.clear()
        self._local = threading.local()

    def _open_writer(self) -> None:
        conn = connect(self.path, MIGRATIONS, self.synchronous, _PAGE_SIZE)
        self._writer = conn
        now = current_ms()
        self._recent.rebuild(
            conn.execute(
                "SELECT received_at, hashes FROM chunks WHERE received_at >= ?",
                (now - self._recent.window_ms,),
            )
        )
        row = conn.execute(_LAST_END).fetchone()
        self._next_pos = row[0] if row else 1

    def _close_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _commit(self, work: list[Pending]) -> None:
        conn = self._writer
        assert conn is not None
        group = self._stage(work, self._next_pos)
        try:
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT INTO chunks(pos, count, source_id, received_at, events, hashes)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                group.chunks,
            )
            conn.executemany(
                "INSERT INTO failures(source_id, received_at, idx, code, message, raw)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                group.failures,
            )
            conn.executemany(
                "INSERT INTO duplicates(source_id, received_at, message_id, body)"
                " VALUES (?, ?, ?, ?)",
                group.duplicates,
            )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            rollback(conn)
            self._failed(work, StorageUnavailable(f"could not commit to the event log: {exc}"))
            return
        self._next_pos = group.end_pos
        self._committed(work, group)

    def _upkeep(self, now_ms: int) -> None:
        self._recent.expire(now_ms)
        self.enforce_retention(now_ms, self._writer)

    # -- reading -----------------------------------------------------------------

    _LOOK_EVERY_S = 0.1
    """Commits of this process wake `wait_for` at once; another process's (`trackway
    serve --role api` beside a worker) are seen within this time."""

    def _look_for_commits(self) -> None:
        row = self._reader().execute(_LAST_END).fetchone()
        self._advance(row[0] if row else 1)

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        return self._reader().execute(sql, params).fetchall()

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, MIGRATIONS, self.synchronous, _PAGE_SIZE)
            self._local.conn = conn
            self._readers.append(conn)
        return conn

    def last_seqs(self) -> dict[Status, int]:
        """The newest sequence number per status, to follow the log from now on."""
        conn = self._reader()
        row = conn.execute(_LAST_END).fetchone()
        out: dict[Status, int] = {"accepted": row[0] - 1 if row else 0}
        for status in ("rejected", "duplicate"):
            row = conn.execute(f"SELECT max(id) FROM {_TABLES[status]}").fetchone()
            out[status] = row[0] or 0
        return out

    def enforce_retention(self, now_ms: int, conn: sqlite3.Connection | None = None) -> int:
        """Delete what is older than the retention period; returns the rows deleted.

        The newest chunk is always kept: positions continue from it, so a consumer's
        cursor never meets a reused position after everything expired.
        """
        conn = conn or self._reader()
        cutoff = now_ms - self.retention_ms
        deleted = 0
        for table in _TABLES.values():
            key = "pos" if table == "chunks" else "id"
            keep_last = " AND pos < (SELECT max(pos) FROM chunks)" if table == "chunks" else ""
            while True:
                cur = conn.execute(
                    f"DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table}"
                    f" WHERE received_at < ?{keep_last} ORDER BY {key} LIMIT 1000)",
                    (cutoff,),
                )
                deleted += cur.rowcount
                if cur.rowcount < 1000:
                    break
        return deleted

    def ping(self) -> None:
        """Raise `StorageUnavailable` unless the log can be read and the writer runs."""
        if not self._writer_running():
            raise StorageUnavailable("the log writer has stopped")
        try:
            self._reader().execute("SELECT 1 FROM chunks LIMIT 1").fetchall()
        except sqlite3.Error as exc:
            raise StorageUnavailable(str(exc)) from exc
