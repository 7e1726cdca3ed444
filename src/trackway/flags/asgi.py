"""Answers of the flag endpoints, sent as bare ASGI messages.

The download and OFREP endpoints are answered by plain ASGI callables, not Starlette
routes: every SDK polls them, and the router, middleware, Request and Response objects
cost about as much CPU as the answers themselves (docs/decisions/0015-flags-throughput.md).
"""

import json

from starlette.types import Send

Headers = list[tuple[bytes, bytes]]
JSON: Headers = [(b"content-type", b"application/json")]


async def answer(send: Send, status: int, headers: Headers, body: bytes = b"") -> None:
    """Send a whole answer (a Content-Length unless 204 or 304, which have no body)."""
    if status != 304 and status != 204:
        headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def error(code: str, message: str) -> bytes:
    """The APIs' JSON error body, `{"code", "message"}`."""
    return json.dumps({"code": code, "message": message}).encode()
