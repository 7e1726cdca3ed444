"""A real HTTP server on the loopback interface playing a third-party API in tests.

It records every request and answers from a queue of replies (when the queue is empty,
`answer`'s reply: 200 "ok" unless given): a status with headers and a body, a hang (no
answer until the server stops), or a closed connection.
"""

import socket
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Literal


@dataclass(frozen=True)
class Reply:
    """What the server answers to one request."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"


HANG: Literal["hang"] = "hang"
"""Read the request, then answer nothing until the server stops."""
CLOSE: Literal["close"] = "close"
"""Read the request, then close the connection without answering."""


@dataclass(frozen=True)
class Received:
    """One request as the server saw it (header names in lower case)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    raw_headers: list[tuple[str, str]]
    client: tuple[str, int]  # the client's address and port: one per connection


class FakeServer:
    """Serves on 127.0.0.1 in a thread; use it as a context manager.

    `port` 0 picks a free port; pass an earlier server's port to play a server that
    comes back after being down. `host` may be "::1" (IPv6).
    """

    def __init__(
        self,
        port: int = 0,
        host: str = "127.0.0.1",
        answer: Callable[[Received], Reply] = lambda _request: Reply(),
    ) -> None:
        self.answer = answer
        """The reply to a request when none is queued."""
        self.requests: list[Received] = []
        self._replies: deque[Reply | Literal["hang", "close"]] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        server_class = _IPv6Server if ":" in host else ThreadingHTTPServer
        self._http = server_class((host, port), _handler(self))
        self._host = f"[{host}]" if ":" in host else host
        self._http.daemon_threads = True
        self._thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def port(self) -> int:
        return self._http.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    def reply(self, *replies: Reply | Literal["hang", "close"]) -> None:
        """Queue the answers to the next requests, in order."""
        with self._lock:
            self._replies.extend(replies)

    def __enter__(self) -> "FakeServer":
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopping.set()
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=10)

    def _next(self, request: Received) -> Reply | Literal["hang", "close"]:
        with self._lock:
            self.requests.append(request)
            return self._replies.popleft() if self._replies else self.answer(request)


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def _handler(server: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real APIs
        disable_nagle_algorithm = True  # headers and body are written separately

        def handle_one(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            if len(body) < length:
                # The sender went away mid-request (a killed server): a real API never
                # sees such a request as received either.
                self.close_connection = True
                return
            received = Received(
                self.command,
                self.path,
                {name.lower(): value for name, value in self.headers.items()},
                body,
                list(self.headers.items()),
                (self.client_address[0], self.client_address[1]),
            )
            reply = server._next(received)
            if reply == HANG:
                server._stopping.wait(30)
                self.close_connection = True
                return
            if reply == CLOSE:
                self.close_connection = True
                return
            assert isinstance(reply, Reply)
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_one

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler
