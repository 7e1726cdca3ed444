"""The `DeliveryStore` on SQLite: `destinations.db` in the data directory."""

import threading
import time
from pathlib import Path
from typing import Any

from trackway import codec
from trackway.destinations.state import (
    COUNTERS,
    Alert,
    Counts,
    Cursor,
    DeadLetter,
    ErrorSample,
    Outcome,
    Pending,
)
from trackway.storage.sqlite.connect import connect, rollback

FILE = "destinations.db"
KEEP_ERRORS = 100
"""Error samples kept per destination (the newest)."""
KEEP_STATS_MS = 31 * 24 * 3600 * 1000

MIGRATIONS = (
    """
    CREATE TABLE cursors(
        destination TEXT PRIMARY KEY,
        position INTEGER NOT NULL,
        generation INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE retries(
        id INTEGER PRIMARY KEY,
        destination TEXT NOT NULL,
        subscription TEXT NOT NULL,
        position INTEGER NOT NULL,
        received_at_ms INTEGER NOT NULL,
        event BLOB NOT NULL,
        attempts INTEGER NOT NULL,
        first_failed_ms INTEGER NOT NULL,
        next_at_ms INTEGER NOT NULL,
        error TEXT NOT NULL
    );
    CREATE INDEX retries_due ON retries(destination, next_at_ms);
    CREATE TABLE dead_letters(
        id INTEGER PRIMARY KEY,
        destination TEXT NOT NULL,
        subscription TEXT NOT NULL,
        position INTEGER NOT NULL,
        received_at_ms INTEGER NOT NULL,
        event BLOB NOT NULL,
        attempts INTEGER NOT NULL,
        reason TEXT NOT NULL,
        error TEXT NOT NULL,
        failed_at_ms INTEGER NOT NULL
    );
    CREATE INDEX dead_letters_by_destination ON dead_letters(destination, id);
    CREATE TABLE stats(
        destination TEXT NOT NULL,
        action TEXT NOT NULL,
        minute INTEGER NOT NULL,
        delivered INTEGER NOT NULL DEFAULT 0,
        retried INTEGER NOT NULL DEFAULT 0,
        discarded INTEGER NOT NULL DEFAULT 0,
        dead_lettered INTEGER NOT NULL DEFAULT 0,
        filtered INTEGER NOT NULL DEFAULT 0,
        unsubscribed INTEGER NOT NULL DEFAULT 0,
        skipped INTEGER NOT NULL DEFAULT 0,
        latency TEXT NOT NULL,
        PRIMARY KEY (destination, action, minute)
    ) WITHOUT ROWID;
    CREATE TABLE errors(
        id INTEGER PRIMARY KEY,
        destination TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        action TEXT NOT NULL,
        kind TEXT NOT NULL,
        message TEXT NOT NULL,
        samples BLOB NOT NULL
    );
    CREATE INDEX errors_by_destination ON errors(destination, id);
    CREATE TABLE alerts(
        id INTEGER PRIMARY KEY,
        destination TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        kind TEXT NOT NULL,
        rate REAL NOT NULL,
        threshold REAL NOT NULL,
        attempts INTEGER NOT NULL,
        notified TEXT NOT NULL
    );
    CREATE INDEX alerts_by_destination ON alerts(destination, id);
    """,
    """
    ALTER TABLE cursors ADD COLUMN replayed_at_ms INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE names(
        destination TEXT NOT NULL,
        name TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        PRIMARY KEY (destination, name)
    ) WITHOUT ROWID;
    """,
)


class SQLiteDeliveryStore:
    """Delivery bookkeeping in one SQLite file, shared by the destination threads."""

    def __init__(self, path: Path) -> None:
        self._conn = connect(path, MIGRATIONS)
        self._lock = threading.Lock()

    @classmethod
    def of(cls, data_dir: Path) -> "SQLiteDeliveryStore":
        data_dir.mkdir(parents=True, exist_ok=True)
        return cls(data_dir / FILE)

    def close(self) -> None:
        self._conn.close()

    def cursor(self, destination: str, start: int) -> Cursor:
        with self._lock:
            self._conn.execute(
                "INSERT INTO cursors(destination, position) VALUES (?, ?)"
                " ON CONFLICT(destination) DO NOTHING",
                (destination, start),
            )
            row = self._conn.execute(
                "SELECT position, generation, replayed_at_ms FROM cursors WHERE destination = ?",
                (destination,),
            ).fetchone()
        return Cursor(*row)

    def move_cursor(self, destination: str, position: int, at_ms: int) -> Cursor:
        with self._lock:
            row = self._conn.execute(
                "INSERT INTO cursors(destination, position, replayed_at_ms) VALUES (?, ?, ?)"
                " ON CONFLICT(destination) DO UPDATE SET position = excluded.position,"
                " generation = generation + 1, replayed_at_ms = excluded.replayed_at_ms"
                " RETURNING position, generation, replayed_at_ms",
                (destination, position, at_ms),
            ).fetchone()
        return Cursor(*row)

    def names(self, destination: str) -> dict[str, int]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT name, at_ms FROM names WHERE destination = ?", (destination,)
            ).fetchall()
        return dict(rows)

    def record(self, destination: str, outcome: Outcome, cursor: Cursor | None) -> bool:
        moved = True
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._write(destination, outcome)
                if cursor is not None:
                    moved = (
                        conn.execute(
                            "UPDATE cursors SET position = ? WHERE destination = ?"
                            " AND generation = ? AND position <= ?",
                            (cursor.position, destination, cursor.generation, cursor.position),
                        ).rowcount
                        == 1
                    )
                conn.execute("COMMIT")
            except BaseException:
                rollback(conn)
                raise
        return moved

    def _write(self, destination: str, outcome: Outcome) -> None:
        conn = self._conn
        minute = _now_minute()
        for action, counts in outcome.counts.items():
            self._add_counts(destination, action, minute, counts)
        if outcome.done:
            conn.executemany("DELETE FROM retries WHERE id = ?", [(rid,) for rid in outcome.done])
        conn.executemany(
            "INSERT INTO names(destination, name, at_ms) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            [(destination, name, at_ms) for name, at_ms in outcome.names.items()],
        )
        for item in outcome.retry:
            values = item.row()
            if item.id is None:
                conn.execute(
                    "INSERT INTO retries(destination, subscription, position, received_at_ms,"
                    " event, attempts, first_failed_ms, next_at_ms, error)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (destination, *values),
                )
            else:
                conn.execute(
                    "UPDATE retries SET subscription = ?, position = ?, received_at_ms = ?,"
                    " event = ?, attempts = ?, first_failed_ms = ?, next_at_ms = ?, error = ?"
                    " WHERE id = ?",
                    (*values, item.id),
                )
        conn.executemany(
            "INSERT INTO dead_letters(destination, subscription, position, received_at_ms,"
            " event, attempts, reason, error, failed_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(destination, *d.row()) for d in outcome.dead],
        )
        if outcome.errors:
            conn.executemany(
                "INSERT INTO errors(destination, at_ms, action, kind, message, samples)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(destination, *e.row()) for e in outcome.errors],
            )
            conn.execute(
                "DELETE FROM errors WHERE destination = ? AND id <= (SELECT id FROM errors"
                " WHERE destination = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (destination, destination, KEEP_ERRORS),
            )

    def _add_counts(self, destination: str, action: str, minute: int, counts: Counts) -> None:
        key = (destination, action, minute)
        row = self._conn.execute(
            "SELECT latency FROM stats WHERE destination = ? AND action = ? AND minute = ?", key
        ).fetchone()
        values = tuple(getattr(counts, n) for n in COUNTERS)
        if row is None:
            self._conn.execute(
                f"INSERT INTO stats({', '.join(COUNTERS)}, latency, destination, action, minute)"
                f" VALUES ({', '.join('?' * len(COUNTERS))}, ?, ?, ?, ?)",
                (*values, codec.dumps(counts.latency).decode(), *key),
            )
            return
        merged = [a + b for a, b in zip(codec.loads(row[0]), counts.latency, strict=True)]
        self._conn.execute(
            f"UPDATE stats SET {', '.join(f'{n} = {n} + ?' for n in COUNTERS)}, latency = ?"
            " WHERE destination = ? AND action = ? AND minute = ?",
            (*values, codec.dumps(merged).decode(), *key),
        )

    def due(self, destination: str, now_ms: int, limit: int) -> list[Pending]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT subscription, position, received_at_ms, event, attempts,"
                " first_failed_ms, next_at_ms, error, id FROM retries"
                " WHERE destination = ? AND next_at_ms <= ? ORDER BY next_at_ms LIMIT ?",
                (destination, now_ms, limit),
            ).fetchall()
        return [Pending(r[0], r[1], r[2], codec.loads(r[3]), *r[4:]) for r in rows]

    def waiting(self, destination: str) -> int:
        return self._count("retries", destination)

    def held(self, destination: str) -> int:
        with self._lock:
            [count] = self._conn.execute(
                "SELECT count(*) FROM retries WHERE destination = ? AND error LIKE 'held:%'",
                (destination,),
            ).fetchone()
        return int(count)

    def dead_letter_count(self, destination: str) -> int:
        return self._count("dead_letters", destination)

    def _count(self, table: str, destination: str) -> int:
        with self._lock:
            row = self._conn.execute(
                f"SELECT count(*) FROM {table} WHERE destination = ?", (destination,)
            ).fetchone()
        return int(row[0])

    def dead_letters(self, destination: str, limit: int) -> list[DeadLetter]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT subscription, position, received_at_ms, event, attempts, reason,"
                " error, failed_at_ms, id FROM dead_letters WHERE destination = ?"
                " ORDER BY id DESC LIMIT ?",
                (destination, limit),
            ).fetchall()
        return [DeadLetter(r[0], r[1], r[2], codec.loads(r[3]), *r[4:]) for r in rows]

    def resend(self, destination: str, ids: list[int] | None, now_ms: int) -> int:
        where = "destination = ?"
        params: list[Any] = [destination]
        if ids is not None:
            where += f" AND id IN ({', '.join('?' * len(ids))})"
            params += ids
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                moved = conn.execute(
                    "INSERT INTO retries(destination, subscription, position, received_at_ms,"
                    " event, attempts, first_failed_ms, next_at_ms, error)"
                    f" SELECT destination, subscription, position, received_at_ms, event, 0, ?,"
                    f" ?, 're-sent from the dead letters' FROM dead_letters WHERE {where}",
                    (now_ms, now_ms, *params),
                ).rowcount
                conn.execute(f"DELETE FROM dead_letters WHERE {where}", params)
                conn.execute("COMMIT")
            except BaseException:
                rollback(conn)
                raise
        return int(moved)

    def counts(self, destination: str, since_ms: int) -> dict[str, Counts]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT action, {', '.join(COUNTERS)}, latency FROM stats"
                " WHERE destination = ? AND minute >= ?",
                (destination, since_ms // 60_000),
            ).fetchall()
        found: dict[str, Counts] = {}
        for row in rows:
            counts = Counts(
                **dict(zip(COUNTERS, row[1:-1], strict=True)), latency=codec.loads(row[-1])
            )
            found.setdefault(row[0], Counts()).add(counts)
        return found

    def minutes(self, destination: str, since_ms: int) -> dict[int, Counts]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT minute, {', '.join(COUNTERS)}, latency FROM stats"
                " WHERE destination = ? AND minute >= ?",
                (destination, since_ms // 60_000),
            ).fetchall()
        found: dict[int, Counts] = {}
        for row in rows:
            counts = Counts(
                **dict(zip(COUNTERS, row[1:-1], strict=True)), latency=codec.loads(row[-1])
            )
            found.setdefault(row[0], Counts()).add(counts)
        return found

    def errors(self, destination: str, limit: int) -> list[ErrorSample]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT at_ms, action, kind, message, samples FROM errors"
                " WHERE destination = ? ORDER BY id DESC LIMIT ?",
                (destination, limit),
            ).fetchall()
        samples = [codec.loads(r[4]) for r in rows]
        return [
            ErrorSample(r[0], r[1], r[2], r[3], s["event"], s["request"], s["response"])
            for r, s in zip(rows, samples, strict=True)
        ]

    def add_alert(self, destination: str, alert: Alert) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO alerts(destination, at_ms, kind, rate, threshold, attempts,"
                " notified) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    destination,
                    alert.at_ms,
                    alert.kind,
                    alert.rate,
                    alert.threshold,
                    alert.attempts,
                    alert.notified,
                ),
            )

    def alerts(self, destination: str, limit: int) -> list[Alert]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT at_ms, kind, rate, threshold, attempts, notified FROM alerts"
                " WHERE destination = ? ORDER BY id DESC LIMIT ?",
                (destination, limit),
            ).fetchall()
        return [Alert(*row) for row in rows]

    def retire(self, destination: str, now_ms: int) -> int:
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    "INSERT INTO dead_letters(destination, subscription, position,"
                    " received_at_ms, event, attempts, reason, error, failed_at_ms)"
                    " SELECT destination, subscription, position, received_at_ms, event,"
                    " attempts, 'deleted', error, ? FROM retries WHERE destination = ?"
                    " ORDER BY id",
                    (now_ms, destination),
                )
                for table in ("cursors", "retries", "stats", "errors", "alerts", "names"):
                    conn.execute(f"DELETE FROM {table} WHERE destination = ?", (destination,))
                conn.execute("COMMIT")
            except BaseException:
                rollback(conn)
                raise
        return self.dead_letter_count(destination)

    def purge(self, destination: str) -> int:
        with self._lock:
            cur = self._conn.execute(
                "DELETE FROM dead_letters WHERE destination = ?", (destination,)
            )
        return int(cur.rowcount)

    def prune(self, now_ms: int) -> None:
        """Drop per-minute counts older than a month."""
        with self._lock:
            self._conn.execute(
                "DELETE FROM stats WHERE minute < ?", ((now_ms - KEEP_STATS_MS) // 60_000,)
            )


def _now_minute() -> int:
    return int(time.time() // 60)
