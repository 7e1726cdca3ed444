"""Opening a configured warehouse on its engine, and querying it."""

from pathlib import Path

from trackway.storage.base import StateStore
from trackway.warehouse.base import QueryResult, Warehouse
from trackway.warehouse.config import WarehouseSpec
from trackway.warehouse.naming import source_schemas


def open_warehouse(spec: WarehouseSpec, data_dir: Path) -> Warehouse:
    """The engine of a warehouse spec (connections are opened when first needed)."""
    if spec.type == "postgres":
        from trackway.warehouse.postgres import PostgresWarehouse

        return PostgresWarehouse(spec.url or "")
    from trackway.warehouse.duckdb import DuckDBWarehouse

    return DuckDBWarehouse(spec.duckdb_path(data_dir))


def sources(store: StateStore) -> list[tuple[int, str]]:
    """(id, name) of every source, as the loader and the schema rule need them."""
    return [(s.id, s.name) for s in store.list_sources()]


def search_path(store: StateStore) -> list[str]:
    """Where unqualified table names resolve: the sources' schemas, oldest source first
    (so `SELECT * FROM tracks` works with one source)."""
    schemas = source_schemas(sources(store))
    return [schemas[i] for i in sorted(schemas)]


def query(
    spec: WarehouseSpec,
    data_dir: Path,
    store: StateStore,
    sql: str,
    max_rows: int,
    timeout_s: float,
) -> QueryResult:
    """Run one read-only statement; unqualified table names resolve by `search_path`."""
    warehouse = open_warehouse(spec, data_dir)
    try:
        return warehouse.query(sql, max_rows, timeout_s, search_path(store))
    finally:
        warehouse.close()
