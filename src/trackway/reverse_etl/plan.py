"""From planned changes to events: names per change kind, messageIds, rejections.

Each event is encoded once, here, as the bytes that go into a batch request.
"""

from dataclasses import dataclass, field

import msgspec
import xxhash

from trackway import __version__
from trackway.reverse_etl.config import SyncSpec
from trackway.reverse_etl.mapping import has_ids, read_extra
from trackway.reverse_etl.state import Change
from trackway.spec.limits import MAX_EVENT_BYTES

LIBRARY = {"name": "trackway-reverse-etl", "version": __version__}

_encoder = msgspec.json.Encoder()


@dataclass
class Planned:
    """A chunk of changes sorted by what happens to them."""

    send: list[tuple[Change, bytes]] = field(default_factory=list)
    """Changes with their encoded event."""
    record: list[Change] = field(default_factory=list)
    """Changes that send nothing (no event for their kind) but advance the snapshot."""
    reject: list[tuple[Change, str]] = field(default_factory=list)
    """Changes whose row cannot be sent, with the reason (kept for the next run, unless
    also in `record`)."""


def plan_events(sync: SyncSpec, changes: list[Change]) -> Planned:
    """Sort changes into events to send, changes only to record, and rejected rows."""
    planned = Planned()
    call = "identify" if sync.type == "identify" else "track"
    for change in changes:
        name = sync.event_name(change.kind)
        timestamp, mid, error = read_extra(sync, change.extra)
        if name is None:
            planned.record.append(change)
        elif change.kind == "removed" and not has_ids(change.payload):
            # Recorded without ids (before it needed any); it can never be sent, so it
            # is rejected once and the snapshot lets it go.
            planned.reject.append((change, "removed, but no userId or anonymousId was recorded"))
            planned.record.append(change)
        elif change.error is not None or error is not None:
            planned.reject.append((change, change.error or error or ""))
        else:
            event = encode_event(sync.name, call, name, change, timestamp, mid)
            if len(event) > MAX_EVENT_BYTES:
                planned.reject.append(
                    (change, f"the event is {len(event)} bytes; the limit is {MAX_EVENT_BYTES}")
                )
            else:
                planned.send.append((change, event))
    return planned


def encode_event(
    sync: str, call: str, name: str, change: Change, timestamp: str | None, mid: str | None
) -> bytes:
    """The event's JSON: the call's own fields, then the row's payload (ids and properties)."""
    head: dict[str, object] = {"type": call}
    if call == "track":
        head["event"] = name
    head["messageId"] = mid or message_id(sync, change)
    if timestamp is not None:
        head["timestamp"] = timestamp
    head["context"] = {"library": LIBRARY}
    # Both are JSON objects: splice the payload's members in after the head's.
    return _encoder.encode(head)[:-1] + b"," + change.payload[1:]


def message_id(sync: str, change: Change) -> str:
    """The derived messageId of a change (for rows without a message-ID column), the same
    on every resend.

    The derived id hashes (sync, key, change kind, row content, seq): a row resent
    after a crash keeps its id (the receiver dedups it), while a new change of the same
    key, even back to an earlier content, gets a new one (seq counts acknowledged
    changes). A removed row is no longer in the result, so it always gets a derived id.
    """
    key = f"{sync}\x00{change.pk!r}\x00{change.kind}\x00{change.hash}\x00{change.seq}"
    return "rtl-" + xxhash.xxh3_128_hexdigest(key.encode())
