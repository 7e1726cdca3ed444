"""Signing a test's HTTP client into a real server's dashboard, as a browser does."""

import re
from collections.abc import Iterator
from contextlib import contextmanager

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
