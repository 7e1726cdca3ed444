"""Kameleoon, byte for byte against the reference wire format (headers, body, presets)."""

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.destinations.fake_server import FakeServer, Reply
from trackway import fql
from trackway.destinations.framework import (
    Discard,
    InvalidSettings,
    SettingType,
    check_settings,
    validate_payload,
)
from trackway.destinations.http import HttpTransport
from trackway.destinations.kameleoon import BASE_URL, DEFINITION
from trackway.destinations.registry import definition
from trackway.destinations.transport import Request
from trackway.mapping import compile_mapping

API_KEY = base64.b64encode(b'{"id":"CLIENT_ID","secret":"CLIENT_SECRET"}').decode()
SITECODE = "1q2w3e4r5t"
SETTINGS = {"apiKey": API_KEY, "sitecode": SITECODE}

CONTEXT = {"library": {"name": "analytics.js", "version": "3.0.0"}, "page": {"path": "/cart"}}
# Events as Trackway stores them (server-side fields included).
TRACK = {
    "messageId": "msg-track-1",
    "type": "track",
    "userId": "user-1",
    "anonymousId": "anon-1",
    "event": "Clicked on Checkout",
    "properties": {"kameleoonVisitorCode": "vc-123", "price": 9.5},
    "context": CONTEXT,
    "integrations": {},
    "timestamp": "2026-08-01T10:00:00.123Z",
    "originalTimestamp": "2026-08-01T10:00:00.100Z",
    "sentAt": "2026-08-01T10:00:01.000Z",
    "receivedAt": "2026-08-01T10:00:01.023Z",
}
PAGE = {
    "messageId": "msg-page-1",
    "type": "page",
    "anonymousId": "anon-1",
    "name": "Cart",
    "properties": {"url": "https://shop.example/cart", "kameleoonVisitorCode": "vc-123"},
    "context": CONTEXT,
    "integrations": {},
    "timestamp": "2026-08-01T10:00:02Z",
    "receivedAt": "2026-08-01T10:00:02Z",
}
IDENTIFY = {
    "messageId": "msg-identify-1",
    "type": "identify",
    "userId": "user-1",
    "traits": {"email": "ann@example.com", "plan": "pro", "kameleoonVisitorCode": "vc-123"},
    "context": CONTEXT,
    "integrations": {},
    "timestamp": "2026-08-01T10:00:03Z",
    "receivedAt": "2026-08-01T10:00:03Z",
}
GROUP = {
    "messageId": "msg-group-1",
    "type": "group",
    "userId": "user-1",
    "anonymousId": "anon-1",
    "groupId": "acme",
    "traits": {"name": "Acme Inc", "employees": 42},
    "context": CONTEXT,
    "integrations": {},
    "timestamp": "2026-08-01T10:00:04Z",
    "receivedAt": "2026-08-01T10:00:04Z",
}

# The bodies, written out from the reference: the action's fields in order, nothing
# that resolved to nothing, the visitor code inside `properties` (none for the group).
CTX = b'{"library":{"name":"analytics.js","version":"3.0.0"},"page":{"path":"/cart"}}'
TRACK_BODY = (
    b'{"anonymousId":"anon-1","userId":"user-1","event":"Clicked on Checkout","type":"track",'
    b'"properties":{"kameleoonVisitorCode":"vc-123","price":9.5},'
    b'"timestamp":"2026-08-01T10:00:00.123Z","context":' + CTX + b',"messageId":"msg-track-1"}'
)
PAGE_BODY = (
    b'{"anonymousId":"anon-1","type":"page",'
    b'"properties":{"url":"https://shop.example/cart","kameleoonVisitorCode":"vc-123"},'
    b'"name":"Cart","context":' + CTX + b',"timestamp":"2026-08-01T10:00:02Z",'
    b'"messageId":"msg-page-1"}'
)
IDENTIFY_BODY = (
    b'{"userId":"user-1","type":"identify",'
    b'"properties":{"email":"ann@example.com","plan":"pro","kameleoonVisitorCode":"vc-123"},'
    b'"timestamp":"2026-08-01T10:00:03Z","messageId":"msg-identify-1"}'
)
GROUP_BODY = (
    b'{"anonymousId":"anon-1","userId":"user-1","type":"group","groupId":"acme",'
    b'"properties":{"name":"Acme Inc","employees":42},'
    b'"timestamp":"2026-08-01T10:00:04Z","messageId":"msg-group-1"}'
)
EVENTS = {"track": TRACK, "page": PAGE, "identify": IDENTIFY, "group": GROUP}


@pytest.fixture
def kameleoon() -> Iterator[FakeServer]:
    with FakeServer() as server:
        yield server


def perform(action_name: str, event: dict[str, Any], **settings: str) -> Request:
    """What the action sends for the event, through its default mapping."""
    action = DEFINITION.action(action_name)
    payload = compile_mapping(action.default_mapping()).apply(event)
    return action.perform(
        validate_payload(action, payload), check_settings(DEFINITION, {**SETTINGS, **settings})
    )


@pytest.mark.parametrize(
    ("preset", "event", "body"),
    [
        ("Track Calls", TRACK, TRACK_BODY),
        ("Page Calls", PAGE, PAGE_BODY),
        ("Identify Calls", IDENTIFY, IDENTIFY_BODY),
        ("Group Calls", GROUP, GROUP_BODY),
    ],
)
def test_each_preset_sends_the_reference_request(
    preset: str, event: dict[str, Any], body: bytes
) -> None:
    (chosen,) = [p for p in DEFINITION.presets if p.name == preset]
    matched = [kind for kind, e in EVENTS.items() if fql.compile(chosen.subscription).matches(e)]
    assert matched == [event["type"]]
    request = perform(chosen.action, event)
    assert request.method == "POST"
    assert request.url == "https://integrations.kameleoon.com/segmentio"
    assert request.headers == {
        "content-type": "application/json",
        "authorization": f"Basic {API_KEY}",
        "x-segment-settings": SITECODE,
    }
    assert request.body == body


def test_the_definition() -> None:
    assert definition("kameleoon") is DEFINITION
    assert [(s.name, s.type, s.required) for s in DEFINITION.settings] == [
        ("apiKey", SettingType.SECRET, True),
        ("sitecode", SettingType.STRING, True),
        ("endpoint", SettingType.STRING, False),
    ]
    assert check_settings(DEFINITION, SETTINGS)["endpoint"] == BASE_URL
    assert [(p.name, p.action, p.subscription) for p in DEFINITION.presets] == [
        ("Track Calls", "logEvent", 'type = "track"'),
        ("Page Calls", "page", 'type = "page"'),
        ("Group Calls", "group", 'type = "group"'),
        ("Identify Calls", "identify", 'type = "identify"'),
    ]
    required = {a.name: [f.name for f in a.fields if f.required] for a in DEFINITION.actions}
    assert required == {
        "logEvent": ["type", "timestamp", "messageId"],
        "page": ["type", "timestamp"],
        "identify": ["type", "timestamp", "messageId"],
        "group": ["type", "groupId", "timestamp", "messageId"],
    }


def test_log_event_defaults_fall_back_to_name_and_traits() -> None:
    """A track-like call without `event` or `properties`: `name` and `traits` instead."""
    screen = {
        "messageId": "m-1",
        "type": "screen",
        "userId": "u",
        "name": "Home",
        "traits": {"kameleoonVisitorCode": "vc-9", "tier": "gold"},
        "timestamp": "2026-08-01T10:00:00Z",
    }
    assert perform("logEvent", screen).body == (
        b'{"userId":"u","event":"Home","type":"screen",'
        b'"properties":{"kameleoonVisitorCode":"vc-9","tier":"gold"},'
        b'"timestamp":"2026-08-01T10:00:00Z","messageId":"m-1"}'
    )


def test_without_properties_the_body_ends_with_an_empty_object() -> None:
    """As Segment's spread: `properties` is added last when the payload had none."""
    bare = {"messageId": "m-2", "type": "track", "timestamp": "2026-08-01T10:00:00Z"}
    assert perform("logEvent", bare).body == (
        b'{"type":"track","timestamp":"2026-08-01T10:00:00Z","messageId":"m-2","properties":{}}'
    )


def test_a_visitor_code_field_mapped_away_leaves_properties_without_it() -> None:
    action = DEFINITION.action("logEvent")
    payload = compile_mapping({**action.default_mapping(), "kameleoonVisitorCode": None}).apply(
        TRACK
    )
    request = action.perform(
        validate_payload(action, payload), check_settings(DEFINITION, SETTINGS)
    )
    assert json.loads(request.body)["properties"] == {"price": 9.5}


def test_missing_required_fields_are_discarded() -> None:
    with pytest.raises(Discard, match="groupId"):
        perform("group", {**GROUP, "groupId": None})
    with pytest.raises(Discard, match="timestamp"):
        perform("logEvent", {**TRACK, "timestamp": "yesterday"})


def test_the_endpoint_setting_moves_every_request(kameleoon: FakeServer) -> None:
    endpoint = f"{kameleoon.url}/segmentio"
    request = perform("logEvent", TRACK, endpoint=endpoint)
    transport = HttpTransport(allow_private=True)
    try:
        assert transport.send(request).status == 200
    finally:
        transport.close()
    (seen,) = kameleoon.requests
    assert (seen.method, seen.path, seen.body) == ("POST", "/segmentio", TRACK_BODY)
    assert seen.headers["authorization"] == f"Basic {API_KEY}"
    assert seen.headers["x-segment-settings"] == SITECODE
    assert seen.headers["content-type"] == "application/json"


def test_authentication_rejects_a_sitecode_that_is_not_10_characters() -> None:
    assert DEFINITION.authentication is not None
    with pytest.raises(InvalidSettings, match="Invalid project sitecode"):
        DEFINITION.authentication(check_settings(DEFINITION, {**SETTINGS, "sitecode": "1q2w3e4"}))


@pytest.mark.parametrize(
    "api_key",
    [
        "not base64!",
        base64.b64encode(b"not json").decode(),
        base64.b64encode(b'["CLIENT_ID", "CLIENT_SECRET"]').decode(),
        base64.b64encode(b'{"id": "CLIENT_ID"}').decode(),
    ],
)
def test_authentication_rejects_an_api_key_it_cannot_decode(api_key: str) -> None:
    assert DEFINITION.authentication is not None
    with pytest.raises(InvalidSettings, match="Invalid project API Key") as caught:
        DEFINITION.authentication(check_settings(DEFINITION, {**SETTINGS, "apiKey": api_key}))
    assert '{"id": ..., "secret": ...}' in str(caught.value)


def test_authentication_asks_kameleoon_for_the_key(kameleoon: FakeServer) -> None:
    assert DEFINITION.authentication is not None
    settings = check_settings(DEFINITION, {**SETTINGS, "endpoint": f"{kameleoon.url}/segmentio"})
    request = DEFINITION.authentication(settings)
    assert request is not None
    kameleoon.reply(Reply(200, {"Content-Type": "application/json"}, b'{"valid":true}'))
    transport = HttpTransport(allow_private=True)
    try:
        response = transport.send(request)
    finally:
        transport.close()
    assert response.status == 200
    (seen,) = kameleoon.requests
    assert (seen.method, seen.path, seen.body) == (
        "GET",
        "/segmentio/getapikey?id=CLIENT_ID&secret=CLIENT_SECRET",
        b"",
    )


def test_authentication_against_the_real_base_url() -> None:
    assert DEFINITION.authentication is not None
    request = DEFINITION.authentication(check_settings(DEFINITION, SETTINGS))
    assert request == Request("GET", f"{BASE_URL}/getapikey?id=CLIENT_ID&secret=CLIENT_SECRET")
