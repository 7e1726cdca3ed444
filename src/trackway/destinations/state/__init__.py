"""What delivery keeps per destination: its cursor in the log, the retry schedule, dead
letters, per-minute counts with latency histograms, error samples and alerts.

`DeliveryStore` is the interface; `sqlite.SQLiteDeliveryStore` keeps it in
`destinations.db` in the data directory (apart from the log, so delivery bookkeeping
never competes with ingestion for the log's write lock), `postgres.PostgresDeliveryStore`
in the database given with `--database`; `open_delivery_store` picks one.
"""

import bisect
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from trackway import codec
from trackway.settings import Settings

LATENCY_BOUNDS_MS = (
    5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000, 3_600_000
)  # fmt: skip
"""Upper bounds of the latency histogram's buckets (one more bucket holds the rest)."""

COUNTERS = (
    "delivered",
    "retried",
    "discarded",
    "dead_lettered",
    "filtered",
    "unsubscribed",
    "skipped",
)
"""delivered; retried (a failed attempt that will be retried); discarded (not retryable:
kept as a dead letter); dead_lettered (retries exhausted); filtered (by the destination's
filters or dropped by its insert function); unsubscribed (no subscription matched);
skipped (the event's `integrations` turned this destination off)."""

DeadReason = Literal["discarded", "exhausted", "deleted"]
"""discarded (not retryable), exhausted (out of retries), deleted (waiting to be retried
when its destination was deleted)."""


@dataclass(slots=True)
class Counts:
    """Counters and a latency histogram (received → delivered) for one action."""

    delivered: int = 0
    retried: int = 0
    discarded: int = 0
    dead_lettered: int = 0
    filtered: int = 0
    unsubscribed: int = 0
    skipped: int = 0
    latency: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS_MS) + 1))

    def observe(self, ms: float) -> None:
        self.latency[bisect.bisect_left(LATENCY_BOUNDS_MS, ms)] += 1

    def add(self, other: "Counts") -> None:
        for name in COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.latency = [a + b for a, b in zip(self.latency, other.latency, strict=True)]

    @property
    def attempts(self) -> int:
        """Delivery attempts that ended: delivered or failed."""
        return self.delivered + self.retried + self.discarded + self.dead_lettered

    def percentile(self, fraction: float) -> float | None:
        """The latency (ms) below which `fraction` of deliveries fell: the upper bound of
        the histogram bucket holding it (None without deliveries)."""
        total = sum(self.latency)
        if not total:
            return None
        rank = fraction * total
        seen = 0
        for index, count in enumerate(self.latency):
            seen += count
            if seen >= rank and count:
                if index < len(LATENCY_BOUNDS_MS):
                    return float(LATENCY_BOUNDS_MS[index])
                return float("inf")
        return float("inf")


@dataclass(frozen=True, slots=True)
class Pending:
    """An event waiting for another attempt by one subscription.

    `event` is the event after the destination's filters and before its insert function:
    a retry runs the function, the mapping and the request again.
    """

    subscription: str
    position: int
    received_at_ms: int
    event: dict[str, Any]
    attempts: int
    first_failed_ms: int
    next_at_ms: int
    error: str
    id: int | None = None
    """Its row in the retry schedule (None until stored)."""

    def row(self) -> tuple[Any, ...]:
        """Its stored columns: subscription, position, received_at_ms, event (JSON),
        attempts, first_failed_ms, next_at_ms, error."""
        return (
            self.subscription,
            self.position,
            self.received_at_ms,
            codec.dumps(self.event),
            self.attempts,
            self.first_failed_ms,
            self.next_at_ms,
            self.error,
        )


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An event that was discarded or ran out of retries; kept until re-sent."""

    subscription: str
    position: int
    received_at_ms: int
    event: dict[str, Any]
    attempts: int
    reason: DeadReason
    error: str
    failed_at_ms: int
    id: int | None = None

    def row(self) -> tuple[Any, ...]:
        """Its stored columns: subscription, position, received_at_ms, event (JSON),
        attempts, reason, error, failed_at_ms."""
        return (
            self.subscription,
            self.position,
            self.received_at_ms,
            codec.dumps(self.event),
            self.attempts,
            self.reason,
            self.error,
            self.failed_at_ms,
        )


@dataclass(frozen=True, slots=True)
class ErrorSample:
    """One failed attempt with its three samples: the event, the request, the response."""

    at_ms: int
    action: str
    kind: str
    message: str
    event: Any
    request: Any = None
    response: Any = None

    def row(self) -> tuple[Any, ...]:
        """Its stored columns: at_ms, action, kind, message, samples (JSON)."""
        samples = {"event": self.event, "request": self.request, "response": self.response}
        return (self.at_ms, self.action, self.kind, self.message, codec.dumps(samples))


@dataclass(slots=True)
class Outcome:
    """What delivering one window of events (or of due retries) came to."""

    counts: dict[str, Counts] = field(default_factory=dict)
    """By action name ("" for events that reached no action)."""
    retry: list[Pending] = field(default_factory=list)
    """To try again: new ones, and stored ones (with their id) rescheduled."""
    done: list[int] = field(default_factory=list)
    """Ids of stored retries that ended (delivered, or moved to `dead`)."""
    dead: list[DeadLetter] = field(default_factory=list)
    errors: list[ErrorSample] = field(default_factory=list)
    names: dict[str, int] = field(default_factory=dict)
    """Names the destination learnt (a Kameleoon goal created), with the epoch ms."""

    def count(self, action: str) -> Counts:
        found = self.counts.get(action)
        if found is None:
            found = self.counts[action] = Counts()
        return found


@dataclass(frozen=True, slots=True)
class Cursor:
    """A destination's position in the log; `generation` changes when it is moved by
    hand (replay), so that a worker's in-flight window cannot move it back."""

    position: int
    generation: int
    replayed_at_ms: int = 0
    """When it was last moved by hand (0: never): the latency of an event that arrived
    before then counts from then, not from its arrival."""


@dataclass(frozen=True, slots=True)
class Alert:
    """A change of a destination's alert state."""

    at_ms: int
    kind: Literal["alert", "recovery"]
    rate: float
    threshold: float
    attempts: int
    notified: str
    """What happened to the notification (sent, its failure, or "no webhook")."""


class DeliveryStore(Protocol):
    """Delivery bookkeeping for every destination of a workspace."""

    def cursor(self, destination: str, start: int) -> Cursor:
        """The destination's cursor (created at `start` if it has none)."""
        ...

    def record(self, destination: str, outcome: Outcome, cursor: Cursor | None) -> bool:
        """Store an outcome and, with `cursor`, move the cursor to it in the same
        transaction, unless its generation changed or the stored cursor is past it
        (then returns False)."""
        ...

    def move_cursor(self, destination: str, position: int, at_ms: int) -> Cursor:
        """Move the cursor by hand (replay) at `at_ms`: a new generation."""
        ...

    def names(self, destination: str) -> dict[str, int]:
        """The names the destination learnt (`Outcome.names`), with when."""
        ...

    def due(self, destination: str, now_ms: int, limit: int) -> list[Pending]: ...

    def waiting(self, destination: str) -> int:
        """How many events wait in the retry schedule."""
        ...

    def held(self, destination: str) -> int:
        """How many of them wait for room under the destination's creation limits."""
        ...

    def dead_letters(self, destination: str, limit: int) -> list[DeadLetter]: ...

    def dead_letter_count(self, destination: str) -> int: ...

    def resend(self, destination: str, ids: list[int] | None, now_ms: int) -> int:
        """Move dead letters (all, or those ids) back into the retry schedule, due now."""
        ...

    def counts(self, destination: str, since_ms: int) -> dict[str, Counts]: ...

    def minutes(self, destination: str, since_ms: int) -> dict[int, Counts]:
        """The counts of every action together, per minute (epoch ms // 60 000)."""
        ...

    def errors(self, destination: str, limit: int) -> list[ErrorSample]: ...

    def add_alert(self, destination: str, alert: Alert) -> None: ...

    def alerts(self, destination: str, limit: int) -> list[Alert]: ...

    def retire(self, destination: str, now_ms: int) -> int:
        """What is kept once a destination is deleted: its waiting retries become dead
        letters (reason `deleted`), its cursor, counts, error samples and alerts go.
        Returns how many dead letters it keeps."""
        ...

    def purge(self, destination: str) -> int:
        """Delete the destination's dead letters; returns how many."""
        ...

    def close(self) -> None: ...


def open_delivery_store(settings: Settings) -> DeliveryStore:
    """The delivery bookkeeping: in PostgreSQL with a database URL, else in the data
    directory."""
    # imported here: both backends import this module's records
    if settings.database_url:
        from trackway.destinations.state.postgres import PostgresDeliveryStore

        return PostgresDeliveryStore(settings.database_url)
    from trackway.destinations.state.sqlite import SQLiteDeliveryStore

    return SQLiteDeliveryStore.of(settings.data_dir)
