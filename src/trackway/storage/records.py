"""Plain records passed across the storage interfaces."""

from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

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
