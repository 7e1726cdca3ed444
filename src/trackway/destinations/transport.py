"""Outbound HTTP for destinations: one small seam, so tests can swap the network out.

A destination's actions build `Request`s; the delivery code sends them through a
`Transport` and classifies the `Response`. The real transport (`http.HttpTransport`)
refuses private, loopback and link-local addresses unless the destination allows them.
"""

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from trackway import codec

ErrorKind = Literal["timeout", "connection", "blocked"]


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request a destination wants sent."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @classmethod
    def json(
        cls, method: str, url: str, value: Any, headers: dict[str, str] | None = None
    ) -> "Request":
        """A request whose body is `value` as JSON (with its content type)."""
        return cls(
            method,
            url,
            {"content-type": "application/json", **(headers or {})},
            codec.dumps(value),
        )


@dataclass(frozen=True, slots=True)
class Response:
    """What the destination answered."""

    status: int
    headers: dict[str, str]
    body: bytes
    elapsed_ms: float


class TransportError(Exception):
    """No response: a timeout, a connection failure, or an address the guard refused.

    Timeouts and connection failures are retried; a refused address is not.
    """

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class Transport(Protocol):
    """Sends one request and returns the response; raises TransportError when none came.

    Implementations are safe to call from several threads at once.
    """

    def send(self, request: Request) -> Response: ...

    def close(self) -> None: ...
