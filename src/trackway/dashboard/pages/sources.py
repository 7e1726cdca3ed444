"""Sources (`GET /api/v1/sources`): the list, creating a source, rotating its write key,
disabling and enabling it; and a source's live debugger
(`GET /api/v1/sources/{name}/events`, streamed)."""

from typing import Any, cast, get_args

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from trackway import codec
from trackway.dashboard.page import Dashboard, Page
from trackway.debugger import record_json, stream_records
from trackway.settings import DEFAULT_KEY_GRACE_S, parse_duration
from trackway.storage.base import SourceNotFound
from trackway.storage.records import DebugRecord, Status
from trackway.workspace.sources import SOURCE_TYPES, check_name, source_json

RECENT = 50
"""Records the debugger shows when it opens (the admin API's default `limit`)."""
MAX_PER_S = 200
"""Records a second the debugger's stream sends at most; the rest it counts (sampled)."""
_SHOWN_KEY_CHARS = 4


def mask(write_key: str | None) -> str:
    """A write key as the list shows it: its first characters only."""
    return (write_key or "")[:_SHOWN_KEY_CHARS] + "•" * 8


def shown(record: DebugRecord) -> dict[str, Any]:
    """A record as the admin API answers it, but for the write key a client may have put
    in a rejected payload (analytics.js sends it in the body): masked, as everywhere in
    the dashboard."""
    out = record_json(record)
    payload = out.get("payload")
    if isinstance(payload, dict) and isinstance(payload.get("writeKey"), str):
        out["payload"] = {**payload, "writeKey": mask(payload["writeKey"])}
    return out


def _routes(dash: Dashboard) -> list[BaseRoute]:
    store = dash.store

    def listing(request: Request, status: int = 200, **context: Any) -> Response:
        sources = [source_json(store, s) for s in store.list_sources()]
        for source in sources:
            source["write_key"] = mask(source["write_key"])
            source.pop("previous_write_keys", None)
        context.setdefault("error", "")
        return dash.render(
            request, "sources.html", PAGE, status, sources=sources, types=SOURCE_TYPES, **context
        )

    async def show_list(request: Request) -> Response:
        return listing(request)

    async def create(request: Request) -> Response:
        form = request.state.form
        name, kind = str(form.get("name", "")).strip(), str(form.get("type", ""))
        try:
            if kind not in SOURCE_TYPES:
                raise ValueError(f"unknown source type {kind!r}: use one of {SOURCE_TYPES}")
            source = store.create_source(check_name(name), kind)
        except ValueError as exc:  # the name is taken too
            return listing(request, 400, error=str(exc))
        key = source_json(store, source)["write_key"]
        return listing(request, 201, shown_key={"name": name, "write_key": key, "rotated": False})

    async def rotate(request: Request) -> Response:
        name = request.path_params["name"]
        given = str(request.state.form.get("grace", "")).strip()
        try:
            grace = parse_duration(given) if given else DEFAULT_KEY_GRACE_S
            key = store.rotate_key(name, grace)
        except (ValueError, SourceNotFound) as exc:
            return listing(request, 400, error=str(exc))
        shown = {"name": name, "write_key": key, "rotated": True, "grace_hours": grace / 3600}
        return listing(request, 200, shown_key=shown)

    async def enabled(request: Request) -> Response:
        name = request.path_params["name"]
        try:
            store.set_enabled(name, request.state.form.get("enabled") == "true")
        except SourceNotFound as exc:
            return listing(request, 404, error=str(exc))
        return RedirectResponse("/sources", 303)

    async def debugger(request: Request) -> Response:
        try:
            source = store.get_source(request.path_params["name"])
        except SourceNotFound as exc:
            return listing(request, 404, error=str(exc))
        status = request.query_params.get("status", "")
        statuses: frozenset[Status] | None = None
        if status in get_args(Status):
            statuses = frozenset([cast(Status, status)])
        records = await run_in_threadpool(dash.log.debug_records, source.id, RECENT, statuses)
        rows = [row(shown(r)) for r in records]
        twin = f"/api/v1/sources/{source.name}/events"
        return dash.render(
            request,
            "debugger.html",
            PAGE,
            source=source,
            rows=rows,
            twin=twin + (f"?status={status}" if statuses else ""),
            shown_status=status if statuses else "",
            max_per_s=MAX_PER_S,
        )

    async def stream(request: Request) -> Response:
        try:
            source = store.get_source(request.path_params["name"])
        except SourceNotFound:
            return Response("no such source", 404, media_type="text/plain")
        return StreamingResponse(
            stream_records(dash.log, source.id, MAX_PER_S, shown),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return [
        Route("/sources", show_list, methods=["GET"]),
        Route("/sources", create, methods=["POST"]),
        Route("/sources/{name}", debugger, methods=["GET"]),
        Route("/sources/{name}/stream", stream, methods=["GET"]),
        Route("/sources/{name}/rotate", rotate, methods=["POST"]),
        Route("/sources/{name}/enabled", enabled, methods=["POST"]),
    ]


def row(record: dict[str, Any]) -> dict[str, Any]:
    """A debugger row: the columns shown and filtered on, and the record's full JSON
    (what the admin API answers for it). dashboard.js builds streamed rows the same way."""
    event = record.get("payload") if record["status"] == "rejected" else record
    event = event if isinstance(event, dict) else {}
    error = record.get("error") or {}
    return {
        "status": record["status"],
        "at": record["receivedAt"] if record["status"] == "rejected" else event.get("receivedAt"),
        "type": event.get("type", ""),
        "event": event.get("event") or event.get("name") or "",
        "user": event.get("userId") or event.get("anonymousId") or "",
        "message_id": event.get("messageId", ""),
        "error": f"{error.get('code')}: {error.get('message')}" if error else "",
        "json": codec.dumps_text(record),
    }


PAGE = Page(path="/sources", title="Sources", twin="/api/v1/sources", order=10, routes=_routes)
