"""Insert functions: a destination's Python `transform(event, settings)`, checked in the
server and run in a pool of worker processes (docs/insert-functions.md)."""

from trackway.functions.check import FunctionError, check_code
from trackway.functions.errors import DropEvent, EventNotSupported, RetryError, ValidationError
from trackway.functions.outcome import Failure, FailureKind, Outcome
from trackway.functions.pool import FunctionPool

__all__ = [
    "DropEvent",
    "EventNotSupported",
    "Failure",
    "FailureKind",
    "FunctionError",
    "FunctionPool",
    "Outcome",
    "RetryError",
    "ValidationError",
    "check_code",
]
