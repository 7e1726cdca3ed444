"""The experiments part of the admin API: `/experiments` (the definitions),
`/experiments/{name}`, `/experiments/{name}/results[?as_of=TIME]`, its `timeline` (the
results' cumulative units and conversions over time alone) and `/goals`, each
answering what the matching `trackway experiments ... --json` prints
(`trackway.experiments.views`).

An unknown experiment or warehouse is 404 `not_found`, an `as_of` that is no time nor
duration (or a source that does not exist) 400 `invalid_parameter`, a warehouse that
cannot be opened or has nothing loaded yet 503 `warehouse_unavailable`.
"""

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from trackway import codec
from trackway.admin.validation import checked
from trackway.experiments import views
from trackway.experiments.goals import goals
from trackway.storage.base import NotFound, StateStore
from trackway.warehouse.base import WarehouseUnavailable

Endpoint = Callable[[Request], Awaitable[Response]]
Guard = Callable[[Endpoint], Endpoint]


def routes(data_dir: Path, store: StateStore, guarded: Guard) -> list[Route]:
    """The routes; `guarded` answers the admin API's other errors (400) as JSON."""

    def handle(fn: Callable[[Request], Any]) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            try:
                result = await run_in_threadpool(fn, request)
            except NotFound as exc:
                return JSONResponse({"code": "not_found", "message": str(exc)}, 404)
            except WarehouseUnavailable as exc:
                return JSONResponse({"code": "warehouse_unavailable", "message": str(exc)}, 503)
            return Response(codec.dumps(result), media_type="application/json")

        return guarded(endpoint)

    def listed(request: Request) -> Any:
        return views.listed(store)

    def shown(request: Request) -> Any:
        return views.shown(store, request.path_params["name"])

    def results(request: Request) -> Any:
        found = views.results(store, data_dir, request.path_params["name"], _as_of(request))
        return found.to_json()

    def timeline(request: Request) -> Any:
        found = views.timeline(store, data_dir, request.path_params["name"], _as_of(request))
        return asdict(found)

    def goals_seen(request: Request) -> Any:
        query = checked(request).query
        return goals(store, data_dir, query["warehouse"], query.get("source"))

    return [
        Route("/experiments", handle(listed), methods=["GET"]),
        Route("/experiments/{name}", handle(shown), methods=["GET"]),
        Route("/experiments/{name}/results", handle(results), methods=["GET"]),
        Route("/experiments/{name}/timeline", handle(timeline), methods=["GET"]),
        Route("/goals", handle(goals_seen), methods=["GET"]),
    ]


def _as_of(request: Request) -> datetime | None:
    given = checked(request).query.get("as_of")
    try:
        return None if given is None else views.parse_as_of(given)
    except ValueError as exc:
        raise ValueError(f"as_of: {exc}") from None
