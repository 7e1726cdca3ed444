"""kill -9 in the middle of a run (of `trackway syncs run`, of the server running a
scheduled sync): the next run delivers every change, and re-sends, under the same
messageIds, only the batches that were in flight."""

import signal
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.reverse_etl.conftest import Env, model, track
from tests.reverse_etl.engines import Engine
from tests.reverse_etl.fake_segment import fake_segment
from tests.support import cli, start_server, until
from trackway import codec
from trackway.reverse_etl.deliver import IN_FLIGHT
from trackway.reverse_etl.errors import SyncBusy

ROWS = 12_000
HELD_FROM = 3  # requests 1 and 2 are answered; 3 and later are stored, never answered


@dataclass
class Proxy:
    url: str = ""
    answered: list[int] = field(default_factory=list)
    """Events per answered request."""
    held: list[int] = field(default_factory=list)
    """Events per request stored upstream but held unanswered."""
    all_held: threading.Event = field(default_factory=threading.Event)
    """Set when as many requests are held as a run keeps in flight."""
    release: threading.Event = field(default_factory=threading.Event)
    """Once set, the held requests end unanswered and later ones are answered."""


@contextmanager
def holding_proxy(upstream: str) -> Iterator[Proxy]:
    """Forwards requests to `upstream`; from the HELD_FROM-th on, each is forwarded (so
    the server stores it) but never answered, like a connection cut after the commit,
    until `release` is set."""
    proxy = Proxy()
    count = 0
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            nonlocal count
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with lock:
                count += 1
                number = count
            headers = {k: self.headers[k] for k in ("Authorization", "Content-Type")}
            answer = httpx.post(upstream + self.path, content=body, headers=headers, timeout=30)
            events = len(codec.loads(body)["batch"])
            if number >= HELD_FROM and not proxy.release.is_set():
                with lock:
                    proxy.held.append(events)
                    if len(proxy.held) == IN_FLIGHT:
                        proxy.all_held.set()
                proxy.release.wait(60)
                return
            proxy.answered.append(events)
            self.send_response(answer.status_code)
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # answering a killed client fails; that is the point

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
        yield proxy
    finally:
        proxy.release.set()
        server.shutdown()
        server.server_close()
        thread.join()


def free(env: Env, sync: str) -> bool:
    """Whether the sync can be held (no run of it in progress)."""
    try:
        with env.syncs.lock(sync):
            return True
    except SyncBusy:
        return False


@pytest.mark.slow
def test_kill_9_mid_run_then_rerun_delivers_everything_once(env: Env, duck: Engine) -> None:
    duck.execute(
        f"CREATE TABLE users AS SELECT i AS id, '{env.tag}-' || i AS uid, 'free' AS plan"
        f" FROM range({ROWS}) t(i)"
    )
    env.apply([model(duck, "users")], [track("crash", "users")])
    with holding_proxy(env.server.url) as proxy:
        runner = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from trackway.reverse_etl.commands import syncs; syncs()",
                "run",
                "crash",
                *env.storage_args,
                "--data-plane",
                proxy.url,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            # The run waits for the answer to request 3 with request 4 also in flight.
            assert proxy.all_held.wait(60), "the run never had its batches in flight"
        finally:
            runner.send_signal(signal.SIGKILL)
            runner.wait(30)

    # The kernel releases the flock at once; PostgreSQL its advisory lock when the
    # server process has noticed the connection closed (milliseconds later).
    assert until(lambda: free(env, "crash"), True)
    [killed] = env.syncs.runs("crash", 1)
    assert killed.status == "running"
    acknowledged = sum(proxy.answered)
    assert acknowledged > 0
    assert env.syncs.snapshot_size("crash") == acknowledged  # only acknowledged rows count

    rerun = env.run("crash")
    rest = ROWS - acknowledged
    assert (rerun.status, rerun.counts.added, rerun.counts.sent) == ("succeeded", rest, rest)
    before = env.syncs.runs("crash", 2)[1]
    assert before.status == "failed" and (before.error or "").startswith("interrupted")

    events = env.events()
    assert len(events) == ROWS
    assert sorted(int(e["userId"].rsplit("-", 1)[1]) for e in events) == list(range(ROWS))
    # The batches in flight were stored before the kill and sent again: dedup kept one
    # copy of each. Nothing else was sent twice.
    log = env.server.log()
    try:
        copies = log.debug_records(1, 10_000, frozenset(["duplicate"]))
    finally:
        log.close()
    ours = [r for r in copies if str(r.event.get("userId")).startswith(env.tag)]
    assert len(ours) == sum(proxy.held) > 0


SERVED = "served"
WANT = ["succeeded", "failed"]


def _runs(data: Path, storage: tuple[str, ...]) -> list[dict[str, Any]]:
    """The sync's run history, newest first (`syncs runs --json`)."""
    runs: list[dict[str, Any]] = codec.loads(
        cli("syncs", "runs", SERVED, "--json", *storage, data_dir=data)
    )
    return runs


@pytest.mark.slow
def test_kill_9_of_the_server_mid_scheduled_run_to_a_sink_resends_only_what_was_in_flight(
    tmp_path: Path, storage: tuple[str, ...]
) -> None:
    crm = tmp_path / "crm.sqlite"
    with sqlite3.connect(crm) as db:
        db.execute("CREATE TABLE users(id INTEGER, uid TEXT, plan TEXT)")
        db.executemany(
            "INSERT INTO users VALUES (?, ?, 'free')", [(i, f"u-{i}") for i in range(ROWS)]
        )
    db.close()
    data = tmp_path / "data"
    # A dead server's lease on the schedule expires in 2 s, so the next one takes over.
    env = {"TRACKWAY_LEASE_TTL": "2"}
    with fake_segment() as sink, holding_proxy(sink.url) as proxy:
        workspace = tmp_path / "workspace.yaml"
        workspace.write_text(
            f"""version: 1
sources:
  - name: default
models:
  - name: users
    connection: {{type: sqlite, path: crm.sqlite}}
    query: SELECT id, uid, plan FROM users
    primary_key: id
syncs:
  - name: {SERVED}
    model: users
    type: track
    events: {{added: User Added}}
    user_id: uid
    mapping: {{plan: plan}}
    send_initial: true
    schedule: {{interval: 1s}}
    target: {{type: segment, write_key: sink-key, data_plane: "{proxy.url}"}}
"""
        )
        cli("apply", str(workspace), *storage, data_dir=data)
        server = start_server(data, *storage, env=env)
        try:
            # The scheduled run waits for the answers to requests 3 and 4: kill it there.
            assert proxy.all_held.wait(60), "the run never had its batches in flight"
        finally:
            server.stop(signal.SIGKILL)
        [killed] = _runs(data, storage)
        assert killed["status"] == "running"
        proxy.release.set()  # from now on the sink answers

        server = start_server(data, *storage, env=env)
        try:
            runs = until(
                lambda: [r["status"] for r in _runs(data, storage)][-2:],
                ["succeeded", "failed"],
                60,
            )
            assert runs == ["succeeded", "failed"]
        finally:
            server.stop()
        [*_, finished, interrupted] = _runs(data, storage)
        assert interrupted["error"].startswith("interrupted")
        acknowledged = sum(proxy.answered[: HELD_FROM - 1])
        assert finished["added"] == finished["sent"] == ROWS - acknowledged

    received = Counter(e["messageId"] for e in sink.events())
    users = {e["userId"]: e["messageId"] for e in sink.events()}
    # Every row reached the sink, each user under one messageId ...
    assert sorted(users) == sorted(f"u-{i}" for i in range(ROWS))
    assert len(received) == ROWS
    # ... and only the batches in flight when the server died were sent twice.
    held = [
        e["messageId"]
        for r in sink.requests[HELD_FROM - 1 : HELD_FROM - 1 + IN_FLIGHT]
        for e in r.body["batch"]
    ]
    assert len(held) == sum(proxy.held)
    twice = {m for m, n in received.items() if n > 1}
    assert twice == set(held)
    assert max(received.values()) == 2
