"""How the live debugger shows stored records: as JSON objects and as one-line text."""

from datetime import UTC, datetime
from typing import Any

from trackway import codec
from trackway.storage.records import DebugRecord
from trackway.terminal import fit

_TRAITS = frozenset(["identify", "group"])
"""The calls that carry `traits`; the others (but alias) carry `properties`."""


def record_json(record: DebugRecord, source_name: str | None = None) -> dict[str, Any]:
    """Accepted and duplicate records are the stored event plus `status` (and `position`);
    a rejected record carries its `error` and the `payload` as the client sent it. With
    `source_name`, each has `source` too."""
    if record.status == "rejected":
        out: dict[str, Any] = {
            "status": "rejected",
            "receivedAt": _iso(record.received_at_ms),
            "error": record.error,
            "payload": record.event,
        }
    else:
        out = dict(record.event)
        out["status"] = record.status
        if record.status == "accepted":
            out["position"] = record.seq
    if source_name is not None:
        out["source"] = source_name
    return out


def record_line(record: DebugRecord, source_name: str, width: int | None = None) -> str:
    """A readable one-line summary of a record, ending with the event's properties (or
    traits), cut to `width` characters when given."""
    when = _iso(record.received_at_ms)
    if record.status == "rejected":
        error = record.error or {}
        line = f"{when}  {source_name}  REJECTED  {error.get('code')}: {error.get('message')}"
        return fit(line, width)
    event = record.event
    kind = event.get("type", "?")
    label = event.get("event") or event.get("name") or event.get("groupId") or ""
    who = event.get("userId") or event.get("anonymousId") or ""
    status = "" if record.status == "accepted" else "  (duplicate)"
    line = f"{when}  {source_name}  {kind:<8} {label!s:<28} {who}  {event.get('messageId')}{status}"
    values = event.get("traits" if kind in _TRAITS else "properties")
    if values:
        line += "  " + codec.dumps_text(values)
    return fit(line, width)


def _iso(ms: int) -> str:
    return (
        datetime.fromtimestamp(ms / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )
