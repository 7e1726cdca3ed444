"""A destination limited to some sources (`sources:`), in a running `trackway serve` on
both storage backends: only their events are delivered and counted; the tester and the
admin API know it; an unknown source is refused at apply."""

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.destinations.fake_server import FakeServer
from tests.destinations.support import received_ids
from tests.support import TRACKWAY, Server, cli, start_server, until
from trackway import codec


@pytest.fixture(params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    extra = ("--database", request.getfixturevalue("pg_url")) if request.param == "postgres" else ()
    srv = start_server(tmp_path / "data", *extra)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def sink() -> Iterator[FakeServer]:
    with FakeServer() as fake:
        yield fake


def workspace(path: Path, url: str, sources: str) -> Path:
    path.write_text(
        f"""
destinations:
  - name: hook
    type: webhook
    sources: {sources}
    settings: {{url: "{url}/in"}}
    delivery: {{allow_private_addresses: true}}
"""
    )
    return path


def trackway(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TRACKWAY, *args, "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        env={**os.environ, **server.env},
        timeout=60,
    )


def send(server: Server, write_key: str, *message_ids: str) -> None:
    with httpx.Client(base_url=server.url, auth=(write_key, "")) as api:
        batch = [
            {"type": "track", "userId": "u", "event": "E", "messageId": m} for m in message_ids
        ]
        assert api.post("/v1/batch", json={"batch": batch}).status_code == 200


def test_a_destination_gets_only_the_events_of_its_sources(
    server: Server, sink: FakeServer, tmp_path: Path
) -> None:
    other_key = codec.loads(
        cli("sources", "create", "flags", "--json", data_dir=server.data_dir, env=server.env)
    )["write_key"]

    refused = trackway(server, "apply", str(workspace(tmp_path / "bad.yaml", sink.url, "[nope]")))
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "Error: destination 'hook': sources[0]: no source named 'nope' (there are: default, flags)"
    )

    out = cli(
        "apply",
        str(workspace(tmp_path / "w.yaml", sink.url, "[default]")),
        data_dir=server.data_dir,
        env=server.env,
    )
    assert "create destination 'hook' (webhook)" in out
    # events of the other source first: once the last default event is delivered, the
    # worker has read past them
    send(server, other_key, "flag-1", "flag-2")
    send(server, server.write_key, "web-1", "web-2", "web-3")
    want = ["web-1", "web-2", "web-3"]
    assert until(lambda: sorted(received_ids(sink.requests)), want) == want

    headers = {"authorization": f"Bearer {server.admin_token}"}
    with httpx.Client(base_url=server.url, headers=headers) as api:

        def view() -> dict[str, object]:
            found: dict[str, object] = api.get("/api/v1/destinations/hook/delivery").json()
            return found

        assert until(lambda: view()["lag_events"], 0) == 0
        shown = view()
        assert shown["sources"] == ["default"]
        total = shown["total"]
        assert isinstance(total, dict)
        assert (total["delivered"], total["unsubscribed"], total["skipped"]) == (3, 0, 0)
        assert "from default" in cli(
            "destinations", "delivery", "hook", data_dir=server.data_dir, env=server.env
        )

        event = tmp_path / "event.json"
        event.write_text('{"type": "track", "event": "E", "messageId": "t-1"}')
        tester = ["destinations", "test", "hook", "--event", str(event), "--dry-run"]
        assert cli(
            *tester, "--source", "flags", data_dir=server.data_dir, env=server.env
        ).strip() == (
            "This destination does not take events from source 'flags' (its sources: default)."
        )
        taken = cli(*tester, "--source", "default", data_dir=server.data_dir, env=server.env)
        assert "not sent (dry run)" in taken
        unknown = trackway(server, *tester, "--source", "nope")
        assert unknown.returncode == 1 and "no source named 'nope'" in unknown.stderr

        assert api.get("/api/v1/destinations/hook").json()["sources"] == ["default"]
        tested = api.post(
            "/api/v1/destinations/hook/test",
            json={"event": {"type": "track", "event": "E"}, "dry_run": True, "source": "flags"},
        ).json()
        assert tested["actions"] == [] and "source 'flags'" in tested["message"]
        assert sorted(received_ids(sink.requests)) == want
