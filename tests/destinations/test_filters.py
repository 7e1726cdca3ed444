"""Destination filters: each action, Segment's order, sampling, fail-closed, validation."""

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from trackway.destinations.filters import (
    MAX_FILTERS,
    DropReason,
    FilterError,
    FilterOutcome,
    compile_filters,
)

ORDER: dict[str, Any] = {
    "type": "track",
    "event": "Order Completed",
    "userId": "user-1",
    "properties": {"total": 30, "email": "ann@example.com", "sku": "A", "note": "x"},
    "context": {"ip": "203.0.113.9", "traits": {"email": "ann@example.com", "plan": "pro"}},
}
DROP = {"type": "drop"}


def run(filters: list[dict[str, Any]], event: Any = ORDER, **options: Any) -> FilterOutcome:
    return compile_filters(filters, **options).apply(event)


def never(_: object = None) -> float:
    raise AssertionError("random sampling was not expected here")


def test_no_filters_keep_the_event_as_is() -> None:
    outcome = run([])
    assert outcome == FilterOutcome(ORDER)
    assert outcome.event is ORDER


def test_drop_drops_the_events_its_condition_matches() -> None:
    filters = [{"if": 'event = "Order Completed"', "actions": [DROP], "name": "no orders"}]
    assert run(filters) == FilterOutcome(None, DropReason.DROPPED, "filter 'no orders'")
    assert run(filters, {**ORDER, "event": "Signed Up"}).event == {**ORDER, "event": "Signed Up"}


def test_all_matches_every_event() -> None:
    assert run([{"if": "all", "actions": [DROP]}]) == FilterOutcome(
        None, DropReason.DROPPED, "filters[0]"
    )


def test_only_send_is_a_drop_of_the_rest() -> None:
    only_orders = [{"if": '!(event = "Order Completed")', "actions": [DROP]}]
    assert run(only_orders).event == ORDER
    assert run(only_orders, {**ORDER, "event": "Signed Up"}).reason is DropReason.DROPPED


def test_drop_properties_removes_keys_at_each_path() -> None:
    fields = {"": ["userId"], "properties": ["email", "absent"], "context.traits": ["email"]}
    outcome = run([{"if": "all", "actions": [{"type": "drop_properties", "fields": fields}]}])
    assert outcome.event == {
        "type": "track",
        "event": "Order Completed",
        "properties": {"total": 30, "sku": "A", "note": "x"},
        "context": {"ip": "203.0.113.9", "traits": {"plan": "pro"}},
    }


def test_allow_properties_keeps_only_the_named_keys() -> None:
    fields = {"properties": ["total", "sku"], "context": ["traits"], "traits": ["x"]}
    outcome = run([{"if": "all", "actions": [{"type": "allow_properties", "fields": fields}]}])
    assert outcome.event == {
        **ORDER,
        "properties": {"total": 30, "sku": "A"},
        "context": {"traits": {"email": "ann@example.com", "plan": "pro"}},
    }


def test_allow_properties_with_no_names_empties_the_object() -> None:
    fields: dict[str, list[str]] = {"context": []}
    outcome = run([{"if": "all", "actions": [{"type": "allow_properties", "fields": fields}]}])
    assert outcome.event == {**ORDER, "context": {}}


def test_allow_properties_at_the_top_level() -> None:
    fields = {"": ["type", "event"]}
    outcome = run([{"if": "all", "actions": [{"type": "allow_properties", "fields": fields}]}])
    assert outcome.event == {"type": "track", "event": "Order Completed"}


def test_the_event_passed_in_is_never_changed() -> None:
    before = repr(ORDER)
    fields = {"properties": ["email"], "context.traits": ["email"], "": ["userId"]}
    filters = [
        {"if": "all", "actions": [{"type": "drop_properties", "fields": fields}]},
        {"if": "all", "actions": [{"type": "allow_properties", "fields": {"properties": ["sku"]}}]},
    ]
    outcome = run(filters)
    assert outcome.event is not None
    assert outcome.event["properties"] == {"sku": "A"}
    assert repr(ORDER) == before


def test_sample_runs_before_drop_whatever_the_order_of_the_filters() -> None:
    drawn: list[bool] = []

    def rng() -> float:
        drawn.append(True)
        return 0.99

    filters = [
        {"if": "all", "actions": [DROP]},
        {"if": "all", "actions": [{"type": "sample", "percent": 0.5}]},
    ]
    assert run(filters, rng=rng) == FilterOutcome(None, DropReason.SAMPLED_OUT, "filters[1]")
    assert drawn == [True]


def test_drop_runs_before_property_edits() -> None:
    filters = [
        {"if": "all", "actions": [{"type": "drop_properties", "fields": {"": ["event"]}}]},
        {"if": 'event = "Order Completed"', "actions": [DROP]},
    ]
    assert run(filters).reason is DropReason.DROPPED


def test_drop_properties_runs_before_allow_properties() -> None:
    filters = [
        {
            "if": "all",
            "actions": [{"type": "allow_properties", "fields": {"properties": ["sku", "note"]}}],
        },
        {
            "if": "all",
            "actions": [{"type": "drop_properties", "fields": {"properties": ["sku", "total"]}}],
        },
    ]
    outcome = run(filters)
    assert outcome.event is not None
    assert outcome.event["properties"] == {"note": "x"}


def test_conditions_test_the_event_as_it_arrived() -> None:
    # The second filter applies although the first one removes the field it tests.
    filters = [
        {"if": "all", "actions": [{"type": "drop_properties", "fields": {"properties": ["sku"]}}]},
        {
            "if": 'properties.sku = "A"',
            "actions": [{"type": "drop_properties", "fields": {"properties": ["note"]}}],
        },
    ]
    outcome = run(filters)
    assert outcome.event is not None
    assert outcome.event["properties"] == {"total": 30, "email": "ann@example.com"}


def test_a_filter_whose_condition_does_not_match_does_nothing() -> None:
    filters: list[dict[str, Any]] = [
        {"if": "properties.total > 100", "actions": [{"type": "sample", "percent": 0}, DROP]},
        {"if": 'type = "identify"', "actions": [{"type": "allow_properties", "fields": {"": []}}]},
    ]
    assert run(filters, rng=never) == FilterOutcome(ORDER)


def test_one_filter_may_have_several_actions() -> None:
    filters = [
        {
            "if": "all",
            "actions": [
                {"type": "drop_properties", "fields": {"properties": ["email"]}},
                {"type": "sample", "percent": 1},
                {"type": "allow_properties", "fields": {"": ["type", "properties"]}},
            ],
        }
    ]
    outcome = run(filters, rng=lambda: 0.5)
    assert outcome.event == {"type": "track", "properties": {"total": 30, "sku": "A", "note": "x"}}


@pytest.mark.parametrize(("percent", "draw", "kept"), [(0.5, 0.49, True), (0.5, 0.5, False)])
def test_random_sampling_keeps_draws_below_percent(percent: float, draw: float, kept: bool) -> None:
    outcome = run(
        [{"if": "all", "actions": [{"type": "sample", "percent": percent}]}], rng=lambda: draw
    )
    assert (outcome.event is not None) is kept


@pytest.mark.parametrize(("percent", "kept"), [(0, 0), (1, 1000)])
def test_sampling_at_zero_and_one(percent: float, kept: int) -> None:
    chain = compile_filters([{"if": "all", "actions": [{"type": "sample", "percent": percent}]}])
    assert sum(chain.apply(ORDER).event is not None for _ in range(1000)) == kept


def _sample_by_user(percent: float) -> list[str]:
    """The user ids (of 5,000) a deterministic sample keeps."""
    action = {"type": "sample", "percent": percent, "path": "userId"}
    chain = compile_filters([{"if": "all", "actions": [action]}], rng=never)
    ids = [f"user-{n}" for n in range(5000)]
    return [i for i in ids if chain.apply({"type": "track", "userId": i}).event is not None]


def test_deterministic_sampling_keeps_about_percent_of_the_values() -> None:
    assert 1350 <= len(_sample_by_user(0.3)) <= 1650


def test_deterministic_sampling_keeps_the_same_values_every_time() -> None:
    assert _sample_by_user(0.3) == _sample_by_user(0.3)
    # a larger sample holds the smaller one: raising percent only adds users
    assert set(_sample_by_user(0.1)) <= set(_sample_by_user(0.3))


def test_deterministic_sampling_is_the_same_in_another_process() -> None:
    code = (
        "from tests.destinations.test_filters import _sample_by_user;"
        "print(','.join(_sample_by_user(0.2)))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert other.stdout.strip().split(",") == _sample_by_user(0.2)


def test_deterministic_sampling_hashes_nested_and_missing_values() -> None:
    action = {"type": "sample", "percent": 0.5, "path": "properties.cart.id"}
    chain = compile_filters([{"if": "all", "actions": [action]}], rng=never)
    decisions = {
        chain.apply({"properties": {"cart": {"id": n}}}).event is not None for n in range(50)
    }
    assert decisions == {True, False}
    # every event without the value gets the same decision
    assert len({chain.apply({"n": n}).event is None for n in range(20)}) == 1


def test_a_condition_that_cannot_be_evaluated_drops_the_event() -> None:
    event = {"type": "track", "timestamp": datetime(2026, 1, 1, tzinfo=UTC)}
    filters = [
        {"if": "all", "actions": [{"type": "drop_properties", "fields": {"": ["x"]}}]},
        {
            "if": "timestamp != null",
            "actions": [{"type": "drop_properties", "fields": {"": ["y"]}}],
        },
    ]
    outcome = run(filters, event)
    assert outcome.event is None
    assert outcome.reason is DropReason.UNEVALUABLE
    assert outcome.detail == "filters[1]: timestamp holds a datetime, not JSON"


@pytest.mark.parametrize("condition", ['type = "track"', "all"])
def test_an_event_that_is_not_an_object_is_dropped_as_unevaluable(condition: str) -> None:
    trim = {"type": "drop_properties", "fields": {"": ["x"]}}
    outcome = run([{"if": condition, "actions": [trim]}], ["not", "an", "event"])
    assert outcome == FilterOutcome(
        None, DropReason.UNEVALUABLE, "the event is a list, not an object"
    )


def test_ten_filters_is_the_limit() -> None:
    assert MAX_FILTERS == 10
    compile_filters([{"if": "all", "actions": [DROP]}] * 10)
    with pytest.raises(FilterError, match="a destination has at most 10 filters, got 11"):
        compile_filters([{"if": "all", "actions": [DROP]}] * 11)


@pytest.mark.parametrize(
    ("filters", "error"),
    [
        ({"if": "all"}, "filters must be a list, got dict"),
        ([{"actions": [DROP]}], "Object missing required field `if` - at `filters[0]`"),
        (
            [{"if": "all", "actions": [DROP], "when": 1}],
            "Object contains unknown field `when` - at `filters[0]`",
        ),
        (
            [{"if": "all", "actions": [{"type": "dorp"}]}],
            "Invalid value 'dorp' - at `filters[0].actions[0].type`",
        ),
        (
            [{"if": "all", "actions": [{"type": "sample"}]}],
            "Object missing required field `percent` - at `filters[0].actions[0]`",
        ),
        (
            [{"if": "all", "actions": [{"type": "drop", "x": 1}]}],
            "Object contains unknown field `x` - at `filters[0].actions[0]`",
        ),
        ([{"if": "all"}], "filters[0]: a filter needs at least one action"),
        (
            [{"if": "all", "actions": [{"type": "sample", "percent": 25}]}],
            "filters[0]: sample percent is a fraction from 0 to 1"
            " (0.25 keeps a quarter of the events), got 25.0",
        ),
        (
            [{"if": "all", "actions": [{"type": "sample", "percent": -0.1}]}],
            "filters[0]: sample percent is a fraction",
        ),
        (
            [{"if": "all", "actions": [{"type": "sample", "percent": 0.1, "path": "a..b"}]}],
            "filters[0]: invalid path 'a..b'",
        ),
        (
            [{"if": "all", "actions": [{"type": "drop_properties", "fields": {}}]}],
            "filters[0]: drop_properties needs at least one entry in fields",
        ),
        (
            [{"if": "all", "actions": [{"type": "allow_properties", "fields": {}}]}],
            "filters[0]: allow_properties needs at least one entry in fields",
        ),
        (
            [{"if": "all", "actions": [{"type": "drop_properties", "fields": {"properties": []}}]}],
            "filters[0]: drop_properties needs the names to drop at each path",
        ),
        (
            [
                {
                    "if": "all",
                    "actions": [{"type": "drop_properties", "fields": {"properties": [""]}}],
                }
            ],
            "filters[0]: a property name must not be empty",
        ),
        (
            [{"if": "all", "actions": [{"type": "drop_properties", "fields": {".x": ["a"]}}]}],
            "filters[0]: invalid path '.x'",
        ),
        (
            [{"if": "all", "actions": [DROP]}, {"if": "", "actions": [DROP]}],
            "filters[1]: if: empty expression",
        ),
        (
            [{"if": 'evnt = "x"', "actions": [DROP], "name": "typo"}],
            "filter 'typo': if: unknown field 'evnt'",
        ),
    ],
)
def test_invalid_filters_are_refused(filters: Any, error: str) -> None:
    with pytest.raises(FilterError) as caught:
        compile_filters(filters)
    assert str(caught.value).startswith(error)


def test_a_bad_condition_is_reported_with_its_position() -> None:
    with pytest.raises(FilterError) as caught:
        compile_filters([{"if": 'type = "track" and properties.total >', "actions": [DROP]}])
    assert str(caught.value).splitlines() == [
        "filters[0]: if: expected a value after '>', found the end of the expression at column 37",
        '  type = "track" and properties.total >',
        "                                       ^",
    ]


def test_the_documented_example() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "fql-and-mappings.md").read_text()
    blocks = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", doc, re.DOTALL)]
    (example,) = [block for block in blocks if "filters" in block]
    assert run(example["filters"], example["event"]).event == example["result"]
