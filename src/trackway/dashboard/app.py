"""The dashboard's routes: sign-in and sign-out, the assets, and every page behind the
session check (and, for POSTs, the CSRF check), all answered with strict security
headers."""

import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from trackway.admin.auth import AdminAuth
from trackway.dashboard.page import Dashboard
from trackway.dashboard.pages import discover
from trackway.dashboard.sessions import Sessions, SignInLimiter
from trackway.settings import Settings
from trackway.storage.base import EventLog, StateStore

SESSION_COOKIE = "trackway_session"
SIGNIN_COOKIE = "trackway_signin"
"""Before there is a session, the sign-in form's CSRF token (double-submit cookie)."""
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self';"
    " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_STATIC = Path(__file__).parent / "static"

Endpoint = Callable[[Request], Awaitable[Response]]


def dashboard_routes(
    auth: AdminAuth,
    store: StateStore,
    log: EventLog,
    settings: Settings,
    sessions: Sessions | None = None,
    limiter: SignInLimiter | None = None,
) -> list[BaseRoute]:
    """The routes, for the server's app at `/`."""
    sessions = sessions or Sessions()
    limiter = limiter or SignInLimiter()
    dash = Dashboard(store, log, settings)
    dash.nav = discover()

    async def signin_form(request: Request) -> Response:
        if sessions.get(request.cookies.get(SESSION_COOKIE)):
            return RedirectResponse(_next(request), 303)
        return _signin_page(request, dash, "", 200)

    async def signin(request: Request) -> Response:
        client = request.client.host if request.client else ""
        wait = limiter.retry_after(client)
        if wait is not None:
            response = _signin_page(
                request, dash, f"Too many wrong tokens: try again in {wait:.0f} s.", 429
            )
            response.headers["Retry-After"] = str(int(wait) + 1)
            return response
        form = await request.form()
        cookie = request.cookies.get(SIGNIN_COOKIE, "")
        if not cookie or not secrets.compare_digest(cookie, str(form.get(CSRF_FIELD, ""))):
            return _forbidden(request, dash)
        if not auth.check_token(str(form.get("token", "")).strip()):
            limiter.failed(client)
            return _signin_page(request, dash, "That is not an admin token.", 401)
        limiter.succeeded(client)
        session = sessions.create()
        response = RedirectResponse(_next(request), 303)
        response.set_cookie(
            SESSION_COOKIE,
            session.id,
            max_age=int(sessions.ttl_s),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        response.delete_cookie(SIGNIN_COOKIE, httponly=True, samesite="strict")
        return response

    async def signout(request: Request) -> Response:
        sessions.end(request.state.session.id)
        response = RedirectResponse("/signin", 303)
        response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="strict")
        return response

    def guarded(endpoint: Endpoint) -> Endpoint:
        """`endpoint` for signed-in browsers only; a POST must carry the CSRF token."""

        async def check(request: Request) -> Response:
            session = sessions.get(request.cookies.get(SESSION_COOKIE))
            if session is None:
                if request.method != "GET" or "text/html" not in request.headers.get("accept", ""):
                    return Response("sign in first", 401, media_type="text/plain")
                return RedirectResponse("/signin?next=" + quote(request.url.path), 303)
            request.state.session = session
            if request.method == "POST":
                form = await request.form()
                given = str(form.get(CSRF_FIELD, request.headers.get(CSRF_HEADER, "")))
                if not secrets.compare_digest(given, session.csrf):
                    return _forbidden(request, dash)
                request.state.form = form
            return await endpoint(request)

        return check

    routes: list[BaseRoute] = [
        Route("/signin", _secured(signin_form), methods=["GET"]),
        Route("/signin", _secured(signin), methods=["POST"]),
        Route("/signout", _secured(guarded(signout)), methods=["POST"]),
        Mount("/assets", app=StaticFiles(directory=_STATIC), name="assets"),
    ]
    for page in dash.nav:
        for route in page.routes(dash):
            assert isinstance(route, Route)  # pages add plain routes
            routes.append(
                Route(
                    route.path, _secured(guarded(route.endpoint)), methods=list(route.methods or [])
                )
            )
    return routes


def _secured(endpoint: Endpoint) -> Endpoint:
    async def with_headers(request: Request) -> Response:
        response = await endpoint(request)
        for name, value in _HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    return with_headers


def _signin_page(request: Request, dash: Dashboard, error: str, status: int) -> Response:
    token = secrets.token_urlsafe(32)
    response = dash.render(
        request, "signin.html", None, status, error=error, signin_csrf=token, next=_next(request)
    )
    response.set_cookie(
        SIGNIN_COOKIE,
        token,
        max_age=3600,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


def _forbidden(request: Request, dash: Dashboard) -> Response:
    return dash.render(request, "forbidden.html", None, 403)


def _next(request: Request) -> str:
    """Where to go after signing in: a path on this server only (never `//host`)."""
    target = request.query_params.get("next", "/")
    return target if target.startswith("/") and not target.startswith("//") else "/"
