"""The embedded warehouse: a DuckDB file, one schema per source.

DuckDB lets one process write a file, or several read it, never both; so a connection
is opened per micro-batch and per query and closed right after, and opening waits a
little while another process holds the file. Rows are handed over as NumPy object
arrays (DuckDB scans them in place) and upserted with `INSERT ... ON CONFLICT`:
see docs/decisions/0004-warehouse-loading.md for the measurements.
"""

import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from trackway import codec
from trackway.warehouse.base import (
    LOADS_COLUMNS,
    LOADS_TABLE,
    REJECTED_COLUMNS,
    REJECTED_KEY,
    REJECTED_TABLE,
    NothingLoaded,
    QueryError,
    QueryResult,
    Stats,
    TableStats,
    WarehouseUnavailable,
)
from trackway.warehouse.naming import quote
from trackway.warehouse.plan import Catalog, LoadPlan, TableLoad
from trackway.warehouse.schema import ColumnType

SQL_TYPES: dict[ColumnType, str] = {
    "varchar": "VARCHAR",
    "integer": "BIGINT",
    "float": "DOUBLE",
    "boolean": "BOOLEAN",
    "timestamp": "TIMESTAMP",  # UTC; TIMESTAMPTZ would need pytz to be read in Python
}
_TYPES: dict[str, ColumnType] = {sql: type_ for type_, sql in SQL_TYPES.items()}
_TYPES.update(INTEGER="integer", FLOAT="float", TIMESTAMPTZ="timestamp")

_MEMORY_LIMIT = "96MB"
"""DuckDB's own cap for a load session (its default is 80% of RAM): the loader runs inside
`trackway serve`. Measured: server peak RSS under ingest 465 → 360 MB at 192MB; on a
backlog, the loader's RSS 258 → 225 MB at 96MB for 3-7% of its speed (bench/RESULTS.md,
"2026-11-23 07:05 UTC")."""
_OPEN_WAIT_S = 10.0
# DuckDB checkpoints when its WAL passes this (default 16MB: every other micro-batch
# in a catch-up); fewer, larger checkpoints cost less in all. Data not yet checkpointed
# stays in memory, so it is kept well under the loader's RSS budget (0004).
_CHECKPOINT_THRESHOLD = "64MB"
# One thread per load session: an INSERT of a micro-batch's few thousand rows ran
# 1.3-2x slower with two threads than with one on the 2-core machine (the second thread
# contends more than it helps), and the other core plans the next micro-batch (0009).
_LOAD_THREADS = 1
_OPEN_POLL_S = 0.05
_BATCH_VIEW = "_trackway_batch"
_NEW_FILE_BYTES = 1 << 20
"""A file smaller than this that DuckDB finds invalid is being created by another
process (a new database file is written out as it is created)."""
_JSON_OBJECT_BYTES = 16 * 1024 * 1024
"""DuckDB's default `maximum_object_size`: the largest row `read_json` takes."""
_READ_ONLY_STATEMENTS = (duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN)

_DDL = f"""
CREATE TABLE IF NOT EXISTS main.{LOADS_TABLE} (
    first_position BIGINT NOT NULL, position BIGINT NOT NULL, events BIGINT NOT NULL,
    rows BIGINT NOT NULL, rejected BIGINT NOT NULL, oldest_received_at TIMESTAMP NOT NULL,
    loaded_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS main.{REJECTED_TABLE} (
    schema_name VARCHAR, table_name VARCHAR, column_name VARCHAR, id VARCHAR,
    raw_value VARCHAR, reason VARCHAR, received_at TIMESTAMP, uuid_ts TIMESTAMP,
    PRIMARY KEY (schema_name, table_name, column_name, id)
)
"""

# One lock per file: in one process, the loader's read-write connection and a read-only
# query connection cannot be open at once either (DuckDB refuses a second configuration).
_locks: dict[Path, threading.Lock] = {}
_locks_lock = threading.Lock()


def _lock(path: Path) -> threading.Lock:
    with _locks_lock:
        return _locks.setdefault(path.resolve(), threading.Lock())


def open_file(
    path: Path,
    read_only: bool,
    config: dict[str, str | bool | int | float | list[str]] | None = None,
    wait_s: float = _OPEN_WAIT_S,
) -> duckdb.DuckDBPyConnection:
    """Open a DuckDB file, waiting (bounded) while another process holds its lock.

    DuckDB lets one process at a time open a file (the loader opens the warehouse
    for each micro-batch); raises WarehouseUnavailable when the wait runs out.
    """
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only, config=config or {})
        except duckdb.IOException as exc:
            if not _transient(exc, path) or time.monotonic() > deadline:
                raise WarehouseUnavailable(f"cannot open {path}: {exc}") from exc
            time.sleep(_OPEN_POLL_S)


def _transient(exc: duckdb.IOException, path: Path) -> bool:
    """Whether another process will let go soon: it holds the file's lock, or it is
    creating the file (whose header is not written yet)."""
    if "lock" in str(exc):
        return True
    try:
        creating = path.stat().st_size < _NEW_FILE_BYTES
    except OSError:
        return True  # gone meanwhile
    return "not a valid DuckDB database file" in str(exc) and creating


class DuckDBWarehouse:
    """The `Warehouse` on a DuckDB file."""

    engine = "duckdb"

    def __init__(self, path: Path, open_wait_s: float = _OPEN_WAIT_S) -> None:
        self.path = path
        self.open_wait_s = open_wait_s

    @contextmanager
    def _connect(self, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        config: dict[str, str | bool | int | float | list[str]] = {}
        if read_only:  # a query cannot read or write files, nor load extensions
            config["enable_external_access"] = False
        with _lock(self.path):
            conn = open_file(self.path, read_only, config, self.open_wait_s)
            try:
                yield conn
            finally:
                conn.close()

    @contextmanager
    def session(self) -> Iterator["DuckDBSession"]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect(read_only=False) as conn:
            conn.execute(_DDL)
            conn.execute(f"SET checkpoint_threshold = '{_CHECKPOINT_THRESHOLD}'")
            conn.execute(f"SET memory_limit = '{_MEMORY_LIMIT}'")
            conn.execute(f"SET threads = {_LOAD_THREADS}")
            yield DuckDBSession(conn)

    def stats(self) -> Stats | None:
        if not self.path.exists():
            return None
        with self._connect(read_only=True) as conn:
            known = conn.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main'"
                " AND table_name = ?",
                [LOADS_TABLE],
            ).fetchone()
            if not known or not known[0]:
                return None
            stats = Stats()
            row = conn.execute(
                f"SELECT count(*), coalesce(sum(events), 0), coalesce(sum(rows), 0),"
                f" coalesce(max(position), 0) FROM main.{LOADS_TABLE}"
            ).fetchone()
            assert row is not None
            stats.loads, stats.events, stats.rows, stats.position = row
            last = conn.execute(
                f"SELECT strftime(loaded_at, '%Y-%m-%dT%H:%M:%S.%fZ'), events"
                f" FROM main.{LOADS_TABLE} ORDER BY loaded_at DESC LIMIT 1"
            ).fetchone()
            if last is not None:
                stats.last_loaded_at, stats.last_events = last
            stats.tables = [
                TableStats(*r)
                for r in conn.execute(
                    "SELECT schema_name, table_name, column_count, estimated_size"
                    " FROM duckdb_tables() WHERE schema_name <> 'main' AND NOT internal"
                    " ORDER BY schema_name, table_name"
                ).fetchall()
            ]
            stats.rejected = dict(
                conn.execute(
                    f"SELECT reason, count(*) FROM main.{REJECTED_TABLE} GROUP BY reason"
                    " ORDER BY reason"
                ).fetchall()
            )
            return stats

    def query(
        self, sql: str, max_rows: int, timeout_s: float, search_path: list[str]
    ) -> QueryResult:
        try:
            statements = duckdb.extract_statements(sql)
        except duckdb.Error as exc:
            raise QueryError(str(exc)) from exc
        if len(statements) != 1:
            raise QueryError("send exactly one SQL statement")
        if statements[0].type not in _READ_ONLY_STATEMENTS:
            raise QueryError("only SELECT (and EXPLAIN) statements are allowed")
        if not self.path.exists():
            raise NothingLoaded(f"nothing has been loaded into {self.path} yet")
        with self._connect(read_only=True) as conn:
            resolve_in(conn, search_path)
            timer = threading.Timer(timeout_s, conn.interrupt)
            timer.start()
            try:
                cursor = conn.execute(sql)
                columns = [d[0] for d in cursor.description or []]
                rows = cursor.fetchmany(max_rows + 1)
            except duckdb.InterruptException as exc:
                raise QueryError(f"the query ran longer than {timeout_s:g} s") from exc
            except duckdb.Error as exc:
                raise QueryError(str(exc)) from exc
            finally:
                timer.cancel()
        return QueryResult(columns, rows[:max_rows], len(rows) > max_rows)

    def close(self) -> None:
        """Nothing stays open between sessions and queries."""


def resolve_in(conn: duckdb.DuckDBPyConnection, search_path: list[str]) -> None:
    """Make unqualified table names resolve in `search_path` (the schemas of it that
    exist, in order), then in `main`: `trackway sql` and models see the sources' tables."""
    names = conn.execute("SELECT schema_name FROM duckdb_schemas()").fetchall()
    schemas = {r[0] for r in names}
    path = ",".join(quote(s) for s in [*search_path, "main"] if s in schemas)
    conn.execute(f"SET search_path = {sql_text(path)}")


class DuckDBSession:
    """A read-write connection to the warehouse file, for one micro-batch."""

    def __init__(self, conn: duckdb.DuckDBPyConnection) -> None:
        self.conn = conn

    def position(self) -> int:
        row = self.conn.execute(
            f"SELECT coalesce(max(position), 0) FROM main.{LOADS_TABLE}"
        ).fetchone()
        return int(row[0]) if row else 0

    def catalog(self) -> Catalog:
        catalog: Catalog = {}
        rows = self.conn.execute(
            "SELECT schema_name, table_name, column_name, data_type FROM duckdb_columns()"
            " WHERE database_name = current_database() AND schema_name <> 'main'"
            " AND NOT internal ORDER BY schema_name, table_name, column_index"
        ).fetchall()
        for schema, table, column, sql_type in rows:
            catalog.setdefault((schema, table), {})[column] = _TYPES.get(sql_type, "varchar")
        return catalog

    def load(self, plan: LoadPlan) -> None:
        conn = self.conn
        conn.execute("BEGIN TRANSACTION")
        try:
            for schema in sorted({t.schema for t in plan.tables if t.created}):
                conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(schema)}")
            replaced: dict[str, list[str]] = {}  # ids already in `tracks`, per schema
            for table in plan.tables:
                self._evolve(table)
                target = _qualified(table)
                types = {c: SQL_TYPES[t] for c, t in table.columns.items()}
                rows = table.rows_file or list(table.rows.values())
                if table.merge:
                    self._upsert(target, types, rows, ("id",), merge=True)
                    continue
                # Event tables have no primary key (DuckDB keeps key indexes in memory):
                # ids loaded before are deleted first. An event table's ids are a subset
                # of `tracks`' ids, so `tracks` is looked up once for all of them.
                if table.event_table:
                    stored = replaced.get(table.schema, [])
                    ids = list(set(stored).intersection(table.rows)) if stored else []
                else:
                    ids = self._stored_ids(target, list(table.rows))
                    if table.name == "tracks":
                        replaced[table.schema] = ids
                if ids:
                    self._delete(target, ids)
                if table.select is not None:
                    self.conn.execute(f"INSERT INTO {target} {table.select}")
                    continue
                with _json_rows(rows, types) as source:
                    self.conn.execute(f"INSERT INTO {target} {_select(types, source)}")
            if plan.rejected:
                rejected = [
                    dict(zip(REJECTED_COLUMNS, (*r, plan.loaded_at), strict=True))
                    for r in plan.rejected
                ]
                types = {c: "VARCHAR" for c in REJECTED_COLUMNS}
                types.update(received_at="TIMESTAMP", uuid_ts="TIMESTAMP")
                target = f"main.{REJECTED_TABLE}"
                self._upsert(target, types, rejected, REJECTED_KEY, merge=False)
            conn.execute(
                f"INSERT INTO main.{LOADS_TABLE} ({', '.join(LOADS_COLUMNS)})"
                " VALUES (?, ?, ?, ?, ?, make_timestamp(? * 1000), ?::TIMESTAMP)",
                [
                    plan.first_position,
                    plan.position,
                    plan.events,
                    plan.rows,
                    len(plan.rejected),
                    plan.oldest_received_ms,
                    plan.loaded_at,
                ],
            )
            conn.execute("COMMIT")
        except BaseException:
            # A COMMIT that failed (a full disk) has ended the transaction already: the
            # ROLLBACK's "no transaction is active" must not hide why.
            with suppress(duckdb.TransactionException):
                conn.execute("ROLLBACK")
            raise
        finally:
            for name in plan.files:
                with suppress(FileNotFoundError):
                    os.unlink(name)

    def _evolve(self, table: TableLoad) -> None:
        target = _qualified(table)
        if table.created:
            columns = ", ".join(f"{quote(c)} {SQL_TYPES[t]}" for c, t in table.columns.items())
            # Only `users` (one row per user) has a primary key: see _upsert.
            key = ', PRIMARY KEY ("id")' if table.merge else ""
            self.conn.execute(f"CREATE TABLE {target} ({columns}{key})")
            return
        for column in table.added:
            sql_type = SQL_TYPES[table.columns[column]]
            self.conn.execute(f"ALTER TABLE {target} ADD COLUMN {quote(column)} {sql_type}")
        for column in table.widened + table.altered:
            sql_type = SQL_TYPES[table.columns[column]]
            self.conn.execute(f"ALTER TABLE {target} ALTER COLUMN {quote(column)} TYPE {sql_type}")

    def _stored_ids(self, target: str, ids: list[str]) -> list[str]:
        self.conn.register(_BATCH_VIEW, {"id": _objects(ids)})
        try:
            found = self.conn.execute(
                f'SELECT "id" FROM {target} WHERE "id" IN (SELECT "id" FROM {_BATCH_VIEW})'
            ).fetchall()
        finally:
            self.conn.unregister(_BATCH_VIEW)
        return [row[0] for row in found]

    def _delete(self, target: str, ids: list[str]) -> None:
        self.conn.register(_BATCH_VIEW, {"id": _objects(ids)})
        try:
            self.conn.execute(
                f'DELETE FROM {target} WHERE "id" IN (SELECT "id" FROM {_BATCH_VIEW})'
            )
        finally:
            self.conn.unregister(_BATCH_VIEW)

    def _upsert(
        self,
        target: str,
        types: dict[str, str],
        rows: list[dict[str, Any]] | str,
        key: tuple[str, ...],
        merge: bool,
    ) -> None:
        """Insert rows, replacing those with the same key; `merge`: a new row's missing
        values keep the stored ones."""
        updates = [quote(n) for n in types if n not in key]
        if merge:
            assignments = [f"{n} = coalesce(excluded.{n}, {n})" for n in updates]
        else:
            assignments = [f"{n} = excluded.{n}" for n in updates]
        conflict = ", ".join(quote(k) for k in key)
        with _json_rows(rows, types) as source:
            self.conn.execute(
                f"INSERT INTO {target} {_select(types, source)}"
                f" ON CONFLICT ({conflict}) DO UPDATE SET {', '.join(assignments)}"
            )


_ENCODED: dict[str, Any] = {}
"""The row left in `TableLoad.rows` once the rows are encoded (never changed)."""


def write_rows(plan: LoadPlan, directory: str) -> None:
    """Write each table's rows into a file in `directory`, as the JSON array `load`
    reads (in the planning process: the loading thread then only runs statements, and
    the rows never pass through it); only the rows' ids stay in the plan."""
    for table in plan.tables:
        if table.select is not None:  # DuckDB reads its rows from the events (direct.py)
            continue
        table.rows_file = spool_file(codec.dumps(list(table.rows.values())), directory)
        table.rows = dict.fromkeys(table.rows, _ENCODED)


def spool_file(data: bytes, directory: str | None = None, suffix: str = ".json") -> str:
    """A new temporary file (in `directory`, else the system's) holding `data`."""
    fd, name = tempfile.mkstemp(prefix="trackway-load-", suffix=suffix, dir=directory)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    return name


def sql_text(text: str) -> str:
    """A string as an SQL literal."""
    return "'" + text.replace("'", "''") + "'"


@contextmanager
def _json_rows(rows: list[dict[str, Any]] | str, types: dict[str, str]) -> Iterator[str]:
    """Rows (or a file `write_rows` wrote) as a `read_json` table expression over a
    temporary file, deleted afterwards.

    DuckDB parses JSON in C++ without Python's GIL, so the loader's next micro-batch
    is planned meanwhile (docs/decisions/0004-warehouse-loading.md).
    """
    name = rows if isinstance(rows, str) else spool_file(codec.dumps(rows))
    try:
        spec = ", ".join(f"{sql_text(c)}: '{t}'" for c, t in types.items())
        # A `maximum_object_size` above DuckDB's default made every statement slower
        # (0010), so it is raised only for a file large enough to hold a row beyond
        # the default (rows are far smaller: ingest takes events of at most 32 KB).
        size = os.path.getsize(name)
        limit = f", maximum_object_size = {size}" if size > _JSON_OBJECT_BYTES else ""
        yield f"read_json({sql_text(name)}, format = 'array', columns = {{{spec}}}{limit})"
    finally:
        os.unlink(name)


def _select(types: dict[str, str], source: str) -> str:
    columns = ", ".join(quote(c) for c in types)
    return f"({columns}) SELECT {columns} FROM {source}"


def _qualified(table: TableLoad) -> str:
    return f"{quote(table.schema)}.{quote(table.name)}"


def _objects(values: list[Any]) -> "np.ndarray[Any, np.dtype[np.object_]]":
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array
