"""A local HTTP server on 127.0.0.1 that plays Segment's tracking API (`POST /v1/batch`)."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from trackway import codec

OK = (200, {}, b'{"success": true}')


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeSegment:
    """Answers each request with the next scripted answer, then with Segment's 200.

    `failing` answers (status, headers, body) to every request while set.
    """

    url: str = ""
    requests: list[Request] = field(default_factory=list)
    script: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    failing: tuple[int, dict[str, str], bytes] | None = None

    def events(self) -> list[dict[str, Any]]:
        """Every event of every request answered with a 200."""
        return [e for r in self.accepted() for e in r.body["batch"]]

    def accepted(self) -> list[Request]:
        return [r for r in self.requests if r.headers.get("x-answered") == "200"]


@contextmanager
def fake_segment() -> Iterator[FakeSegment]:
    fake = FakeSegment()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with lock:
                answer = fake.failing or (fake.script.pop(0) if fake.script else OK)
                headers = {k.lower(): v for k, v in self.headers.items()}
                headers["x-answered"] = str(answer[0])
                fake.requests.append(Request(self.path, headers, codec.loads(body)))
            status, extra, payload = answer
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    # A short poll interval makes `shutdown()` quick.
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
