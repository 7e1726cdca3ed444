"""Normalization: turns a validated message into the event Trackway stores.

This is where an event gets its messageId, its `receivedAt`, and its `timestamp`
corrected for the client's clock skew.
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from trackway.spec.message import Message


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What normalization needs to know about the request an event came in."""

    received_at: datetime
    sent_at: datetime | None = None
    context: dict[str, Any] | None = None
    integrations: dict[str, Any] | None = None
    client_ip: str | None = None


def normalize(msg: Message, req: RequestInfo) -> dict[str, Any]:
    """Build the stored event. `msg` must have passed `decode_message`.

    Timestamps: `originalTimestamp` is the client's `timestamp` as sent; `timestamp`
    is `receivedAt - (sentAt - originalTimestamp)`. Without `sentAt` the client's
    timestamp is kept as is; without a client timestamp, `timestamp` is `receivedAt`.
    """
    received_at = req.received_at
    out: dict[str, Any] = {
        "messageId": str(msg.message_id) if msg.message_id not in (None, "") else str(uuid.uuid4()),
        "type": msg.type,
    }
    if msg.user_id is not None:
        out["userId"] = msg.user_id
    if msg.anonymous_id is not None:
        out["anonymousId"] = msg.anonymous_id

    kind = msg.type
    if kind == "track":
        out["event"] = msg.event
        out["properties"] = msg.properties or {}
    elif kind in ("page", "screen"):
        if msg.name is not None:
            out["name"] = msg.name
        if msg.category is not None:
            out["category"] = msg.category
        out["properties"] = msg.properties or {}
    elif kind == "identify":
        out["traits"] = msg.traits or {}
    elif kind == "group":
        out["groupId"] = msg.group_id
        out["traits"] = msg.traits or {}
    else:
        out["previousId"] = msg.previous_id

    context = _merge(req.context, msg.context)
    if req.client_ip is not None and "ip" not in context:
        context["ip"] = req.client_ip
    out["context"] = context
    out["integrations"] = _merge(req.integrations, msg.integrations)
    if msg.channel is not None:
        out["channel"] = msg.channel

    sent_at = utc(msg.sent_at) or req.sent_at
    original = utc(msg.timestamp)
    if original is None:
        out["timestamp"] = received_at
    else:
        out["originalTimestamp"] = original
        out["timestamp"] = original if sent_at is None else received_at - (sent_at - original)
    if sent_at is not None:
        out["sentAt"] = sent_at
    out["receivedAt"] = received_at
    return out


def _merge(batch_level: dict[str, Any] | None, own: dict[str, Any] | None) -> dict[str, Any]:
    """Batch-level values apply to each event; the event's own keys win (shallow merge)."""
    if not batch_level:
        return dict(own) if own else {}
    if not own:
        return dict(batch_level)
    return {**batch_level, **own}


def utc(value: datetime | None) -> datetime | None:
    """A timezone-aware UTC datetime; a timestamp without an offset is taken as UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
