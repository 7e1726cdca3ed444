"""Running a model's query on its engine (DuckDB, PostgreSQL, SQLite) and streaming its rows.

Every connection is read-only: a model reads, it never writes. Rows come in chunks
(`fetchmany`; a server-side cursor on PostgreSQL), so a large result never sits in
memory whole.
"""

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from trackway.reverse_etl.config import ModelSpec, database_path
from trackway.reverse_etl.errors import ModelError
from trackway.storage.base import StateStore

CHUNK_ROWS = 10_000


class _Cursor(Protocol):
    @property
    def description(self) -> Any: ...

    def fetchmany(self, size: int) -> list[Any]: ...


@dataclass
class Result:
    """A running query: its column names and its rows, chunk by chunk."""

    model: str
    columns: list[str]
    _cursor: _Cursor
    _errors: tuple[type[BaseException], ...]

    def chunks(self, size: int = CHUNK_ROWS) -> Iterator[list[tuple[Any, ...]]]:
        """The rows in chunks of at most `size`; an engine error is a ModelError."""
        while True:
            with _errors_of(self.model, self._errors):
                rows = self._cursor.fetchmany(size)
            if not rows:
                return
            yield [tuple(r) for r in rows]


@contextlib.contextmanager
def run_query(
    model: ModelSpec, data_dir: Path, store: StateStore, limit: int | None = None
) -> Iterator[Result]:
    """Run the model's query (its first `limit` rows only, when given); closes on exit.

    On one of Trackway's warehouses, unqualified table names resolve as in `trackway
    sql` (the sources' schemas first); other databases keep their own rules.
    """
    query = model.query.strip().rstrip(";").strip()
    if limit is not None:
        # On lines of their own, so that a trailing `-- comment` comments out nothing.
        query = f"SELECT * FROM (\n{query}\n) AS trackway_model LIMIT {int(limit)}"
    schemas = _search_path(model, data_dir, store)
    engine = model.connection.type
    if engine == "postgres":
        with _postgres(model, query, schemas) as result:
            yield result
        return
    path = database_path(model.connection, data_dir)
    if not path.exists():
        raise ModelError(f"model '{model.name}' ({engine}): no database file at {path}")
    if engine == "duckdb":
        import duckdb

        from trackway.warehouse.base import WarehouseUnavailable
        from trackway.warehouse.duckdb import open_file, resolve_in

        errors: tuple[type[BaseException], ...] = (duckdb.Error, WarehouseUnavailable)
        with _errors_of(model.name, errors, "duckdb"):
            # Trackway's own warehouse is locked while the loader writes a micro-batch.
            conn: Any = open_file(path, read_only=True)
            if schemas is not None:
                resolve_in(conn, schemas)
    else:
        errors = (sqlite3.Error,)
        with _errors_of(model.name, errors, "sqlite"):
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        with _errors_of(model.name, errors, engine):
            cursor = conn.execute(query)
            columns = [d[0] for d in cursor.description or ()]
        yield Result(model.name, columns, cursor, errors)
    finally:
        conn.close()


def columns(model: ModelSpec, data_dir: Path, store: StateStore) -> list[str]:
    """The column names of the model's result (runs the query for no rows)."""
    with run_query(model, data_dir, store, limit=0) as result:
        return result.columns


def _search_path(model: ModelSpec, data_dir: Path, store: StateStore) -> list[str] | None:
    """The sources' schemas when the model reads one of Trackway's warehouses (a DuckDB
    file or a PostgreSQL URL a warehouse is declared with), else None."""
    from trackway.warehouse import engines
    from trackway.warehouse.config import warehouses

    conn = model.connection
    if conn.type == "sqlite":
        return None
    if conn.type == "postgres":
        found = any(w.type == "postgres" and w.url == conn.url for w in warehouses(store))
    else:
        path = database_path(conn, data_dir).resolve()
        found = any(
            w.type == "duckdb" and w.duckdb_path(data_dir).resolve() == path
            for w in warehouses(store)
        )
    return engines.search_path(store) if found else None


@contextlib.contextmanager
def _postgres(model: ModelSpec, query: str, schemas: list[str] | None) -> Iterator[Result]:
    import psycopg

    from trackway.warehouse.postgres import resolve_in

    errors = (psycopg.Error,)
    with _errors_of(model.name, errors, "postgres"):
        conn = psycopg.connect(model.connection.url or "", autocommit=False)
    try:
        with _errors_of(model.name, errors, "postgres"):
            conn.read_only = True
            if schemas is not None:
                resolve_in(conn, schemas)
            # A named (server-side) cursor streams the rows instead of loading them all.
            cursor = conn.cursor(name="trackway_model")
        with cursor:
            with _errors_of(model.name, errors, "postgres"):
                cursor.execute(query.encode())
                columns = [d.name for d in cursor.description or ()]
            yield Result(model.name, columns, cursor, errors)
    finally:
        conn.close()


@contextlib.contextmanager
def _errors_of(
    model: str, errors: tuple[type[BaseException], ...], engine: str = ""
) -> Iterator[None]:
    """Engine errors become a ModelError that names the model and quotes the engine."""
    try:
        yield
    except errors as exc:
        where = f"model '{model}'" + (f" ({engine})" if engine else "")
        raise ModelError(f"{where}: {str(exc).strip()}") from exc
