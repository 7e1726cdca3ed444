"""Destinations in a running `trackway serve`: declared in a workspace file, fed by the
real Python SDK, inspected with the CLI and the admin API; kill -9 loses nothing."""

import hashlib
import hmac
import os
import re
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from segment.analytics import Client

from tests.destinations.fake_server import FakeServer, Reply
from tests.destinations.support import received_ids, worker_started
from tests.support import Server, cli, start_server, until
from trackway import codec

SECRET = "hook-secret-" + os.urandom(4).hex()


def workspace_file(path: Path, url: str, extra: str = "", batch: bool = False) -> Path:
    path.write_text(
        f"""
destinations:
  - name: hook
    type: webhook
    settings:
      url: {url}/in
      shared_secret: ${{TEST_HOOK_SECRET}}
    subscriptions:
      - name: tracks
        action: send
        if: type = "track" and event != "Ignored"
        batch: {str(batch).lower()}
    delivery:
      allow_private_addresses: true
      batch_size: 50
{extra}"""
    )
    return path


@pytest.fixture
def sink() -> Iterator[FakeServer]:
    with FakeServer() as server:
        yield server


def apply(server: Server, file: Path) -> str:
    return cli("apply", str(file), data_dir=server.data_dir, env={"TEST_HOOK_SECRET": SECRET})


def test_sdk_events_reach_a_declared_webhook(
    server: Server, sink: FakeServer, tmp_path: Path
) -> None:
    out = apply(server, workspace_file(tmp_path / "workspace.yaml", sink.url))
    assert "create destination 'hook' (webhook)" in out
    listed = until(
        lambda: codec.loads(cli("destinations", "list", "--json", data_dir=server.data_dir)),
        [
            {
                "name": "hook",
                "type": "webhook",
                "enabled": True,
                "subscriptions": 1,
                "lag_events": 0,
                "retry_waiting": 0,
                "dead_letters": 0,
                "success_rate": None,
                "alerting": False,
            }
        ],
    )
    assert listed[0]["name"] == "hook"
    # the server picks the destination up within about a second
    assert until(lambda: worker_started(server), True)
    client = Client(server.write_key, host=server.url, sync_mode=True, max_retries=1)
    for index in range(20):
        client.track(
            user_id="u1", event="Signed Up", properties={"n": index}, message_id=f"e2e-{index}"
        )
    client.track(user_id="u1", event="Ignored", message_id="e2e-ignored")
    client.identify(user_id="u1", traits={"plan": "pro"}, message_id="e2e-identify")
    client.flush()
    expected = sorted(f"e2e-{i}" for i in range(20))
    assert until(lambda: sorted(received_ids(sink.requests)), expected) == expected
    for request in sink.requests:
        signature = hmac.new(SECRET.encode(), request.body, hashlib.sha1).hexdigest()
        assert request.headers["x-signature"] == signature
        assert request.path == "/in"

    shown = codec.loads(cli("destinations", "show", "hook", data_dir=server.data_dir))
    assert shown["settings"]["shared_secret"] == "********"
    assert SECRET not in cli("destinations", "show", "hook", data_dir=server.data_dir)

    def delivered() -> object:
        view = codec.loads(
            cli("destinations", "delivery", "hook", "--json", data_dir=server.data_dir)
        )
        return view["total"]["delivered"], view["total"]["unsubscribed"]

    assert until(delivered, (20, 2)) == (20, 2)
    table = cli("destinations", "delivery", "hook", data_dir=server.data_dir)
    assert "send" in table and "successful delivery rate: 100.00%" in table

    # so does /metrics
    metrics = httpx.get(f"{server.url}/metrics").text
    assert (
        'trackway_destination_events_total{action="send",destination="hook",outcome="delivered"}'
        " 20.0" in metrics
    )
    assert 'trackway_destination_lag_events{destination="hook"} 0.0' in metrics
    assert 'trackway_destination_dead_letters{destination="hook"} 0.0' in metrics

    # the admin API says the same
    headers = {"authorization": f"Bearer {server.admin_token}"}
    with httpx.Client(base_url=server.url, headers=headers) as api:
        (row,) = api.get("/api/v1/destinations").json()
        assert row["name"] == "hook"
        view = api.get("/api/v1/destinations/hook/delivery", params={"window": "1h"}).json()
        assert view["total"]["delivered"] == 20
        assert (
            api.get("/api/v1/destinations/hook").json()["settings"]["shared_secret"] == "********"
        )
        assert api.get("/api/v1/destinations/nope").status_code == 404
        assert httpx.get(f"{server.url}/api/v1/destinations").status_code == 401
        bad = api.post("/api/v1/destinations/hook/test", content=b"[1]")
        assert bad.status_code == 400 and bad.json()["code"] == "invalid_parameter"
        tested = api.post(
            "/api/v1/destinations/hook/test",
            json={"event": {"type": "track", "event": "Tested", "messageId": "t-1"}},
        ).json()
        (action,) = tested["actions"]
        assert action["status"] == "delivered" and action["response"]["status"] == 200
        assert codec.loads(sink.requests[-1].body) == {
            "type": "track",
            "event": "Tested",
            "messageId": "t-1",
        }
        nothing = api.post(
            "/api/v1/destinations/hook/test",
            json={"event": {"type": "identify", "userId": "u"}, "dry_run": True},
        ).json()
        assert (
            nothing["message"] == "No subscription matches this event." and nothing["actions"] == []
        )


def test_cli_tester_dead_letters_resend_and_replay(
    server: Server, sink: FakeServer, tmp_path: Path
) -> None:
    apply(server, workspace_file(tmp_path / "workspace.yaml", sink.url))
    assert until(lambda: worker_started(server), True)
    event_file = tmp_path / "event.json"
    event_file.write_text('{"type": "track", "event": "Clicked", "messageId": "m-1"}')
    dry = cli(
        "destinations",
        "test",
        "hook",
        "--event",
        str(event_file),
        "--dry-run",
        data_dir=server.data_dir,
    )
    assert "tracks → send: not sent (dry run)" in dry
    assert f"{sink.url}/in" in dry and sink.requests == []
    other = tmp_path / "other.json"
    other.write_text('{"type": "page", "name": "Home"}')
    out = cli("destinations", "test", "hook", "--event", str(other), data_dir=server.data_dir)
    assert out.strip() == "No subscription matches this event."

    sink.reply(Reply(422, body=b'{"error": "unprocessable"}'))
    with httpx.Client(base_url=server.url, auth=(server.write_key, "")) as api:
        assert (
            api.post(
                "/v1/track", json={"userId": "u", "event": "Bad", "messageId": "dl-1"}
            ).status_code
            == 200
        )

    def count() -> list[dict[str, object]]:
        letters: list[dict[str, object]] = codec.loads(
            cli("destinations", "dead-letters", "hook", "--json", data_dir=server.data_dir)
        )
        return letters

    assert until(lambda: [d["event"]["messageId"] for d in count()], ["dl-1"]) == ["dl-1"]  # type: ignore[index]
    (letter,) = count()
    assert letter["reason"] == "discarded" and letter["error"] == "HTTP 422"
    view = cli("destinations", "delivery", "hook", data_dir=server.data_dir)
    assert "HTTP 422" in view and "unprocessable" in view  # the error with its response sample
    assert "1 dead letter(s) of 'hook' will be delivered again." in cli(
        "destinations", "resend", "hook", data_dir=server.data_dir
    )
    assert until(lambda: received_ids(sink.requests).count("dl-1"), 2) == 2
    assert until(lambda: count(), []) == []

    before = len(received_ids(sink.requests))
    out = cli("destinations", "replay", "hook", "--since", "1h", data_dir=server.data_dir)
    assert out.startswith("Replaying ")
    assert until(lambda: received_ids(sink.requests).count("dl-1"), 3) == 3
    assert len(received_ids(sink.requests)) > before


@pytest.mark.slow
def test_kill_9_while_delivering_loses_no_acknowledged_event(
    tmp_path: Path, sink: FakeServer
) -> None:
    server = start_server(tmp_path / "data")
    apply(server, workspace_file(tmp_path / "workspace.yaml", sink.url, batch=True))
    assert until(lambda: worker_started(server), True)
    acknowledged: list[str] = []
    stop = threading.Event()

    def send() -> None:
        with httpx.Client(base_url=server.url, auth=(server.write_key, ""), timeout=5) as api:
            for n in range(100_000):
                if stop.is_set():
                    return
                batch = [
                    {"type": "track", "userId": "u", "event": "E", "messageId": f"k-{n}-{i}"}
                    for i in range(20)
                ]
                try:
                    if api.post("/v1/batch", json={"batch": batch}).status_code == 200:
                        acknowledged.extend(e["messageId"] for e in batch)
                except httpx.TransportError:
                    return

    sender = threading.Thread(target=send)
    sender.start()
    until(lambda: len(received_ids(sink.requests)) > 500, True, seconds=30)
    server.process.send_signal(signal.SIGKILL)
    server.process.wait()
    stop.set()
    sender.join()
    server.stop()
    assert acknowledged
    restarted = start_server(tmp_path / "data")
    try:
        want = set(acknowledged)
        got = until(lambda: want <= set(received_ids(sink.requests)), True, seconds=60)
        assert got, (
            f"{len(want - set(received_ids(sink.requests)))} acknowledged events never delivered"
        )
    finally:
        restarted.stop()


def test_a_private_address_is_warned_about_at_apply_and_blocked_on_the_console(
    server: Server, sink: FakeServer, tmp_path: Path
) -> None:
    file = tmp_path / "workspace.yaml"
    file.write_text(
        f"""
destinations:
  - name: private
    type: webhook
    settings: {{url: "{sink.url}/in"}}
  - name: failing
    type: webhook
    settings: {{url: "{sink.url}/fail"}}
    delivery: {{allow_private_addresses: true}}
"""
    )
    out = cli("apply", str(file), data_dir=server.data_dir)
    assert out.splitlines()[-1] == (
        f"warning: destination 'private': settings.url '{sink.url}/in': 127.0.0.1 is a"
        " loopback address; its deliveries will be blocked unless you set"
        " delivery.allow_private_addresses: true"
    )
    assert "warning: destination 'failing'" not in out  # it allows private addresses
    assert until(lambda: worker_started(server, 2), True)
    sink.reply(*[Reply(503, body=b"down")] * 50)
    with httpx.Client(base_url=server.url, auth=(server.write_key, "")) as api:
        for n in range(5):
            event = {"userId": "u", "event": "E", "messageId": f"console-{n}"}
            assert api.post("/v1/track", json=event).status_code == 200

    def lines(prefix: str) -> list[str]:
        return [line for line in server.banner if line.startswith(prefix)]

    assert until(lambda: bool(lines("destination 'private': ")), True)
    assert until(lambda: bool(lines("destination 'failing': ")), True)
    # one line per window that failed, at most one per destination every 10 s (the five
    # events may come in several windows)
    (private,) = lines("destination 'private': ")
    assert re.fullmatch(
        r"destination 'private': [1-5] blocked \(blocked: 127\.0\.0\.1 is a loopback address;"
        r" set delivery\.allow_private_addresses: true on destination 'private' to allow it\)",
        private,
    ), private
    assert re.fullmatch(
        r"destination 'failing': [1-5] retrying \(HTTP 503\)", lines("destination 'failing': ")[0]
    )
