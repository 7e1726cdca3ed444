"""How `trackway serve` treats connections: the time limits and the cap uvicorn lacks.

uvicorn (with httptools, which `uvicorn[standard]` installs) closes a connection that
stays idle `timeout_keep_alive` seconds after a response, but arms that timer only
after a first response and stops it at the first byte of the next request. So a
client that opens a connection and sends nothing, or sends its request one byte a
second (slowloris), holds the connection for as long as it likes. uvicorn's
`limit_concurrency` counts requests in progress as well as connections, and answers
plain text.

`LimitedHttpProtocol` is uvicorn's httptools protocol with, per connection:
- the idle timeout armed from the moment it opens too, not only after a response;
- a header deadline: a request's headers must all arrive within `header_timeout_s` of
  its first byte, or it is answered `408` and the connection closed (within a second
  after: deadlines are checked once a second);
- a body deadline: its body must arrive within `body_timeout_s` of its headers, or the
  connection is closed (the handler sees the client disconnect);
- a cap: beyond `max_connections` open connections, a new connection's request is
  answered `503 too_many_connections` and the connection closed.
"""

import asyncio
import math
import resource
from dataclasses import dataclass
from typing import ClassVar

from uvicorn._types import ASGIReceiveCallable, ASGISendCallable, Scope
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from trackway import codec

FILES_RESERVE = 1024
"""Open files kept free of connections: the databases, the warehouse, outbound sockets."""
_SWEEP_EVERY_S = 1.0


@dataclass(frozen=True)
class ConnectionLimits:
    """The time limits and the cap of `LimitedHttpProtocol` (defaults of `Settings`)."""

    idle_timeout_s: int
    header_timeout_s: float
    body_timeout_s: float
    max_connections: int


def protocol_class(limits: ConnectionLimits) -> type[asyncio.Protocol]:
    """The protocol uvicorn runs (its `http` setting), with these limits."""

    class Limited(LimitedHttpProtocol):
        pass

    Limited.limits = limits
    Limited.refuse = _TooManyConnections(limits.max_connections)
    return Limited


def open_file_limit(max_connections: int) -> int:
    """Raise this process's open-file limit to fit `max_connections` (and the files
    Trackway opens besides), up to the hard limit; the cap that fits in it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max_connections + FILES_RESERVE
    if soft != resource.RLIM_INFINITY and soft < wanted:
        soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    if soft == resource.RLIM_INFINITY:
        return max_connections
    return max(1, min(max_connections, soft - FILES_RESERVE))


class LimitedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with an idle timeout from the start, header and body
    deadlines, and a connection cap (`protocol_class` sets them).

    A request's deadline is a number on its connection, checked once a second for all
    connections together: a timer per request (armed and cancelled) cost about ten
    times more on the request path.
    """

    limits: ClassVar[ConnectionLimits]
    refuse: ClassVar["_TooManyConnections"]
    _sweeping: ClassVar[bool] = False
    _deadline_at = math.inf
    _reading_body = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            # Read the request, then answer it: closing at once would leave the client
            # with a reset instead of a reason.
            self.app = self.refuse
        self.timeout_keep_alive_task = self.loop.call_later(
            self.limits.idle_timeout_s, self.timeout_keep_alive_handler
        )
        if not type(self)._sweeping:
            type(self)._sweeping = True
            self.loop.call_later(_SWEEP_EVERY_S, self._sweep)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_body = False
        self._deadline_at = self.loop.time() + self.limits.header_timeout_s

    def on_headers_complete(self) -> None:
        self._reading_body = True
        self._deadline_at = self.loop.time() + self.limits.body_timeout_s
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._deadline_at = math.inf
        super().on_message_complete()

    def _sweep(self) -> None:
        """Close the connections past their deadline; again in a second while any is open."""
        now = self.loop.time()
        for connection in list(self.connections):
            if isinstance(connection, LimitedHttpProtocol) and connection._deadline_at <= now:
                connection._late()
        if self.connections:
            self.loop.call_later(_SWEEP_EVERY_S, self._sweep)
        else:
            type(self)._sweeping = False

    def _late(self) -> None:
        self._deadline_at = math.inf
        if self.transport.is_closing():
            return
        if not self._reading_body:
            self.transport.write(_request_timeout(self.limits.header_timeout_s))
        # Else the handler is reading the body: it alone may answer, so the connection
        # closes and the handler sees the client gone.
        self.transport.close()


def _request_timeout(seconds: float) -> bytes:
    body = codec.dumps(
        {
            "code": "request_timeout",
            "message": f"the request's headers did not arrive within {seconds:g} s",
        }
    )
    return (
        b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
        b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
    )


class _TooManyConnections:
    """The ASGI app that answers a connection beyond the cap."""

    def __init__(self, max_connections: int) -> None:
        self._body = codec.dumps(
            {
                "code": "too_many_connections",
                "message": f"the server has its maximum of {max_connections} connections"
                " open (--max-connections); retry later",
            }
        )

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", b"%d" % len(self._body)),
                    (b"retry-after", b"1"),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": self._body, "more_body": False})
