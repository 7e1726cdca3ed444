"""The `SyncStore` in PostgreSQL: the `reverse_etl_*` tables of the `trackway` schema.

Any process on any machine sharing the database can run a sync. A run's staged rows
and plan live in temporary tables of the store's connection (`COPY`, not logged,
spilled to disk by the server past `temp_buffers`, gone with the session even after a
kill -9): the diff is three joins between them and the snapshot, so memory stays
bounded whatever the model's size, as with SQLite's scratch file. A sync is held by a
session-level advisory lock on its id, which the server releases when the holding
connection dies.

Keys are stored as text tagged with their type (`i7` for the integer, `s7` for the
string), so that 7 and '7' stay two keys, as in SQLite.
"""

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import psycopg

from trackway.reverse_etl.errors import SyncBusy
from trackway.reverse_etl.mapping import StagedRow
from trackway.reverse_etl.state import KINDS, Change, Counts, RowError, Run, Status, Trigger
from trackway.storage.postgres.connect import connect, unavailable
from trackway.storage.postgres.migrations import migrate

_LOCK_CLASS = 0x72657470  # "retp": the first key of the advisory lock on (class, sync id)
_RUN_COLUMNS = (
    "r.number, s.name, r.trigger, r.full_resync, r.status, r.started_at, r.ended_at,"
    " r.added, r.changed, r.removed, r.sent, r.failed, r.rejected, r.error"
)
_INTERRUPTED = (
    "interrupted: the process running it stopped (crash, kill or power loss); the next"
    " run sends whatever was not acknowledged"
)
_WORK_MEM = "64MB"
"""For the diff's hash joins and the key check (spilled to disk beyond)."""


class PostgresSyncStore:
    """The `SyncStore` in PostgreSQL; one connection, used by one thread."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: psycopg.Connection[Any] | None = None
        self._ids: dict[str, int] = {}
        self._scratch = False
        self._locked = 0
        self._migrated = False

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()  # the temporary tables and any advisory lock go with it
            self._conn = None
        self._scratch = False

    def _connection(self) -> psycopg.Connection[Any]:
        """The session; opened again after a failure, except while it holds a sync (its
        lock and scratch tables would be gone: the run fails instead)."""
        if self._conn is None or self._conn.closed or self._conn.broken:
            if self._locked or self._scratch:
                raise unavailable(psycopg.OperationalError("the connection was lost mid-run"))
            self._conn = connect(self.url)
            if not self._migrated:
                migrate(self._conn)
                self._migrated = True
            # Before the session's first temporary table (it cannot change after):
            # a run's staged rows and plan are cached up to this much, then spill.
            self._conn.execute(f"SET temp_buffers = '{_WORK_MEM}'")
        return self._conn

    @contextlib.contextmanager
    def _session(self) -> Iterator[psycopg.Connection[Any]]:
        """The connection; PostgreSQL errors become StorageUnavailable."""
        conn = self._connection()
        try:
            yield conn
        except psycopg.Error as exc:
            raise unavailable(exc) from exc

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection[Any]]:
        with self._session() as conn, conn.transaction():
            yield conn

    @contextlib.contextmanager
    def lock(self, sync: str) -> Iterator[None]:
        sync_id = self._sync_id(sync)
        with self._session() as conn:
            row = conn.execute(
                "SELECT pg_try_advisory_lock(%s::int, %s::int)", (_LOCK_CLASS, sync_id)
            ).fetchone()
        if not (row and row[0]):
            raise SyncBusy(
                f"sync '{sync}' is running already (another command or a worker's"
                " scheduler); try again when it has finished"
            )
        self._locked += 1
        try:
            yield
        finally:
            self._locked -= 1
            held = self._conn
            if held is None or held.closed or held.broken:
                # Lost mid-run: the lock and the scratch tables went with the session;
                # the next call connects again.
                self._scratch = False
            else:
                with contextlib.suppress(psycopg.Error):
                    held.execute(
                        "SELECT pg_advisory_unlock(%s::int, %s::int)", (_LOCK_CLASS, sync_id)
                    )

    def start_run(self, sync: str, trigger: Trigger, full_resync: bool) -> Run:
        sync_id = self._sync_id(sync)
        started = _now()
        with self._transaction() as conn:
            conn.execute(
                "UPDATE reverse_etl_runs SET status = 'failed', ended_at = %s, error = %s"
                " WHERE sync_id = %s AND status = 'running'",
                (started, _INTERRUPTED, sync_id),
            )
            # The sync's lock is held, so no other run takes this number (the unique
            # index on (sync_id, number) would refuse it).
            row = conn.execute(
                "INSERT INTO reverse_etl_runs"
                "(sync_id, number, trigger, full_resync, status, started_at)"
                " SELECT %s, coalesce(max(number), 0) + 1, %s, %s, 'running', %s"
                " FROM reverse_etl_runs WHERE sync_id = %s RETURNING number",
                (sync_id, trigger, full_resync, started, sync_id),
            ).fetchone()
        assert row is not None
        self._open_scratch()
        return Run(int(row[0]), sync, trigger, full_resync, "running", started)

    def stage(self, rows: Sequence[StagedRow]) -> None:
        with (
            self._session() as conn,
            conn.cursor() as cur,
            cur.copy(
                "COPY pg_temp.cur(pk, hash, payload, extra, error) FROM STDIN (FORMAT BINARY)"
            ) as copy,
        ):
            copy.set_types(["text", "int8", "bytea", "bytea", "text"])
            for pk, digest, payload, extra, error in rows:
                copy.write_row((_encode(pk), digest, payload, extra, error))

    def duplicate_keys(self, limit: int) -> tuple[int, list[Any]]:
        with self._transaction() as conn:
            # Temporary tables are never analyzed by autovacuum: without this, the
            # planner would guess the staged result's size.
            conn.execute("ANALYZE pg_temp.cur")
            conn.execute(f"SET LOCAL work_mem = '{_WORK_MEM}'")
            rows = conn.execute(
                "SELECT pk, count(*) OVER () FROM pg_temp.cur GROUP BY pk HAVING count(*) > 1"
                " LIMIT %s",
                (limit,),
            ).fetchall()
        if not rows:
            return 0, []
        return int(rows[0][1]), [_decode(r[0]) for r in rows]

    def initialized(self, sync: str) -> bool:
        with self._session() as conn:
            row = conn.execute(
                "SELECT initialized FROM reverse_etl_syncs WHERE name = %s", (sync,)
            ).fetchone()
        return bool(row and row[0])

    def record_initial(self, run: Run) -> int:
        sync_id = self._sync_id(run.sync)
        with self._transaction() as conn:
            cur = conn.execute(
                "INSERT INTO reverse_etl_snapshot AS s(sync_id, pk, hash, seq, payload)"
                " SELECT %s, pk, hash, 0, payload FROM pg_temp.cur"
                " ON CONFLICT (sync_id, pk) DO UPDATE SET hash = excluded.hash,"
                " payload = excluded.payload, seq = s.seq + 1, resend = false",
                (sync_id,),
            )
            conn.execute(
                "UPDATE reverse_etl_syncs SET initialized = true WHERE id = %s", (sync_id,)
            )
        return cur.rowcount

    def plan(self, run: Run) -> Counts:
        sync_id = self._sync_id(run.sync)
        added = "true" if run.full_resync else "s.hash IS NULL OR (s.resend AND s.hash = c.hash)"
        changed = "false" if run.full_resync else "s.hash <> c.hash"
        with self._transaction() as conn:
            conn.execute(f"SET LOCAL work_mem = '{_WORK_MEM}'")
            conn.execute(
                f"""
                INSERT INTO pg_temp.plan(kind, pk, hash, seq, payload, extra, error)
                SELECT 'added', c.pk, c.hash, coalesce(s.seq, 0), c.payload, c.extra, c.error
                  FROM pg_temp.cur AS c
                  LEFT JOIN reverse_etl_snapshot AS s ON s.sync_id = %(sync)s AND s.pk = c.pk
                 WHERE {added}
                UNION ALL
                SELECT 'changed', c.pk, c.hash, s.seq, c.payload, c.extra, c.error
                  FROM pg_temp.cur AS c
                  JOIN reverse_etl_snapshot AS s ON s.sync_id = %(sync)s AND s.pk = c.pk
                 WHERE {changed}
                UNION ALL
                SELECT 'removed', s.pk, s.hash, s.seq, s.payload, NULL, NULL
                  FROM reverse_etl_snapshot AS s
                 WHERE s.sync_id = %(sync)s AND s.hash IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM pg_temp.cur AS c WHERE c.pk = s.pk)
                """,
                {"sync": sync_id},
            )
            conn.execute("CREATE UNIQUE INDEX ON pg_temp.plan(id)")
            conn.execute("ANALYZE pg_temp.plan")
            by_kind = dict(
                conn.execute("SELECT kind, count(*) FROM pg_temp.plan GROUP BY kind").fetchall()
            )
        return Counts(*(int(by_kind.get(kind, 0)) for kind in KINDS))

    def changes(self, after: int, limit: int) -> list[Change]:
        with self._session() as conn:
            rows = conn.execute(
                "SELECT id, kind, pk, hash, seq, payload, extra, error FROM pg_temp.plan"
                " WHERE id > %s ORDER BY id LIMIT %s",
                (after, limit),
            ).fetchall()
        return [Change(int(r[0]), r[1], _decode(r[2]), r[3], r[4], r[5], r[6], r[7]) for r in rows]

    def save(
        self,
        run: Run,
        applied: Sequence[Change],
        resend: Sequence[Change],
        errors: Sequence[RowError],
        counts: Counts,
    ) -> None:
        sync_id = self._sync_id(run.sync)
        present = [c for c in applied if c.kind != "removed"]
        gone = [c for c in applied if c.kind == "removed"]
        with self._transaction() as conn:
            if present:
                # Binary parameters (%b): half the time of text ones for the payloads.
                conn.execute(
                    "INSERT INTO reverse_etl_snapshot(sync_id, pk, hash, seq, payload)"
                    " SELECT %b::int, *"
                    " FROM unnest(%b::text[], %b::bigint[], %b::int[], %b::bytea[])"
                    " ON CONFLICT (sync_id, pk) DO UPDATE SET hash = excluded.hash,"
                    " seq = excluded.seq, payload = excluded.payload, resend = false",
                    (
                        sync_id,
                        [_encode(c.pk) for c in present],
                        [c.hash for c in present],
                        [c.seq + 1 for c in present],
                        [c.payload for c in present],
                    ),
                )
            if gone:
                conn.execute(
                    "UPDATE reverse_etl_snapshot AS s SET hash = NULL, payload = NULL,"
                    " seq = g.seq, resend = false"
                    " FROM unnest(%b::text[], %b::int[]) AS g(pk, seq)"
                    " WHERE s.sync_id = %b AND s.pk = g.pk",
                    ([_encode(c.pk) for c in gone], [c.seq + 1 for c in gone], sync_id),
                )
            if resend:
                conn.execute(
                    "UPDATE reverse_etl_snapshot SET resend = true"
                    " WHERE sync_id = %s AND pk = ANY(%s::text[])",
                    (sync_id, [_encode(c.pk) for c in resend]),
                )
            if errors:
                with conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO reverse_etl_run_errors(run_id, pk, kind, status, error)"
                        " SELECT id, %s, %s, %s, %s FROM reverse_etl_runs"
                        " WHERE sync_id = %s AND number = %s",
                        [
                            (_encode(e.pk), e.kind, e.status, e.error, sync_id, run.id)
                            for e in errors
                        ],
                    )
            self._update_run(conn, sync_id, run.id, counts)

    def finish_run(self, run: Run, status: Status, counts: Counts, error: str | None) -> Run:
        ended = _now()
        sync_id = self._sync_id(run.sync)
        with self._transaction() as conn:
            self._update_run(conn, sync_id, run.id, counts)
            conn.execute(
                "UPDATE reverse_etl_runs SET status = %s, ended_at = %s, error = %s"
                " WHERE sync_id = %s AND number = %s",
                (status, ended, error, sync_id, run.id),
            )
            if status in ("succeeded", "partial"):
                conn.execute(
                    "UPDATE reverse_etl_syncs SET initialized = true WHERE name = %s", (run.sync,)
                )
        self._drop_scratch()
        return replace(run, status=status, ended_at=ended, counts=counts, error=error)

    def runs(self, sync: str, limit: int) -> list[Run]:
        with self._session() as conn:
            rows = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM reverse_etl_runs AS r"
                " JOIN reverse_etl_syncs AS s ON s.id = r.sync_id"
                " WHERE s.name = %s ORDER BY r.number DESC LIMIT %s",
                (sync, limit),
            ).fetchall()
        return [_run(row) for row in rows]

    def last_runs(self) -> dict[str, Run]:
        with self._session() as conn:
            rows = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM reverse_etl_syncs AS s"
                " JOIN LATERAL (SELECT * FROM reverse_etl_runs WHERE sync_id = s.id"
                " ORDER BY number DESC LIMIT 1) AS r ON true"
            ).fetchall()
        return {run.sync: run for run in map(_run, rows)}

    def row_errors(self, sync: str, run_id: int) -> list[RowError]:
        with self._session() as conn:
            rows = conn.execute(
                "SELECT e.pk, e.kind, e.status, e.error FROM reverse_etl_run_errors AS e"
                " JOIN reverse_etl_runs AS r ON r.id = e.run_id"
                " JOIN reverse_etl_syncs AS s ON s.id = r.sync_id"
                " WHERE s.name = %s AND r.number = %s ORDER BY e.id",
                (sync, run_id),
            ).fetchall()
        return [RowError(_decode(r[0]), r[1], r[2], r[3]) for r in rows]

    def snapshot_size(self, sync: str) -> int:
        with self._session() as conn:
            row = conn.execute(
                "SELECT count(*) FROM reverse_etl_snapshot AS n"
                " JOIN reverse_etl_syncs AS s ON s.id = n.sync_id"
                " WHERE s.name = %s AND n.hash IS NOT NULL",
                (sync,),
            ).fetchone()
        assert row is not None
        return int(row[0])

    def reset(self, sync: str) -> int:
        # Tombstones, not deletes: each key keeps its seq, so resent rows get new messageIds.
        sync_id = self._sync_id(sync)
        with self._transaction() as conn:
            cur = conn.execute(
                "UPDATE reverse_etl_snapshot SET hash = NULL, payload = NULL, resend = false"
                " WHERE sync_id = %s AND hash IS NOT NULL",
                (sync_id,),
            )
        return cur.rowcount

    def _sync_id(self, sync: str) -> int:
        known = self._ids.get(sync)
        if known is not None:
            return known
        with self._session() as conn:
            conn.execute(
                "INSERT INTO reverse_etl_syncs(name) VALUES (%s) ON CONFLICT (name) DO NOTHING",
                (sync,),
            )
            row = conn.execute(
                "SELECT id FROM reverse_etl_syncs WHERE name = %s", (sync,)
            ).fetchone()
        assert row is not None
        self._ids[sync] = int(row[0])
        return self._ids[sync]

    def _open_scratch(self) -> None:
        self._drop_scratch()
        with self._session() as conn:
            conn.execute(
                "CREATE TEMPORARY TABLE cur("
                ' pk text COLLATE "C" NOT NULL, hash bigint, payload bytea, extra bytea,'
                " error text)"
            )
            conn.execute(
                "CREATE TEMPORARY TABLE plan("
                " id bigint GENERATED ALWAYS AS IDENTITY, kind text NOT NULL,"
                ' pk text COLLATE "C" NOT NULL, hash bigint, seq integer NOT NULL,'
                " payload bytea, extra bytea, error text)"
            )
        self._scratch = True

    def _drop_scratch(self) -> None:
        if not self._scratch:
            return
        self._scratch = False
        conn = self._conn
        if conn is not None and not conn.closed and not conn.broken:
            with self._session() as live:
                live.execute("DROP TABLE IF EXISTS pg_temp.cur, pg_temp.plan")

    def _update_run(
        self, conn: psycopg.Connection[Any], sync_id: int, run_id: int, counts: Counts
    ) -> None:
        conn.execute(
            "UPDATE reverse_etl_runs SET added = %s, changed = %s, removed = %s, sent = %s,"
            " failed = %s, rejected = %s WHERE sync_id = %s AND number = %s",
            (
                counts.added,
                counts.changed,
                counts.removed,
                counts.sent,
                counts.failed,
                counts.rejected,
                sync_id,
                run_id,
            ),
        )


def _encode(pk: Any) -> str:
    """A key as stored: text tagged with its type (keys are integers or text, see mapping)."""
    if isinstance(pk, int):
        return f"i{pk}"
    return f"s{pk}"


def _decode(stored: str) -> Any:
    return int(stored[1:]) if stored[0] == "i" else stored[1:]


def _run(row: tuple[Any, ...]) -> Run:
    counts = Counts(*(int(n) for n in row[7:13]))
    return Run(int(row[0]), row[1], row[2], bool(row[3]), row[4], row[5], row[6], counts, row[13])


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
