"""`POST /api/v1/sql`: the read-only SQL endpoint of the admin API."""

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.warehouse.support import load, track
from trackway.admin.openapi import OPENAPI
from trackway.admin.validation import check_request
from trackway.storage.sqlite.state import SQLiteStateStore
from trackway.warehouse.admin import sql_endpoint
from trackway.warehouse.config import KIND
from trackway.warehouse.duckdb import DuckDBWarehouse

Endpoint = Callable[[Request], Awaitable[Response]]


def as_the_admin_api_does(endpoint: Endpoint) -> Endpoint:
    """What the admin API does around a handler: the request checked against the
    OpenAPI document, a ValueError answered 400."""

    async def guarded(request: Request) -> Response:
        operation = OPENAPI["paths"]["/api/v1/sql"]["post"]
        try:
            request.state.checked = check_request(operation, request, await request.body())
            return await endpoint(request)
        except ValueError as exc:
            return JSONResponse({"code": "invalid_parameter", "message": str(exc)}, 400)

    return guarded


def test_sql_endpoint(tmp_path: Path) -> None:
    store = SQLiteStateStore(tmp_path / "state.db")
    store.create_source("default", "segment")
    store.put_object(KIND, "elsewhere", {"name": "elsewhere", "path": "other.duckdb"})
    warehouse = DuckDBWarehouse(tmp_path / "warehouse.duckdb")
    load(warehouse, [track("Bought", {"price": 2.5}, messageId=f"b-{i}") for i in range(3)])
    route = Route("/sql", as_the_admin_api_does(sql_endpoint(tmp_path, store)), methods=["POST"])
    transport = httpx.ASGITransport(app=Starlette(routes=[route]))

    async def scenario() -> None:
        async with httpx.AsyncClient(transport=transport, base_url="http://admin") as client:
            answer = await client.post(
                "/sql",
                json={"sql": "SELECT id, price, uuid_ts FROM bought ORDER BY id", "max_rows": 2},
            )
            assert answer.status_code == 200
            found = answer.json()
            assert found.pop("elapsed_ms") >= 0
            assert found == {
                "columns": ["id", "price", "uuid_ts"],
                "rows": [
                    ["b-0", 2.5, "2026-11-22T10:00:05Z"],
                    ["b-1", 2.5, "2026-11-22T10:00:05Z"],
                ],
                "truncated": True,
            }
            for body, message in [
                ({"sql": "DROP TABLE bought"}, "only SELECT"),
                ({"sql": "SELECT 1; SELECT 2"}, "exactly one"),
                ({"sql": "SELECT nope FROM bought"}, "nope"),
                ({"sql": 5}, "$.sql must be a string"),
                ({"sql": "SELECT 1", "max_rows": 0}, "$.max_rows must be at least 1"),
                ({"sql": "SELECT 1", "rows": 1}, "unknown field(s) 'rows'"),
                ({"sql": "SELECT 1", "warehouse": "missing"}, "no warehouse named 'missing'"),
            ]:
                refused = await client.post("/sql", json=body)
                assert refused.status_code == 400, body
                assert message in refused.json()["message"]
            assert (await client.post("/sql", content=b"{")).status_code == 400
            empty = await client.post("/sql", json={"sql": "SELECT 1", "warehouse": "elsewhere"})
            assert empty.status_code == 503
            assert empty.json()["code"] == "warehouse_unavailable"

    try:
        asyncio.run(scenario())
    finally:
        store.close()
