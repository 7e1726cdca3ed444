"""The real transport: the address guard, timeouts, connection failures, responses."""

import socket
import time
from collections.abc import Iterator

import pytest

from tests.destinations.fake_server import CLOSE, HANG, FakeServer, Reply
from tests.destinations.support import resolve
from trackway import __version__
from trackway.destinations.http import HttpTransport, address_refusal
from trackway.destinations.transport import Request, TransportError


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    with FakeServer() as server:
        yield server


@pytest.fixture
def transport() -> Iterator[HttpTransport]:
    """A transport allowed to reach 127.0.0.1 (where the fake servers are)."""
    sender = HttpTransport(timeout_s=0.3, allow_private=True)
    yield sender
    sender.close()


@pytest.fixture
def guarded() -> Iterator[HttpTransport]:
    """A transport with the guard on, as for any destination by default."""
    sender = HttpTransport(timeout_s=0.3)
    yield sender
    sender.close()


def refused(transport: HttpTransport, url: str) -> TransportError:
    with pytest.raises(TransportError) as caught:
        transport.send(Request("GET", url))
    assert caught.value.kind == "blocked", caught.value.message
    return caught.value


def test_a_request_and_its_response(fake: FakeServer, transport: HttpTransport) -> None:
    fake.reply(Reply(201, {"X-Answer": "42", "Content-Type": "text/plain"}, b"created"))
    response = transport.send(
        Request("PUT", f"{fake.url}/hook?a=1", {"X-Custom": "yes"}, b'{"k":1}')
    )
    assert (response.status, response.body) == (201, b"created")
    assert response.headers["x-answer"] == "42"
    assert response.headers["content-type"] == "text/plain"
    assert response.elapsed_ms > 0
    (seen,) = fake.requests
    assert (seen.method, seen.path, seen.body) == ("PUT", "/hook?a=1", b'{"k":1}')
    assert seen.headers["x-custom"] == "yes"
    assert seen.headers["host"] == f"127.0.0.1:{fake.port}"
    assert seen.headers["content-length"] == "7"


def test_every_request_names_trackway_unless_it_names_itself(
    fake: FakeServer, transport: HttpTransport
) -> None:
    transport.send(Request("POST", f"{fake.url}/a", {}, b"{}"))
    transport.send(Request("POST", f"{fake.url}/b", {"User-Agent": "shop/2"}, b"{}"))
    first, second = fake.requests
    assert first.headers["user-agent"] == f"Trackway/{__version__}"
    assert [v for k, v in second.raw_headers if k.lower() == "user-agent"] == ["shop/2"]


def test_an_ipv6_address(transport: HttpTransport) -> None:
    with FakeServer(host="::1") as fake:
        assert transport.send(Request("POST", f"{fake.url}/v6", body=b"{}")).status == 200
    (seen,) = fake.requests
    assert seen.headers["host"] == f"[::1]:{fake.port}"


def test_errors_are_responses_with_their_status_headers_and_body(
    fake: FakeServer, transport: HttpTransport
) -> None:
    fake.reply(
        Reply(500, {}, b'{"error":"boom"}'),
        Reply(429, {"Retry-After": "7"}, b"slow down"),
    )
    first = transport.send(Request("POST", fake.url, body=b"{}"))
    second = transport.send(Request("POST", fake.url, body=b"{}"))
    assert (first.status, first.body) == (500, b'{"error":"boom"}')
    assert (second.status, second.headers["retry-after"], second.body) == (
        429,
        "7",
        b"slow down",
    )


def test_connections_are_kept_alive(fake: FakeServer, transport: HttpTransport) -> None:
    for _ in range(3):
        transport.send(Request("POST", fake.url, body=b"{}"))
    assert len(fake.requests) == 3
    assert len({seen.client for seen in fake.requests}) == 1  # one TCP connection


def test_redirects_are_not_followed(fake: FakeServer, transport: HttpTransport) -> None:
    fake.reply(Reply(302, {"Location": "http://169.254.169.254/latest"}, b""))
    response = transport.send(Request("GET", fake.url))
    assert (response.status, response.headers["location"]) == (
        302,
        "http://169.254.169.254/latest",
    )
    assert len(fake.requests) == 1


def test_a_server_that_hangs_past_the_timeout(fake: FakeServer, transport: HttpTransport) -> None:
    fake.reply(HANG)
    started = time.monotonic()
    with pytest.raises(TransportError) as caught:
        transport.send(Request("POST", fake.url, body=b"{}"))
    assert caught.value.kind == "timeout"
    assert "no answer within 0.3 s" in caught.value.message
    assert time.monotonic() - started < 3


def test_a_closed_port_is_a_connection_error(transport: HttpTransport) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TransportError) as caught:
        transport.send(Request("POST", f"http://127.0.0.1:{port}/", body=b"{}"))
    assert caught.value.kind == "connection"
    assert "127.0.0.1" in caught.value.message


def test_a_connection_closed_without_an_answer(fake: FakeServer, transport: HttpTransport) -> None:
    fake.reply(CLOSE)
    with pytest.raises(TransportError) as caught:
        transport.send(Request("POST", fake.url, body=b"{}"))
    assert caught.value.kind == "connection"
    assert "closed without a complete response" in caught.value.message


def test_an_unknown_host_is_a_connection_error(transport: HttpTransport) -> None:
    with pytest.raises(TransportError) as caught:
        transport.send(Request("GET", "http://no-such-host.invalid/"))
    assert caught.value.kind == "connection"
    assert "cannot resolve no-such-host.invalid" in caught.value.message


def test_the_guard_refuses_loopback_unless_private_addresses_are_allowed(
    fake: FakeServer, guarded: HttpTransport, transport: HttpTransport
) -> None:
    error = refused(guarded, fake.url)
    assert error.message == (
        "127.0.0.1 is a loopback address; set delivery.allow_private_addresses: true to allow it"
    )
    assert fake.requests == []
    assert transport.send(Request("GET", fake.url)).status == 200


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://10.1.2.3/", "private"),
        ("http://192.168.0.10:8080/", "private"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://[::1]/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://[fe80::1]/", "link-local"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
        ("http://240.0.0.1/", "reserved"),
        ("https://127.0.0.1/", "loopback"),
    ],
)
def test_the_guard_refuses_literal_addresses(guarded: HttpTransport, url: str, kind: str) -> None:
    error = refused(guarded, url)
    article = "an" if kind == "unspecified" else "a"
    assert f"is {article} {kind} address" in error.message


def test_the_guard_refuses_a_name_that_resolves_to_loopback(
    fake: FakeServer, guarded: HttpTransport
) -> None:
    error = refused(guarded, f"http://localhost:{fake.port}/")
    assert "localhost (127.0.0.1)" in error.message or "localhost (::1)" in error.message
    assert fake.requests == []


def test_the_guard_checks_every_address_of_a_name(
    monkeypatch: pytest.MonkeyPatch, guarded: HttpTransport
) -> None:
    resolve(monkeypatch, {"mixed.test": ["93.184.216.34", "10.0.0.7"]})
    error = refused(guarded, "https://mixed.test/hook")
    assert "mixed.test (10.0.0.7) is a private address" in error.message


def test_the_connection_goes_to_the_address_that_was_checked(
    monkeypatch: pytest.MonkeyPatch, fake: FakeServer, transport: HttpTransport
) -> None:
    """DNS rebinding: the name is resolved once; a second lookup would fail."""
    resolve(monkeypatch, {"svc.test": ["127.0.0.1"]}, once=True)
    response = transport.send(Request("GET", f"http://svc.test:{fake.port}/x"))
    assert response.status == 200
    assert fake.requests[0].headers["host"] == f"svc.test:{fake.port}"


@pytest.mark.parametrize(
    "url", ["ftp://example.com/file", "file:///etc/passwd", "gopher://example.com/", "example.com"]
)
def test_only_http_and_https(transport: HttpTransport, url: str) -> None:
    error = refused(transport, url)
    assert "only http and https" in error.message


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
        ("::ffff:8.8.8.8", None),
        ("100.64.0.1", "non-public"),
        ("172.16.5.4", "private"),
        ("fc00::1", "private"),
        ("ff02::1", "multicast"),
        ("2002:7f00:1::", "loopback"),  # 6to4 around 127.0.0.1
        ("64:ff9b::a00:1", "private"),  # NAT64 around 10.0.0.1
        ("fe80::1%eth0", "link-local"),
    ],
)
def test_address_refusal(address: str, kind: str | None) -> None:
    assert address_refusal(address) == kind
