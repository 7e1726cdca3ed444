"""`trackway send` and `trackway check` against real servers on 127.0.0.1."""

import http.server
import socket
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support import TRACKWAY, Server
from trackway import codec


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TRACKWAY, *args], capture_output=True, text=True, timeout=60)


def send(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return run("send", *args, "--write-key", server.write_key, "--data-plane", server.url)


def test_send_each_type_prints_a_json_result_and_is_stored(shared_server: Server) -> None:
    cases: list[tuple[list[str], dict[str, Any]]] = [
        (
            [
                "track",
                "--user-id",
                "u1",
                "--event",
                "Signed Up",
                "--properties",
                '{"plan": "pro"}',
                "--timestamp",
                "2026-11-22T10:00:00Z",
                "--message-id",
                "cli-1",
            ],
            {"event": "Signed Up", "properties": {"plan": "pro"}},
        ),
        (
            [
                "identify",
                "--anonymous-id",
                "a1",
                "--traits",
                '{"email": "a@b.c"}',
                "--message-id",
                "cli-2",
            ],
            {"traits": {"email": "a@b.c"}},
        ),
        (["page", "--user-id", "u1", "--name", "Home", "--message-id", "cli-3"], {"name": "Home"}),
        (
            ["screen", "--user-id", "u1", "--name", "Settings", "--message-id", "cli-4"],
            {"name": "Settings"},
        ),
        (
            ["group", "--user-id", "u1", "--group-id", "g1", "--message-id", "cli-5"],
            {"groupId": "g1"},
        ),
        (
            [
                "alias",
                "--user-id",
                "u1",
                "--previous-id",
                "a1",
                "--message-id",
                "cli-6",
                "--context",
                '{"locale": "de"}',
            ],
            {"previousId": "a1"},
        ),
    ]
    for args, expected in cases:
        done = send(shared_server, *args)
        assert done.returncode == 0, done.stderr
        result = codec.loads(done.stdout)
        assert result["success"] is True and result["type"] == args[0]
        message_id = args[args.index("--message-id") + 1]
        assert result["messageId"] == message_id
        [event] = [e for e in shared_server.events() if e["messageId"] == message_id]
        assert event["type"] == args[0]
        assert event["context"]["library"]["name"] == "trackway-cli"
        for key, value in expected.items():
            assert event[key] == value
    first = next(e for e in shared_server.events() if e["messageId"] == "cli-1")
    assert first["originalTimestamp"] == "2026-11-22T10:00:00Z"
    alias = next(e for e in shared_server.events() if e["messageId"] == "cli-6")
    assert alias["context"]["locale"] == "de"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["track", "--event", "E"], "either 'userId' or 'anonymousId' is required"),
        (["track", "--user-id", "u"], "'event' is required"),
        (["group", "--user-id", "u"], "'groupId' is required"),
        (["alias", "--anonymous-id", "a", "--previous-id", "p"], "'userId' are required"),
        (["identify", "--user-id", "u", "--event", "E"], "--event does not apply to identify"),
        (
            ["track", "--user-id", "u", "--event", "E", "--properties", "[1]"],
            "must be a JSON object",
        ),
        (["track", "--user-id", "u", "--event", "E", "--traits", "{bad"], "not valid JSON"),
        (
            ["track", "--user-id", "u", "--event", "E", "--timestamp", "yesterday"],
            "not an ISO 8601 timestamp",
        ),
        (
            ["track", "--user-id", "u", "--event", "E", "--timestamp", "2026-11-22T10:00:00"],
            "add a UTC offset",
        ),
        (
            ["track", "--user-id", "u", "--event", "E", "--message-id", "m" * 101],
            "longer than 100 characters",
        ),
        (["purchase", "--user-id", "u"], "Invalid value for 'TYPE'"),
    ],
)
def test_send_refuses_bad_input_before_sending(args: list[str], message: str) -> None:
    # A closed port: had anything been sent, the error would be "cannot reach".
    done = run(
        "send", *args, "--write-key", "k", "--data-plane", f"http://127.0.0.1:{closed_port()}"
    )
    assert done.returncode != 0
    assert message in done.stderr, done.stderr
    assert "cannot reach" not in done.stderr


def test_send_requires_a_write_key() -> None:
    done = run("send", "track", "--user-id", "u", "--event", "E")
    assert done.returncode == 2
    assert "--write-key" in done.stderr


def test_send_reports_the_servers_error(shared_server: Server) -> None:
    done = run(
        "send",
        "track",
        "--user-id",
        "u",
        "--event",
        "E",
        "--write-key",
        "wrong",
        "--data-plane",
        shared_server.url,
    )
    assert done.returncode == 1
    assert "401: invalid_write_key: the write key is not valid" in done.stderr


def test_send_to_a_closed_port() -> None:
    done = run(
        "send",
        "track",
        "--user-id",
        "u",
        "--event",
        "E",
        "--write-key",
        "k",
        "--data-plane",
        f"http://127.0.0.1:{closed_port()}",
    )
    assert done.returncode == 1
    assert "cannot reach" in done.stderr


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def web_server() -> Iterator[str]:
    """A plain HTTP server that is not Segment-compatible (it answers HTML 404s)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def check(key: str, url: str) -> tuple[int, dict[str, Any]]:
    done = run("check", "--write-key", key, "--data-plane", url, "--json")
    return done.returncode, codec.loads(done.stdout)


def test_check_tells_apart_every_case(shared_server: Server, web_server: str) -> None:
    before = len(shared_server.events())
    assert check(shared_server.write_key, shared_server.url) == (
        0,
        {
            "status": "ok",
            "key_verified": True,
            "message": f"{shared_server.url} accepts events for this write key",
        },
    )
    code, result = check("wrong", shared_server.url)
    assert (code, result["status"]) == (5, "invalid_key")
    assert "invalid_write_key" in result["message"]
    code, result = check("k", web_server)
    assert (code, result["status"]) == (4, "not_segment")
    assert "answered 501" in result["message"]
    code, result = check("k", f"http://127.0.0.1:{closed_port()}")
    assert (code, result["status"]) == (3, "unreachable")
    assert len(shared_server.events()) == before, "check must not send an event"
    assert shared_server.records(limit=10_000) == shared_server.records(limit=10_000)


def test_check_text_output(shared_server: Server) -> None:
    done = run("check", "--write-key", shared_server.write_key, "--data-plane", shared_server.url)
    assert done.returncode == 0
    assert done.stdout.startswith("OK: ")


class _CatchAll(http.server.BaseHTTPRequestHandler):
    """Answers 200 to any request with the body `body` (a sink that takes anything)."""

    body = b""

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(params=[b"{}", b'{"success": true}'], ids=["object", "success"])
def catch_all(request: pytest.FixtureRequest) -> Iterator[str]:
    """A server answering 200 to everything with one JSON body."""
    handler = type("Handler", (_CatchAll,), {"body": request.param})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_check_fails_against_a_server_that_answers_200_to_anything(catch_all: str) -> None:
    done = run("check", "--write-key", "k", "--data-plane", catch_all)
    assert done.returncode == 4, done.stdout
    [line] = done.stdout.splitlines()
    assert line.startswith(f"FAILED: {catch_all} is not a Segment-compatible endpoint: ")
    code, result = check("k", catch_all)
    assert (code, result["status"], result["key_verified"]) == (4, "not_segment", False)


def test_check_needs_analytics_js_settings_of_the_key(shared_server: Server) -> None:
    # Trackway's own settings, but of another key: the answer is not about this key.
    settings = httpx.get(f"{shared_server.url}/v1/projects/{shared_server.write_key}/settings")

    class Handler(_CatchAll):
        def do_GET(self) -> None:
            self.body = settings.content
            self._answer()

        def do_POST(self) -> None:
            self.body = b'{"success":true}'
            self._answer()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        code, result = check("other-key", url)
        assert (code, result["status"]) == (4, "not_segment")
        assert "the settings of another write key" in result["message"]
        assert check(shared_server.write_key, url)[0] == 0
    finally:
        server.shutdown()
        server.server_close()


def test_check_and_send_hint_at_a_data_plane_with_v1(shared_server: Server) -> None:
    hint = f"(the data plane is an origin without /v1: try --data-plane {shared_server.url})"
    done = run(
        "check", "--write-key", shared_server.write_key, "--data-plane", shared_server.url + "/v1/"
    )
    assert done.returncode == 4
    assert done.stdout.rstrip().endswith(hint), done.stdout
    done = run(
        "send",
        "track",
        "--user-id",
        "u",
        "--event",
        "E",
        "--write-key",
        shared_server.write_key,
        "--data-plane",
        shared_server.url + "/v1",
    )
    assert done.returncode == 1
    assert done.stderr.rstrip().endswith(hint), done.stderr
