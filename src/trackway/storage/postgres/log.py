"""The event log in PostgreSQL: group commit per process, many processes per database.

Each request's accepted events are one `chunks` row (a JSON array with its ids' hashes),
as in SQLite, and each process's writer commits many requests at once. Several API
processes commit to the same tables, so each commit transaction starts by locking the
one-row `head` (the next position) with `SELECT ... FOR UPDATE`, held until COMMIT:

- **Positions**: commits are serialized in position order, so a reader that sees
  position p has also seen every position below p (no consumer skips an event that
  commits late with a smaller position). Failure and duplicate rows are numbered while
  the lock is held, so their ids follow commit order too.
- **Dedup**: every process keeps the in-memory `RecentIds` of the SQLite log. Holding
  the lock, a writer first reads the hashes of the chunks other processes committed
  since its last commit (positions it has not seen), so its index holds every id
  committed anywhere before it decides (docs/decisions/0006-postgres-log.md).
- **Waking consumers**: the commit that moves `head` also sends `NOTIFY trackway_log`
  with the new end (delivered at COMMIT, to every process listening), so a consumer at
  the end of the log sleeps on `wait_for` instead of polling.
"""

import threading
from collections.abc import Iterable
from typing import Any

import numpy as np
import psycopg

from trackway.storage.base import StorageUnavailable
from trackway.storage.chunk_reads import ChunkReads
from trackway.storage.group_commit import (
    GroupCommitLog,
    Pending,
    current_ms,
)
from trackway.storage.postgres.connect import connect, unavailable
from trackway.storage.postgres.migrations import migrate
from trackway.storage.records import Status

_TABLES: dict[Status, str] = {
    "accepted": "chunks",
    "rejected": "failures",
    "duplicate": "duplicates",
}

CHANNEL = "trackway_log"

_MOVE_HEAD = f"""
    WITH moved AS (UPDATE head SET next_pos = %s RETURNING next_pos)
    SELECT pg_notify('{CHANNEL}', next_pos::text) FROM moved
"""
_LISTEN_TIMEOUT_S = 0.5
"""How long the listener waits for a notification before it looks whether to stop."""

_INSERT_CHUNKS = """
    INSERT INTO chunks(pos, count, source_id, received_at, events, hashes)
    SELECT * FROM unnest(%b::bigint[], %b::integer[], %b::integer[], %b::bigint[],
                         %b::bytea[], %b::bytea[])
"""


class PostgresEventLog(GroupCommitLog, ChunkReads):
    """The `EventLog` in a PostgreSQL database shared by any number of processes."""

    def __init__(
        self,
        url: str,
        *,
        dedup_window_s: float = 86_400,
        retention_s: float = 7 * 86_400,
    ) -> None:
        super().__init__(dedup_window_s)
        self.url = url
        self.retention_ms = int(retention_s * 1000)
        self._writer: psycopg.Connection[Any] | None = None
        self._known_end = 1
        """Every chunk below this position is in `_recent` (or outside the window)."""
        self._local = threading.local()
        self._readers: list[psycopg.Connection[Any]] = []
        self._readers_lock = threading.Lock()
        self._listener: threading.Thread | None = None
        self._listener_lock = threading.Lock()
        self._stop_listening = threading.Event()
        conn = connect(url)
        try:
            migrate(conn)
        finally:
            conn.close()

    def close(self) -> None:
        """Commit everything queued, stop the writer and close every connection."""
        self._stop_writer()
        self._stop_listening.set()
        if self._listener is not None:
            self._listener.join()
            self._listener = None
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        self._local = threading.local()

    # -- writing -----------------------------------------------------------------

    def _open_writer(self) -> None:
        conn = self._connection()
        try:
            [(end,)] = conn.execute("SELECT next_pos FROM head").fetchall()
            self._recent.rebuild(
                conn.execute(
                    "SELECT received_at, hashes FROM chunks WHERE pos < %s AND received_at >= %s",
                    (end, current_ms() - self._recent.window_ms),
                )
            )
        except psycopg.Error as exc:
            self._drop_writer()
            raise unavailable(exc) from exc
        self._known_end = end

    def _close_writer(self) -> None:
        self._drop_writer()

    def _connection(self) -> psycopg.Connection[Any]:
        """The writer's connection, opened again after a failure (PostgreSQL came back)."""
        if self._writer is None or self._writer.closed:
            self._writer = connect(self.url)
        return self._writer

    def _drop_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _commit(self, work: list[Pending]) -> None:
        try:
            conn = self._connection()
            with conn.transaction():
                [(pos,)] = conn.execute("SELECT next_pos FROM head FOR UPDATE").fetchall()
                self._catch_up(conn, pos)
                group = self._stage(work, pos)
                if group.chunks:
                    conn.execute(
                        _INSERT_CHUNKS, [list(column) for column in zip(*group.chunks, strict=True)]
                    )
                    conn.execute(_MOVE_HEAD, (group.end_pos,))
                with conn.cursor() as cur:
                    if group.failures:
                        cur.executemany(
                            "INSERT INTO failures(source_id, received_at, idx, code, message, raw)"
                            " VALUES (%s, %s, %s, %s, %s, %b)",
                            group.failures,
                        )
                    if group.duplicates:
                        cur.executemany(
                            "INSERT INTO duplicates(source_id, received_at, message_id, body)"
                            " VALUES (%s, %s, %s, %b)",
                            group.duplicates,
                        )
        except (psycopg.Error, StorageUnavailable) as exc:
            # If the COMMIT itself was lost, its chunks may be durable after all: they lie
            # at or above `_known_end`, so the next commit reads their ids back.
            self._drop_writer()
            self._failed(work, exc if isinstance(exc, StorageUnavailable) else unavailable(exc))
            return
        self._known_end = group.end_pos
        self._committed(work, group)

    def _catch_up(self, conn: psycopg.Connection[Any], end: int) -> None:
        """Add the ids of chunks committed by other processes (positions below `end`)."""
        if end > self._known_end:
            cutoff = current_ms() - self._recent.window_ms
            for at_ms, hashes in conn.execute(
                "SELECT received_at, hashes FROM chunks WHERE pos >= %s AND pos < %s",
                (self._known_end, end),
            ):
                if at_ms >= cutoff:
                    self._recent.add(_hashes(hashes), at_ms)
        self._known_end = end

    def _upkeep(self, now_ms: int) -> None:
        self._recent.expire(now_ms)
        try:
            self.enforce_retention(now_ms, self._connection())
        except (psycopg.Error, StorageUnavailable):
            self._drop_writer()  # tried again at the next upkeep

    # -- waiting -----------------------------------------------------------------

    _LOOK_EVERY_S = 60.0
    """The listener wakes `wait_for`; looking again is for a listener that reconnects."""

    def _look_for_commits(self) -> None:
        with self._listener_lock:
            if self._listener is None:
                self._stop_listening.clear()
                self._listener = threading.Thread(
                    target=self._listen, name="trackway-log-listener", daemon=True
                )
                self._listener.start()
        [(end,)] = self._query("SELECT next_pos FROM head")
        self._advance(end)

    def _listen(self) -> None:
        """LISTEN for commits of every process; reconnects after a failure."""
        while not self._stop_listening.is_set():
            conn: psycopg.Connection[Any] | None = None
            try:
                conn = connect(self.url)
                conn.execute(f"LISTEN {CHANNEL}")
                [(end,)] = conn.execute("SELECT next_pos FROM head").fetchall()
                self._advance(end)
                while not self._stop_listening.is_set():
                    for notice in conn.notifies(timeout=_LISTEN_TIMEOUT_S):
                        self._advance(int(notice.payload))
            except (psycopg.Error, StorageUnavailable, ValueError):
                self._stop_listening.wait(1.0)
            finally:
                if conn is not None:
                    conn.close()

    # -- reading -----------------------------------------------------------------

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        return self._query(sql.replace("?", "%s"), params)

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        """Rows of a read on this thread's connection; a failure drops the connection."""
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        try:
            if conn is None or conn.closed:
                conn = connect(self.url)
                self._local.conn = conn
                with self._readers_lock:
                    self._readers = [c for c in self._readers if not c.closed] + [conn]
            return conn.execute(sql, tuple(params)).fetchall()
        except psycopg.Error as exc:
            if conn is not None:
                conn.close()
            raise unavailable(exc) from exc

    def last_seqs(self) -> dict[Status, int]:
        """The newest sequence number per status, to follow the log from now on."""
        [(accepted, rejected, duplicate)] = self._query(
            "SELECT (SELECT next_pos - 1 FROM head), (SELECT max(id) FROM failures),"
            " (SELECT max(id) FROM duplicates)"
        )
        return {"accepted": accepted, "rejected": rejected or 0, "duplicate": duplicate or 0}

    # -- upkeep ------------------------------------------------------------------

    def enforce_retention(self, now_ms: int, conn: psycopg.Connection[Any] | None = None) -> int:
        """Delete what is older than the retention period; returns the rows deleted.

        The log loses a prefix: rows before the first one received within the period,
        except the newest chunk. Positions continue from `head` anyway.
        """
        cutoff = now_ms - self.retention_ms
        statements = [
            (
                f"DELETE FROM {table} WHERE {key} < coalesce((SELECT {key} FROM {table}"
                f" WHERE received_at >= %s ORDER BY {key} LIMIT 1),"
                f" (SELECT max({key}) + {past_last} FROM {table}))",
                (cutoff,),
            )
            for table, key, past_last in (
                ("chunks", "pos", 0),  # the newest chunk stays, as in SQLite
                ("failures", "id", 1),
                ("duplicates", "id", 1),
            )
        ]
        deleted = 0
        try:
            own = conn or connect(self.url)
            try:
                for sql, params in statements:
                    deleted += own.execute(sql, params).rowcount
            finally:
                if conn is None:
                    own.close()
        except psycopg.Error as exc:
            raise unavailable(exc) from exc
        return deleted

    def ping(self) -> None:
        """Raise `StorageUnavailable` unless PostgreSQL answers and the writer runs."""
        if not self._writer_running():
            raise StorageUnavailable("the log writer has stopped")
        self._query("SELECT 1 FROM head")


def _hashes(blob: bytes) -> list[int]:
    hashes: list[int] = np.frombuffer(blob, dtype=np.uint64).tolist()
    return hashes
