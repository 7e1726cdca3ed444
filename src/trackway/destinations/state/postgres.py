"""The `DeliveryStore` in PostgreSQL: the `delivery_*` tables of the `trackway` schema,
shared by the worker processes of every machine (each destination is worked by one
process at a time, under a lease; the CLI and the admin API read it from anywhere)."""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

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
from trackway.storage.postgres.connect import connect, unavailable

KEEP_ERRORS = 100
"""Error samples kept per destination (the newest)."""

_RETRY_COLUMNS = (
    "subscription, position, received_at_ms, event, attempts, first_failed_ms, next_at_ms, error"
)


class PostgresDeliveryStore:
    """Delivery bookkeeping in PostgreSQL; one connection per thread that uses it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._local = threading.local()
        self._conns: list[psycopg.Connection[Any]] = []
        self._conns_lock = threading.Lock()

    def close(self) -> None:
        with self._conns_lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()
        self._local = threading.local()

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """This thread's connection in a transaction; a failure drops the connection."""
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        try:
            if conn is None or conn.closed:
                conn = connect(self.url)
                self._local.conn = conn
                with self._conns_lock:
                    self._conns = [c for c in self._conns if not c.closed] + [conn]
            with conn.transaction():
                yield conn
        except psycopg.Error as exc:
            if conn is not None:
                conn.close()
            raise unavailable(exc) from exc

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self._transaction() as conn:
            return conn.execute(sql, params).fetchall()

    def cursor(self, destination: str, start: int) -> Cursor:
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO delivery_cursors(destination, position) VALUES (%s, %s)"
                " ON CONFLICT (destination) DO NOTHING",
                (destination, start),
            )
            [row] = conn.execute(
                "SELECT position, generation, replayed_at_ms FROM delivery_cursors"
                " WHERE destination = %s",
                (destination,),
            ).fetchall()
        return Cursor(*row)

    def move_cursor(self, destination: str, position: int, at_ms: int) -> Cursor:
        [row] = self._rows(
            "INSERT INTO delivery_cursors(destination, position, replayed_at_ms)"
            " VALUES (%s, %s, %s) ON CONFLICT (destination) DO UPDATE SET"
            " position = excluded.position, generation = delivery_cursors.generation + 1,"
            " replayed_at_ms = excluded.replayed_at_ms"
            " RETURNING position, generation, replayed_at_ms",
            (destination, position, at_ms),
        )
        return Cursor(*row)

    def names(self, destination: str) -> dict[str, int]:
        rows = self._rows(
            "SELECT name, at_ms FROM delivery_names WHERE destination = %s", (destination,)
        )
        return dict(rows)

    def record(self, destination: str, outcome: Outcome, cursor: Cursor | None) -> bool:
        with self._transaction() as conn:
            self._write(conn, destination, outcome)
            if cursor is None:
                return True
            # Forward only within a generation: a worker that lost its lease and finishes
            # a window late cannot move the cursor back behind the one that took over.
            moved = conn.execute(
                "UPDATE delivery_cursors SET position = %s WHERE destination = %s"
                " AND generation = %s AND position <= %s",
                (cursor.position, destination, cursor.generation, cursor.position),
            ).rowcount
        return moved == 1

    def _write(self, conn: psycopg.Connection[Any], destination: str, outcome: Outcome) -> None:
        minute = int(time.time() // 60)
        with conn.cursor() as cur:
            if outcome.counts:
                cur.executemany(
                    f"INSERT INTO delivery_stats(destination, action, minute,"
                    f" {', '.join(COUNTERS)}, latency)"
                    f" VALUES (%s, %s, %s, {', '.join(['%s'] * len(COUNTERS))}, %s)"
                    " ON CONFLICT (destination, action, minute) DO UPDATE SET "
                    + ", ".join(f"{n} = delivery_stats.{n} + excluded.{n}" for n in COUNTERS)
                    + ", latency = (SELECT array_agg(a + b ORDER BY i) FROM"
                    " unnest(delivery_stats.latency, excluded.latency)"
                    " WITH ORDINALITY AS t(a, b, i))",
                    [
                        (
                            destination,
                            action,
                            minute,
                            *(getattr(counts, n) for n in COUNTERS),
                            counts.latency,
                        )
                        for action, counts in outcome.counts.items()
                    ],
                )
            if outcome.done:
                cur.execute("DELETE FROM delivery_retries WHERE id = ANY(%s)", (outcome.done,))
            if outcome.names:
                cur.executemany(
                    "INSERT INTO delivery_names(destination, name, at_ms) VALUES (%s, %s, %s)"
                    " ON CONFLICT DO NOTHING",
                    [(destination, name, at_ms) for name, at_ms in outcome.names.items()],
                )
            new = [r for r in outcome.retry if r.id is None]
            again = [r for r in outcome.retry if r.id is not None]
            if new:
                cur.executemany(
                    f"INSERT INTO delivery_retries(destination, {_RETRY_COLUMNS})"
                    " VALUES (%s, %s, %s, %s, %b, %s, %s, %s, %s)",
                    [(destination, *r.row()) for r in new],
                )
            if again:
                cur.executemany(
                    "UPDATE delivery_retries SET subscription = %s, position = %s,"
                    " received_at_ms = %s, event = %b, attempts = %s, first_failed_ms = %s,"
                    " next_at_ms = %s, error = %s WHERE id = %s",
                    [(*r.row(), r.id) for r in again],
                )
            if outcome.dead:
                cur.executemany(
                    "INSERT INTO delivery_dead_letters(destination, subscription, position,"
                    " received_at_ms, event, attempts, reason, error, failed_at_ms)"
                    " VALUES (%s, %s, %s, %s, %b, %s, %s, %s, %s)",
                    [(destination, *d.row()) for d in outcome.dead],
                )
            if outcome.errors:
                cur.executemany(
                    "INSERT INTO delivery_errors(destination, at_ms, action, kind, message,"
                    " samples) VALUES (%s, %s, %s, %s, %s, %b)",
                    [(destination, *e.row()) for e in outcome.errors],
                )
                cur.execute(
                    "DELETE FROM delivery_errors WHERE destination = %s AND id <= (SELECT id"
                    " FROM delivery_errors WHERE destination = %s ORDER BY id DESC"
                    " LIMIT 1 OFFSET %s)",
                    (destination, destination, KEEP_ERRORS),
                )

    def due(self, destination: str, now_ms: int, limit: int) -> list[Pending]:
        rows = self._rows(
            f"SELECT {_RETRY_COLUMNS}, id FROM delivery_retries"
            " WHERE destination = %s AND next_at_ms <= %s ORDER BY next_at_ms LIMIT %s",
            (destination, now_ms, limit),
        )
        return [Pending(r[0], r[1], r[2], codec.loads(r[3]), *r[4:]) for r in rows]

    def waiting(self, destination: str) -> int:
        return self._count("delivery_retries", destination)

    def held(self, destination: str) -> int:
        [(count,)] = self._rows(
            "SELECT count(*) FROM delivery_retries WHERE destination = %s AND error LIKE 'held:%%'",
            (destination,),
        )
        return int(count)

    def dead_letter_count(self, destination: str) -> int:
        return self._count("delivery_dead_letters", destination)

    def _count(self, table: str, destination: str) -> int:
        [(count,)] = self._rows(
            f"SELECT count(*) FROM {table} WHERE destination = %s", (destination,)
        )
        return int(count)

    def dead_letters(self, destination: str, limit: int) -> list[DeadLetter]:
        rows = self._rows(
            "SELECT subscription, position, received_at_ms, event, attempts, reason, error,"
            " failed_at_ms, id FROM delivery_dead_letters WHERE destination = %s"
            " ORDER BY id DESC LIMIT %s",
            (destination, limit),
        )
        return [DeadLetter(r[0], r[1], r[2], codec.loads(r[3]), *r[4:]) for r in rows]

    def resend(self, destination: str, ids: list[int] | None, now_ms: int) -> int:
        where = "destination = %s" + ("" if ids is None else " AND id = ANY(%s)")
        params: tuple[Any, ...] = (destination,) if ids is None else (destination, ids)
        with self._transaction() as conn:
            moved = conn.execute(
                f"WITH gone AS (DELETE FROM delivery_dead_letters WHERE {where}"
                " RETURNING id, subscription, position, received_at_ms, event)"
                f" INSERT INTO delivery_retries(destination, {_RETRY_COLUMNS})"
                " SELECT %s, subscription, position, received_at_ms, event, 0, %s, %s,"
                " 're-sent from the dead letters' FROM gone ORDER BY id",
                (*params, destination, now_ms, now_ms),
            ).rowcount
        return int(moved)

    def counts(self, destination: str, since_ms: int) -> dict[str, Counts]:
        rows = self._rows(
            f"SELECT action, {', '.join(COUNTERS)}, latency FROM delivery_stats"
            " WHERE destination = %s AND minute >= %s",
            (destination, since_ms // 60_000),
        )
        found: dict[str, Counts] = {}
        for row in rows:
            counts = Counts(**dict(zip(COUNTERS, row[1:-1], strict=True)), latency=list(row[-1]))
            found.setdefault(row[0], Counts()).add(counts)
        return found

    def minutes(self, destination: str, since_ms: int) -> dict[int, Counts]:
        rows = self._rows(
            f"SELECT minute, {', '.join(COUNTERS)}, latency FROM delivery_stats"
            " WHERE destination = %s AND minute >= %s",
            (destination, since_ms // 60_000),
        )
        found: dict[int, Counts] = {}
        for row in rows:
            counts = Counts(**dict(zip(COUNTERS, row[1:-1], strict=True)), latency=list(row[-1]))
            found.setdefault(row[0], Counts()).add(counts)
        return found

    def errors(self, destination: str, limit: int) -> list[ErrorSample]:
        rows = self._rows(
            "SELECT at_ms, action, kind, message, samples FROM delivery_errors"
            " WHERE destination = %s ORDER BY id DESC LIMIT %s",
            (destination, limit),
        )
        samples = [codec.loads(r[4]) for r in rows]
        return [
            ErrorSample(r[0], r[1], r[2], r[3], s["event"], s["request"], s["response"])
            for r, s in zip(rows, samples, strict=True)
        ]

    def add_alert(self, destination: str, alert: Alert) -> None:
        self._rows(
            "INSERT INTO delivery_alerts(destination, at_ms, kind, rate, threshold, attempts,"
            " notified) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
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
        rows = self._rows(
            "SELECT at_ms, kind, rate, threshold, attempts, notified FROM delivery_alerts"
            " WHERE destination = %s ORDER BY id DESC LIMIT %s",
            (destination, limit),
        )
        return [Alert(*row) for row in rows]

    def retire(self, destination: str, now_ms: int) -> int:
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO delivery_dead_letters(destination, subscription, position,"
                " received_at_ms, event, attempts, reason, error, failed_at_ms)"
                " SELECT destination, subscription, position, received_at_ms, event,"
                " attempts, 'deleted', error, %s FROM delivery_retries WHERE destination = %s"
                " ORDER BY id",
                (now_ms, destination),
            )
            for table in ("cursors", "retries", "stats", "errors", "alerts", "names"):
                conn.execute(f"DELETE FROM delivery_{table} WHERE destination = %s", (destination,))
        return self.dead_letter_count(destination)

    def purge(self, destination: str) -> int:
        with self._transaction() as conn:
            deleted = conn.execute(
                "DELETE FROM delivery_dead_letters WHERE destination = %s", (destination,)
            ).rowcount
        return int(deleted)
