"""`GET /` of a worker process (`--role worker`, no dashboard): a small page saying what it
answers where; and the JSON answer to a path or method that is not there."""

from html import escape

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from trackway import __version__

DOCS = (
    ("docs/tracking-api.md", "the tracking API: endpoints, authentication, limits, errors"),
    ("docs/cli.md", "every trackway command"),
    ("docs/flag-events.md", "feature flag evaluations from ConfigCat and OpenFeature"),
    ("docs/destinations.md", "destinations: delivery, retries, dead letters"),
    ("docs/fql-and-mappings.md", "subscriptions, filters and mappings"),
    ("docs/insert-functions.md", "Python insert functions"),
    ("docs/warehouse.md", "the SQL warehouse and trackway sql"),
    ("docs/reverse-etl.md", "models and syncs: warehouse rows out as events"),
    ("docs/operations.md", "durability, retention, health, metrics, the admin API"),
    ("docs/deploy.md", "PostgreSQL, API and worker processes on several machines"),
)
"""The docs in the repository (not served here), by path."""

_STYLE = "body{font-family:sans-serif;max-width:46em;margin:2em auto;padding:0 1em}"


def landing_page() -> HTMLResponse:
    """The page at `/` of a worker process."""
    items = [
        _link("/health", "the process is alive"),
        _link("/ready", "storage is reachable"),
        _link("/metrics", "Prometheus metrics"),
    ]
    docs = "".join(f"<li><code>{name}</code>: {escape(text)}</li>" for name, text in DOCS)
    body = (
        f"<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>Trackway</title><style>{_STYLE}</style></head><body>"
        f"<h1>Trackway {escape(__version__)}</h1>"
        f"<p>A self-hosted, Segment-compatible customer data platform.</p>"
        f"<h2>This worker process</h2><ul>{''.join(items)}</ul>"
        f"<h2>Documentation</h2><p>In the Trackway repository:</p><ul>{docs}</ul>"
        f"</body></html>"
    )
    return HTMLResponse(body)


def _link(path: str, text: str) -> str:
    return f'<li><a href="{path}"><code>{path}</code></a>: {escape(text)}</li>'


async def http_error(request: Request, exc: Exception) -> Response:
    """A path or method that is not there, answered as JSON `{"code", "message"}` like
    every other error of the APIs."""
    assert isinstance(exc, HTTPException)  # the handler of HTTPException only
    path = request.url.path
    if exc.status_code == 404:
        code, message = "not_found", f"nothing at {path} (see / for what is here)"
    elif exc.status_code == 405:
        code, message = "method_not_allowed", f"{request.method} is not allowed on {path}"
    else:
        code, message = "http_error", exc.detail
    return JSONResponse({"code": code, "message": message}, exc.status_code, exc.headers)
