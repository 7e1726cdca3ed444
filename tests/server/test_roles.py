"""`trackway serve --role api|worker`: API and worker processes sharing one storage, with
a webhook destination on a local fake server; a worker killed mid-delivery."""

import os
import signal
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import psycopg
import pytest
from cryptography.fernet import Fernet

from tests.destinations.fake_server import HANG, FakeServer
from tests.destinations.support import BATCHED, received_ids, webhook
from tests.support import Server, cli, start_server, until
from trackway import codec

TTL_S = 3
BATCH = 50
CONCURRENCY = 2
WINDOW = CONCURRENCY * BATCH
"""What one worker has in flight at most: the most a takeover can deliver again."""


def _env() -> dict[str, str]:
    return {
        "TRACKWAY_LEASE_TTL": str(TTL_S),
        "TRACKWAY_SECRET_KEY": Fernet.generate_key().decode(),
        "TRACKWAY_ADMIN_TOKEN": "tw_test",
    }


def _apply(data_dir: Path, sink: FakeServer, env: dict[str, str], *storage: str) -> None:
    """`trackway apply` of the webhook destination `hook` sending to `sink`."""
    spec = webhook(
        "hook",
        sink.url,
        subscriptions=BATCHED,
        delivery={"batch_size": BATCH, "concurrency": CONCURRENCY, "timeout": "60s"},
    )
    path = data_dir.parent / "workspace.yaml"
    path.write_bytes(codec.dumps({"destinations": [spec]}))
    cli("apply", str(path), *storage, data_dir=data_dir, env=env)


def _send(servers: list[Server], batches: int) -> list[str]:
    """Post `batches` batches of 50 events, spread over the servers; returns the ids of
    the acknowledged events."""
    acknowledged: list[str] = []
    clients = [s.client() for s in servers]
    try:
        for n in range(batches):
            server, client = servers[n % len(servers)], clients[n % len(clients)]
            ids = [str(uuid.uuid4()) for _ in range(BATCH)]
            body = {
                "writeKey": server.write_key,
                "batch": [
                    {"type": "track", "userId": "u", "event": "E", "messageId": i} for i in ids
                ],
            }
            if client.post("/v1/batch", json=body).status_code == 200:
                acknowledged += ids
    finally:
        for client in clients:
            client.close()
    return acknowledged


def _lease_holder(url: str) -> int | None:
    """The pid of the worker holding the destination's lease."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT owner FROM trackway.leases WHERE key = 'destination:hook'"
            " AND expires_at > now()"
        ).fetchone()
    return int(row[0].split(":")[1]) if row else None


@pytest.mark.slow
def test_two_apis_two_workers_then_the_lease_holder_is_killed(pg_url: str, tmp_path: Path) -> None:
    env = _env()
    database = ("--database", pg_url)
    processes: list[Server] = []
    with FakeServer() as sink:
        try:
            apis = [
                start_server(tmp_path / f"api{n}", *database, "--role", "api", env=env)
                for n in (1, 2)
            ]
            processes += apis
            _apply(tmp_path / "cli", sink, env, *database)
            workers = [
                start_server(tmp_path / f"worker{n}", *database, "--role", "worker", env=env)
                for n in (1, 2)
            ]
            processes += workers
            for worker in workers:  # a worker serves health, readiness and metrics only
                with worker.client() as c:
                    assert c.get("/ready").status_code == 200
                    assert c.post("/v1/track", json={}).status_code == 404

            # every acknowledged event delivered, none twice
            sent = _send(apis, 40)
            assert len(sent) == 40 * BATCH
            until(lambda: len(received_ids(sink.requests)), len(sent), seconds=30)
            delivered = received_ids(sink.requests)
            assert sorted(delivered) == sorted(sent)
            # what the workers recorded, seen through an API process and the CLI
            with apis[1].client() as c:
                headers = {"Authorization": "Bearer tw_test"}

                def view() -> tuple[int, int]:
                    got = c.get("/api/v1/destinations/hook/delivery", headers=headers).json()
                    return got["total"]["delivered"], got["lag_events"]

                assert until(view, (len(sent), 0)) == (len(sent), 0)
            listed = codec.loads(
                cli("destinations", "list", "--json", *database, data_dir=tmp_path / "cli")
            )
            assert [(d["name"], d["lag_events"]) for d in listed] == [("hook", 0)]

            # the holder hangs on a request and is killed: the other takes over
            holder_pid = _lease_holder(pg_url)
            [holder] = [w for w in workers if w.process.pid == holder_pid]
            [other] = [w for w in workers if w is not holder]
            sink.reply(HANG)
            before = len(sink.requests)
            more = _send(apis, 10)
            until(lambda: len(sink.requests) > before, True)
            holder.stop(signal.SIGKILL)
            killed_at = time.monotonic()
            more += _send(apis, 10)
            everything = set(sent + more)
            until(lambda: set(received_ids(sink.requests)) >= everything, True, seconds=30)
            taken_over = time.monotonic() - killed_at
            assert set(received_ids(sink.requests)) == everything
            assert _lease_holder(pg_url) == other.process.pid
            assert taken_over >= TTL_S * 0.5  # it waited for the lease to expire
            duplicates = sum(c - 1 for c in Counter(received_ids(sink.requests)).values())
            print(f"taken over after {taken_over:.1f} s; {duplicates} events delivered twice")
            assert 0 < duplicates <= WINDOW  # only the window in flight, again
        finally:
            for process in processes:
                process.stop()


def test_an_api_process_and_a_worker_process_on_one_data_directory(tmp_path: Path) -> None:
    env = _env()
    data = tmp_path / "data"
    with FakeServer() as sink:
        api = start_server(data, "--role", "api", env=env)
        worker: Server | None = None
        try:
            _apply(data, sink, env)
            worker = start_server(data, "--role", "worker", env=env)
            assert any(line.startswith("Role:") and "worker" in line for line in worker.banner)
            assert not any(line.startswith("Tracking API") for line in worker.banner)
            sent = _send([api], 4)
            until(lambda: len(received_ids(sink.requests)), len(sent))
            assert sorted(received_ids(sink.requests)) == sorted(sent)
            with httpx.Client(base_url=api.url) as c:  # the API runs no workers
                assert c.get("/health").status_code == 200
        finally:
            if worker is not None:
                worker.stop()
            api.stop()
    assert os.path.exists(data / "leases.db")
