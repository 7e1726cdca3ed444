"""Slow and idle clients against a real `trackway serve`: 200 slowloris connections
(one byte a second) and 2,000 idle ones do not keep a normal client from its answer,
and the server closes them after its header and idle timeouts; a request whose body
stops coming is cut off after the body timeout; beyond `--max-connections` a request
is answered 503 `too_many_connections`."""

import contextlib
import resource
import selectors
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support import Server, start_server
from trackway import codec

pytestmark = pytest.mark.slow

SLOWLORIS = 200
IDLE = 2000
HEADER_TIMEOUT = "4s"
IDLE_TIMEOUT = "6"
CLOSED_WITHIN_S = 60.0
"""How long the test waits for the server to close a connection (far above the
timeouts: the machine may be busy)."""
# A request that would take minutes at one byte a second: its headers never end in time.
DRIP = b"POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Slow: " + b"a" * 200


@pytest.fixture(autouse=True)
def enough_open_files() -> Iterator[None]:
    """This process opens 2,200 sockets; the server inherits the limit too."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 2 * (SLOWLORIS + IDLE) + 1024
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@contextmanager
def running(data_dir: Path, *options: str) -> Iterator[Server]:
    server = start_server(data_dir, *options)
    try:
        yield server
    finally:
        server.stop()


def connect(server: Server, count: int, stack: ExitStack) -> list[socket.socket]:
    address = httpx.URL(server.url)
    sockets = []
    for _ in range(count):
        sock = stack.enter_context(socket.create_connection((address.host, address.port)))
        sockets.append(sock)
    return sockets


def still_open(sock: socket.socket) -> bool:
    """Open, with nothing received: the server has neither answered nor closed it."""
    sock.setblocking(False)
    try:
        sock.recv(1, socket.MSG_PEEK)  # an answer, or b"" when closed
        return False
    except BlockingIOError:
        return True
    finally:
        sock.setblocking(True)


def received_until_closed(sockets: list[socket.socket]) -> list[bytes]:
    """What each socket received until the server closed it (raises if one stays open)."""
    received = {sock: b"" for sock in sockets}
    with selectors.DefaultSelector() as selector:
        for sock in sockets:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        deadline = time.monotonic() + CLOSED_WITHIN_S
        while selector.get_map() and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=1.0):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    chunk = b""
                received[sock] += chunk
                if not chunk:
                    selector.unregister(sock)
        assert not selector.get_map(), f"{len(selector.get_map())} connections still open"
    return [received[sock] for sock in sockets]


def drip(sockets: list[socket.socket], stop: threading.Event) -> None:
    """Slowloris: one more byte of the request on each socket every second."""
    for index in range(len(DRIP)):
        for sock in sockets:
            with contextlib.suppress(OSError):  # closed by the server
                sock.send(DRIP[index : index + 1])
        if stop.wait(1.0):
            return


def post_one(server: Server) -> tuple[httpx.Response, float]:
    """A normal client: one track call on a fresh connection, and how long it took."""
    event = {"type": "track", "userId": "u", "event": "Normal Client", "messageId": "normal-1"}
    started = time.monotonic()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        response = client.post("/v1/track", json=event, auth=(server.write_key, ""))
    return response, time.monotonic() - started


def test_slowloris_and_idle_connections_do_not_hold_up_a_normal_client(tmp_path: Path) -> None:
    options = ("--header-timeout", HEADER_TIMEOUT, "--idle-timeout", IDLE_TIMEOUT)
    with running(tmp_path / "data", *options) as server, ExitStack() as stack:
        idle = connect(server, IDLE, stack)
        slow = connect(server, SLOWLORIS, stack)
        stop = threading.Event()
        dripping = threading.Thread(target=drip, args=(slow, stop), daemon=True)
        dripping.start()
        try:
            response, took_s = post_one(server)
            # every slow and idle connection was still there when it was answered
            assert sum(still_open(sock) for sock in idle + slow) == IDLE + SLOWLORIS
            assert response.status_code == 200, response.text
            assert took_s < 1.0
            assert [e["event"] for e in server.events()] == ["Normal Client"]

            answers = received_until_closed(slow)
            assert {answer.split(b"\r\n", 1)[0] for answer in answers} == {
                b"HTTP/1.1 408 Request Timeout"
            }
            body = codec.loads(answers[0].split(b"\r\n\r\n", 1)[1])
            assert body == {
                "code": "request_timeout",
                "message": "the request's headers did not arrive within 4 s",
            }
            # an idle connection is closed without an answer: it asked nothing
            assert set(received_until_closed(idle)) == {b""}
        finally:
            stop.set()
            dripping.join()


def test_a_body_that_stops_coming_is_cut_off(tmp_path: Path) -> None:
    with running(tmp_path / "data", "--body-timeout", "2s") as server, ExitStack() as stack:
        (sock,) = connect(server, 1, stack)
        head = (
            "POST /v1/track HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000\r\n\r\n"
        )
        sock.sendall(head.encode() + b'{"type": "track", ')
        assert received_until_closed([sock]) == [b""]
        # the server goes on serving, and stored nothing of the cut-off request
        response, _ = post_one(server)
        assert response.status_code == 200
        assert [e["event"] for e in server.events()] == ["Normal Client"]


def test_beyond_max_connections_a_request_gets_503_until_connections_close(
    tmp_path: Path,
) -> None:
    options = ("--max-connections", "20", "--idle-timeout", "2")
    with running(tmp_path / "data", *options) as server, ExitStack() as stack:
        idle = connect(server, 20, stack)
        refused, _ = post_one(server)
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert refused.headers["connection"] == "close"
        assert refused.json() == {
            "code": "too_many_connections",
            "message": "the server has its maximum of 20 connections open"
            " (--max-connections); retry later",
        }
        # the idle connections time out, and a new connection is served again
        assert set(received_until_closed(idle)) == {b""}
        response, _ = post_one(server)
        assert response.status_code == 200
        assert [e["event"] for e in server.events()] == ["Normal Client"]
