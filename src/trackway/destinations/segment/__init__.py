"""Segment: forward events to any Segment-compatible tracking API.

Segment itself (`https://api.segment.io`, or `https://events.eu1.segmentapis.com` for
the EU) or another Trackway. Events keep their messageId, so the receiving side drops
the copies that retries may send.
"""

import base64
from typing import Any

from trackway.destinations.framework import (
    Action,
    Definition,
    Field,
    FieldType,
    Preset,
    Setting,
    SettingType,
    SettingValues,
)
from trackway.destinations.transport import Request

TYPES = ("track", "identify", "page", "screen", "group", "alias")
ALL_EVENTS = " or ".join(f'type = "{kind}"' for kind in TYPES)

# Set again by the receiving side. `sentAt` above all must not be sent: the receiver
# would correct the clock skew a second time, against the time of this delivery.
_SERVER_FIELDS = ("writeKey", "sentAt", "receivedAt", "originalTimestamp")


def _perform(payload: dict[str, Any], settings: SettingValues) -> Request:
    kind = payload["type"]
    return Request.json("POST", _url(settings, kind), _event(payload), _auth(settings))


def _perform_batch(payloads: list[dict[str, Any]], settings: SettingValues) -> Request:
    batch = {"batch": [_event(payload) for payload in payloads]}
    return Request.json("POST", _url(settings, "batch"), batch, _auth(settings))


def _authentication(settings: SettingValues) -> Request:
    """An empty batch: answered 2xx when the write key is accepted."""
    return Request.json("POST", _url(settings, "batch"), {"batch": []}, _auth(settings))


def _event(payload: dict[str, Any]) -> dict[str, Any]:
    event = {k: v for k, v in payload["event"].items() if k not in _SERVER_FIELDS}
    event["type"] = payload["type"]
    return event


def _url(settings: SettingValues, path: str) -> str:
    return f"{settings['data_plane_url'].rstrip('/')}/v1/{path}"


def _auth(settings: SettingValues) -> dict[str, str]:
    """HTTP Basic: the write key as user name, an empty password."""
    token = base64.b64encode(f"{settings['write_key']}:".encode()).decode()
    return {"authorization": f"Basic {token}"}


SEND = Action(
    name="send",
    title="Send an event",
    fields=(
        Field(
            "type",
            "The call to make: track, identify, page, screen, group or alias.",
            required=True,
            default={"@path": "$.type"},
            choices=TYPES,
        ),
        Field(
            "event",
            "The event to send (its messageId is kept; writeKey, sentAt, receivedAt and"
            " originalTimestamp are left out: the receiving side sets them).",
            FieldType.OBJECT,
            required=True,
            default={"@path": "$"},
        ),
    ),
    perform=_perform,
    perform_batch=_perform_batch,
    default_subscription=ALL_EVENTS,
    # Segment's tracking API (and Trackway's) refuses requests over 500 KB; leave room
    # for the batch's envelope
    max_batch_bytes=480_000,
)

DEFINITION = Definition(
    name="segment",
    title="Segment",
    description="Forward events to a Segment-compatible tracking API (Segment, Trackway).",
    settings=(
        Setting(
            "write_key",
            "The write key of the source events are sent to.",
            SettingType.SECRET,
            required=True,
        ),
        Setting(
            "data_plane_url",
            "The tracking API's origin, without /v1 (Segment's EU workspaces:"
            " https://events.eu1.segmentapis.com; another Trackway: its URL).",
            default="https://api.segment.io",
        ),
    ),
    actions=(SEND,),
    presets=(Preset("Send all events", "send", ALL_EVENTS),),
    authentication=_authentication,
)
