"""`POST /api/v1/sql`: one read-only SQL statement on a warehouse, for the admin API.

Body `{"sql": "...", "warehouse": "default", "max_rows": 1000}` (the last two optional);
answer `{"columns": [...], "rows": [[...]], "truncated": bool}`. A refused or failing
query is a `ValueError` (the admin API answers 400 `invalid_parameter`); a warehouse
that cannot be opened is `503 warehouse_unavailable`.
"""

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from trackway import codec
from trackway.storage.base import StateStore
from trackway.warehouse.base import WarehouseUnavailable
from trackway.warehouse.config import DEFAULT_NAME, find
from trackway.warehouse.engines import query
from trackway.warehouse.results import as_json

MAX_ROWS = 10_000
DEFAULT_ROWS = 1_000
TIMEOUT_S = 30.0


def sql_endpoint(data_dir: Path, store: StateStore) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint function; mount it behind the admin API's token check."""

    async def endpoint(request: Request) -> Response:
        try:
            body: Any = codec.loads(await request.body())
        except codec.DecodeError:
            raise ValueError('the body must be JSON: {"sql": "SELECT ..."}') from None
        if not isinstance(body, dict) or not isinstance(body.get("sql"), str):
            raise ValueError("the body must be a JSON object with a string 'sql'")
        name = body.get("warehouse", DEFAULT_NAME)
        max_rows = body.get("max_rows", DEFAULT_ROWS)
        if not isinstance(name, str):
            raise ValueError("'warehouse' must be a string")
        if type(max_rows) is not int or not 1 <= max_rows <= MAX_ROWS:
            raise ValueError(f"'max_rows' must be a whole number from 1 to {MAX_ROWS}")
        spec = find(store, name)
        try:
            result = await run_in_threadpool(
                query, spec, data_dir, store, body["sql"], max_rows, TIMEOUT_S
            )
        except WarehouseUnavailable as exc:
            return JSONResponse({"code": "warehouse_unavailable", "message": str(exc)}, 503)
        return Response(codec.dumps(as_json(result)), media_type="application/json")

    return endpoint
