"""The tracking API's routes, including analytics.js's short paths, settings and CORS."""

from collections.abc import Awaitable, Callable

from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, Router
from starlette.types import ASGIApp

from trackway.ingest.client_ip import is_trusted
from trackway.ingest.handler import TRACKING_SOURCE_TYPE, Ingestor, WebhookParser
from trackway.spec.message import TYPES

Endpoint = Callable[[Request], Awaitable[Response]]

_SHORT = {kind[0]: kind for kind in TYPES}  # analytics.js posts to /v1/t, /v1/i, ...


def tracking_app(ingestor: Ingestor, webhooks: dict[str, WebhookParser]) -> ASGIApp:
    """The ASGI app mounted at `/v1`; `webhooks` maps a source type to its parser."""

    def endpoint(path_type: str | None, browser: bool) -> Endpoint:
        async def handle(request: Request) -> Response:
            return await ingestor.handle(request, path_type, browser)

        return handle

    async def metrics_sink(request: Request) -> Response:
        # analytics.js reports its own metrics here; settings ask it not to.
        return JSONResponse({"success": True})

    async def settings(request: Request) -> Response:
        key = request.path_params["write_key"]
        info = ingestor.sources.lookup(key)
        if info is None or not info.source.enabled:
            return JSONResponse(
                {"code": "invalid_write_key", "message": "the write key is not valid"}, 404
            )
        if info.source.type != TRACKING_SOURCE_TYPE:
            source = info.source
            message = f"source '{source.name}' is of type '{source.type}', not for analytics.js"
            return JSONResponse({"code": "wrong_source_type", "message": message}, 404)
        scheme = request.url.scheme
        host = request.headers.get("host", f"{request.url.hostname}:{request.url.port}")
        if _via_trusted_proxy(request, ingestor):
            scheme = request.headers.get("x-forwarded-proto", scheme)
            host = request.headers.get("x-forwarded-host", host)
        return JSONResponse(analytics_js_settings(key, f"{host}/v1", scheme))

    def webhook(source_type: str, parse: WebhookParser) -> Endpoint:
        async def handle(request: Request) -> Response:
            return await ingestor.handle_webhook(request, source_type, parse)

        return handle

    routes = [Route(f"/{kind}", endpoint(kind, False), methods=["POST"]) for kind in TYPES]
    routes += [
        Route(f"/webhooks/{kind}/{{write_key}}", webhook(kind, parse), methods=["POST"])
        for kind, parse in webhooks.items()
    ]
    routes += [Route(f"/{s}", endpoint(kind, True), methods=["POST"]) for s, kind in _SHORT.items()]
    routes += [
        Route("/batch", endpoint(None, False), methods=["POST"]),
        Route("/b", endpoint(None, True), methods=["POST"]),
        Route("/m", metrics_sink, methods=["POST"]),
        Route("/projects/{write_key}/settings", settings, methods=["GET"]),
    ]
    return CORSMiddleware(
        Router(routes),
        allow_origins=["*"],
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Content-Type", "Authorization", "X-Retry-Count"],
        max_age=86400,
    )


def analytics_js_settings(write_key: str, api_host: str, protocol: str) -> dict[str, object]:
    """The CDN settings analytics.js loads before it sends anything."""
    return {
        "integrations": {
            "Segment.io": {"apiKey": write_key, "apiHost": api_host, "protocol": protocol}
        },
        "metrics": {"sampleRate": 0},
        "plan": {"track": {"__default": {"enabled": True}}},
        "edgeFunction": {},
        "analyticsNextEnabled": True,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        "legacyVideoPluginsEnabled": False,
        "remotePlugins": [],
    }


def _via_trusted_proxy(request: Request, ingestor: Ingestor) -> bool:
    peer = request.client.host if request.client else None
    return peer is not None and is_trusted(peer, ingestor.settings.trusted_proxies)
