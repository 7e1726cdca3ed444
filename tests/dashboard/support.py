"""Signing a test's HTTP client into a real server's dashboard, as a browser does."""

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from tests.support import Server

HTML = {"accept": "text/html"}


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def sign_in(client: httpx.Client, token: str) -> httpx.Response:
    """GET the sign-in form, then POST it with `token`."""
    form = client.get("/signin")
    return client.post("/signin", data={"csrf": csrf_of(form.text), "token": token})


@contextmanager
def signed_in(server: Server) -> Iterator[httpx.Client]:
    """A client holding a dashboard session."""
    with server.client() as client:
        assert sign_in(client, server.admin_token).status_code == 303
        yield client


def streamed(server: Server, event: dict[str, Any]) -> tuple[str, httpx.Response, list[str]]:
    """Open the default source's debugger stream, POST `event` to /v1/track, and read the
    stream until the event's messageId shows; (the stream's content type, the POST's
    response, the stream's lines)."""
    lines: list[str] = []
    content_type: list[str] = []
    connected, received = threading.Event(), threading.Event()

    def listen() -> None:
        with signed_in(server) as c, c.stream("GET", "/sources/default/stream") as r:
            content_type.append(r.headers["content-type"])
            for line in r.iter_lines():
                lines.append(line)
                connected.set()
                if event["messageId"] in line:
                    received.set()
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert connected.wait(10)
    with httpx.Client(base_url=server.url, auth=(server.write_key, "")) as c:
        posted = c.post("/v1/track", json=event)
    assert received.wait(10), lines
    listener.join(10)
    return content_type[0], posted, lines
