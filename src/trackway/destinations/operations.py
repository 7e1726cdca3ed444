"""What the CLI and the admin API both do with destinations: the overview, the event
tester with real transports, replay and re-sending dead letters."""

import time
from pathlib import Path
from typing import Any

from trackway.destinations import config, report, tester
from trackway.destinations.config import DestinationNotFound, DestinationSpec
from trackway.destinations.framework import InvalidSettings
from trackway.destinations.pipeline import Destination
from trackway.destinations.secrets import Secrets
from trackway.destinations.state import DeliveryStore
from trackway.destinations.transport import TransportError
from trackway.destinations.worker import http_transport
from trackway.functions import FunctionPool
from trackway.storage.base import EventLog, SourceNotFound, StateStore
from trackway.storage.positions import position_at
from trackway.storage.records import Source

HEALTH_WINDOW_S = 24 * 3600.0


def overview(
    specs: list[DestinationSpec], store: DeliveryStore, end_of_log: int
) -> list[dict[str, Any]]:
    """One row per destination: how far behind the log it is, what waits, and its health
    over the last 24 hours (successful delivery rate, whether an alert is open)."""
    rows = []
    for spec in specs:
        cursor = store.cursor(spec.name, spec.start_position or 0)
        rows.append(
            {
                "name": spec.name,
                "type": spec.type,
                "enabled": spec.enabled,
                "subscriptions": len(spec.subscriptions or []),
                "lag_events": max(0, end_of_log - cursor.position),
                "retry_waiting": store.waiting(spec.name),
                "dead_letters": store.dead_letter_count(spec.name),
                **report.health(spec, store, HEALTH_WINDOW_S),
            }
        )
    return rows


def dead_letters_of(state: StateStore, store: DeliveryStore, name: str) -> str:
    """`name`, if dead letters can be read or purged under it: a destination's, or a
    deleted one's while it has some; raises DestinationNotFound otherwise."""
    try:
        return config.find(state, name).name
    except DestinationNotFound:
        if store.dead_letter_count(name):
            return name
        raise


def compiled(state: StateStore, data_dir: Path, name: str) -> Destination:
    """The stored destination `name`, compiled with its decrypted settings."""
    spec = config.find(state, name)
    return Destination(
        spec,
        config.plain_settings(spec, Secrets.of(data_dir)),
        source_ids=config.source_ids(spec, state),
    )


def run_test(
    destination: Destination,
    event: dict[str, Any],
    dry_run: bool,
    data_dir: Path,
    source: Source | None = None,
) -> tester.TestResult:
    """The event tester with the destination's real transport (none for a dry run) and,
    when it has an insert function, a one-process function pool that hides `data_dir`."""
    transport = None if dry_run else http_transport(destination)
    pool = FunctionPool(workers=1, hidden=[data_dir]) if destination.spec.function else None
    try:
        return tester.test_event(destination, event, transport, pool, source)
    finally:
        if transport is not None:
            transport.close()
        if pool is not None:
            pool.close()


def tested_source(state: StateStore, name: str | None) -> Source | None:
    """The source an event is tested as coming from (`--source`); ValueError if unknown."""
    if name is None:
        return None
    try:
        return state.get_source(name)
    except SourceNotFound as exc:
        raise ValueError(str(exc)) from None


def replay(
    spec: DestinationSpec, log: EventLog, store: DeliveryStore, since_ms: int
) -> dict[str, int]:
    """Move the destination's cursor back to the first event received at `since_ms`."""
    position = position_at(log, since_ms)
    events = log.last_seqs()["accepted"] - position
    store.move_cursor(spec.name, position, int(time.time() * 1000))
    return {"position": position, "events": events}


def resend(spec: DestinationSpec, store: DeliveryStore, ids: list[int] | None) -> int:
    """Put dead letters (all, or those ids) back into the retry schedule, due now."""
    return store.resend(spec.name, ids, int(time.time() * 1000))


def authenticate(destination: Destination) -> dict[str, Any]:
    """Run the destination's authentication test: its settings are checked, then the
    request that proves the credentials is sent; `ok` says whether they work."""
    definition = destination.definition
    result: dict[str, Any] = {"destination": destination.name, "ok": True, "message": ""}
    if definition.authentication is None:
        result["message"] = f"{definition.title} has no authentication test."
        return result
    try:
        request = definition.authentication(destination.settings)
    except InvalidSettings as exc:
        return {**result, "ok": False, "message": str(exc)}
    if request is None:
        result["message"] = "The settings are valid (there is nothing to ask the destination)."
        return result
    result["request"] = destination.sample_request(request)
    transport = http_transport(destination)
    try:
        response = transport.send(request)
    except TransportError as exc:
        return {**result, "ok": False, "message": f"{exc.kind}: {exc.message}"}
    finally:
        transport.close()
    result["response"] = destination.sample_response(response)
    result["ok"] = 200 <= response.status < 300
    result["message"] = (
        f"The credentials were accepted (HTTP {response.status})."
        if result["ok"]
        else f"The destination refused the credentials (HTTP {response.status})."
    )
    return result
