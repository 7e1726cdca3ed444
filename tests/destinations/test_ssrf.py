"""SSRF: a destination URL pointing at this machine in every disguise is refused unless
the destination allows private addresses, and no connection is made: a bare listener
on 127.0.0.1 (which never answers) sees none. With private addresses allowed, the same
URLs do reach it, so each disguise really means 127.0.0.1."""

import socket
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from tests.destinations.fake_server import FakeServer, Reply
from tests.destinations.support import Workspace, resolve, track, webhook
from tests.support import until
from trackway.destinations import config, private_targets
from trackway.destinations.http import HttpTransport
from trackway.destinations.transport import Request, TransportError

# Each a way of writing 127.0.0.1 (the listener's port is added).
DISGUISES = [
    ("127.0.0.1", "127.0.0.1 is a loopback address"),
    ("localhost", "localhost (127.0.0.1) is a loopback address"),
    ("0.0.0.0", "0.0.0.0 is an unspecified address"),  # Linux connects it to 127.0.0.1
    ("0", "0 (0.0.0.0) is an unspecified address"),
    ("2130706433", "2130706433 (127.0.0.1) is a loopback address"),  # decimal
    ("0x7f000001", "0x7f000001 (127.0.0.1) is a loopback address"),  # hexadecimal
    ("017700000001", "017700000001 (127.0.0.1) is a loopback address"),  # octal
    ("127.1", "127.1 (127.0.0.1) is a loopback address"),
    ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1 is a loopback address"),  # IPv4-mapped
    ("[::ffff:7f00:1]", "::ffff:7f00:1 (::ffff:127.0.0.1) is a loopback address"),
    ("loopback.test", "loopback.test (127.0.0.1) is a loopback address"),  # a name
]
REMEDY = "; set delivery.allow_private_addresses: true to allow it"


class Listener:
    """A TCP socket listening on 127.0.0.1 that never answers, and tells whether
    anything connected to it."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port: int = self.sock.getsockname()[1]

    def connected(self) -> bool:
        """Whether a connection came in (since the last call)."""
        try:
            conn, _ = self.sock.accept()
        except BlockingIOError:
            return False
        conn.close()
        return True


@pytest.fixture
def listener() -> Iterator[Listener]:
    opened = Listener()
    yield opened
    opened.sock.close()


@pytest.fixture(autouse=True)
def loopback_name(monkeypatch: pytest.MonkeyPatch) -> None:
    resolve(monkeypatch, {"loopback.test": ["127.0.0.1"]})


def send(url: str, allow_private: bool) -> TransportError:
    transport = HttpTransport(timeout_s=0.3, allow_private=allow_private)
    try:
        with pytest.raises(TransportError) as caught:
            transport.send(Request("POST", url, body=b"{}"))
    finally:
        transport.close()
    return caught.value


@pytest.mark.parametrize(("host", "message"), DISGUISES)
def test_every_disguise_of_loopback_is_refused_without_a_connection(
    listener: Listener, host: str, message: str
) -> None:
    url = f"http://{host}:{listener.port}/hook"
    error = send(url, allow_private=False)
    assert (error.kind, error.message) == ("blocked", message + REMEDY)
    assert not listener.connected()
    # allowed, the same URL reaches the listener (which never answers)
    assert send(url, allow_private=True).kind == "timeout"
    assert listener.connected()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://[::1]/", "::1 is a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("http://[::ffff:169.254.169.254]/", "::ffff:169.254.169.254 is a link-local address"),
        ("http://[fd00:ec2::254]/", "fd00:ec2::254 is a private address"),  # EC2's IMDS on IPv6
    ],
)
def test_loopback_v6_and_the_cloud_metadata_addresses_are_refused(url: str, message: str) -> None:
    error = send(url, allow_private=False)
    assert (error.kind, error.message) == ("blocked", message + REMEDY)


def test_an_octal_dotted_address_is_refused_as_an_invalid_url(listener: Listener) -> None:
    """httpx does not parse 0177.0.0.1 (which the C library reads as 127.0.0.1)."""
    url = f"http://0177.0.0.1:{listener.port}/"
    for allow_private in (False, True):
        error = send(url, allow_private)
        assert error.kind == "blocked"
        assert error.message.startswith(f"invalid URL {url!r}: Invalid IPv4 address")
    assert not listener.connected()


def test_a_name_rebound_to_loopback_after_the_check_is_not_connected_to(
    monkeypatch: pytest.MonkeyPatch, listener: Listener
) -> None:
    """The guard resolves once and connects to the address it checked: a DNS server
    answering a public address first and 127.0.0.1 next does not get the connection."""
    resolve(monkeypatch, {"rebind.test": ["93.184.216.34"]}, then={"rebind.test": ["127.0.0.1"]})
    error = send(f"http://rebind.test:{listener.port}/", allow_private=False)
    assert error.kind in ("timeout", "connection")
    assert "rebind.test" in error.message
    assert not listener.connected()


def test_a_redirect_to_loopback_is_not_followed(listener: Listener) -> None:
    with FakeServer() as allowed:
        allowed.reply(Reply(302, {"Location": f"http://127.0.0.1:{listener.port}/"}, b""))
        transport = HttpTransport(timeout_s=0.3, allow_private=True)
        try:
            response = transport.send(Request("POST", f"{allowed.url}/hook", body=b"{}"))
        finally:
            transport.close()
    assert response.status == 302  # the destination's answer, a failure
    assert not listener.connected()


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    ws = Workspace(tmp_path)
    yield ws
    ws.close()


def test_a_delivery_to_a_disguised_address_is_dead_lettered_with_the_reason(
    workspace: Workspace, listener: Listener
) -> None:
    url = f"http://2130706433:{listener.port}/hook"
    workspace.apply(webhook("hook", url, delivery={"allow_private_addresses": False}))
    deliveries = workspace.start()
    workspace.send(track())
    store = deliveries.delivery_store
    assert until(lambda: store.dead_letter_count("hook"), 1) == 1
    assert store.dead_letters("hook", 1)[0].error == (
        "blocked: 2130706433 (127.0.0.1) is a loopback address;"
        " set delivery.allow_private_addresses: true on destination 'hook' to allow it"
    )
    assert not listener.connected()


def test_apply_warns_about_every_disguise_and_an_invalid_url(
    tmp_path: Path, listener: Listener
) -> None:
    hosts = [host for host, _ in DISGUISES] + ["0177.0.0.1"]
    refused = {"allow_private_addresses": False}
    specs = [
        msgspec.convert(
            webhook(f"d{n}", f"http://{host}:{listener.port}/", delivery=refused),
            config.DestinationSpec,
        )
        for n, host in enumerate(hosts)
    ]
    found = private_targets.warnings(specs, tmp_path)
    for n, (host, message) in enumerate(DISGUISES):
        assert found[n] == (
            f"warning: destination 'd{n}': settings.url 'http://{host}:{listener.port}/':"
            f" {message}; its deliveries will be blocked unless you set"
            " delivery.allow_private_addresses: true"
        )
    assert found[len(DISGUISES)].startswith(
        f"warning: destination 'd{len(DISGUISES)}': settings.url"
        f" 'http://0177.0.0.1:{listener.port}/': not a valid URL (Invalid IPv4 address"
    )
    assert len(found) == len(hosts)
    assert not listener.connected()
