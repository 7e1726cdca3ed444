"""Goals as Kameleoon makes them: every track, page and screen event name seen."""

from pathlib import Path
from typing import Any

from trackway.experiments.query import Columns, columns_sql, goals_sql
from trackway.storage.base import StateStore
from trackway.warehouse import config, engines
from trackway.warehouse.base import NothingLoaded
from trackway.warehouse.naming import source_schemas
from trackway.warehouse.results import jsonable

_MAX_ROWS = 100_000
_TIMEOUT_S = 60.0


def goals(
    store: StateStore, data_dir: Path, warehouse_name: str, source: str | None
) -> list[dict[str, Any]]:
    """type, name, first_seen, last_seen and events of every event name in the source's
    tables, most frequent first (the oldest source unless `source` is given); none while
    nothing has been loaded."""
    sources = engines.sources(store)
    schemas = source_schemas(sources)
    ids = [i for i, name in sources if source is None or name == source]
    if not ids:
        if source is not None:
            raise ValueError(f"no source named '{source}'")
        return []
    schema = schemas[min(ids)]
    warehouse = engines.open_warehouse(config.find(store, warehouse_name), data_dir)
    try:
        try:
            found = warehouse.query(columns_sql(schema), _MAX_ROWS, _TIMEOUT_S, [])
        except NothingLoaded:
            return []
        columns: Columns = {}
        for table, column in found.rows:
            columns.setdefault(table, set()).add(column)
        sql = goals_sql(schema, columns)
        if sql is None:
            return []
        result = warehouse.query(sql, _MAX_ROWS, _TIMEOUT_S, [])
    finally:
        warehouse.close()
    return [dict(zip(result.columns, map(jsonable, row), strict=True)) for row in result.rows]
