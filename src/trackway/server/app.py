"""Assembles the HTTP app of `trackway serve` and runs its background upkeep."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Protocol

from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from trackway.admin.app import admin_app
from trackway.admin.auth import AdminAuth
from trackway.dashboard.app import dashboard_routes
from trackway.flags.changes import ChangedEvents
from trackway.flags.events import EvaluatedEvents
from trackway.flags.ofrep import ofrep_app
from trackway.flags.serve import FlagCache, flags_app
from trackway.ingest.handler import Ingestor
from trackway.ingest.routes import tracking_app
from trackway.ingest.sources import SourceCache
from trackway.integrations import configcat_webhook
from trackway.server.landing import http_error, landing_page
from trackway.server.metrics import Metrics
from trackway.settings import Settings
from trackway.storage.base import EventLog, StateStore, StorageUnavailable

_REFRESH_EVERY_S = 1.0
_log = logging.getLogger(__name__)


class Worker(Protocol):
    """Background work run beside the HTTP server (warehouse loaders, sync schedules)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


def create_app(
    settings: Settings,
    log: EventLog,
    store: StateStore,
    on_started: Callable[[], None] | None = None,
    workers: Sequence[Worker] = (),
    collectors: Sequence[Collector] = (),
) -> ASGIApp:
    """The whole HTTP surface: tracking API, admin API, dashboard, health and metrics.

    The log's writer and the `workers` are started and stopped with the app's lifespan:
    on shutdown the workers stop first, then everything already acknowledged or queued
    is committed. A worker process (`settings.role == "worker"`) serves only health,
    readiness and metrics, and never starts the log's writer.
    """
    serves_api = settings.role != "worker"
    metrics = Metrics()
    for collector in collectors:  # the workers' own metrics
        metrics.registry.register(collector)
    sources = SourceCache(store)
    flags = FlagCache(store)
    ingestor = Ingestor(log, sources, metrics, settings)
    changed_events = ChangedEvents(store, ingestor, sources)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(request: Request) -> Response:
        try:
            log.ping()
            store.ping()
        except StorageUnavailable as exc:
            return JSONResponse({"status": "unavailable", "message": str(exc)}, 503)
        return JSONResponse({"status": "ready"})

    async def metrics_endpoint(request: Request) -> Response:
        metrics.pending.set(log.pending_events)
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    async def refresh_sources() -> None:
        drained = False  # queued flag change events: drain at start, then after changes
        while True:
            await asyncio.sleep(_REFRESH_EVERY_S)
            try:
                if store.changed():  # one check for both caches: it resets on each call
                    sources.reload()
                    flags.reload()
                    drained = False
                if serves_api and not drained:
                    await changed_events.ingest()
                    drained = True
            except StorageUnavailable:  # /ready reports it; next time
                pass
            except Exception:
                # A failed reload must not end the loop: the caches would never see a
                # change again (new write keys, flag changes) while the server runs on.
                _log.exception("reloading sources and flags failed; retrying in 1 s")
                drained = False

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if serves_api:
            log.start()
        task = asyncio.create_task(refresh_sources())
        for worker in workers:
            worker.start()
        if on_started is not None:
            on_started()
        try:
            yield
        finally:
            task.cancel()
            for worker in reversed(workers):
                worker.stop()
            log.close()

    async def landing(request: Request) -> Response:
        return landing_page()

    routes: list[BaseRoute] = [
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
    if not serves_api:
        routes.append(Route("/", landing, methods=["GET"]))
    else:
        auth = AdminAuth(store, settings.admin_token)
        routes += [
            Mount(
                "/api/v1",
                app=admin_app(auth, store, log, settings),
            ),
            *dashboard_routes(auth, store, log, settings),
        ]
    app = Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error}
    )
    if not serves_api:
        return app
    return _polled_first(
        app,
        {
            "/v1": tracking_app(ingestor, {"configcat": configcat_webhook.parser(store)}),
            "/configuration-files": flags_app(flags),
            "/ofrep/v1": ofrep_app(flags, EvaluatedEvents(ingestor, sources)),
        },
    )


def _polled_first(app: ASGIApp, mounts: dict[str, ASGIApp]) -> ASGIApp:
    """`app` with the endpoints that SDKs call (tracking, flag downloads, OFREP) mounted in
    front of it: a request under one of `mounts`' prefixes goes straight to its (bare
    ASGI) app, with the scope a Starlette Mount would give it, instead of through
    Starlette's middleware and the router's list of routes, which cost a download
    answer about as much again (docs/decisions/0015-flags-throughput.md) and a single
    tracking call as much as its handling (bench/RESULTS.md, 2026-12-08)."""
    prefixes = [(prefix, prefix + "/", inner) for prefix, inner in mounts.items()]

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            for prefix, under, inner in prefixes:
                if path.startswith(under) or path == prefix:
                    root = scope.get("root_path", "")
                    mounted = {**scope, "app_root_path": root, "root_path": root + prefix}
                    await inner(mounted, receive, send)
                    return
        await app(scope, receive, send)

    return dispatch
