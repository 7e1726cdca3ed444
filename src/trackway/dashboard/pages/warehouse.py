"""Warehouse: each warehouse's status (`GET /api/v1/warehouses`), and a warehouse's tables
with their columns and row counts (`GET /api/v1/warehouses/{name}/tables`) beside a
read-only SQL console (`POST /api/v1/sql`, run by the same function)."""

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from trackway.dashboard.page import Dashboard, Page
from trackway.storage.base import NotFound
from trackway.warehouse.admin import csv_download, run_sql, tables_of
from trackway.warehouse.base import WarehouseUnavailable
from trackway.warehouse.config import find, warehouses
from trackway.warehouse.results import as_json
from trackway.warehouse.status import status

MAX_ROWS = 1000
"""Rows the console shows unless asked for another number (the API's default)."""
_MAX_ROWS_LIMIT = 10_000
"""The most rows the console may ask for (the API's `max_rows` maximum)."""
REJECTED_SQL = (
    "SELECT received_at, table_name, column_name, reason, raw_value FROM _rejected_values"
    " ORDER BY received_at DESC"
)
"""What the console opens with from a warehouse's red rejected-values count."""


def _routes(dash: Dashboard) -> list[BaseRoute]:
    store, data_dir = dash.store, dash.settings.data_dir

    def statuses() -> list[dict[str, Any]]:
        return [status(spec, data_dir, dash.log) for spec in warehouses(store)]

    async def listing(request: Request) -> Response:
        shown = await run_in_threadpool(statuses)
        return dash.render(
            request, "warehouse.html", PAGE, warehouses=shown, rejected_sql=REJECTED_SQL
        )

    def console(request: Request, status_code: int = 200, **context: Any) -> Response:
        name = request.path_params["name"]
        try:
            spec = find(store, name)
        except NotFound as exc:
            return dash.render(request, "warehouse.html", PAGE, 404, warehouses=[], error=str(exc))
        try:
            tables: dict[str, Any] | None = tables_of(spec, data_dir, store, dash.log)
            unavailable = ""
        except WarehouseUnavailable as exc:
            tables, unavailable = None, str(exc)
        context = {
            "sql": request.query_params.get("sql", ""),
            "max_rows": MAX_ROWS,
            "result": None,
            "error": "",
            **context,
        }
        return dash.render(
            request,
            "warehouse_tables.html",
            PAGE,
            status_code,
            name=spec.name,
            tables=tables,
            unavailable=unavailable,
            twin=f"/api/v1/warehouses/{spec.name}/tables",
            max_rows_limit=_MAX_ROWS_LIMIT,
            **context,
        )

    async def show(request: Request) -> Response:
        return await run_in_threadpool(console, request)

    async def sql(request: Request) -> Response:
        form = request.state.form
        text = str(form.get("sql", ""))
        try:
            max_rows = min(max(int(str(form.get("max_rows", MAX_ROWS))), 1), _MAX_ROWS_LIMIT)
        except ValueError:
            max_rows = MAX_ROWS
        shown: dict[str, Any] = {"sql": text, "max_rows": max_rows}
        try:
            spec = find(store, request.path_params["name"])
            result, elapsed_ms = await run_in_threadpool(
                run_sql, spec, data_dir, store, text, max_rows
            )
        except NotFound:
            return await run_in_threadpool(console, request)
        except (ValueError, WarehouseUnavailable) as exc:
            # The engine's message, verbatim, as the API answers it.
            return await run_in_threadpool(console, request, 400, error=str(exc), **shown)
        if form.get("format") == "csv":
            return csv_download(result, elapsed_ms)
        answer = {**as_json(result), "elapsed_ms": elapsed_ms}
        return await run_in_threadpool(console, request, result=answer, **shown)

    return [
        Route("/warehouse", listing, methods=["GET"]),
        Route("/warehouse/{name}", show, methods=["GET"]),
        Route("/warehouse/{name}/sql", sql, methods=["POST"]),
    ]


PAGE = Page(
    path="/warehouse", title="Warehouse", twin="/api/v1/warehouses", order=40, routes=_routes
)
