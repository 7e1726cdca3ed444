"""The Segment message model and its per-call validation rules."""

from datetime import datetime
from typing import Any

import msgspec

from trackway.spec.errors import Rejection
from trackway.spec.limits import MAX_EVENT_BYTES, MAX_MESSAGE_ID_CHARS

TYPES = ("track", "identify", "page", "screen", "group", "alias")

Id = str | int | float | None


ABSENT = msgspec.Raw(b"")
"""An object field that was not sent (not encoded)."""


def raw_object(value: dict[str, Any]) -> msgspec.Raw:
    """An object field's value from a dict."""
    return msgspec.Raw(msgspec.json.encode(value))


def object_value(raw: msgspec.Raw) -> dict[str, Any]:
    """An object field as a dict (`{}` when absent or null)."""
    if len(raw) == 0 or memoryview(raw)[0] == _N:
        return {}
    decoded: dict[str, Any] = msgspec.json.decode(raw)
    return decoded


class Message(msgspec.Struct, rename="camel", omit_defaults=True):
    """One event: as a client sends it, and (normalized in place) as Trackway stores it.

    Unknown fields (such as `_metadata`) are ignored. Fields left at None (or ABSENT)
    are not encoded, so the stored JSON holds only what the event has; the field order
    is the stored order. `originalTimestamp` and `receivedAt` are always set by
    normalization. The object fields stay raw JSON (validated, not decoded): most events
    are stored as sent, and decoding and re-encoding them was a third of the request
    path (docs/decisions/0003-http-and-codec.md).
    """

    message_id: str | int | None = None
    type: str | None = None
    user_id: Id = None
    anonymous_id: Id = None
    event: str | None = None
    name: str | None = None
    category: str | None = None
    group_id: Id = None
    previous_id: Id = None
    properties: msgspec.Raw = ABSENT
    traits: msgspec.Raw = ABSENT
    context: msgspec.Raw = ABSENT
    integrations: msgspec.Raw = ABSENT
    channel: str | None = None
    timestamp: datetime | None = None
    original_timestamp: datetime | None = None
    sent_at: datetime | None = None
    received_at: datetime | None = None
    write_key: str | None = None


class Batch(msgspec.Struct, rename="camel"):
    """A batch request; events stay raw so that each can be sized and, if one is bad,
    validated on its own without failing the others."""

    batch: list[msgspec.Raw]
    sent_at: datetime | None = None
    write_key: str | None = None
    context: dict[str, Any] | None = None
    integrations: dict[str, Any] | None = None


message_decoder = msgspec.json.Decoder(Message)
messages_decoder = msgspec.json.Decoder(list[Message])
batch_decoder = msgspec.json.Decoder(Batch)

_OBJECT_FIELDS = ("properties", "traits", "context", "integrations")
_N, _OPEN = ord("n"), ord("{")
_KINDS = {ord("["): "array", ord('"'): "str", ord("t"): "bool", ord("f"): "bool"}

_TIME_FIELDS = ("`$.timestamp`", "`$.sentAt`", "`$.originalTimestamp`", "`$.receivedAt`")


def decode_message(raw: bytes | msgspec.Raw, path_type: str | None) -> Message | Rejection:
    """Decode and validate one event; `path_type` is the type implied by the URL, if any."""
    if len(raw) > MAX_EVENT_BYTES:
        return Rejection(
            "event_too_large", f"event is {len(raw)} bytes; the limit is {MAX_EVENT_BYTES}", 413
        )
    try:
        msg = message_decoder.decode(raw)
    except msgspec.ValidationError as exc:
        text = str(exc)
        if text.endswith(_TIME_FIELDS):
            return Rejection("invalid_timestamp", f"not an ISO-8601 timestamp: {text}")
        return Rejection("invalid_field", text)
    except msgspec.DecodeError as exc:
        return Rejection("invalid_json", f"event is not valid JSON: {exc}")
    except RecursionError:
        return Rejection("invalid_json", "event is nested too deeply")
    problem = check(msg, path_type)
    return problem or msg


def decode_messages(raws: list[msgspec.Raw]) -> list[Message | Rejection]:
    """Decode and validate a batch's events; one bad event only rejects itself.

    The common case (every event well formed) is one decode call for the whole list;
    only when it fails is each event decoded on its own to find which ones are bad.
    """
    if max(map(len, raws), default=0) <= MAX_EVENT_BYTES:
        try:
            messages = messages_decoder.decode(b"[" + b",".join(raws) + b"]")
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
            pass
        else:
            return [check(msg, None) or msg for msg in messages]
    return [decode_message(raw, None) for raw in raws]


def check(msg: Message, path_type: str | None) -> Rejection | None:
    """The per-call rules msgspec's types cannot say; also turns ids into strings."""
    if path_type is not None:
        if msg.type is None:
            msg.type = path_type
        elif msg.type != path_type:
            return Rejection(
                "invalid_type", f"type '{msg.type}' was sent to the /{path_type} endpoint"
            )
    if msg.type is None:
        return Rejection("missing_field", "'type' is required in each batch item")
    for name in _OBJECT_FIELDS:
        raw = getattr(msg, name)
        if len(raw):
            first = memoryview(raw)[0]
            if first == _N:
                setattr(msg, name, ABSENT)
            elif first != _OPEN:
                kind = _KINDS.get(first, "number")
                return Rejection(
                    "invalid_field", f"Expected `object | null`, got `{kind}` - at `$.{name}`"
                )
    if msg.type not in TYPES:
        return Rejection(
            "invalid_type", f"unknown type '{msg.type}'; expected one of {', '.join(TYPES)}"
        )
    if type(msg.user_id) is not str or not msg.user_id:
        msg.user_id = _id(msg.user_id)
    if type(msg.anonymous_id) is not str or not msg.anonymous_id:
        msg.anonymous_id = _id(msg.anonymous_id)
    if msg.user_id is None and msg.anonymous_id is None:
        return Rejection("missing_field", "either 'userId' or 'anonymousId' is required")
    if isinstance(msg.message_id, str) and len(msg.message_id) > MAX_MESSAGE_ID_CHARS:
        return Rejection(
            "invalid_field", f"'messageId' is longer than {MAX_MESSAGE_ID_CHARS} characters"
        )
    if msg.type == "track" and not msg.event:
        return Rejection("missing_field", "'event' is required for track calls")
    if msg.type == "group":
        msg.group_id = _id(msg.group_id)
        if msg.group_id is None:
            return Rejection("missing_field", "'groupId' is required for group calls")
    if msg.type == "alias":
        msg.previous_id = _id(msg.previous_id)
        if msg.previous_id is None or msg.user_id is None:
            return Rejection("missing_field", "'previousId' and 'userId' are required for alias")
    return None


def _id(value: Id) -> str | None:
    """Ids arrive as strings or numbers; null and "" mean absent."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
