"""The warehouse SQL and the statistics together, on DuckDB and PostgreSQL: exposures
and goal events loaded by the real loader, results checked against sums done here."""

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from tests.experiments.support import exposure, iso, order
from tests.warehouse.conftest import pg_url, warehouse  # noqa: F401 (fixtures)
from tests.warehouse.support import SCHEMA, body, load, track
from trackway.experiments.results import Timeline, compute
from trackway.experiments.spec import ExperimentSpec, validate
from trackway.warehouse.base import Warehouse

START = datetime(2026, 11, 1, tzinfo=UTC)


def _spec(**extra: Any) -> ExperimentSpec:
    data = {
        "name": "checkout",
        "flag": "newCheckout",
        "variations": [{"name": "control", "value": False}, {"name": "new", "value": True}],
        "start": "2026-11-01T00:00:00Z",
        "goals": [
            {"event": "Order Completed"},
            {"event": "Order Completed", "type": "sum", "property": "revenue", "name": "revenue"},
            {"event": "Order Completed", "type": "count", "name": "orders", "cuped": True},
            {
                "event": "Order Completed",
                "type": "mean",
                "property": "revenue",
                "name": "order value",
            },
        ],
        "guardrails": [{"event": "Checkout", "event_type": "page", "type": "count"}],
        "engine": "frequentist",
    }
    data.update(extra)
    return validate(msgspec.convert(data, ExperimentSpec))


def _simulate(seed: int, users: int) -> tuple[list[dict[str, Any]], dict[str, list[float]]]:
    """Exposures (both spellings) and orders; returns the events and per arm the
    per-unit revenues counted in the window (what the results must sum to)."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    revenue: dict[str, list[float]] = {"control": [], "new": []}
    for i in range(users):
        user = f"u{i}"
        arm = rng.random() < 0.5
        first = START + timedelta(minutes=i)
        events.append(exposure(user, arm, first, "segment" if i % 2 else "source"))
        events.append(exposure(user, arm, first + timedelta(hours=1)))
        # An order before exposure counts for CUPED only; one after the window not at all.
        events.append(
            track(
                "Order Completed",
                {"revenue": 5},
                userId=user,
                timestamp=iso(first - timedelta(days=2)),
            )
        )
        events.append(
            track(
                "Order Completed",
                {"revenue": 7},
                userId=user,
                timestamp=iso(first + timedelta(hours=80)),
            )
        )
        total = 0.0
        if rng.random() < (0.3 if arm else 0.2):
            total = float(rng.randint(10, 50))
            events.append(
                track(
                    "Order Completed",
                    {"revenue": total},
                    userId=user,
                    timestamp=iso(first + timedelta(hours=2)),
                )
            )
        events.append(
            body(
                "page",
                name="Checkout",
                properties={},
                userId=user,
                timestamp=iso(first + timedelta(minutes=5)),
            )
        )
        revenue["new" if arm else "control"].append(total)
    # One unit saw both variations: excluded, and counted.
    events.append(exposure("both", False, START))
    events.append(exposure("both", True, START + timedelta(minutes=1)))
    return events, revenue


def test_results_sum_the_window_after_firstexposure(warehouse: Warehouse) -> None:  # noqa: F811
    events, revenue = _simulate(seed=7, users=400)
    load(warehouse, events)
    results = compute(_spec(), warehouse, SCHEMA, as_of=START + timedelta(days=30))
    assert results.units == {arm: len(values) for arm, values in revenue.items()}
    assert results.multiple_exposures == 1
    conversion, total, orders, order_value, checkout = results.metrics
    for arm, values in enumerate(revenue.values()):
        converted = sum(1 for v in values if v)
        assert conversion.sums[arm] == converted
        assert conversion.variations[arm].mean == pytest.approx(converted / len(values))
        assert total.sums[arm] == pytest.approx(sum(values))
        assert orders.sums[arm] == converted
        assert order_value.variations[arm].mean == pytest.approx(sum(values) / converted)
        assert checkout.sums[arm] == len(values)
    assert checkout.role == "guardrail"
    treatment = conversion.variations[1]
    assert treatment.p_value is not None and treatment.ci[0] < treatment.expected < treatment.ci[1]
    assert not results.srm.flagged


def test_as_of_and_an_unknown_event_give_no_conversions(warehouse: Warehouse) -> None:  # noqa: F811
    events, _ = _simulate(seed=3, users=50)
    load(warehouse, events)
    spec = _spec(goals=[{"event": "Never Sent"}], guardrails=[])
    assert compute(spec, warehouse, SCHEMA).metrics[0].sums == [0, 0]
    early = compute(_spec(), warehouse, SCHEMA, as_of=START + timedelta(minutes=10))
    assert sum(early.units.values()) == 11  # exposures at minutes 0..10, the end included
    assert early.multiple_exposures == 1


def test_an_unbalanced_split_raises_srm(warehouse: Warehouse) -> None:  # noqa: F811
    events = [exposure(f"u{i}", i < 2250, START + timedelta(seconds=i)) for i in range(5000)]
    load(warehouse, events)
    results = compute(_spec(), warehouse, SCHEMA, as_of=START + timedelta(days=1))
    assert results.units == {"control": 2750, "new": 2250}  # 55/45 against 50/50
    assert results.srm.flagged and results.srm.p_value < 0.001


def _points(timeline: Timeline, variation: str) -> list[tuple[str, int, int]]:
    return [(p.at, p.units, p.conversions) for p in timeline.points if p.variation == variation]


def test_timeline_is_cumulative_per_day_in_the_warehouse(warehouse: Warehouse) -> None:  # noqa: F811
    events = [exposure("a", False, START), exposure("b", True, START + timedelta(days=1))]
    events.append(order("a", START + timedelta(days=2)))
    events.append(order("b", START + timedelta(days=9)))
    load(warehouse, events)
    spec = _spec(goals=[{"event": "Order Completed", "window": "7d"}], guardrails=[])
    results = compute(spec, warehouse, SCHEMA, as_of=START + timedelta(days=12))
    timeline = results.timeline
    assert timeline.bucket == "day"
    days = ["2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z", "2026-11-03T00:00:00Z"]
    assert _points(timeline, "control") == [(days[0], 1, 0), (days[1], 1, 0), (days[2], 1, 1)]
    # b's order came after its 7-day window: exposed, never converted.
    assert _points(timeline, "new") == [(days[0], 0, 0), (days[1], 1, 0), (days[2], 1, 0)]
    assert [p.rate for p in timeline.points if p.variation == "control"] == [0.0, 0.0, 1.0]
    assert {p.metric for p in timeline.points} == {"Order Completed"}


def test_a_short_experiment_has_an_hourly_timeline(warehouse: Warehouse) -> None:  # noqa: F811
    events, _ = _simulate(seed=5, users=120)  # exposed a minute apart: two hours
    load(warehouse, events)
    spec = _spec(start=None)
    timeline = compute(spec, warehouse, SCHEMA, as_of=START + timedelta(days=2)).timeline
    assert timeline.bucket == "hour"
    last = {(p.variation, p.metric): p for p in timeline.points}
    full = compute(spec, warehouse, SCHEMA, as_of=START + timedelta(days=2))
    for metric in full.metrics[:4]:  # the goals (the guardrail has no timeline)
        for arm, result in enumerate(metric.variations):
            point = last[result.variation, metric.name]
            assert point.units == full.units[result.variation]
            if metric.type == "conversion":  # the timeline's conversions are the results'
                assert point.conversions == metric.sums[arm]
    hours = sorted({p.at for p in timeline.points})
    assert hours[:3] == ["2026-11-01T00:00:00Z", "2026-11-01T01:00:00Z", "2026-11-01T02:00:00Z"]
