"""The admin API: sources and the live debugger, as JSON and Server-Sent Events."""

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, Router

from trackway import codec
from trackway.admin.auth import AdminAuth
from trackway.admin.openapi import OPENAPI, PREFIX
from trackway.admin.overview import overview as workspace_overview
from trackway.admin.validation import InvalidRequest, check_request, checked
from trackway.debugger import record_json, stream_records
from trackway.destinations.admin import routes as destination_routes
from trackway.experiments.admin import routes as experiment_routes
from trackway.settings import Settings
from trackway.storage.base import EventLog, SourceNotFound, StateStore
from trackway.warehouse.admin import routes as warehouse_routes
from trackway.workspace.admin import routes as delete_routes
from trackway.workspace.sources import source_json


def _error(code: str, message: str, status: int) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status)


def admin_app(auth: AdminAuth, store: StateStore, log: EventLog, settings: Settings) -> Router:
    """The ASGI app mounted at `/api/v1`."""

    def json_errors(handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                response: Response = await handler(request)
            except SourceNotFound as exc:
                return _error("not_found", str(exc), 404)
            except ValueError as exc:
                return _error("invalid_parameter", str(exc), 400)
            return response

        return endpoint

    async def openapi(request: Request) -> Response:
        return JSONResponse(OPENAPI)

    async def overview(request: Request) -> Response:
        data = await run_in_threadpool(workspace_overview, store, log, settings)
        return Response(codec.dumps(data), media_type="application/json")

    async def sources(request: Request) -> Response:
        return JSONResponse([source_json(store, s) for s in store.list_sources()])

    async def events(request: Request) -> Response:
        source = store.get_source(request.path_params["name"])
        query = checked(request).query
        statuses = frozenset([query["status"]]) if "status" in query else None
        records = await run_in_threadpool(log.debug_records, source.id, query["limit"], statuses)
        return Response(
            codec.dumps([record_json(r) for r in records]), media_type="application/json"
        )

    async def stream(request: Request) -> Response:
        source = store.get_source(request.path_params["name"])
        return StreamingResponse(
            stream_records(log, source.id),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    routes = [
        Route("/overview", json_errors(overview), methods=["GET"]),
        Route("/sources", json_errors(sources), methods=["GET"]),
        Route("/sources/{name}/events", json_errors(events), methods=["GET"]),
        Route("/sources/{name}/events/stream", json_errors(stream), methods=["GET"]),
        *warehouse_routes(settings.data_dir, store, log, json_errors),
        *destination_routes(settings, store, log, json_errors),
        *experiment_routes(settings.data_dir, store, json_errors),
        *delete_routes(settings, store, json_errors),
    ]
    return Router(
        [
            Route("/openapi.json", openapi, methods=["GET"]),
            *(_guarded(auth, route) for route in routes),
        ]
    )


def _guarded(auth: AdminAuth, route: Route) -> Route:
    """`route` behind the token check and the checks of its documented operation."""
    methods = route.methods or set()
    operations = {m: OPENAPI["paths"][PREFIX + route.path][m.lower()] for m in methods - {"HEAD"}}
    inner = route.endpoint

    async def endpoint(request: Request) -> Response:
        if not auth.check(request.headers.get("authorization")):
            return _error("unauthorized", "a valid admin bearer token is required", 401)
        operation = operations["GET" if request.method == "HEAD" else request.method]
        try:
            request.state.checked = check_request(operation, request, await request.body())
        except InvalidRequest as exc:
            return _error("invalid_parameter", str(exc), 400)
        response: Response = await inner(request)
        return response

    return Route(route.path, endpoint, methods=list(methods))
