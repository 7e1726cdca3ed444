"""Two `trackway serve --role worker` processes on one PostgreSQL share four webhook
destinations, two each (fair shares of the leases); one is killed -9 and the other takes
all four over. Every event reaches every destination exactly once throughout."""

import signal
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import psycopg
import pytest
from cryptography.fernet import Fernet

from tests.destinations.fake_server import FakeServer
from tests.destinations.support import BATCHED, received_ids, webhook
from tests.support import Server, cli, start_server, until
from trackway import codec

TTL_S = 3
DESTINATIONS = [f"d{n}" for n in range(1, 5)]
BATCH = 50


def _holders(url: str) -> dict[str, int]:
    """Destination → the pid of the worker holding its lease (live leases only)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT key, owner FROM trackway.leases WHERE key LIKE 'destination:%'"
            " AND expires_at > now()"
        ).fetchall()
    return {key.removeprefix("destination:"): int(owner.split(":")[1]) for key, owner in rows}


def _shares(url: str) -> list[int]:
    return sorted(Counter(_holders(url).values()).values())


def _send(api: Server, batches: int) -> list[str]:
    sent: list[str] = []
    with api.client() as client:
        for _ in range(batches):
            ids = [str(uuid.uuid4()) for _ in range(BATCH)]
            body = {
                "writeKey": api.write_key,
                "batch": [
                    {"type": "track", "userId": "u", "event": "E", "messageId": i} for i in ids
                ],
            }
            assert client.post("/v1/batch", json=body).status_code == 200
            sent += ids
    return sent


def _by_destination(sink: FakeServer) -> dict[str, Counter[str]]:
    got: dict[str, Counter[str]] = {name: Counter() for name in DESTINATIONS}
    for request in list(sink.requests):
        got[request.path.strip("/")].update(received_ids([request]))
    return got


def _all_delivered(sink: FakeServer, sent: list[str]) -> bool:
    return all(set(c) >= set(sent) for c in _by_destination(sink).values())


@pytest.mark.slow
def test_two_workers_share_four_destinations_then_one_is_killed(
    pg_url: str, tmp_path: Path
) -> None:
    env = {
        "TRACKWAY_LEASE_TTL": str(TTL_S),
        "TRACKWAY_SECRET_KEY": Fernet.generate_key().decode(),
        "TRACKWAY_ADMIN_TOKEN": "tw_test",
    }
    database = ("--database", pg_url)
    processes: list[Server] = []
    with FakeServer() as sink:
        try:
            api = start_server(tmp_path / "api", *database, "--role", "api", env=env)
            processes.append(api)
            workspace = tmp_path / "workspace.yaml"
            specs = [
                webhook(
                    name,
                    f"{sink.url}/{name}",
                    subscriptions=BATCHED,
                    delivery={"batch_size": BATCH},
                )
                for name in DESTINATIONS
            ]
            workspace.write_bytes(codec.dumps({"destinations": specs}))
            cli("apply", str(workspace), *database, data_dir=tmp_path / "cli", env=env)

            first = start_server(tmp_path / "worker1", *database, "--role", "worker", env=env)
            processes.append(first)
            assert until(lambda: _shares(pg_url), [4]) == [4]  # alone: everything
            sent = _send(api, 10)

            # a second worker: the first hands two destinations over while events flow
            sending = threading.Thread(target=lambda: sent.extend(_send(api, 20)))
            sending.start()
            second = start_server(tmp_path / "worker2", *database, "--role", "worker", env=env)
            processes.append(second)
            started = time.monotonic()
            assert until(lambda: _shares(pg_url), [2, 2], seconds=20) == [2, 2]
            balanced_after = time.monotonic() - started
            sending.join()
            assert set(_holders(pg_url).values()) == {first.process.pid, second.process.pid}
            sent += _send(api, 10)
            assert until(lambda: _all_delivered(sink, sent), True, seconds=30)

            # kill -9 one: the other takes its two over once their leases expire
            first.stop(signal.SIGKILL)
            killed = time.monotonic()
            sent += _send(api, 10)
            assert until(lambda: _shares(pg_url), [4], seconds=20) == [4]
            taken_over_after = time.monotonic() - killed
            assert set(_holders(pg_url).values()) == {second.process.pid}
            sent += _send(api, 10)
            assert until(lambda: _all_delivered(sink, sent), True, seconds=30)

            time.sleep(1)  # nothing more arrives
            for name, counts in _by_destination(sink).items():
                assert set(counts) == set(sent), name
                twice = [i for i, n in counts.items() if n > 1]
                assert twice == [], f"{name}: {len(twice)} events delivered twice"
            print(
                f"balanced 2/2 {balanced_after:.1f} s after the second worker started;"
                f" all 4 held by the survivor {taken_over_after:.1f} s after kill -9;"
                f" {len(sent)} events x {len(DESTINATIONS)} destinations, each once"
            )
        finally:
            for process in processes:
                process.stop()
