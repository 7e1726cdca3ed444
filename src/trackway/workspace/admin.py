"""Deleting through the admin API: `DELETE /sources/{name}`, `/destinations/{name}`,
`/models/{name}`, `/syncs/{name}`, and `DELETE /destinations/{name}/dead-letters`
(purge), as the `delete` and `destinations purge` commands do."""

from collections.abc import Awaitable, Callable
from contextlib import closing
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from trackway.destinations import operations
from trackway.destinations.config import DestinationNotFound
from trackway.destinations.state import open_delivery_store
from trackway.reverse_etl.errors import ConfigError, SyncBusy
from trackway.settings import Settings
from trackway.storage.base import SourceNotFound, StateStore
from trackway.workspace.delete import DELETE, InUse

Guard = Callable[[Callable[[Request], Awaitable[Response]]], Any]
_PATHS = {
    "source": "/sources",
    "destination": "/destinations",
    "model": "/models",
    "sync": "/syncs",
}


def routes(settings: Settings, state: StateStore, guarded: Guard) -> list[Route]:
    """The DELETE routes, each behind the admin API's token check (`guarded`)."""

    def handle(fn: Callable[[str], dict[str, Any]]) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                result = await run_in_threadpool(fn, request.path_params["name"])
            except (SourceNotFound, DestinationNotFound, ConfigError) as exc:
                return JSONResponse({"code": "not_found", "message": str(exc)}, 404)
            except (InUse, SyncBusy) as exc:
                return JSONResponse({"code": "in_use", "message": str(exc)}, 409)
            return JSONResponse(result)

        return guarded(endpoint)

    def deleter(kind: str) -> Callable[[str], dict[str, Any]]:
        def delete(name: str) -> dict[str, Any]:
            return {"deleted": kind, "name": name, "message": DELETE[kind](state, settings, name)}

        return delete

    def purge(name: str) -> dict[str, Any]:
        with closing(open_delivery_store(settings)) as store:
            return {"purged": store.purge(operations.dead_letters_of(state, store, name))}

    return [
        *(
            Route(f"{path}/{{name}}", handle(deleter(kind)), methods=["DELETE"])
            for kind, path in _PATHS.items()
        ),
        Route("/destinations/{name}/dead-letters", handle(purge), methods=["DELETE"]),
    ]
