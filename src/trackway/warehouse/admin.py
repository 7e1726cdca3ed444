"""`POST /api/v1/sql`: one read-only SQL statement on a warehouse, for the admin API.

Body `{"sql": "...", "warehouse": "default", "max_rows": 1000}` (the last two optional);
answer `{"columns": [...], "rows": [[...]], "truncated": bool}`. A refused or failing
query is a `ValueError` (the admin API answers 400 `invalid_parameter`); a warehouse
that cannot be opened is `503 warehouse_unavailable`.
"""

from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from trackway import codec
from trackway.admin.validation import checked
from trackway.storage.base import StateStore
from trackway.warehouse.base import WarehouseUnavailable
from trackway.warehouse.config import find
from trackway.warehouse.engines import query
from trackway.warehouse.results import as_json

TIMEOUT_S = 30.0


def sql_endpoint(data_dir: Path, store: StateStore) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint function; mount it behind the admin API's token check."""

    async def endpoint(request: Request) -> Response:
        body = checked(request).body
        spec = find(store, body["warehouse"])
        try:
            result = await run_in_threadpool(
                query, spec, data_dir, store, body["sql"], body["max_rows"], TIMEOUT_S
            )
        except WarehouseUnavailable as exc:
            return JSONResponse({"code": "warehouse_unavailable", "message": str(exc)}, 503)
        return Response(codec.dumps(as_json(result)), media_type="application/json")

    return endpoint
