"""A PostgreSQL warehouse: one schema per source, rows upserted through COPY.

Each table has a primary key on `id` (`users` too); a batch is copied into a temporary
table and moved with `INSERT ... ON CONFLICT`, in the same transaction as the cursor.
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from trackway.warehouse.base import (
    LOADS_COLUMNS,
    LOADS_TABLE,
    REJECTED_COLUMNS,
    REJECTED_KEY,
    REJECTED_TABLE,
    QueryError,
    QueryResult,
    Stats,
    TableStats,
    WarehouseUnavailable,
)
from trackway.warehouse.plan import Catalog, LoadPlan, TableLoad
from trackway.warehouse.schema import ColumnType

SQL_TYPES: dict[ColumnType, str] = {
    "varchar": "text",
    "integer": "bigint",
    "float": "double precision",
    "boolean": "boolean",
    "timestamp": "timestamptz",
}
_TYPES: dict[str, ColumnType] = {
    "text": "varchar",
    "character varying": "varchar",
    "bigint": "integer",
    "integer": "integer",
    "double precision": "float",
    "real": "float",
    "boolean": "boolean",
    "timestamp with time zone": "timestamp",
    "timestamp without time zone": "timestamp",
}
_CONNECT_TIMEOUT_S = 5
_SCHEMA = "public"  # where _trackway_loads and _rejected_values live

_DDL = f"""
CREATE TABLE IF NOT EXISTS {_SCHEMA}.{LOADS_TABLE} (
    first_position bigint NOT NULL, position bigint NOT NULL, events bigint NOT NULL,
    rows bigint NOT NULL, rejected bigint NOT NULL, oldest_received_at timestamptz NOT NULL,
    loaded_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS {LOADS_TABLE}_position ON {_SCHEMA}.{LOADS_TABLE} (position);
CREATE TABLE IF NOT EXISTS {_SCHEMA}.{REJECTED_TABLE} (
    schema_name text, table_name text, column_name text, id text, raw_value text,
    reason text, received_at timestamptz, uuid_ts timestamptz,
    PRIMARY KEY (schema_name, table_name, column_name, id)
)
"""

_CATALOG = """
SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod)
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
  AND n.nspname NOT IN ('information_schema', 'public') AND n.nspname NOT LIKE 'pg\\_%'
ORDER BY n.nspname, c.relname, a.attnum
"""


class PostgresWarehouse:
    """The `Warehouse` on a PostgreSQL database (a libpq URL)."""

    engine = "postgres"

    def __init__(self, url: str, connect_timeout_s: int = _CONNECT_TIMEOUT_S) -> None:
        self.url = url
        self.connect_timeout_s = connect_timeout_s
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(
                self.url, autocommit=True, connect_timeout=self.connect_timeout_s
            )
        except psycopg.Error as exc:
            raise WarehouseUnavailable(f"cannot connect to PostgreSQL: {exc}") from exc

    @contextmanager
    def session(self) -> Iterator["PostgresSession"]:
        # One connection is kept between micro-batches; any error drops it, so the
        # next session starts on a fresh one (the database may have restarted).
        with self._lock:
            if self._conn is None or self._conn.closed:
                self._conn = self._connect()
                with self._conn.transaction():
                    self._conn.execute(_DDL)
            try:
                yield PostgresSession(self._conn)
            except BaseException:
                self._conn.close()
                self._conn = None
                raise

    def stats(self) -> Stats | None:
        with self._connect() as conn:
            found = conn.execute("SELECT to_regclass(%s)", [f"{_SCHEMA}.{LOADS_TABLE}"]).fetchone()
            if found is None or found[0] is None:
                return None
            stats = Stats()
            row = conn.execute(
                f"SELECT count(*), coalesce(sum(events), 0), coalesce(sum(rows), 0),"
                f" coalesce(max(position), 0) FROM {_SCHEMA}.{LOADS_TABLE}"
            ).fetchone()
            assert row is not None
            stats.loads, stats.events, stats.rows, stats.position = (int(v) for v in row)
            last = conn.execute(
                "SELECT to_char(loaded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
                f" events FROM {_SCHEMA}.{LOADS_TABLE} ORDER BY loaded_at DESC LIMIT 1"
            ).fetchone()
            if last is not None:
                stats.last_loaded_at, stats.last_events = last
            stats.tables = [
                TableStats(*r)
                for r in conn.execute(
                    "SELECT s.schemaname, s.relname,"
                    " (SELECT count(*) FROM pg_attribute a WHERE a.attrelid = s.relid"
                    "  AND a.attnum > 0 AND NOT a.attisdropped)::int, s.n_live_tup::bigint"
                    " FROM pg_stat_user_tables s WHERE s.schemaname <> %s"
                    " ORDER BY s.schemaname, s.relname",
                    [_SCHEMA],
                ).fetchall()
            ]
            stats.rejected = dict(
                conn.execute(
                    f"SELECT reason, count(*) FROM {_SCHEMA}.{REJECTED_TABLE}"
                    " GROUP BY reason ORDER BY reason"
                ).fetchall()
            )
            return stats

    def query(
        self, sql_text: str, max_rows: int, timeout_s: float, search_path: list[str]
    ) -> QueryResult:
        with self._connect() as conn:
            conn.read_only = True
            try:
                with conn.transaction(force_rollback=True):
                    conn.execute(f"SET LOCAL statement_timeout = {int(timeout_s * 1000)}")
                    resolve_in(conn, search_path)
                    # Binary results use the extended protocol, which takes exactly one
                    # statement: "COMMIT; DROP ..." cannot escape the read-only transaction.
                    cursor = conn.execute(sql_text, binary=True)
                    columns = [d.name for d in cursor.description or []]
                    rows = cursor.fetchmany(max_rows + 1) if cursor.description else []
            except psycopg.errors.QueryCanceled as exc:
                raise QueryError(f"the query ran longer than {timeout_s:g} s") from exc
            except psycopg.Error as exc:
                raise QueryError(str(exc).strip()) from exc
        return QueryResult(columns, [tuple(r) for r in rows[:max_rows]], len(rows) > max_rows)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def resolve_in(conn: psycopg.Connection[Any], search_path: list[str]) -> None:
    """Make unqualified table names resolve in `search_path`, then in `public`, until
    the transaction ends: `trackway sql` and models see the sources' tables."""
    path = sql.SQL(", ").join(sql.Identifier(s) for s in [*search_path, _SCHEMA])
    conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(path))


class PostgresSession:
    """The kept connection, for one micro-batch."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self._staged = 0

    def position(self) -> int:
        row = self.conn.execute(
            f"SELECT coalesce(max(position), 0) FROM {_SCHEMA}.{LOADS_TABLE}"
        ).fetchone()
        return int(row[0]) if row else 0

    def catalog(self) -> Catalog:
        catalog: Catalog = {}
        for schema, table, column, sql_type in self.conn.execute(_CATALOG).fetchall():
            catalog.setdefault((schema, table), {})[column] = _TYPES.get(sql_type, "varchar")
        return catalog

    def load(self, plan: LoadPlan) -> None:
        with self.conn.transaction():
            for schema in sorted({t.schema for t in plan.tables if t.created}):
                self.conn.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))
                )
            for table in plan.tables:
                self._evolve(table)
                names, values = table.column_values()
                types = [SQL_TYPES[table.columns[n]] for n in names]
                target = sql.Identifier(table.schema, table.name)
                self._upsert(target, table.name, names, types, values, ("id",), table.merge)
            if plan.rejected:
                values = [list(column) for column in zip(*plan.rejected, strict=True)]
                values.append([plan.loaded_at] * len(plan.rejected))
                types = ["text"] * 6 + ["timestamptz"] * 2
                target = sql.Identifier(_SCHEMA, REJECTED_TABLE)
                names = list(REJECTED_COLUMNS)
                self._upsert(target, REJECTED_TABLE, names, types, values, REJECTED_KEY, False)
            self.conn.execute(
                sql.SQL(
                    "INSERT INTO {} ({}) VALUES (%s, %s, %s, %s, %s, to_timestamp(%s / 1000.0), %s)"
                ).format(
                    sql.Identifier(_SCHEMA, LOADS_TABLE),
                    sql.SQL(", ").join(map(sql.Identifier, LOADS_COLUMNS)),
                ),
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

    def _evolve(self, table: TableLoad) -> None:
        target = sql.Identifier(table.schema, table.name)
        if table.created:
            columns = sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(SQL_TYPES[t]))
                for c, t in table.columns.items()
            )
            self.conn.execute(
                sql.SQL('CREATE TABLE {} ({}, PRIMARY KEY ("id"))').format(target, columns)
            )
            return
        for column in table.added:
            self.conn.execute(
                sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(
                    target, sql.Identifier(column), sql.SQL(SQL_TYPES[table.columns[column]])
                )
            )
        for column in table.widened + table.altered:
            self.conn.execute(
                sql.SQL("ALTER TABLE {} ALTER COLUMN {} TYPE {}").format(
                    target, sql.Identifier(column), sql.SQL(SQL_TYPES[table.columns[column]])
                )
            )

    def _upsert(
        self,
        target: sql.Identifier,
        alias: str,
        names: list[str],
        types: list[str],
        values: list[list[Any]],
        key: tuple[str, ...],
        merge: bool,
    ) -> None:
        """COPY the rows into a temporary table, then insert them, replacing (or, with
        `merge`, completing) the rows with the same key."""
        self._staged += 1
        staging = sql.Identifier(f"_trackway_batch_{self._staged}")
        columns = [sql.Identifier(n) for n in names]
        self.conn.execute(
            sql.SQL("CREATE TEMPORARY TABLE {} ({}) ON COMMIT DROP").format(
                staging,
                sql.SQL(", ").join(
                    sql.SQL("{} {}").format(c, sql.SQL(t))
                    for c, t in zip(columns, types, strict=True)
                ),
            )
        )
        with self.conn.cursor().copy(sql.SQL("COPY {} FROM STDIN").format(staging)) as copy:
            for row in zip(*values, strict=True):
                copy.write_row(row)
        existing = sql.Identifier(alias)
        updates = [c for n, c in zip(names, columns, strict=True) if n not in key]
        if merge:
            assignments = [
                sql.SQL("{} = coalesce(excluded.{}, {}.{})").format(c, c, existing, c)
                for c in updates
            ]
        else:
            assignments = [sql.SQL("{} = excluded.{}").format(c, c) for c in updates]
        listed = sql.SQL(", ").join(columns)
        self.conn.execute(
            sql.SQL(
                "INSERT INTO {} AS {} ({}) SELECT {} FROM {} ON CONFLICT ({}) DO UPDATE SET {}"
            ).format(
                target,
                existing,
                listed,
                listed,
                staging,
                sql.SQL(", ").join(map(sql.Identifier, key)),
                sql.SQL(", ").join(assignments),
            )
        )
