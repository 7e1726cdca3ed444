"""The planner's shortcuts give what the general path gives."""

from datetime import datetime

import pytest

from tests.warehouse.support import track
from trackway.storage.records import LogEvent
from trackway.warehouse import schema
from trackway.warehouse.plan import LoadPlan, Planner


def _general(text: str) -> str | None:
    """`schema.timestamp` without its shortcut for text already in the loader's form."""
    if not schema._TIMESTAMP.fullmatch(text):
        return None
    try:
        return schema.utc_text(datetime.fromisoformat(text))
    except ValueError:
        return None


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-22T10:00:00Z",
        "2026-11-22T10:00:00.123456Z",
        "2026-11-22T10:00:00.000000Z",  # the loader writes no fraction for zero
        "2026-11-22T10:00:00.000001Z",
        "2026-11-22T10:00:00.12345Z",
        "2026-11-22T10:00:00.1234567Z",
        "2026-11-22 10:00:00Z",
        "2026-11-22T10:00:00+00:00",
        "2026-11-22T12:00:00+02:00",
        "2026-13-22T10:00:00Z",  # no month 13
        "2026-02-30T10:00:00Z",
        "2026-11-22T24:00:00Z",
        "2026-11-22T10:00:60Z",
        "0000-01-01T00:00:00Z",
        "0999-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999Z",
        "2026-11-22T10:00:00z",
        "2026-11-22",
        "",
    ],
)
def test_timestamps_in_the_loaders_form_are_checked_not_rewritten(text: str) -> None:
    assert schema.timestamp(text) == _general(text)


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-00:01"])
def test_a_time_outside_years_1_to_9999_in_utc_is_not_a_timestamp(text: str) -> None:
    assert schema.timestamp(text) is None


def _plan(events: list[LogEvent], parts: int) -> LoadPlan:
    planner = Planner({}, 1000)
    planner.begin("2026-11-22T10:00:05Z")
    size = -(-len(events) // parts)
    for start in range(0, len(events), size):
        planner.add(events[start : start + size], {1: "default_"})
    return planner.end()


def test_a_batch_planned_in_parts_is_the_batch_planned_at_once() -> None:
    bodies = [
        track("Order Completed", {"total": 10, "coupon": "A"}),
        track("Order Completed", {"total": 10.5, "shippedAt": "2026-11-22T10:00:00Z"}),
        track("Product Viewed", {"sku": "x", "context_ip": "1.2.3.4"}),
        track("Product Viewed", {"sku": 3, "shippedAt": "soon"}),
    ]
    bodies.append(dict(bodies[0], receivedAt="2026-11-22T09:00:00.000000Z"))  # same id
    events = [LogEvent(i + 1, 1, 1_700_000_000_000 - i, b) for i, b in enumerate(bodies)]
    whole = Planner({}, 1000).plan(events, {1: "default_"}, "2026-11-22T10:00:05Z")
    for parts in (2, len(events)):
        assert _plan(events, parts) == whole
    assert (whole.first_position, whole.position, whole.events) == (1, 5, 5)
    assert whole.oldest_received_ms == 1_700_000_000_000 - 4
