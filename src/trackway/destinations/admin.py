"""The destinations part of the admin API (`/api/v1/destinations...`): the overview, a
destination's declaration (secrets masked), its delivery view, the event tester,
replay, dead letters and re-sending them."""

from collections.abc import Awaitable, Callable
from contextlib import closing
from typing import Any

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from trackway import codec
from trackway.admin.params import int_param
from trackway.cli_options import parse_since
from trackway.destinations import config, operations, report
from trackway.destinations.config import DestinationNotFound
from trackway.destinations.framework import InvalidSettings
from trackway.destinations.secrets import SecretError
from trackway.destinations.state import open_delivery_store
from trackway.settings import Settings, parse_duration
from trackway.storage.base import EventLog, StateStore

Guard = Callable[[Callable[[Request], Awaitable[Response]]], Any]


def routes(settings: Settings, state: StateStore, log: EventLog, guarded: Guard) -> list[Route]:
    """The routes, each behind the admin API's token check (`guarded`)."""
    data_dir = settings.data_dir

    def handle(fn: Callable[[Request, bytes], Any]) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                result = await run_in_threadpool(fn, request, await request.body())
            except DestinationNotFound as exc:
                return JSONResponse({"code": "not_found", "message": str(exc)}, 404)
            except (SecretError, InvalidSettings) as exc:
                return JSONResponse({"code": "invalid_destination", "message": str(exc)}, 409)
            return Response(codec.dumps(result), media_type="application/json")

        return guarded(endpoint)

    def overview(request: Request, body: bytes) -> Any:
        with closing(open_delivery_store(settings)) as store:
            return operations.overview(
                config.destinations(state), store, log.last_seqs()["accepted"]
            )

    def show(request: Request, body: bytes) -> Any:
        spec = config.find(state, request.path_params["name"])
        shown: dict[str, Any] = msgspec.to_builtins(spec)
        shown["settings"] = config.shown_settings(spec)
        return shown

    def delivery(request: Request, body: bytes) -> Any:
        spec = config.find(state, request.path_params["name"])
        window = parse_duration(request.query_params.get("window", "24h"))
        errors = int_param(request.query_params.get("errors", "5"), "errors", 0, 100)
        with closing(open_delivery_store(settings)) as store:
            return report.delivery_report(spec, store, log.last_seqs()["accepted"], window, errors)

    def test(request: Request, body: bytes) -> Any:
        data = _object(body, '{"event": {...}, "dry_run": false, "source": "web"}')
        event = data.get("event")
        if not isinstance(event, dict):
            raise ValueError("'event' must be an object (one event)")
        dry_run = data.get("dry_run", False)
        if not isinstance(dry_run, bool):
            raise ValueError("'dry_run' must be true or false")
        source = data.get("source")
        if source is not None and not isinstance(source, str):
            raise ValueError("'source' must be a source's name")
        destination = operations.compiled(state, data_dir, request.path_params["name"])
        as_source = operations.tested_source(state, source)
        return msgspec.to_builtins(operations.run_test(destination, event, dry_run, as_source))

    def replay(request: Request, body: bytes) -> Any:
        data = _object(body, '{"since": "2h"}')
        since = data.get("since")
        if not isinstance(since, str):
            raise ValueError("'since' must be a time (ISO 8601 with an offset) or a duration")
        spec = config.find(state, request.path_params["name"])
        with closing(open_delivery_store(settings)) as store:
            return operations.replay(spec, log, store, parse_since(since))

    def dead_letters(request: Request, body: bytes) -> Any:
        limit = int_param(request.query_params.get("limit", "20"), "limit", 1, 10_000)
        with closing(open_delivery_store(settings)) as store:
            owner = operations.dead_letters_of(state, store, request.path_params["name"])
            return {
                "total": store.dead_letter_count(owner),
                "dead_letters": [msgspec.to_builtins(d) for d in store.dead_letters(owner, limit)],
            }

    def resend(request: Request, body: bytes) -> Any:
        data = _object(body or b"{}", '{"ids": [1, 2]} or {}')
        ids = data.get("ids")
        if ids is not None and (not isinstance(ids, list) or not all(type(i) is int for i in ids)):
            raise ValueError("'ids' must be a list of dead letter ids")
        spec = config.find(state, request.path_params["name"])
        with closing(open_delivery_store(settings)) as store:
            return {"resent": operations.resend(spec, store, ids)}

    def authentication(request: Request, body: bytes) -> Any:
        return operations.authenticate(
            operations.compiled(state, data_dir, request.path_params["name"])
        )

    prefix = "/destinations/{name}"
    return [
        Route("/destinations", handle(overview), methods=["GET"]),
        Route(prefix, handle(show), methods=["GET"]),
        Route(f"{prefix}/delivery", handle(delivery), methods=["GET"]),
        Route(f"{prefix}/test", handle(test), methods=["POST"]),
        Route(f"{prefix}/authentication", handle(authentication), methods=["POST"]),
        Route(f"{prefix}/replay", handle(replay), methods=["POST"]),
        Route(f"{prefix}/dead-letters", handle(dead_letters), methods=["GET"]),
        Route(f"{prefix}/resend", handle(resend), methods=["POST"]),
    ]


def _object(body: bytes, example: str) -> dict[str, Any]:
    try:
        data = codec.loads(body)
    except codec.DecodeError:
        raise ValueError(f"the body must be JSON: {example}") from None
    if not isinstance(data, dict):
        raise ValueError(f"the body must be a JSON object: {example}")
    return data
