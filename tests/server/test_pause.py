"""SIGSTOP and SIGCONT of the server while the real Python SDK sends.

A paused server answers nothing: the SDK's requests time out and it sends them again.
The server reads both copies once it runs again; each acknowledged messageId must still
be in the log exactly once (the copy is deduplicated) and, once loaded, in the
warehouse exactly once.
"""

import signal
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from segment.analytics import Client

from tests.ingest.test_real_clients import Errors
from tests.server.test_crash import deduplicated
from tests.support import Server, start_server, until

pytestmark = pytest.mark.slow

CLIENTS = 3
BURST = 20  # events per client between looks at the clock
PAUSE_S = 3.0  # a few SDK timeouts long
TIMEOUT_S = 1.0


class Senders:
    """Some SDK clients, fed round-robin with fresh messageIds."""

    def __init__(self, server: Server) -> None:
        self.errors = Errors()
        self.clients = [
            Client(
                server.write_key,
                host=server.url,
                sync_mode=False,
                on_error=self.errors,
                timeout=TIMEOUT_S,
                max_retries=30,  # enough to outlast the pause
                max_queue_size=100_000,  # what is queued during the pause fits
                upload_interval=0.05,
            )
            for _ in range(CLIENTS)
        ]
        self.queued: list[str] = []
        self._next = 0

    def send_for(self, seconds: float) -> None:
        """Queue events for `seconds`, in bursts; while the server runs, each burst
        waits for the SDK's queues to be short, so that the load is steady."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for n, client in enumerate(self.clients):
                for _ in range(BURST):
                    message_id = f"pause-{self._next}"
                    self._next += 1
                    ok, _ = client.track(
                        f"user-{n}", "Paused", {"n": self._next}, message_id=message_id
                    )
                    assert ok, "the SDK's queue was full"
                    self.queued.append(message_id)
            while max(c.queue.qsize() for c in self.clients) > 1000 and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.01)

    def finish(self) -> None:
        for client in self.clients:
            client.shutdown()


def accepted(server: Server) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    line = 'trackway_events_accepted_total{source="default"} '
    return next((float(x.split()[-1]) for x in text.splitlines() if x.startswith(line)), 0.0)


def test_sigstop_sigcont_under_load_stores_each_event_once(
    tmp_path: Path, storage: tuple[str, ...]
) -> None:
    server = start_server(tmp_path / "data", *storage)
    senders = Senders(server)
    try:
        senders.send_for(1.0)
        assert until(lambda: accepted(server) > 0, True, seconds=30), "nothing was stored"
        server.process.send_signal(signal.SIGSTOP)
        try:
            before = len(senders.queued)
            senders.send_for(PAUSE_S)  # the SDK's requests time out meanwhile
            assert len(senders.queued) > before
        finally:
            server.process.send_signal(signal.SIGCONT)
        senders.send_for(1.0)
        senders.finish()

        # Every batch got its 200 in the end: the SDK reported no failure.
        assert senders.errors.calls == []
        ours = Counter(
            e["messageId"] for e in server.events() if e["messageId"].startswith("pause-")
        )
        assert set(ours) == set(senders.queued), "events lost or invented"
        twice = {m: n for m, n in ours.items() if n > 1}
        assert twice == {}, f"{len(twice)} events stored more than once"
        # The requests that timed out were read after SIGCONT and stored; the SDK's
        # retries of them were acknowledged as duplicates.
        assert deduplicated(server) > 0
        assert accepted(server) == len(senders.queued)

        total = len(senders.queued)
        counts = "SELECT count(*), count(DISTINCT id) FROM tracks"
        assert until(lambda: server.sql(counts), [[total, total]], seconds=60) == [[total, total]]
        assert server.process.poll() is None
    finally:
        server.stop()
