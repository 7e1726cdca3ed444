"""The `SyncStore` on SQLite: `reverse_etl/state.db` in the data directory.

A run's staged rows and plan live in a scratch database attached beside the state
(`sync-<id>.scratch.db`, no journal, deleted when the run ends): the diff is three
joins between it and the snapshot, so memory stays bounded by SQLite's page cache
whatever the model's size. A sync is held by an exclusive `flock` on
`sync-<id>.lock`, which the kernel releases when the holding process dies.
"""

import contextlib
import fcntl
import os
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trackway.reverse_etl.errors import SyncBusy
from trackway.reverse_etl.mapping import StagedRow
from trackway.reverse_etl.state import KINDS, Change, Counts, RowError, Run, Status, Trigger
from trackway.storage.sqlite.connect import connect, rollback

DIRECTORY = "reverse_etl"
_STATE_FILE = "state.db"

# `pk` columns have no declared type, so SQLite applies no affinity: a key keeps its own
# type (integer or text) and '007' never turns into 7.
MIGRATIONS = (
    """
    CREATE TABLE syncs(
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        initialized INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE snapshot(
        sync_id INTEGER NOT NULL,
        pk NOT NULL,
        hash INTEGER,
        seq INTEGER NOT NULL,
        payload BLOB,
        resend INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (sync_id, pk)
    ) WITHOUT ROWID;
    CREATE TABLE runs(
        id INTEGER PRIMARY KEY,
        sync_id INTEGER NOT NULL REFERENCES syncs(id),
        trigger TEXT NOT NULL,
        full_resync INTEGER NOT NULL,
        status TEXT NOT NULL,
        started_at TEXT NOT NULL,
        ended_at TEXT,
        added INTEGER NOT NULL DEFAULT 0,
        changed INTEGER NOT NULL DEFAULT 0,
        removed INTEGER NOT NULL DEFAULT 0,
        sent INTEGER NOT NULL DEFAULT 0,
        failed INTEGER NOT NULL DEFAULT 0,
        rejected INTEGER NOT NULL DEFAULT 0,
        error TEXT
    );
    CREATE INDEX runs_by_sync ON runs(sync_id, id);
    CREATE TABLE run_errors(
        run_id INTEGER NOT NULL REFERENCES runs(id),
        pk NOT NULL,
        kind TEXT NOT NULL,
        status TEXT NOT NULL,
        error TEXT NOT NULL
    );
    CREATE INDEX run_errors_by_run ON run_errors(run_id)
    """,
    # Runs are numbered per sync (1, 2, 3 for each), the existing ones in their order.
    """
    ALTER TABLE runs ADD COLUMN number INTEGER NOT NULL DEFAULT 0;
    UPDATE runs SET number = n.number
      FROM (SELECT id, row_number() OVER (PARTITION BY sync_id ORDER BY id) AS number
              FROM runs) AS n
     WHERE runs.id = n.id;
    DROP INDEX runs_by_sync;
    CREATE UNIQUE INDEX runs_by_number ON runs(sync_id, number)
    """,
)

_RUN_COLUMNS = (
    "r.number, s.name, r.trigger, r.full_resync, r.status, r.started_at, r.ended_at,"
    " r.added, r.changed, r.removed, r.sent, r.failed, r.rejected, r.error"
)
_INTERRUPTED = (
    "interrupted: the process running it stopped (crash, kill or power loss); the next"
    " run sends whatever was not acknowledged"
)
# The scratch database is disposable: no journal, no syncs, a generous page cache.
_SCRATCH_PRAGMAS = (
    "PRAGMA scratch.journal_mode=OFF",
    "PRAGMA scratch.synchronous=OFF",
    "PRAGMA scratch.cache_size=-65536",
)


class SQLiteSyncStore:
    """The `SyncStore` in a directory of SQLite files."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._conn = connect(directory / _STATE_FILE, MIGRATIONS)
        self._scratch: Path | None = None

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> "SQLiteSyncStore":
        """The store of a Trackway data directory."""
        return cls(data_dir / DIRECTORY)

    @staticmethod
    def state_path(data_dir: Path) -> Path:
        """The file of a Trackway data directory's sync state."""
        return data_dir / DIRECTORY / _STATE_FILE

    def close(self) -> None:
        self._drop_scratch()
        self._conn.close()

    @contextlib.contextmanager
    def lock(self, sync: str) -> Iterator[None]:
        path = self.directory / f"sync-{self._sync_id(sync)}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise SyncBusy(
                    f"sync '{sync}' is running already (another command or the server's"
                    " scheduler); try again when it has finished"
                ) from None
            yield
        finally:
            os.close(fd)

    def start_run(self, sync: str, trigger: Trigger, full_resync: bool) -> Run:
        sync_id = self._sync_id(sync)
        started = _now()
        with self._transaction():
            self._conn.execute(
                "UPDATE runs SET status = 'failed', ended_at = ?, error = ?"
                " WHERE sync_id = ? AND status = 'running'",
                (started, _INTERRUPTED, sync_id),
            )
            number = self._conn.execute(
                "INSERT INTO runs(sync_id, number, trigger, full_resync, status, started_at)"
                " SELECT ?, coalesce(max(number), 0) + 1, ?, ?, 'running', ? FROM runs"
                " WHERE sync_id = ? RETURNING number",
                (sync_id, trigger, int(full_resync), started, sync_id),
            ).fetchone()[0]
        self._open_scratch(sync_id)
        return Run(number, sync, trigger, full_resync, "running", started)

    def stage(self, rows: Sequence[StagedRow]) -> None:
        # Deferred: staging writes only the scratch database, so the state stays
        # unlocked for other runs.
        with self._transaction(immediate=False):
            self._conn.executemany(
                "INSERT INTO scratch.cur(pk, hash, payload, extra, error) VALUES (?, ?, ?, ?, ?)",
                rows,
            )

    def duplicate_keys(self, limit: int) -> tuple[int, list[Any]]:
        self._conn.execute("CREATE INDEX IF NOT EXISTS scratch.cur_pk ON cur(pk)")
        rows = self._conn.execute(
            "SELECT pk FROM scratch.cur GROUP BY pk HAVING count(*) > 1"
        ).fetchmany(limit)
        if not rows:
            return 0, []
        total = self._conn.execute(
            "SELECT count(*) FROM (SELECT pk FROM scratch.cur GROUP BY pk HAVING count(*) > 1)"
        ).fetchone()[0]
        return int(total), [r[0] for r in rows]

    def initialized(self, sync: str) -> bool:
        row = self._conn.execute("SELECT initialized FROM syncs WHERE name = ?", (sync,)).fetchone()
        return bool(row and row[0])

    def record_initial(self, run: Run) -> int:
        sync_id = self._sync_id(run.sync)
        with self._transaction():
            cur = self._conn.execute(
                "INSERT INTO snapshot(sync_id, pk, hash, seq, payload)"
                " SELECT ?, pk, hash, 0, payload FROM scratch.cur WHERE true ORDER BY pk"
                " ON CONFLICT(sync_id, pk) DO UPDATE SET hash = excluded.hash,"
                " payload = excluded.payload, seq = seq + 1, resend = 0",
                (sync_id,),
            )
            self._conn.execute("UPDATE syncs SET initialized = 1 WHERE id = ?", (sync_id,))
        return cur.rowcount

    def plan(self, run: Run) -> Counts:
        sync_id = self._sync_id(run.sync)
        added = "true" if run.full_resync else "s.hash IS NULL OR (s.resend AND s.hash = c.hash)"
        changed = "false" if run.full_resync else "s.hash <> c.hash"
        self._conn.execute(
            f"""
            CREATE TABLE scratch.plan AS
            SELECT 'added' AS kind, c.pk, c.hash, coalesce(s.seq, 0) AS seq, c.payload,
                   c.extra, c.error
              FROM scratch.cur AS c
              LEFT JOIN main.snapshot AS s ON s.sync_id = :sync AND s.pk = c.pk
             WHERE {added}
            UNION ALL
            SELECT 'changed', c.pk, c.hash, s.seq, c.payload, c.extra, c.error
              FROM scratch.cur AS c
              JOIN main.snapshot AS s ON s.sync_id = :sync AND s.pk = c.pk
             WHERE {changed}
            UNION ALL
            SELECT 'removed', s.pk, s.hash, s.seq, s.payload, NULL, NULL
              FROM main.snapshot AS s
             WHERE s.sync_id = :sync AND s.hash IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM scratch.cur AS c WHERE c.pk = s.pk)
            """,
            {"sync": sync_id},
        )
        by_kind = dict(self._conn.execute("SELECT kind, count(*) FROM scratch.plan GROUP BY kind"))
        return Counts(*(int(by_kind.get(kind, 0)) for kind in KINDS))

    def changes(self, after: int, limit: int) -> list[Change]:
        rows = self._conn.execute(
            "SELECT rowid, kind, pk, hash, seq, payload, extra, error FROM scratch.plan"
            " WHERE rowid > ? ORDER BY rowid LIMIT ?",
            (after, limit),
        )
        return list(map(Change._make, rows))

    def save(
        self,
        run: Run,
        applied: Sequence[Change],
        resend: Sequence[Change],
        errors: Sequence[RowError],
        counts: Counts,
    ) -> None:
        sync_id = self._sync_id(run.sync)
        present = [
            (sync_id, c.pk, c.hash, c.seq + 1, c.payload) for c in applied if c.kind != "removed"
        ]
        gone = [(c.seq + 1, sync_id, c.pk) for c in applied if c.kind == "removed"]
        with self._transaction():
            self._conn.executemany(
                "INSERT INTO snapshot(sync_id, pk, hash, seq, payload) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT(sync_id, pk) DO UPDATE SET hash = excluded.hash,"
                " seq = excluded.seq, payload = excluded.payload, resend = 0",
                present,
            )
            self._conn.executemany(
                "UPDATE snapshot SET hash = NULL, payload = NULL, seq = ?, resend = 0"
                " WHERE sync_id = ? AND pk = ?",
                gone,
            )
            self._conn.executemany(
                "UPDATE snapshot SET resend = 1 WHERE sync_id = ? AND pk = ?",
                [(sync_id, c.pk) for c in resend],
            )
            self._conn.executemany(
                "INSERT INTO run_errors(run_id, pk, kind, status, error)"
                " SELECT id, ?, ?, ?, ? FROM runs WHERE sync_id = ? AND number = ?",
                [(e.pk, e.kind, e.status, e.error, sync_id, run.id) for e in errors],
            )
            self._update_run(sync_id, run.id, counts)

    def finish_run(self, run: Run, status: Status, counts: Counts, error: str | None) -> Run:
        ended = _now()
        sync_id = self._sync_id(run.sync)
        with self._transaction():
            self._update_run(sync_id, run.id, counts)
            self._conn.execute(
                "UPDATE runs SET status = ?, ended_at = ?, error = ?"
                " WHERE sync_id = ? AND number = ?",
                (status, ended, error, sync_id, run.id),
            )
            if status in ("succeeded", "partial"):
                self._conn.execute("UPDATE syncs SET initialized = 1 WHERE name = ?", (run.sync,))
        self._drop_scratch()
        return replace(run, status=status, ended_at=ended, counts=counts, error=error)

    def runs(self, sync: str, limit: int) -> list[Run]:
        rows = self._conn.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs AS r JOIN syncs AS s ON s.id = r.sync_id"
            " WHERE s.name = ? ORDER BY r.number DESC LIMIT ?",
            (sync, limit),
        )
        return [_run(row) for row in rows]

    def last_runs(self) -> dict[str, Run]:
        rows = self._conn.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs AS r JOIN syncs AS s ON s.id = r.sync_id"
            " WHERE r.number = (SELECT max(number) FROM runs WHERE sync_id = r.sync_id)"
        )
        return {run.sync: run for run in map(_run, rows)}

    def row_errors(self, sync: str, run_id: int) -> list[RowError]:
        rows = self._conn.execute(
            "SELECT e.pk, e.kind, e.status, e.error FROM run_errors AS e"
            " JOIN runs AS r ON r.id = e.run_id JOIN syncs AS s ON s.id = r.sync_id"
            " WHERE s.name = ? AND r.number = ? ORDER BY e.rowid",
            (sync, run_id),
        )
        return [RowError(*row) for row in rows]

    def snapshot_size(self, sync: str) -> int:
        row = self._conn.execute(
            "SELECT count(*) FROM snapshot JOIN syncs ON syncs.id = snapshot.sync_id"
            " WHERE syncs.name = ? AND snapshot.hash IS NOT NULL",
            (sync,),
        ).fetchone()
        return int(row[0])

    def reset(self, sync: str) -> int:
        # Tombstones, not deletes: each key keeps its seq, so resent rows get new messageIds.
        with self._transaction():
            cur = self._conn.execute(
                "UPDATE snapshot SET hash = NULL, payload = NULL, resend = 0"
                " WHERE sync_id = ? AND hash IS NOT NULL",
                (self._sync_id(sync),),
            )
        return cur.rowcount

    def _sync_id(self, sync: str) -> int:
        row = self._conn.execute("SELECT id FROM syncs WHERE name = ?", (sync,)).fetchone()
        if row is None:
            with self._transaction():
                self._conn.execute("INSERT OR IGNORE INTO syncs(name) VALUES (?)", (sync,))
            row = self._conn.execute("SELECT id FROM syncs WHERE name = ?", (sync,)).fetchone()
        return int(row[0])

    def _open_scratch(self, sync_id: int) -> None:
        self._drop_scratch()
        path = self.directory / f"sync-{sync_id}.scratch.db"
        path.unlink(missing_ok=True)  # left by a run that was killed
        self._conn.execute("ATTACH DATABASE ? AS scratch", (str(path),))
        self._scratch = path
        for pragma in _SCRATCH_PRAGMAS:
            self._conn.execute(pragma)
        self._conn.execute(
            "CREATE TABLE scratch.cur(pk, hash INTEGER, payload BLOB, extra BLOB, error TEXT)"
        )

    def _drop_scratch(self) -> None:
        if self._scratch is not None:
            self._conn.execute("DETACH DATABASE scratch")
            self._scratch.unlink(missing_ok=True)
            self._scratch = None

    def _update_run(self, sync_id: int, run_id: int, counts: Counts) -> None:
        self._conn.execute(
            "UPDATE runs SET added = ?, changed = ?, removed = ?, sent = ?, failed = ?,"
            " rejected = ? WHERE sync_id = ? AND number = ?",
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

    @contextlib.contextmanager
    def _transaction(self, immediate: bool = True) -> Iterator[None]:
        self._conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        try:
            yield
            self._conn.execute("COMMIT")
        except BaseException:
            rollback(self._conn)
            raise


def _run(row: tuple[Any, ...]) -> Run:
    counts = Counts(*row[7:13])
    return Run(row[0], row[1], row[2], bool(row[3]), row[4], row[5], row[6], counts, row[13])


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
