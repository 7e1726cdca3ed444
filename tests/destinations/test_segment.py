"""Segment: the tracking API's requests, and a batch delivered to a real Trackway."""

import base64
import json
from typing import Any

import pytest

from tests.support import Server, until
from trackway import fql
from trackway.destinations.framework import Discard, check_settings, validate_payload
from trackway.destinations.http import HttpTransport
from trackway.destinations.segment import DEFINITION
from trackway.destinations.transport import Request
from trackway.mapping import compile_mapping

SEND = DEFINITION.action("send")
SETTINGS = check_settings(DEFINITION, {"write_key": "wk-123"})
BASIC = "Basic " + base64.b64encode(b"wk-123:").decode()

# A stored event: the server-side fields are set again by the receiving side.
STORED = {
    "messageId": "fwd-1",
    "type": "track",
    "userId": "user-1",
    "event": "Order Completed",
    "properties": {"total": 30},
    "context": {"library": {"name": "analytics-python", "version": "2.3.3"}},
    "integrations": {},
    "timestamp": "2026-08-01T10:00:00.5Z",
    "originalTimestamp": "2026-08-01T09:59:58Z",
    "sentAt": "2026-08-01T09:59:59Z",
    "receivedAt": "2026-08-01T10:00:01.5Z",
}
FORWARDED = {
    key: value
    for key, value in STORED.items()
    if key not in ("originalTimestamp", "sentAt", "receivedAt")
}


def payload(event: dict[str, Any]) -> dict[str, Any]:
    return validate_payload(SEND, compile_mapping(SEND.default_mapping()).apply(event))


def test_one_event_goes_to_its_type_s_endpoint() -> None:
    request = SEND.perform(payload({**STORED, "writeKey": "leaked"}), SETTINGS)
    assert (request.method, request.url) == ("POST", "https://api.segment.io/v1/track")
    assert request.headers == {"content-type": "application/json", "authorization": BASIC}
    assert json.loads(request.body) == FORWARDED


@pytest.mark.parametrize("kind", ["identify", "page", "screen", "group", "alias"])
def test_every_call_type(kind: str) -> None:
    settings = check_settings(
        DEFINITION, {"write_key": "wk-123", "data_plane_url": "https://eu.example/"}
    )
    request = SEND.perform(payload({**STORED, "type": kind}), settings)
    assert request.url == f"https://eu.example/v1/{kind}"


def test_an_unknown_type_is_discarded() -> None:
    with pytest.raises(Discard, match="must be one of"):
        payload({**STORED, "type": "purchase"})


def test_the_preset_forwards_every_call() -> None:
    (preset,) = DEFINITION.presets
    subscription = fql.compile(preset.subscription)
    assert all(
        subscription.matches({"type": kind})
        for kind in ("track", "identify", "page", "screen", "group", "alias")
    )
    assert not subscription.matches({"type": "purchase"})


def test_a_batch() -> None:
    events = [{**STORED, "messageId": f"fwd-{n}"} for n in range(3)]
    assert SEND.perform_batch is not None
    request = SEND.perform_batch([payload(e) for e in events], SETTINGS)
    assert (request.method, request.url) == ("POST", "https://api.segment.io/v1/batch")
    assert request.headers == {"content-type": "application/json", "authorization": BASIC}
    assert json.loads(request.body) == {
        "batch": [{**FORWARDED, "messageId": f"fwd-{n}"} for n in range(3)]
    }


def test_authentication_sends_an_empty_batch() -> None:
    assert DEFINITION.authentication is not None
    assert DEFINITION.authentication(SETTINGS) == Request(
        "POST",
        "https://api.segment.io/v1/batch",
        {"content-type": "application/json", "authorization": BASIC},
        b'{"batch":[]}',
    )


def test_forwarded_to_a_real_trackway(server: Server) -> None:
    settings = check_settings(
        DEFINITION, {"write_key": server.write_key, "data_plane_url": server.url}
    )
    events = [
        {**STORED, "messageId": "fwd-a"},
        {
            "messageId": "fwd-b",
            "type": "identify",
            "userId": "user-1",
            "traits": {"plan": "pro"},
            "timestamp": "2026-08-01T10:00:02Z",
            "receivedAt": "2026-08-01T10:00:03Z",
        },
    ]
    transport = HttpTransport(allow_private=True)
    try:
        assert DEFINITION.authentication is not None
        check = DEFINITION.authentication(settings)
        assert check is not None
        assert transport.send(check).status == 200
        assert SEND.perform_batch is not None
        request = SEND.perform_batch([payload(e) for e in events], settings)
        response = transport.send(request)
        assert response.status == 200, response.body
        # sent twice (as a retry would): the receiving side keeps one of each
        assert transport.send(request).status == 200
    finally:
        transport.close()
    stored = until(lambda: len(server.events()), 2)
    assert stored == 2
    by_id = {event["messageId"]: event for event in server.events()}
    assert set(by_id) == {"fwd-a", "fwd-b"}
    # the timestamp arrives as it was stored: no second clock-skew correction
    assert by_id["fwd-a"]["timestamp"] == "2026-08-01T10:00:00.500000Z"
    assert by_id["fwd-b"]["traits"] == {"plan": "pro"}
    listed = {record["messageId"] for record in server.records() if "messageId" in record}
    assert {"fwd-a", "fwd-b"} <= listed
