"""How the live debugger shows stored records: as JSON objects and as one-line text."""

from datetime import UTC, datetime
from typing import Any

from trackway.storage.records import DebugRecord


def record_json(record: DebugRecord) -> dict[str, Any]:
    """Accepted and duplicate records are the stored event plus `status` (and `position`);
    a rejected record carries its `error` and the `payload` as the client sent it."""
    if record.status == "rejected":
        return {
            "status": "rejected",
            "receivedAt": _iso(record.received_at_ms),
            "error": record.error,
            "payload": record.event,
        }
    out = dict(record.event)
    out["status"] = record.status
    if record.status == "accepted":
        out["position"] = record.seq
    return out


def record_line(record: DebugRecord, source_name: str) -> str:
    """A readable one-line summary of a record."""
    when = _iso(record.received_at_ms)
    if record.status == "rejected":
        error = record.error or {}
        return f"{when}  {source_name}  REJECTED  {error.get('code')}: {error.get('message')}"
    event = record.event
    kind = event.get("type", "?")
    label = event.get("event") or event.get("name") or event.get("groupId") or ""
    who = event.get("userId") or event.get("anonymousId") or ""
    status = "" if record.status == "accepted" else "  (duplicate)"
    return f"{when}  {source_name}  {kind:<8} {label!s:<28} {who}  {event.get('messageId')}{status}"


def _iso(ms: int) -> str:
    return (
        datetime.fromtimestamp(ms / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )
