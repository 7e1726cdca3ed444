"""Kameleoon's limits, against a fake Kameleoon that enforces them: event data over 1 MB
is dead-lettered before it is sent; new goals are paced under 50 per 10 s and 1,000 per
60 min (held, never dropped), and the known goals survive a restart. The clock is
shared by Trackway and the fake, and moved by the test."""

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.destinations.fake_kameleoon import FakeKameleoon
from tests.destinations.fake_server import FakeServer
from tests.destinations.support import Workspace
from tests.support import until
from trackway import codec
from trackway.destinations import config, report
from trackway.destinations.kameleoon import GOAL_LIMITS
from trackway.destinations.pacing import NamePacer

API_KEY = "eyJpZCI6ImNsaWVudCIsInNlY3JldCI6InMifQ=="
SITECODE = "1q2w3e4r5t"


class Clock:
    """The real time, moved on by the test."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture(params=["sqlite", "postgres"])
def workspace(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Workspace]:
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    ws = Workspace(tmp_path, url)
    yield ws
    ws.close()


def goal_event(name: str, **properties: Any) -> dict[str, Any]:
    return {
        "messageId": str(uuid.uuid4()),
        "type": "track",
        "event": name,
        "properties": {"kameleoonVisitorCode": "vc-1", **properties},
        "timestamp": "2026-12-07T10:00:00Z",
    }


def declare(workspace: Workspace, url: str) -> None:
    workspace.apply(
        {
            "name": "kam",
            "type": "kameleoon",
            "settings": {"apiKey": API_KEY, "sitecode": SITECODE, "endpoint": f"{url}/segmentio"},
            "delivery": {"allow_private_addresses": True},
        }
    )


def held_in_view(workspace: Workspace) -> int:
    assert workspace.deliveries is not None
    spec = config.find(workspace.store, "kam")
    view = report.delivery_report(spec, workspace.deliveries.delivery_store, 0, 3600, 0)
    assert "(held by creation limits: " in report.render(view) or not view["held_waiting"]
    return int(view["held_waiting"])


def test_new_goals_wait_for_room_and_known_ones_survive_a_restart(workspace: Workspace) -> None:
    clock = Clock()
    kameleoon = FakeKameleoon(API_KEY, SITECODE, clock)
    with FakeServer(answer=kameleoon) as server:
        declare(workspace, server.url)
        workspace.start(clock=clock)
        workspace.send(*[goal_event(f"Goal {n}") for n in range(60)])
        delivered = until(
            lambda: (workspace.counts("kam").delivered, held_in_view(workspace)), (50, 10)
        )
        assert delivered == (50, 10)  # 10 wait: 50 goals were created in these 10 s
        assert kameleoon.refused == []
        assert workspace.counts("kam").retried == 0  # waiting is not failing

        clock.offset += 10.5
        assert until(lambda: workspace.counts("kam").delivered, 60) == 60
        assert held_in_view(workspace) == 0
        assert len(kameleoon.goals) == 60 and kameleoon.refused == []

        # after a restart, known goals go at once and the 10 s window is still full of
        # the last 10 goals created: 40 new ones go, 5 wait
        assert workspace.deliveries is not None
        workspace.deliveries.stop()
        workspace.start(clock=clock)
        known = [goal_event(f"Goal {n}") for n in range(5)]
        new = [goal_event(f"New goal {n}") for n in range(45)]
        workspace.send(*known, *new)
        assert until(
            lambda: (workspace.counts("kam").delivered, held_in_view(workspace)), (105, 5)
        ) == (105, 5)
        assert kameleoon.refused == []
        assert len(kameleoon.goals) == 100
        clock.offset += 10.5
        assert until(lambda: workspace.counts("kam").delivered, 110) == 110
        assert kameleoon.refused == [] and len(kameleoon.goals) == 105


def test_an_event_over_1_mb_is_dead_lettered_without_being_sent(workspace: Workspace) -> None:
    clock = Clock()
    kameleoon = FakeKameleoon(API_KEY, SITECODE, clock)
    with FakeServer(answer=kameleoon) as server:
        declare(workspace, server.url)
        deliveries = workspace.start(clock=clock)
        big, small = goal_event("Big", blob="x" * (1024 * 1024)), goal_event("Small")
        workspace.send(big, small)
        store = deliveries.delivery_store
        assert until(lambda: store.dead_letter_count("kam"), 1) == 1
        (letter,) = store.dead_letters("kam", 1)
        assert letter.reason == "discarded" and letter.event["messageId"] == big["messageId"]
        assert re.fullmatch(
            r"invalid payload: the event is 1,048,\d{3} bytes;"
            r" Kameleoon accepts at most 1 MB \(1,048,576 bytes\)",
            letter.error,
        ), letter.error
        assert until(lambda: workspace.counts("kam").delivered, 1) == 1
        assert [codec.loads(r.body)["event"] for r in server.requests] == ["Small"]
        assert kameleoon.refused == []


def test_the_pacer_keeps_both_limits_with_an_injected_clock() -> None:
    now = [0.0]
    pacer = NamePacer(GOAL_LIMITS, {}, lambda: now[0])
    for second in range(0, 200, 10):  # 50 new goals every 10 s: 1,000 in 200 s
        now[0] = float(second)
        assert [pacer.admit(f"g{second}-{n}") for n in range(50)] == [0.0] * 50
        # the 51st waits for the 10 s window; after the 1,000th, for the hour's
        over = 10.0 if second < 190 else 3600.0 - second
        assert pacer.admit(f"g{second}-over") == pytest.approx(over)
    now[0] = 200.0
    assert pacer.admit("one more") == pytest.approx(3400.0)  # the hour's first goal at 0 s
    assert pacer.admit("g0-1") == 0.0  # sent already: not new
    assert pacer.learnt("g0-1") and not pacer.learnt("g0-1")
    now[0] = 3600.0
    assert pacer.admit("one more") == 0.0
    # a restart: the known names and when they were learnt
    restarted = NamePacer(GOAL_LIMITS, {"a": 3_595_000, "b": 10_000}, lambda: now[0])
    assert restarted.admit("a") == 0.0
    assert [restarted.admit(f"n{n}") for n in range(49)] == [0.0] * 49
    assert restarted.admit("n49") == pytest.approx(5.0)  # "a" fills the window until 3605 s
