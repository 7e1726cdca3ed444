"""Kameleoon's Segment endpoint as its help article describes it, for a FakeServer:
`POST /segmentio` with the API key and sitecode headers; a track, page or screen event
converts the goal "SegmentIO <type> <en dash> <name>", creating it when there is none; event
data over 1 MB is refused (413) and so is a new goal beyond 50 per 10 s or 1,000 per
60 min (429). Its clock is the test's, so the limits are tested without waiting."""

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.destinations.fake_server import Received, Reply
from trackway import codec

MAX_BYTES = 1024 * 1024
LIMITS = ((50, 10.0), (1_000, 3_600.0))


@dataclass
class FakeKameleoon:
    """Answers like Kameleoon; `goals` maps each goal created to when."""

    api_key: str
    sitecode: str
    clock: Callable[[], float]
    goals: dict[str, float] = field(default_factory=dict)
    conversions: list[str] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)
    """The status of every request refused."""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: Received) -> Reply:
        with self._lock:
            reply = self._answer(request)
            if reply.status >= 300:
                self.refused.append(reply.status)
            return reply

    def _answer(self, request: Received) -> Reply:
        if (request.method, request.path) != ("POST", "/segmentio"):
            return Reply(404, body=b'{"message": "not found"}')
        if request.headers.get("authorization") != f"Basic {self.api_key}" or (
            request.headers.get("x-segment-settings") != self.sitecode
        ):
            return Reply(401, body=b'{"message": "invalid credentials"}')
        if len(request.body) > MAX_BYTES:
            return Reply(413, body=b'{"message": "event data over 1 MB"}')
        event = codec.loads(request.body)
        name = event.get("event") or event.get("name")
        if event["type"] not in ("track", "page", "screen") or not name:
            return Reply(200, body=b"{}")
        goal = f"SegmentIO {event['type']} \u2013 {name}"
        if goal not in self.goals:
            now = self.clock()
            for count, seconds in LIMITS:
                if sum(1 for at in self.goals.values() if at > now - seconds) >= count:
                    return Reply(
                        429,
                        {"Content-Type": "application/json"},
                        b'{"message": "too many goals created"}',
                    )
            self.goals[goal] = now
        self.conversions.append(goal)
        return Reply(200, body=b"{}")
