"""The Overview page and its JSON twin `GET /api/v1/overview` on a real server: events
sent with the real Python SDK counted per source and minute, a failing destination shown
red with its dead letters, and no secret in what the browser gets."""

import re
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from segment.analytics import Client

from tests.dashboard.support import HTML, signed_in
from tests.destinations.fake_server import FakeServer, Reply
from tests.support import Server, cli, until


def overview(server: Server) -> dict[str, Any]:
    r = httpx.get(
        f"{server.url}/api/v1/overview",
        headers={"authorization": f"Bearer {server.admin_token}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


def default_source(server: Server) -> dict[str, Any]:
    return next(s for s in overview(server)["sources"] if s["name"] == "default")


def test_the_overview_counts_the_last_hour_per_source(backend_server: Server) -> None:
    server = backend_server
    sdk = Client(server.write_key, host=server.url, sync_mode=True, max_retries=1)
    ids = [str(uuid.uuid4()) for _ in range(3)]
    for message_id in ids:
        sdk.track("u-1", "Viewed", {"n": 1}, message_id=message_id)
    sdk.track("u-1", "Viewed", {"n": 1}, message_id=ids[0])  # a duplicate
    with httpx.Client(base_url=server.url, auth=(server.write_key, "")) as c:
        batch = {"batch": [{"type": "track", "userId": "u-1", "messageId": "no-event"}]}
        # Every event of the batch refused: 400, and the event is kept as rejected.
        assert c.post("/v1/batch", json=batch).status_code == 400
    want = {"accepted": 3, "rejected": 1, "duplicates": 1}
    got = until(lambda: {k: default_source(server)[k] for k in want}, want)
    assert got == want
    data = overview(server)
    row = next(s for s in data["sources"] if s["name"] == "default")
    assert data["window_minutes"] == len(row["per_minute"]) == 60
    assert sum(row["per_minute"]) == 3
    assert row["per_minute"][-1] + row["per_minute"][-2] == 3  # the newest minutes
    assert abs(data["now_minute"] - time.time() // 60) <= 1
    assert [w["name"] for w in data["warehouses"]] == ["default"]
    assert data["syncs"] == []

    with signed_in(server) as c:
        page = c.get("/", headers=HTML).text
    cells = re.search(r'<th scope="row"><a href="/sources/default">.*?</tr>', page, re.DOTALL)
    assert cells, page
    numbers = re.findall(r'<td class="num">(.*?)</td>', cells.group(0))
    assert numbers[0] == "3" and numbers[2] == "1"
    # Rejected: red, linking to the source's debugger showing them.
    assert numbers[1] == '<a class="bad" href="/sources/default?status=rejected">1</a>'

    assert "default: 3 accepted events in the last 60 minutes" in page  # the chart's label
    assert 'href="/api/v1/overview"' in page  # the JSON twin
    assert server.write_key not in page and server.admin_token not in page


def test_a_failing_destination_is_red_on_the_overview(server: Server, tmp_path: Path) -> None:
    secret = "hook-secret-" + uuid.uuid4().hex
    with FakeServer() as sink:
        sink.reply(*[Reply(400, body=b"bad")] * 10)
        workspace = tmp_path / "workspace.yaml"
        workspace.write_text(
            "destinations:\n"
            "  - name: hook\n"
            "    type: webhook\n"
            f"    settings: {{url: '{sink.url}/in', shared_secret: '{secret}'}}\n"
            "    delivery: {allow_private_addresses: true}\n"
        )
        cli("apply", str(workspace), data_dir=server.data_dir)
        sdk = Client(server.write_key, host=server.url, sync_mode=True, max_retries=1)
        sdk.track("u-2", "Bought")

        def hook() -> dict[str, Any]:
            return next(d for d in overview(server)["destinations"] if d["name"] == "hook")

        assert until(lambda: hook()["dead_letters"], 1, seconds=20) == 1
    row = hook()
    assert row["attempts"] == 1 and row["delivery_rate"] == 0.0
    assert row["alert_open"] is False
    with signed_in(server) as c:
        page = c.get("/", headers=HTML).text
        twin = httpx.get(
            f"{server.url}/api/v1/overview",
            headers={"authorization": f"Bearer {server.admin_token}"},
        ).text
    cells = re.search(r'<th scope="row">hook.*?</tr>', page, re.DOTALL)
    assert cells, page
    assert '<span class="bad">0.0%</span>' in cells.group(0)
    assert '<span class="bad">1</span>' in cells.group(0)  # the dead letter
    for body in (page, twin):
        assert secret not in body and server.admin_token not in body
