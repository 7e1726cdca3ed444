"""Normalization: turns a validated message into the event Trackway stores.

This is where an event gets its messageId, its `receivedAt`, and its `timestamp`
corrected for the client's clock skew.
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from trackway.spec.errors import Rejection
from trackway.spec.message import ABSENT, Message, object_value, raw_object

_WITH_PROPERTIES = frozenset(("track", "page", "screen"))
_WITH_TRAITS = frozenset(("identify", "group"))
_EMPTY = raw_object({})


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What normalization needs to know about the request an event came in."""

    received_at: datetime
    sent_at: datetime | None = None
    context: dict[str, Any] | None = None
    integrations: dict[str, Any] | None = None
    client_ip: str | None = None


def normalize(msg: Message, req: RequestInfo) -> Message | Rejection:
    """Normalize `msg` in place (it must have passed validation) and return it.

    Timestamps: `originalTimestamp` is the client's `timestamp` as sent; `timestamp`
    is `receivedAt - (sentAt - originalTimestamp)`. Without `sentAt` the client's
    timestamp is kept as is; without a client timestamp, `timestamp` is `receivedAt`.
    A timestamp that falls outside years 1-9999 in UTC, as sent or once corrected,
    rejects the event (`invalid_timestamp`).
    """
    received_at = req.received_at
    message_id = msg.message_id
    if type(message_id) is not str or not message_id:
        msg.message_id = str(message_id) if message_id not in (None, "") else str(uuid.uuid4())
    kind = msg.type
    if kind in _WITH_PROPERTIES:
        msg.traits = ABSENT
        if not msg.properties:
            msg.properties = _EMPTY
    elif kind in _WITH_TRAITS:
        msg.properties = ABSENT
        if not msg.traits:
            msg.traits = _EMPTY
    else:
        msg.properties = msg.traits = ABSENT
    if kind != "track":
        msg.event = None

    # Objects stay raw JSON unless something must be merged into them.
    if req.context or (req.client_ip is not None and msg.context):
        context = {**(req.context or {}), **object_value(msg.context)}
        if req.client_ip is not None:
            context.setdefault("ip", req.client_ip)
        msg.context = raw_object(context)
    elif req.client_ip is not None:
        msg.context = raw_object({"ip": req.client_ip})
    elif not msg.context:
        msg.context = _EMPTY
    if req.integrations:
        msg.integrations = raw_object({**req.integrations, **object_value(msg.integrations)})
    elif not msg.integrations:
        msg.integrations = _EMPTY

    # Python's datetime spans years 1-9999: an offset or the skew correction can leave it.
    try:
        sent_at = utc(msg.sent_at) or req.sent_at
    except OverflowError:
        return _out_of_range("`$.sentAt` in UTC")
    try:
        original = utc(msg.timestamp)
    except OverflowError:
        return _out_of_range("`$.timestamp` in UTC")
    if original is None:
        msg.timestamp = received_at
    elif sent_at is None:
        msg.timestamp = original
    else:
        try:
            msg.timestamp = received_at - (sent_at - original)
        except OverflowError:
            return _out_of_range(
                "the clock-skew correction receivedAt - (sentAt - timestamp) "
                f"(sentAt {sent_at.isoformat()}, timestamp {original.isoformat()})"
            )
    msg.original_timestamp = original
    msg.sent_at = sent_at
    msg.received_at = received_at
    msg.write_key = None
    return msg


def _out_of_range(what: str) -> Rejection:
    return Rejection("invalid_timestamp", f"{what} is outside years 1-9999")


def utc(value: datetime | None) -> datetime | None:
    """A timezone-aware UTC datetime; a timestamp without an offset is taken as UTC."""
    if value is None:
        return None
    tz = value.tzinfo
    if tz is UTC:
        return value
    if tz is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
