"""A full disk under a running `trackway serve`: its data directory on a 16 MB tmpfs.

While the disk is full, clients get 503 `storage_unavailable` (never a 200 for what was
not stored) and the server stays up; once space returns it recovers by itself, every
acknowledged event is in the log exactly once, the file is intact, and the warehouse
loader and a destination's delivery resume where they stopped.
"""

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.destinations.fake_server import FakeServer
from tests.destinations.support import received_ids, worker_started
from tests.destinations.test_end_to_end import SECRET, workspace_file
from tests.support import Server, cli, fill, small_disk, start_server, until
from trackway import codec

pytestmark = pytest.mark.slow

BATCH = 50
FULL_FOR_S = 5.0
"""Long enough for the background writers (delivery cursors, warehouse, leases) to
meet the full disk too."""


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    with small_disk(tmp_path / "disk") as mount:
        yield mount


def post(client: httpx.Client, server: Server, ids: list[str]) -> httpx.Response:
    events = [{"type": "track", "userId": "u", "event": "Disk Tested", "messageId": m} for m in ids]
    return client.post("/v1/batch", json={"batch": events}, auth=(server.write_key, ""))


def test_a_full_disk_refuses_with_503_and_recovers_by_itself(disk: Path, tmp_path: Path) -> None:
    with FakeServer() as sink:
        server = start_server(disk / "data")
        try:
            run_scenario(server, sink, tmp_path)
        finally:
            server.stop()
    check = sqlite3.connect(disk / "data" / "log.db")
    try:
        assert check.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        check.close()


def run_scenario(server: Server, sink: FakeServer, tmp_path: Path) -> None:
    cli(
        "apply",
        str(workspace_file(tmp_path / "workspace.yaml", sink.url)),
        data_dir=server.data_dir,
        env={"TEST_HOOK_SECRET": SECRET},
    )
    assert until(lambda: worker_started(server), True)
    acked: list[str] = []
    refused: list[str] = []
    seq = 0

    def send() -> httpx.Response:
        nonlocal seq
        ids = [f"disk-{seq}-{i}" for i in range(BATCH)]
        seq += 1
        response = post(client, server, ids)
        if response.status_code == 200:
            acked.extend(ids)
        else:
            assert response.status_code == 503, response.text
            assert response.json()["code"] == "storage_unavailable", response.text
            refused.extend(ids)
        return response

    with httpx.Client(base_url=server.url, timeout=10) as client:
        for _ in range(5):
            assert send().status_code == 200
        filler = server.data_dir / "filler"
        fill(filler)
        # Accepted just before: the loader and the delivery worker meet the full disk.
        for _ in range(5):
            send()
        # The disk is full: requests are refused until space returns, the server lives.
        deadline = time.monotonic() + FULL_FOR_S
        statuses = []
        while time.monotonic() < deadline:
            statuses.append(send().status_code)
        assert statuses[-10:] == [503] * 10, statuses
        assert client.get("/health").status_code == 200
        assert server.process.poll() is None
        filler.unlink()
        assert until(lambda: send().status_code, 200, seconds=30) == 200
        for _ in range(5):
            assert send().status_code == 200
    # Each failure was reported as the full disk it was, not a failed ROLLBACK after it.
    assert any("disk is full" in line for line in server.banner)
    assert not any("no transaction is active" in line for line in server.banner)

    stored = [e["messageId"] for e in server.events()]
    assert sorted(stored) == sorted(set(stored)), "an event is stored twice"
    assert set(acked) <= set(stored), "an acknowledged event is missing"
    assert until(lambda: sorted(set(received_ids(sink.requests))), sorted(stored), 30) == sorted(
        stored
    )

    def warehouse_lag() -> object:
        (row,) = codec.loads(cli("warehouse", "status", "--json", data_dir=server.data_dir))
        return row["lag_events"]

    assert until(warehouse_lag, 0, seconds=30) == 0
