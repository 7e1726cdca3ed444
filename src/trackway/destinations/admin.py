"""The destinations part of the admin API (`/api/v1/destinations...`): the overview, a
destination's declaration (secrets masked), its delivery view and its series over time,
its alerts, turning it on and off, the event tester, replay, dead letters and re-sending
them."""

from collections.abc import Awaitable, Callable
from contextlib import closing
from typing import Any

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from trackway import codec
from trackway.admin.validation import Checked, checked
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
    """The routes; `guarded` answers the admin API's errors as JSON. The admin API checks
    each request against its operation in the OpenAPI document before the handler runs
    (`trackway.admin.validation`), so handlers take the checked values."""
    data_dir = settings.data_dir

    def handle(fn: Callable[[Request, Checked], Any]) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                result = await run_in_threadpool(fn, request, checked(request))
            except DestinationNotFound as exc:
                return JSONResponse({"code": "not_found", "message": str(exc)}, 404)
            except (SecretError, InvalidSettings) as exc:
                return JSONResponse({"code": "invalid_destination", "message": str(exc)}, 409)
            return Response(codec.dumps(result), media_type="application/json")

        return guarded(endpoint)

    def overview(request: Request, given: Checked) -> Any:
        with closing(open_delivery_store(settings)) as store:
            return operations.overview(
                config.destinations(state), store, log.last_seqs()["accepted"]
            )

    def show(request: Request, given: Checked) -> Any:
        spec = config.find(state, request.path_params["name"])
        shown: dict[str, Any] = msgspec.to_builtins(spec)
        shown["settings"] = config.shown_settings(spec)
        return shown

    def delivery(request: Request, given: Checked) -> Any:
        spec = config.find(state, request.path_params["name"])
        window = parse_duration(given.query["window"])
        with closing(open_delivery_store(settings)) as store:
            last = log.last_seqs()["accepted"]
            return report.delivery_report(spec, store, last, window, given.query["errors"])

    def series(request: Request, given: Checked) -> Any:
        spec = config.find(state, request.path_params["name"])
        with closing(open_delivery_store(settings)) as store:
            return report.delivery_series(spec, store, parse_duration(given.query["window"]))

    def alerts(request: Request, given: Checked) -> Any:
        spec = config.find(state, request.path_params["name"])
        with closing(open_delivery_store(settings)) as store:
            return report.alerts_view(spec, store, given.query["limit"])

    def enabled(request: Request, given: Checked) -> Any:
        spec = config.set_enabled(state, request.path_params["name"], given.body["enabled"])
        return {"name": spec.name, "enabled": spec.enabled, "yaml": config.enabled_yaml(spec)}

    def test(request: Request, given: Checked) -> Any:
        destination = operations.compiled(state, data_dir, request.path_params["name"])
        as_source = operations.tested_source(state, given.body.get("source"))
        outcome = operations.run_test(
            destination, given.body["event"], given.body["dry_run"], data_dir, as_source
        )
        return msgspec.to_builtins(outcome)

    def replay(request: Request, given: Checked) -> Any:
        spec = config.find(state, request.path_params["name"])
        with closing(open_delivery_store(settings)) as store:
            return operations.replay(spec, log, store, parse_since(given.body["since"]))

    def dead_letters(request: Request, given: Checked) -> Any:
        limit = given.query["limit"]
        with closing(open_delivery_store(settings)) as store:
            owner = operations.dead_letters_of(state, store, request.path_params["name"])
            return {
                "total": store.dead_letter_count(owner),
                "dead_letters": [msgspec.to_builtins(d) for d in store.dead_letters(owner, limit)],
            }

    def resend(request: Request, given: Checked) -> Any:
        spec = config.find(state, request.path_params["name"])
        with closing(open_delivery_store(settings)) as store:
            return {"resent": operations.resend(spec, store, given.body.get("ids"))}

    def authentication(request: Request, given: Checked) -> Any:
        return operations.authenticate(
            operations.compiled(state, data_dir, request.path_params["name"])
        )

    prefix = "/destinations/{name}"
    return [
        Route("/destinations", handle(overview), methods=["GET"]),
        Route(prefix, handle(show), methods=["GET"]),
        Route(f"{prefix}/delivery", handle(delivery), methods=["GET"]),
        Route(f"{prefix}/delivery/series", handle(series), methods=["GET"]),
        Route(f"{prefix}/alerts", handle(alerts), methods=["GET"]),
        Route(f"{prefix}/enabled", handle(enabled), methods=["PUT"]),
        Route(f"{prefix}/test", handle(test), methods=["POST"]),
        Route(f"{prefix}/authentication", handle(authentication), methods=["POST"]),
        Route(f"{prefix}/replay", handle(replay), methods=["POST"]),
        Route(f"{prefix}/dead-letters", handle(dead_letters), methods=["GET"]),
        Route(f"{prefix}/resend", handle(resend), methods=["POST"]),
    ]
