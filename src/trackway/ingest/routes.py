"""The tracking API's routes, including analytics.js's short paths, settings and CORS."""

from collections.abc import Awaitable, Callable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from trackway.ingest.client_ip import is_trusted
from trackway.ingest.handler import TRACKING_SOURCE_TYPE, Ingestor, WebhookParser
from trackway.server.landing import http_error
from trackway.spec.message import TYPES

Endpoint = Callable[[Request], Awaitable[Response]]

_SHORT = {kind[0]: kind for kind in TYPES}  # analytics.js posts to /v1/t, /v1/i, ...


def tracking_app(ingestor: Ingestor, webhooks: dict[str, WebhookParser]) -> ASGIApp:
    """The ASGI app that answers every path under `/v1/`; `webhooks` maps a source type
    to its parser.

    A bare ASGI callable rather than a Starlette router with its CORS middleware: every
    tracking call goes through it, and the router (matching a path against each of ~20
    routes), the middleware and their wrappers cost more CPU than a single event's whole
    handling (bench/RESULTS.md, 2026-12-08).
    """

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

    posts: dict[str, Endpoint] = {f"/v1/{kind}": endpoint(kind, False) for kind in TYPES}
    posts |= {f"/v1/{s}": endpoint(kind, True) for s, kind in _SHORT.items()}
    posts |= {
        "/v1/batch": endpoint(None, False),
        "/v1/b": endpoint(None, True),
        "/v1/m": metrics_sink,
    }
    hooks = {kind: webhook(kind, parse) for kind, parse in webhooks.items()}

    def route(method: str, path: str) -> tuple[Endpoint | None, dict[str, str], str]:
        """The endpoint of a path, its parameters, and the methods the path takes."""
        if path in posts:
            return (posts[path] if method == "POST" else None), {}, "POST"
        parts = path.split("/")  # "", "v1", ...
        if len(parts) == 5 and parts[2] == "webhooks" and parts[3] in hooks and parts[4]:
            found = hooks[parts[3]] if method == "POST" else None
            return found, {"write_key": parts[4]}, "POST"
        if len(parts) == 5 and parts[2] == "projects" and parts[3] and parts[4] == "settings":
            found = settings if method in ("GET", "HEAD") else None
            return found, {"write_key": parts[3]}, "GET"
        return None, {}, ""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        method: str = scope["method"]
        if method == "OPTIONS":  # analytics.js's CORS preflight
            await Response(status_code=200, headers=_PREFLIGHT)(scope, receive, send)
            return
        found, params, allowed = route(method, scope["path"])
        if found is None:
            status = 405 if allowed else 404
            headers = {"Allow": allowed} if allowed else None
            response = await http_error(Request(scope), HTTPException(status, headers=headers))
        else:
            scope["path_params"] = params
            response = await found(Request(scope, receive))
        response.headers["Access-Control-Allow-Origin"] = "*"
        await response(scope, receive, send)

    return app


_PREFLIGHT = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Authorization, X-Retry-Count",
    "Access-Control-Max-Age": "86400",
}


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
