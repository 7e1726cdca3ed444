"""How the live debugger shows stored records: as JSON objects, as one-line text, and as
a Server-Sent Events stream (the admin API's and the dashboard's)."""

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

from trackway import codec
from trackway.storage.base import EventLog
from trackway.storage.records import DebugRecord
from trackway.terminal import fit

_KEEPALIVE_S = 15.0
_STREAM_BUFFER = 10_000

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


async def stream_records(
    log: EventLog,
    source_id: int,
    max_per_s: int | None = None,
    as_json: Callable[[DebugRecord], dict[str, Any]] = record_json,
) -> AsyncIterator[bytes]:
    """The records of a source as they are committed, as Server-Sent Events: `event:` is
    the status, `data:` the record's JSON. When the stream's buffer is full, records are
    dropped and `event: overflow` says how many. With `max_per_s`, at most that many
    records a second are sent and `event: sampled` says how many of a commit were left out (a
    browser cannot draw 5,000 rows a second). `as_json` makes each record's data."""
    queue: asyncio.Queue[list[DebugRecord]] = asyncio.Queue(_STREAM_BUFFER)
    dropped = 0

    def on_commit(records: list[DebugRecord]) -> None:
        nonlocal dropped
        mine = [r for r in records if r.source_id == source_id]
        if not mine:
            return
        try:
            queue.put_nowait(mine)
        except asyncio.QueueFull:
            dropped += len(mine)

    unsubscribe = log.subscribe(asyncio.get_running_loop(), on_commit)
    second, sent = int(time.monotonic()), 0
    try:
        yield b": connected\n\n"
        while True:
            try:
                records = await asyncio.wait_for(queue.get(), _KEEPALIVE_S)
            except TimeoutError:
                yield b": keepalive\n\n"
                continue
            out = b""
            if dropped:
                out += b"event: overflow\ndata: " + codec.dumps({"dropped": dropped}) + b"\n\n"
                dropped = 0
            if max_per_s is not None:
                now = int(time.monotonic())
                if now != second:
                    second, sent = now, 0
                room = max(max_per_s - sent, 0)
                if len(records) > room:
                    skipped = len(records) - room
                    out += b"event: sampled\ndata: " + codec.dumps({"skipped": skipped})
                    out += b"\n\n"
                    records = records[:room]
                sent += len(records)
            out += b"".join(
                b"event: " + r.status.encode() + b"\ndata: " + codec.dumps(as_json(r)) + b"\n\n"
                for r in records
            )
            if out:
                yield out
    finally:
        unsubscribe()
