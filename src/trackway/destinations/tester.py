"""The event tester: one event through a destination's subscriptions and mappings (not
its filters), showing per matched action the payload, the request and the real
response (or, in a dry run, the request only)."""

from dataclasses import dataclass, field
from typing import Any, Literal

from trackway.destinations.delivery import RETRY_STATUSES, Functions
from trackway.destinations.framework import Discard
from trackway.destinations.pipeline import Destination
from trackway.destinations.transport import Transport, TransportError
from trackway.storage.records import Source

NO_MATCH = "No subscription matches this event."
DRY_RUN = "not sent (dry run)"
BLOCKED = "blocked"


@dataclass(slots=True)
class TestedAction:
    """What one matched subscription did with the event."""

    subscription: str
    action: str
    payload: dict[str, Any] | None = None
    request: dict[str, Any] | None = None
    response: dict[str, Any] | None = None
    status: str = DRY_RUN
    error: str | None = None


@dataclass(slots=True)
class TestResult:
    """The tester's answer: the actions run, or why none was."""

    destination: str
    message: str = ""
    actions: list[TestedAction] = field(default_factory=list)
    function_failed: bool = False
    """The insert function raised or timed out (`message` says how)."""

    @property
    def outcome(self) -> Literal["ok", "failed", "blocked"]:
        """`blocked` when a request was refused before it was sent (a private address,
        an invalid URL), else `failed` when a request failed or got a non-2xx answer, a
        payload was invalid or the insert function failed, else `ok`."""
        statuses = {tested.status for tested in self.actions}
        if BLOCKED in statuses:
            return "blocked"
        if self.function_failed or statuses - {"delivered", DRY_RUN}:
            return "failed"
        return "ok"


def test_event(
    destination: Destination,
    event: dict[str, Any],
    transport: Transport | None,
    functions: Functions | None = None,
    source: Source | None = None,
) -> TestResult:
    """Run `event` through `destination`, as if sent to `source` (default: a source it
    takes); `transport` None is a dry run."""
    result = TestResult(destination.name)
    if source is not None and not destination.takes(source.id):
        taken = ", ".join(destination.spec.sources or [])
        result.message = (
            f"This destination does not take events from source '{source.name}'"
            f" (its sources: {taken})."
        )
        return result
    routed = destination.route(event, filters=False)
    if routed.event is None or not routed.subscriptions:
        result.message = NO_MATCH if routed.reason == "unsubscribed" else routed.detail
        return result
    events: list[dict[str, Any]] = [routed.event]
    code = destination.spec.function
    if code is not None and functions is not None:
        (ran,) = functions.run(code, [routed.event], dict(destination.spec.function_settings))
        if ran.failure is not None:
            result.message = f"insert function {ran.failure.kind}: {ran.failure.message}"
            result.function_failed = True
            return result
        events = ran.events
        if not events:
            result.message = "The insert function dropped this event."
            return result
    for subscription in routed.subscriptions:
        for one in events:
            tested = TestedAction(subscription.name, subscription.action.name)
            result.actions.append(tested)
            try:
                tested.payload = subscription.payload(one)
            except Discard as exc:
                tested.status, tested.error = "invalid payload", str(exc)
                continue
            ((_, request),) = destination.requests(subscription, [tested.payload])
            if isinstance(request, Discard):
                tested.status, tested.error = "invalid payload", str(request)
                continue
            tested.request = destination.sample_request(request)
            if transport is None:
                continue
            try:
                response = transport.send(request)
            except TransportError as exc:
                tested.status = BLOCKED if exc.kind == "blocked" else "failed"
                tested.error = f"{exc.kind}: {exc.message}"
                continue
            tested.response = destination.sample_response(response)
            if 200 <= response.status < 300:
                tested.status = "delivered"
            elif response.status in RETRY_STATUSES:
                tested.status = "failed (would be retried)"
            else:
                tested.status = "failed (would be discarded)"
    return result
