"""Destination workers against real HTTP servers on 127.0.0.1: fan-out from the log,
batching, isolation, retries, dead letters, replay."""

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.destinations.fake_server import CLOSE, HANG, FakeServer, Reply
from tests.destinations.support import BATCHED, Workspace, received_ids, track, webhook
from tests.support import until
from trackway import __version__


@pytest.fixture(params=["sqlite", "postgres"])
def workspace(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Workspace]:
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    ws = Workspace(tmp_path, url)
    yield ws
    ws.close()


@pytest.fixture
def sink() -> Iterator[FakeServer]:
    with FakeServer() as server:
        yield server


def test_a_webhook_sends_one_event_per_request_by_default(
    workspace: Workspace, sink: FakeServer
) -> None:
    """As Segment's Webhook (Actions): a receiver gets one JSON object per request."""
    workspace.apply(webhook("hook", sink.url))
    workspace.start()
    events = [track() for _ in range(5)]
    workspace.send(*events)
    assert until(lambda: len(sink.requests), 5) == 5
    bodies = [json.loads(request.body) for request in sink.requests]
    assert all(isinstance(body, dict) for body in bodies)
    assert sorted(b["messageId"] for b in bodies) == sorted(e["messageId"] for e in events)
    assert {request.headers["user-agent"] for request in sink.requests} == {
        f"Trackway/{__version__}"
    }


def test_events_are_delivered_in_batches(workspace: Workspace, sink: FakeServer) -> None:
    workspace.apply(webhook("hook", sink.url, subscriptions=BATCHED, delivery={"batch_size": 100}))
    workspace.start()
    events = [track() for _ in range(250)]
    for start in range(0, 250, 50):
        workspace.send(*events[start : start + 50])
    ids = until(lambda: sorted(received_ids(sink.requests)), sorted(e["messageId"] for e in events))
    assert ids == sorted(e["messageId"] for e in events)
    assert all(request.body.startswith(b"[") for request in sink.requests)
    assert max(len(received_ids([r])) for r in sink.requests) <= 100
    assert until(lambda: workspace.counts("hook").delivered, 250) == 250


def test_a_new_destination_starts_at_the_end_of_the_log(
    workspace: Workspace, sink: FakeServer
) -> None:
    workspace.send(track(event="Before"))
    workspace.apply(
        webhook(
            "hook",
            sink.url,
            subscriptions=[{"name": "all", "action": "send", "if": "all", "batch": False}],
        )
    )
    workspace.start()
    after = track(event="After")
    workspace.send(after)
    assert until(lambda: len(sink.requests), 1) == 1
    assert received_ids(sink.requests) == [after["messageId"]]


def test_a_hanging_destination_does_not_hold_up_another(workspace: Workspace) -> None:
    with FakeServer() as hanging, FakeServer() as healthy:
        hanging.reply(*[HANG] * 50)
        workspace.apply(
            webhook("slow", hanging.url, delivery={"timeout": "60s", "batch_size": 10}),
            webhook("fast", healthy.url, delivery={"batch_size": 10}),
        )
        workspace.start()
        events = [track() for _ in range(40)]
        for event in events:
            workspace.send(event)  # ingestion goes on while "slow" hangs
        assert until(lambda: len(received_ids(healthy.requests)), 40, seconds=20) == 40
        assert sorted(received_ids(healthy.requests)) == sorted(e["messageId"] for e in events)
        # "slow" is still waiting on its first requests: nothing delivered, nothing lost
        assert workspace.counts("slow").delivered == 0
        assert 1 <= len(hanging.requests) <= 4


def test_retries_honour_retry_after_then_deliver(workspace: Workspace, sink: FakeServer) -> None:
    sink.reply(Reply(500, body=b"boom"), Reply(429, {"Retry-After": "2"}), CLOSE)
    workspace.apply(
        webhook(
            "hook",
            sink.url,
            subscriptions=[{"name": "all", "action": "send", "if": "all", "batch": False}],
        )
    )
    workspace.start()
    event = track()
    workspace.send(event)
    assert until(lambda: workspace.counts("hook").delivered, 1, seconds=30) == 1
    assert received_ids(sink.requests) == [event["messageId"]] * 4
    counts = workspace.counts("hook")
    assert (counts.delivered, counts.retried, counts.discarded) == (1, 3, 0)
    store = workspace.deliveries.delivery_store  # type: ignore[union-attr]
    assert store.waiting("hook") == 0
    errors = store.errors("hook", 10)
    assert [e.kind for e in errors] == ["connection", "HTTP 429", "HTTP 500"]
    assert errors[-1].response["body"] == "boom"
    assert errors[-1].request["body"].startswith("{")
    assert errors[-1].event["messageId"] == event["messageId"]


def test_a_4xx_is_discarded_into_the_dead_letters_and_can_be_resent(
    workspace: Workspace, sink: FakeServer
) -> None:
    sink.reply(Reply(400, body=b'{"error": "bad"}'))
    workspace.apply(webhook("hook", sink.url))
    deliveries = workspace.start()
    event = track()
    workspace.send(event)
    store = deliveries.delivery_store
    assert until(lambda: store.dead_letter_count("hook"), 1) == 1
    (letter,) = store.dead_letters("hook", 10)
    assert (letter.reason, letter.error, letter.attempts) == ("discarded", "HTTP 400", 1)
    assert letter.event["messageId"] == event["messageId"]
    assert len(sink.requests) == 1  # not retried
    assert store.resend("hook", None, int(time.time() * 1000)) == 1
    assert until(lambda: workspace.counts("hook").delivered, 1) == 1
    assert received_ids(sink.requests) == [event["messageId"]] * 2
    assert store.dead_letter_count("hook") == 0


def test_retries_end_in_the_dead_letters(workspace: Workspace, sink: FakeServer) -> None:
    sink.reply(*[Reply(503)] * 10)
    workspace.apply(webhook("hook", sink.url, delivery={"retry_for": "1s"}))
    deliveries = workspace.start()
    workspace.send(track())
    store = deliveries.delivery_store
    assert until(lambda: store.dead_letter_count("hook"), 1, seconds=20) == 1
    (letter,) = store.dead_letters("hook", 1)
    assert letter.reason == "exhausted"
    assert store.waiting("hook") == 0


def test_connection_refused_then_the_server_comes_back(workspace: Workspace) -> None:
    with FakeServer() as first:
        port = first.port
    workspace.apply(webhook("hook", f"http://127.0.0.1:{port}"))
    workspace.start()
    event = track()
    workspace.send(event)
    store = workspace.deliveries.delivery_store  # type: ignore[union-attr]
    assert until(lambda: store.waiting("hook"), 1) == 1
    assert store.errors("hook", 1)[0].kind == "connection"
    with FakeServer(port=port) as back:
        assert until(lambda: workspace.counts("hook").delivered, 1, seconds=30) == 1
        assert received_ids(back.requests) == [event["messageId"]]


def test_a_request_the_action_cannot_build_is_discarded(
    workspace: Workspace, sink: FakeServer
) -> None:
    """A header value with a line break: that event is a dead letter, the others go."""
    mapping = {
        "method": "POST",
        "data": {"@path": "$"},
        "headers": {"X-Note": {"@path": "$.event"}},
    }
    workspace.apply(
        webhook(
            "hook",
            sink.url,
            subscriptions=[{"name": "all", "action": "send", "if": "all", "mapping": mapping}],
        )
    )
    deliveries = workspace.start()
    bad, good = track(event="two\nlines"), track(event="fine")
    workspace.send(bad, good)
    store = deliveries.delivery_store
    assert until(lambda: store.dead_letter_count("hook"), 1) == 1
    (letter,) = store.dead_letters("hook", 1)
    assert letter.event["messageId"] == bad["messageId"]
    assert letter.error == (
        "invalid payload: The value of header 'X-Note' must be a string of printable ASCII"
        " characters."
    )
    assert until(lambda: received_ids(sink.requests), [good["messageId"]]) == [good["messageId"]]


def test_private_addresses_are_refused_unless_allowed(
    workspace: Workspace, sink: FakeServer
) -> None:
    workspace.apply(webhook("hook", sink.url, delivery={"allow_private_addresses": False}))
    deliveries = workspace.start()
    workspace.send(track())
    store = deliveries.delivery_store
    assert until(lambda: store.dead_letter_count("hook"), 1) == 1
    assert store.dead_letters("hook", 1)[0].error == (
        "blocked: 127.0.0.1 is a loopback address;"
        " set delivery.allow_private_addresses: true on destination 'hook' to allow it"
    )
    assert sink.requests == []


def test_integrations_turn_a_destination_off(workspace: Workspace, sink: FakeServer) -> None:
    workspace.apply(webhook("hook", sink.url))
    workspace.start()
    off = track(integrations={"All": False})
    off_by_name = track(integrations={"Webhook": False})
    on = track(integrations={"All": False, "hook": True})
    workspace.send(off, off_by_name, on)
    assert until(lambda: workspace.counts("hook").skipped, 2) == 2
    assert until(lambda: workspace.counts("hook").delivered, 1) == 1
    assert received_ids(sink.requests) == [on["messageId"]]


def test_filters_and_unmatched_events_are_counted(workspace: Workspace, sink: FakeServer) -> None:
    workspace.apply(
        webhook(
            "hook",
            sink.url,
            filters=[{"if": 'event = "Spam"', "actions": [{"type": "drop"}]}],
            subscriptions=[{"name": "tracks", "action": "send", "if": 'type = "track"'}],
        )
    )
    workspace.start()
    kept = track()
    workspace.send(kept, track(event="Spam"), {**track(), "type": "identify"})
    assert until(lambda: workspace.counts("hook").delivered, 1) == 1
    counts = until(
        lambda: (workspace.counts("hook").filtered, workspace.counts("hook").unsubscribed), (1, 1)
    )
    assert counts == (1, 1)
    assert received_ids(sink.requests) == [kept["messageId"]]


def test_replay_delivers_the_log_again(workspace: Workspace, sink: FakeServer) -> None:
    workspace.apply(webhook("hook", sink.url))
    deliveries = workspace.start()
    events = [track() for _ in range(5)]
    workspace.send(*events)
    assert until(lambda: workspace.counts("hook").delivered, 5) == 5
    deliveries.delivery_store.move_cursor("hook", 0, int(time.time() * 1000))
    assert until(lambda: workspace.counts("hook").delivered, 10) == 10
    ids = received_ids(sink.requests)
    assert sorted(ids) == sorted([e["messageId"] for e in events] * 2)


def test_a_replay_of_old_events_counts_latency_from_the_replay(
    workspace: Workspace, sink: FakeServer
) -> None:
    two_hours_ago = int(time.time() * 1000) - 2 * 3600 * 1000
    workspace.send(*[track() for _ in range(20)], received_at_ms=two_hours_ago)
    workspace.apply(webhook("hook", sink.url))  # starts after them
    deliveries = workspace.start()
    deliveries.delivery_store.move_cursor("hook", 0, int(time.time() * 1000))
    assert until(lambda: workspace.counts("hook").delivered, 20) == 20
    p95 = workspace.counts("hook").percentile(0.95)
    assert p95 is not None and p95 <= 5_000, p95  # not two hours


FUNCTION = """
def transform(event, settings):
    if event["event"] == "Drop me":
        return None
    if event["event"] == "Boom":
        return 1 / 0
    if event["event"] == "Split":
        return [dict(event, messageId=event["messageId"] + "-" + str(i)) for i in range(2)]
    event["properties"]["tag"] = settings["tag"]
    return event
"""


def test_the_insert_function_changes_drops_splits_and_fails_events(
    workspace: Workspace, sink: FakeServer
) -> None:
    workspace.apply(
        webhook(
            "hook",
            sink.url,
            function=FUNCTION,
            function_settings={"tag": "from-settings"},
            subscriptions=[{"name": "tracks", "action": "send", "if": 'event != "Skipped"'}],
        )
    )
    deliveries = workspace.start()
    changed, dropped, boom, split = (
        track(),
        track(event="Drop me"),
        track(event="Boom"),
        track(event="Split"),
    )
    workspace.send(changed, dropped, boom, split)
    wanted = sorted([changed["messageId"], split["messageId"] + "-0", split["messageId"] + "-1"])
    assert until(lambda: sorted(received_ids(sink.requests)), wanted) == wanted
    bodies = [json.loads(r.body) for r in sink.requests]
    assert next(e for e in bodies if e["messageId"] == changed["messageId"])["properties"] == {
        "total": 10,
        "tag": "from-settings",
    }
    store = deliveries.delivery_store
    assert until(lambda: store.dead_letter_count("hook"), 1) == 1
    (letter,) = store.dead_letters("hook", 1)
    assert letter.reason == "discarded"
    assert "ZeroDivisionError: division by zero" in letter.error
    assert letter.event["messageId"] == boom["messageId"]
    counts = workspace.counts("hook")
    assert (counts.delivered, counts.filtered, counts.discarded) == (2, 1, 1)


def test_an_alert_and_a_recovery_are_posted_to_the_webhook(
    workspace: Workspace, sink: FakeServer
) -> None:
    with FakeServer() as alerts:
        sink.reply(*[Reply(400)] * 5)
        workspace.apply(
            webhook(
                "hook",
                sink.url,
                subscriptions=[{"name": "all", "action": "send", "if": "all", "batch": False}],
                alerts={"threshold": 0.5, "window": "1h", "min_attempts": 3, "webhook": alerts.url},
            )
        )
        deliveries = workspace.start()
        workspace.send(*[track() for _ in range(5)])
        assert until(lambda: len(alerts.requests), 1, seconds=20) == 1
        alert = json.loads(alerts.requests[0].body)
        assert (alert["type"], alert["destination"], alert["rate"]) == (
            "destination.alert",
            "hook",
            0.0,
        )
        workspace.send(*[track() for _ in range(20)])  # answered 200: the rate climbs to 0.8
        assert until(lambda: len(alerts.requests), 2, seconds=20) == 2
        recovery = json.loads(alerts.requests[1].body)
        assert recovery["type"] == "destination.recovery" and recovery["rate"] == 0.8
        kinds = [a.kind for a in deliveries.delivery_store.alerts("hook", 10)]
        assert kinds == ["recovery", "alert"]
        assert deliveries.delivery_store.alerts("hook", 1)[0].notified == "sent (HTTP 200)"


def test_a_deleted_destination_s_worker_stops_and_its_retries_become_dead_letters(
    workspace: Workspace,
) -> None:
    with FakeServer() as first:
        port = first.port  # closed from now on: every attempt fails and is retried
    workspace.apply(webhook("hook", f"http://127.0.0.1:{port}"))
    deliveries = workspace.start()
    event = track()
    workspace.send(event)
    store = deliveries.delivery_store
    assert until(lambda: store.waiting("hook"), 1) == 1
    # as if deleted by another process while the worker still ran a window
    workspace.store.delete_object("destination", "hook")
    assert until(lambda: store.dead_letter_count("hook"), 1) == 1
    assert "hook" not in deliveries.running
    (letter,) = store.dead_letters("hook", 1)
    assert (letter.reason, letter.event["messageId"]) == ("deleted", event["messageId"])
    assert store.waiting("hook") == 0
