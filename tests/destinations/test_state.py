"""The delivery bookkeeping, on both backends: cursors, retries, dead letters, counts,
error samples, alerts."""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from trackway.destinations.state import (
    Alert,
    Counts,
    Cursor,
    DeadLetter,
    DeliveryStore,
    ErrorSample,
    Outcome,
    Pending,
    open_delivery_store,
)
from trackway.settings import Settings


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DeliveryStore]:
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    opened = open_delivery_store(Settings(data_dir=tmp_path, database_url=url))
    yield opened
    opened.close()


def _pending(position: int, next_at_ms: int, id: int | None = None) -> Pending:
    return Pending(
        "send", position, 1_000, {"messageId": f"m{position}"}, 1, 1_000, next_at_ms, "500", id
    )


def test_the_cursor_moves_unless_moved_by_hand_or_already_past(store: DeliveryStore) -> None:
    assert store.cursor("hook", 10) == Cursor(10, 0)
    assert store.cursor("hook", 99) == Cursor(10, 0)  # created once
    assert store.record("hook", Outcome(), Cursor(20, 0))
    assert store.cursor("hook", 0) == Cursor(20, 0)
    # a worker that lost its lease finishing late cannot move it back
    assert not store.record("hook", Outcome(), Cursor(15, 0))
    assert store.cursor("hook", 0) == Cursor(20, 0)
    assert store.move_cursor("hook", 5, 7_000) == Cursor(5, 1, 7_000)  # replay, at 7 s
    assert not store.record("hook", Outcome(), Cursor(30, 0))  # an in-flight window
    assert store.cursor("hook", 0) == Cursor(5, 1, 7_000)
    assert store.record("hook", Outcome(), Cursor(6, 1, 7_000))
    assert store.cursor("hook", 0) == Cursor(6, 1, 7_000)  # the replay's time stays


def test_learnt_names_are_kept_once_per_destination(store: DeliveryStore) -> None:
    assert store.names("kam") == {}
    store.record("kam", Outcome(names={"Clicked": 1_000}), None)
    store.record("kam", Outcome(names={"Clicked": 5_000, "B": 6_000}), None)
    store.record("other", Outcome(names={"C": 7_000}), None)
    assert store.names("kam") == {"Clicked": 1_000, "B": 6_000}
    store.retire("kam", 8_000)
    assert store.names("kam") == {} and store.names("other") == {"C": 7_000}


def test_retries_are_due_rescheduled_and_done(store: DeliveryStore) -> None:
    store.record("hook", Outcome(retry=[_pending(1, 5_000), _pending(2, 9_000)]), None)
    store.record("other", Outcome(retry=[_pending(3, 0)]), None)
    assert store.waiting("hook") == 2
    due = store.due("hook", 6_000, 10)
    assert [(p.position, p.event) for p in due] == [(1, {"messageId": "m1"})]
    assert due[0].id is not None
    again = _pending(1, 20_000, due[0].id)
    store.record("hook", Outcome(retry=[again]), None)
    assert [p.position for p in store.due("hook", 10_000, 10)] == [2]
    [second] = store.due("hook", 10_000, 10)
    assert second.id is not None
    store.record("hook", Outcome(done=[second.id]), None)
    assert store.waiting("hook") == 1
    assert [p.next_at_ms for p in store.due("hook", 99_999, 10)] == [20_000]


def test_dead_letters_are_resent_into_the_retry_schedule(store: DeliveryStore) -> None:
    dead = [
        DeadLetter("send", n, 1_000, {"messageId": f"m{n}"}, 3, "exhausted", "500", 2_000)
        for n in (1, 2, 3)
    ]
    store.record("hook", Outcome(dead=dead), None)
    listed = store.dead_letters("hook", 10)
    assert [d.position for d in listed] == [3, 2, 1]
    assert store.dead_letter_count("hook") == 3
    first = listed[-1].id
    assert first is not None
    assert store.resend("hook", [first], 50_000) == 1
    assert [(p.position, p.attempts) for p in store.due("hook", 50_000, 10)] == [(1, 0)]
    assert store.resend("hook", None, 60_000) == 2
    assert store.dead_letter_count("hook") == 0
    assert sorted(p.position for p in store.due("hook", 60_000, 10)) == [1, 2, 3]


def test_counts_of_one_minute_are_added_up(store: DeliveryStore) -> None:
    for latency in (7.0, 300.0):
        counts = Counts(delivered=2, retried=1)
        counts.observe(latency)
        store.record("hook", Outcome(counts={"send": counts, "": Counts(filtered=1)}), None)
    found = store.counts("hook", 0)
    assert found["send"].delivered == 4
    assert found["send"].retried == 2
    assert found[""].filtered == 2
    assert sum(found["send"].latency) == 2
    assert found["send"].percentile(0.5) == 10.0
    assert store.counts("other", 0) == {}


def test_counts_per_minute_add_up_every_action(store: DeliveryStore) -> None:
    store.record(
        "hook", Outcome(counts={"send": Counts(delivered=3), "": Counts(filtered=1)}), None
    )
    store.record("hook", Outcome(counts={"alias": Counts(retried=2)}), None)
    [(minute, counts)] = store.minutes("hook", 0).items()
    assert abs(minute * 60_000 - time.time() * 1000) < 120_000
    assert (counts.delivered, counts.retried, counts.filtered) == (3, 2, 1)
    assert store.minutes("hook", (minute + 1) * 60_000) == {}
    assert store.minutes("other", 0) == {}


def test_only_the_newest_error_samples_are_kept(store: DeliveryStore) -> None:
    for n in range(105):
        sample = ErrorSample(n, "send", "http", f"error {n}", {"n": n}, {"url": "u"}, None)
        store.record("hook", Outcome(errors=[sample]), None)
    errors = store.errors("hook", 1_000)
    assert len(errors) == 100
    assert errors[0].message == "error 104"
    assert errors[0].event == {"n": 104}
    assert errors[0].request == {"url": "u"}


def test_alerts_and_retiring_then_purging_a_deleted_destination(store: DeliveryStore) -> None:
    store.add_alert("hook", Alert(1, "alert", 0.5, 0.2, 10, "no webhook"))
    store.add_alert("hook", Alert(2, "recovery", 0.0, 0.2, 10, "sent (HTTP 200)"))
    assert [a.kind for a in store.alerts("hook", 10)] == ["recovery", "alert"]
    dead = DeadLetter("send", 2, 1_000, {"messageId": "m2"}, 3, "exhausted", "500", 5_000)
    store.record("hook", Outcome(retry=[_pending(1, 0)], dead=[dead]), Cursor(3, 0))
    store.record("other", Outcome(retry=[_pending(7, 0)]), Cursor(9, 0))
    assert store.retire("hook", 9_000) == 2
    assert store.alerts("hook", 10) == []
    assert store.waiting("hook") == 0
    assert store.counts("hook", 0) == {}
    # the event that waited for a retry is kept as a dead letter, readable until purged
    letters = store.dead_letters("hook", 10)
    assert [(d.event["messageId"], d.reason, d.attempts) for d in letters] == [
        ("m1", "deleted", 1),
        ("m2", "exhausted", 3),
    ]
    assert letters[0].failed_at_ms == 9_000
    assert store.cursor("hook", 42) == Cursor(42, 0)
    assert store.waiting("other") == 1  # another destination keeps everything
    assert store.purge("hook") == 2
    assert store.dead_letter_count("hook") == 0
