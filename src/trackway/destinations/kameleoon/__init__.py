"""Kameleoon: events become goals and conversions, traits become visitor data.

The same wire format as Segment's Kameleoon (Actions) destination: four actions, one
per call type, each POSTing its payload as JSON to Kameleoon's Segment endpoint with the
API key and the project's sitecode in headers. The visitor code travels inside
`properties`.
"""

import base64
import binascii
import urllib.parse
from typing import Any

from trackway import codec
from trackway.destinations.framework import (
    Action,
    Definition,
    Discard,
    Field,
    FieldType,
    InvalidSettings,
    Preset,
    Setting,
    SettingType,
    SettingValues,
)
from trackway.destinations.transport import Request

BASE_URL = "https://integrations.kameleoon.com/segmentio"
VISITOR_CODE = "kameleoonVisitorCode"


MAX_EVENT_BYTES = 1024 * 1024
"""Kameleoon refuses event data over 1 MB."""
GOAL_LIMITS = ((50, 10.0), (1_000, 3_600.0))
"""Kameleoon creates at most 50 goals per 10 s and 1,000 per 60 min."""
_GOAL_TYPES = frozenset({"track", "page", "screen"})


def _perform(payload: dict[str, Any], settings: SettingValues) -> Request:
    body = codec.dumps(_body(payload))
    if len(body) > MAX_EVENT_BYTES:
        raise Discard(
            f"the event is {len(body):,} bytes; Kameleoon accepts at most 1 MB"
            f" ({MAX_EVENT_BYTES:,} bytes)"
        )
    headers = {
        "content-type": "application/json",
        "authorization": f"Basic {settings['apiKey']}",
        "x-segment-settings": settings["sitecode"],
    }
    return Request("POST", settings["endpoint"], headers, body)


def goal_name(payload: dict[str, Any]) -> str | None:
    """The goal Kameleoon converts (creating it when new) for a track, page or screen
    payload: "SegmentIO <type> <en dash> <event name>", as its help article says."""
    name = payload.get("event") or payload.get("name")
    if payload.get("type") not in _GOAL_TYPES or not isinstance(name, str):
        return None
    return f"SegmentIO {payload['type']} \u2013 {name}"


def _body(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload with the visitor code moved inside `properties`.

    Key order as Segment's `{...omit(payload, code), properties: {...properties, code}}`:
    `properties` stays where it was, or comes last; it is `{}` when there is nothing.
    """
    body = {key: value for key, value in payload.items() if key != VISITOR_CODE}
    properties = dict(payload.get("properties") or {})
    if VISITOR_CODE in payload:
        properties[VISITOR_CODE] = payload[VISITOR_CODE]
    else:  # Segment sets it to undefined, which JSON leaves out
        properties.pop(VISITOR_CODE, None)
    body["properties"] = properties
    return body


def _authentication(settings: SettingValues) -> Request:
    if len(settings["sitecode"]) != 10:
        raise InvalidSettings("Invalid project sitecode. Please check your sitecode")
    client = _client(settings["apiKey"])
    query = urllib.parse.urlencode(client, quote_via=urllib.parse.quote)
    return Request("GET", f"{settings['endpoint'].rstrip('/')}/getapikey?{query}")


def _client(api_key: str) -> dict[str, str]:
    """The client id and secret inside an API key (base64 of `{"id", "secret"}`)."""
    try:
        decoded = codec.loads(base64.b64decode(api_key + "=" * (-len(api_key) % 4)))
    except (binascii.Error, ValueError, codec.DecodeError):
        decoded = None
    if not (
        isinstance(decoded, dict)
        and isinstance(decoded.get("id"), str)
        and isinstance(decoded.get("secret"), str)
    ):
        raise InvalidSettings(
            "Invalid project API Key. Please check your API Key: it must be the base64"
            ' encoding of a JSON object {"id": ..., "secret": ...}, as Kameleoon generates it'
        )
    return {"id": decoded["id"], "secret": decoded["secret"]}


def _either(first: str, second: str) -> dict[str, Any]:
    """The value at `first` if it exists, else the value at `second`."""
    return {
        "@if": {"exists": {"@path": first}, "then": {"@path": first}, "else": {"@path": second}}
    }


_ANONYMOUS_ID = Field("anonymousId", "Anonymous id", default={"@path": "$.anonymousId"})
_USER_ID = Field("userId", "The ID associated with the user", default={"@path": "$.userId"})
_TYPE = Field("type", "The type of the event", required=True, default={"@path": "$.type"})
_TIMESTAMP = Field(
    "timestamp",
    "The timestamp of the event",
    FieldType.DATETIME,
    required=True,
    default={"@path": "$.timestamp"},
)
_CONTEXT = Field(
    "context",
    "Context properties to send with the event",
    FieldType.OBJECT,
    default={"@path": "$.context"},
)
_VISITOR_CODE = "Kameleoon Visitor Code - a unique identifier for the user"


def _message_id(required: bool) -> Field:
    return Field(
        "messageId", "The Segment messageId", required=required, default={"@path": "$.messageId"}
    )


def _traits(description: str) -> tuple[Field, Field]:
    """`properties` and the visitor code taken from the traits (identify, group)."""
    return (
        Field("properties", description, FieldType.OBJECT, default={"@path": "$.traits"}),
        Field(VISITOR_CODE, _VISITOR_CODE, default={"@path": "$.traits.kameleoonVisitorCode"}),
    )


LOG_EVENT = Action(
    name="logEvent",
    title="Log Event",
    fields=(
        _ANONYMOUS_ID,
        _USER_ID,
        Field("event", "The event name", default=_either("$.event", "$.name")),
        _TYPE,
        Field(
            "properties",
            "Additional event Properties or user Traits to send with the event",
            FieldType.OBJECT,
            default=_either("$.properties", "$.traits"),
        ),
        Field(
            VISITOR_CODE,
            _VISITOR_CODE,
            default=_either("$.properties.kameleoonVisitorCode", "$.traits.kameleoonVisitorCode"),
        ),
        _TIMESTAMP,
        _CONTEXT,
        _message_id(required=True),
    ),
    perform=_perform,
    default_subscription='type = "track"',
    creates=goal_name,
)

PAGE = Action(
    name="page",
    title="Page Event",
    fields=(
        _ANONYMOUS_ID,
        _USER_ID,
        _TYPE,
        Field("properties", "Page properties", FieldType.OBJECT, default={"@path": "$.properties"}),
        Field(VISITOR_CODE, _VISITOR_CODE, default={"@path": "$.properties.kameleoonVisitorCode"}),
        Field("name", "The name of the page", default={"@path": "$.name"}),
        _CONTEXT,
        _TIMESTAMP,
        _message_id(required=False),
    ),
    perform=_perform,
    default_subscription='type = "page"',
    creates=goal_name,
)

IDENTIFY = Action(
    name="identify",
    title="Identify Event",
    fields=(
        _ANONYMOUS_ID,
        _USER_ID,
        _TYPE,
        *_traits("Traits to send with the event"),
        _TIMESTAMP,
        _message_id(required=True),
    ),
    perform=_perform,
    default_subscription='type = "identify"',
)

GROUP = Action(
    name="group",
    title="Group Event",
    fields=(
        _ANONYMOUS_ID,
        _USER_ID,
        _TYPE,
        Field("groupId", "The group id", required=True, default={"@path": "$.groupId"}),
        *_traits("Traits to send with the event"),
        _TIMESTAMP,
        _message_id(required=True),
    ),
    perform=_perform,
    default_subscription='type = "group"',
)

DEFINITION = Definition(
    name="kameleoon",
    title="Kameleoon (Actions)",
    description="Send Segment events to Kameleoon",
    settings=(
        Setting(
            "apiKey",
            "Kameleoon API key. You can generate one using the link in the help doc"
            " (https://help.kameleoon.com/setting-up-segment/).",
            SettingType.SECRET,
            required=True,
        ),
        Setting(
            "sitecode",
            "Kameleoon project sitecode (10 characters). You can find it in the project"
            " dashboard (https://help.kameleoon.com/question/how-do-i-find-my-site-id/).",
            required=True,
        ),
        Setting(
            "endpoint",
            "The base URL of Kameleoon's Segment endpoint; change it only to point at a"
            " test server or a proxy.",
            default=BASE_URL,
        ),
    ),
    actions=(LOG_EVENT, PAGE, IDENTIFY, GROUP),
    presets=(
        Preset("Track Calls", "logEvent", 'type = "track"'),
        Preset("Page Calls", "page", 'type = "page"'),
        Preset("Group Calls", "group", 'type = "group"'),
        Preset("Identify Calls", "identify", 'type = "identify"'),
    ),
    authentication=_authentication,
    creation_limits=GOAL_LIMITS,
)
