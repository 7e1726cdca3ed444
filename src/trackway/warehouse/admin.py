"""The warehouse part of the admin API: each warehouse's status (`/warehouses`), its
tables with their columns and row counts (`/warehouses/{name}/tables`), and one
read-only SQL statement (`POST /sql`).

`/sql` takes `{"sql": "...", "warehouse": "default", "max_rows": 1000, "format":
"json"}` (all but `sql` optional) and answers `{"columns": [...], "rows": [[...]],
"truncated": bool, "elapsed_ms": float}`, or with `"format": "csv"` the rows as a CSV
download. A refused or failing query is a `ValueError` whose message is the engine's,
verbatim (the admin API answers 400 `invalid_parameter`); a warehouse that cannot be
opened is `503 warehouse_unavailable`; an unknown name in a path is 404.
"""

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from trackway import codec
from trackway.admin.validation import checked
from trackway.storage.base import EventLog, NotFound, StateStore
from trackway.warehouse.base import QueryResult, WarehouseUnavailable
from trackway.warehouse.config import WarehouseSpec, find, warehouses
from trackway.warehouse.engines import query
from trackway.warehouse.results import as_json, render
from trackway.warehouse.status import status

TIMEOUT_S = 30.0
_COLUMNS_SQL = (
    "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns"
    " ORDER BY table_schema, table_name, ordinal_position"
)
_MAX_COLUMNS = 1_000_000

Endpoint = Callable[[Request], Awaitable[Response]]
Guard = Callable[[Endpoint], Endpoint]


def routes(data_dir: Path, store: StateStore, log: EventLog, guarded: Guard) -> list[Route]:
    """The routes; `guarded` answers the admin API's errors as JSON."""

    def handle(fn: Callable[[Request], Any]) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            try:
                result = await run_in_threadpool(fn, request)
            except NotFound as exc:
                return JSONResponse({"code": "not_found", "message": str(exc)}, 404)
            except WarehouseUnavailable as exc:
                return _unavailable(exc)
            return Response(codec.dumps(result), media_type="application/json")

        return guarded(endpoint)

    def listed(request: Request) -> Any:
        return [status(spec, data_dir, log) for spec in warehouses(store)]

    def tables(request: Request) -> Any:
        return tables_of(find(store, request.path_params["name"]), data_dir, store, log)

    return [
        Route("/sql", guarded(sql_endpoint(data_dir, store)), methods=["POST"]),
        Route("/warehouses", handle(listed), methods=["GET"]),
        Route("/warehouses/{name}/tables", handle(tables), methods=["GET"]),
    ]


def tables_of(
    spec: WarehouseSpec, data_dir: Path, store: StateStore, log: EventLog
) -> dict[str, Any]:
    """The tables the loader made, each with its (estimated) row count and its columns
    with their SQL types."""
    shown = status(spec, data_dir, log)
    if not shown["available"]:
        raise WarehouseUnavailable(shown["error"])
    columns: dict[tuple[str, str], list[dict[str, str]]] = {}
    if shown["tables"]:
        found = query(spec, data_dir, store, _COLUMNS_SQL, _MAX_COLUMNS, TIMEOUT_S)
        for schema, table, column, sql_type in found.rows:
            columns.setdefault((schema, table), []).append({"name": column, "type": sql_type})
    return {
        "warehouse": spec.name,
        "tables": [
            {
                "schema": t["schema"],
                "table": t["table"],
                "rows": t["rows"],
                "columns": columns.get((t["schema"], t["table"]), []),
            }
            for t in shown["tables"]
        ],
    }


def sql_endpoint(data_dir: Path, store: StateStore) -> Endpoint:
    """The endpoint function; mount it behind the admin API's token check."""

    async def endpoint(request: Request) -> Response:
        body = checked(request).body
        spec = find(store, body["warehouse"])
        try:
            result, elapsed_ms = await run_in_threadpool(
                run_sql, spec, data_dir, store, body["sql"], body["max_rows"]
            )
        except WarehouseUnavailable as exc:
            return _unavailable(exc)
        if body["format"] == "csv":
            return csv_download(result, elapsed_ms)
        answer = {**as_json(result), "elapsed_ms": elapsed_ms}
        return Response(codec.dumps(answer), media_type="application/json")

    return endpoint


def run_sql(
    spec: WarehouseSpec, data_dir: Path, store: StateStore, sql: str, max_rows: int
) -> tuple[QueryResult, float]:
    """One read-only statement (refused otherwise, with a `ValueError`) and how long it
    took in milliseconds: what `POST /sql` and the dashboard's SQL console both run."""
    started = time.perf_counter()
    result = query(spec, data_dir, store, sql, max_rows, TIMEOUT_S)
    return result, round((time.perf_counter() - started) * 1000, 1)


def csv_download(result: QueryResult, elapsed_ms: float) -> Response:
    """The result as a CSV attachment, with the query's time in `X-Elapsed-Ms`."""
    return Response(
        render(result, "csv") + "\n",
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="result.csv"',
            "X-Elapsed-Ms": str(elapsed_ms),
        },
    )


def _unavailable(exc: WarehouseUnavailable) -> Response:
    return JSONResponse({"code": "warehouse_unavailable", "message": str(exc)}, 503)
