"""Plain records passed across the storage interfaces."""

from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from trackway import codec

Status = Literal["accepted", "rejected", "duplicate"]


@dataclass(frozen=True, slots=True)
class Source:
    """A source of events, identified to clients by its write keys."""

    id: int
    public_id: str
    name: str
    type: str
    enabled: bool
    created_at: str


@dataclass(frozen=True, slots=True)
class WriteKey:
    """A write key of a source; a rotated-out key stops working at `expires_at` (epoch s)."""

    key: str
    source_id: int
    expires_at: float | None


class AcceptedEvent(NamedTuple):
    """The identity of a normalized event (a tuple: built once per event on the hot path)."""

    message_id: str
    mid_hash: int


@dataclass(frozen=True, slots=True)
class RejectedEvent:
    """An event (or whole request, index -1) that failed on ingest, kept for the debugger."""

    index: int
    code: str
    message: str
    raw: bytes | None


@dataclass(slots=True)
class IngestBatch:
    """Everything one request appends: accepted events and failure records of one source.

    `encoded` is the normalized events as one JSON array, in the order of `events`
    (encoded in one call on the request path; split again only for duplicates).
    """

    source_id: int
    received_at_ms: int
    events: list[AcceptedEvent] = field(default_factory=list)
    encoded: bytes = b"[]"
    rejected: list[RejectedEvent] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What a committed append stored: how many events were new and how many duplicates."""

    accepted: int
    duplicates: int


@dataclass(frozen=True, slots=True)
class LogEvent:
    """An event read back from the log at its position."""

    position: int
    source_id: int
    received_at_ms: int
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DebugRecord:
    """One line of the live debugger: an accepted, rejected or duplicate event."""

    status: Status
    source_id: int
    received_at_ms: int
    seq: int
    event: Any
    error: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Commit:
    """What one commit of the log stored, as live subscribers (the debugger) get it:
    still encoded, so that following a busy log costs only what is shown. The tuples
    are the log's rows: chunks (pos, count, source, received_at, events JSON array,
    hashes), duplicates (source, received_at, messageId, body), failures (source,
    received_at, index, code, message, raw)."""

    chunks: list[tuple[int, int, int, int, bytes, bytes]]
    duplicates: list[tuple[int, int, str, bytes]]
    failures: list[tuple[int, int, int, str, str, bytes | None]]

    def count(self, source_id: int) -> int:
        """How many records of the source the commit holds."""
        return (
            sum(c[1] for c in self.chunks if c[2] == source_id)
            + sum(1 for d in self.duplicates if d[0] == source_id)
            + sum(1 for f in self.failures if f[0] == source_id)
        )

    def records(self, source_id: int, limit: int) -> list[DebugRecord]:
        """The source's first `limit` records: accepted, then duplicates, then rejected."""
        out: list[DebugRecord] = []
        for pos, _count, source, at_ms, events, _hashes in self.chunks:
            if source != source_id or len(out) >= limit:
                continue
            for offset, event in enumerate(codec.loads(events)[: limit - len(out)]):
                out.append(DebugRecord("accepted", source, at_ms, pos + offset, event))
        for source, at_ms, _message_id, body in self.duplicates:
            if source == source_id and len(out) < limit:
                out.append(DebugRecord("duplicate", source, at_ms, 0, codec.loads(body)))
        for source, at_ms, index, code, message, raw in self.failures:
            if source == source_id and len(out) < limit:
                error = {"code": code, "message": message, "index": index}
                out.append(DebugRecord("rejected", source, at_ms, 0, raw_json(raw), error))
        return out


def raw_json(raw: bytes | None) -> Any:
    """A rejected payload as JSON when it is JSON, else as text."""
    if raw is None:
        return None
    try:
        return codec.loads(raw)
    except (codec.DecodeError, RecursionError):
        return raw.decode("utf-8", "replace")
