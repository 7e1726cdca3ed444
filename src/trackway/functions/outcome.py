"""What an insert function made of one event; also the worker's reply on the wire."""

from typing import Any, Literal

import msgspec

FailureKind = Literal["exception", "timeout", "crash", "memory", "invalid_result"]


class Failure(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Why the function produced nothing for an event. `retry` is true when trying the
    event again later may succeed: `RetryError`, a timeout or a crash of the worker."""

    kind: FailureKind
    message: str
    retry: bool = False


class Outcome(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The events to send on for one input event (none: dropped), or why it failed."""

    events: list[dict[str, Any]] = []
    failure: Failure | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None
