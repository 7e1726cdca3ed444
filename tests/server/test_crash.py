"""Durability under a crash (SIGKILL) and a graceful stop (SIGTERM) while clients send.

A 200 from the tracking API means the events are committed: whatever happens to the
process afterwards, each acknowledged messageId is in the log exactly once.
"""

import re
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import Server, start_server

pytestmark = pytest.mark.slow

SENDERS = 6
BATCH = 25
ENOUGH_ACKED_REQUESTS = 120  # acknowledged before the signal: the server is busy
STOPPED_LINE = "Trackway stopped; every acknowledged event is committed."


class Progress:
    """Counts acknowledged requests across senders; lets the test wait for a number."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._acked = 0

    def add(self) -> None:
        with self._cond:
            self._acked += 1
            self._cond.notify_all()

    def wait_for(self, requests: int, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._acked >= requests, timeout)


class Sender(threading.Thread):
    """Posts batches of fresh messageIds until told to stop or the server goes away.

    `acked` holds the ids of every batch answered 200; `sent` every id ever posted.
    A transport error ends the sender (after the signal that is the server going away).
    """

    def __init__(
        self, server: Server, number: int, progress: Progress, signalled: threading.Event
    ) -> None:
        super().__init__(name=f"sender-{number}", daemon=True)
        self.url = server.url
        self.write_key = server.write_key
        self.number = number
        self.progress = progress
        self.signalled = signalled
        self.stop = threading.Event()
        self.sent: list[str] = []
        self.acked: list[str] = []
        self.acked_after_signal = 0
        self.bodies: dict[str, dict[str, Any]] = {}
        self.early_failures: list[str] = []  # before the signal: must stay empty
        self.late_failures: list[str] = []

    def run(self) -> None:
        with httpx.Client(base_url=self.url, auth=(self.write_key, ""), timeout=15) as client:
            seq = 0
            while not self.stop.is_set():
                ids = [f"crash-{self.number}-{seq}-{i}" for i in range(BATCH)]
                events = [
                    {
                        "type": "track",
                        "userId": f"crash-user-{self.number}",
                        "event": "Load Tested",
                        "properties": {"sender": self.number, "seq": seq, "i": i},
                        "messageId": m,
                    }
                    for i, m in enumerate(ids)
                ]
                seq += 1
                self.sent.extend(ids)
                self.bodies.update(zip(ids, events, strict=True))
                try:
                    r = client.post("/v1/batch", json={"batch": events})
                except httpx.TransportError as exc:
                    # Failures caused by the signal happen after `signalled` is set.
                    failures = (
                        self.late_failures if self.signalled.is_set() else self.early_failures
                    )
                    failures.append(f"{type(exc).__name__}: {exc}")
                    return
                if r.status_code == 200:
                    assert r.json() == {"success": True}, r.text
                    self.acked.extend(ids)
                    if self.signalled.is_set():
                        self.acked_after_signal += len(ids)
                    self.progress.add()
                else:
                    failures = (
                        self.late_failures if self.signalled.is_set() else self.early_failures
                    )
                    failures.append(f"HTTP {r.status_code}: {r.text}")


def start_senders(server: Server) -> tuple[list[Sender], Progress, threading.Event]:
    progress = Progress()
    signalled = threading.Event()
    senders = [Sender(server, n, progress, signalled) for n in range(SENDERS)]
    for s in senders:
        s.start()
    return senders, progress, signalled


def stop_senders(senders: list[Sender]) -> None:
    for s in senders:
        s.stop.set()
    for s in senders:
        s.join(timeout=30)
    assert not any(s.is_alive() for s in senders), "a sender did not finish"


def signal_under_load(server: Server, sig: int) -> list[Sender]:
    """Start senders, wait until the server has acknowledged enough, send `sig`.

    Returns the senders once they have all finished (they end on the first transport
    error, i.e. when the server is gone; after a SIGKILL they are also told to stop).
    """
    senders, progress, signalled = start_senders(server)
    try:
        busy = progress.wait_for(ENOUGH_ACKED_REQUESTS, timeout=15)
        early = [f for s in senders for f in s.early_failures]
        assert busy, f"the server acknowledged too little before the signal: {early}"
        signalled.set()
        server.process.send_signal(sig)
        if sig == signal.SIGKILL:
            server.process.wait(timeout=10)
        else:
            # Graceful: the senders keep going until the server stops answering.
            deadline = time.monotonic() + 45
            for s in senders:
                s.join(timeout=max(0.0, deadline - time.monotonic()))
    finally:
        stop_senders(senders)
    early = [f for s in senders for f in s.early_failures]
    assert early == [], f"requests failed before the signal: {early[:5]}"
    return senders


def check_exactly_once(events: list[dict[str, Any]], senders: list[Sender]) -> Counter[str]:
    """Every acknowledged id stored exactly once; nothing stored twice or never sent."""
    counts = Counter(e["messageId"] for e in events)
    acked = [m for s in senders for m in s.acked]
    sent = {m for s in senders for m in s.sent}
    assert len(acked) >= ENOUGH_ACKED_REQUESTS * BATCH
    lost = [m for m in acked if counts[m] == 0]
    assert lost == [], f"{len(lost)} acknowledged events lost, e.g. {lost[:5]}"
    twice = {m: n for m, n in counts.items() if n > 1}
    assert twice == {}, f"{len(twice)} events stored more than once, e.g. {list(twice)[:5]}"
    invented = set(counts) - sent
    assert invented == set(), f"events nobody sent: {sorted(invented)[:5]}"
    # Each stored event is the one its sender posted.
    bodies = {m: b for s in senders for m, b in s.bodies.items()}
    for e in events:
        want = bodies[e["messageId"]]
        assert (e["userId"], e["event"], e["properties"]) == (
            want["userId"],
            want["event"],
            want["properties"],
        ), e
    return counts


def deduplicated(server: Server) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    match = re.search(r'^trackway_events_deduplicated_total\{source="default"\} (\S+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


def test_sigkill_loses_no_acknowledged_event_and_dedup_survives_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = start_server(data)
    try:
        senders = signal_under_load(server, signal.SIGKILL)
    finally:
        code = server.stop()
    assert code == -signal.SIGKILL

    restarted = start_server(data)
    try:
        assert restarted.write_key == server.write_key
        before = restarted.events()
        counts = check_exactly_once(before, senders)

        # Clients retry what they are unsure of: resend acknowledged ids, ids that were
        # in flight when the server died (stored or not), and some new ones. Each id
        # must end up stored exactly once; what was already stored is acknowledged
        # as a duplicate and not stored again.
        acked = [m for s in senders for m in s.acked]
        unsure = [m for s in senders for m in s.sent if m not in set(s.acked)]
        resend = acked[:: max(1, len(acked) // 150)] + unsure
        bodies = {m: b for s in senders for m, b in s.bodies.items()}
        fresh = [
            {"type": "track", "userId": "after", "event": "Fresh", "messageId": f"fresh-{i}"}
            for i in range(20)
        ]
        batch = [bodies[m] for m in resend] + fresh
        with restarted.client() as c:
            for start in range(0, len(batch), 500):
                r = c.post(
                    "/v1/batch",
                    auth=(restarted.write_key, ""),
                    json={"batch": batch[start : start + 500]},
                )
                assert r.status_code == 200, r.text
                assert r.json() == {"success": True}
        after = Counter(e["messageId"] for e in restarted.events())
        for m in [*resend, *(e["messageId"] for e in fresh)]:
            assert after[m] == 1, f"{m} stored {after[m]} times after the resend"
        assert len(after) == len(counts) + len(fresh) + sum(1 for m in unsure if not counts[m])
        assert sum(after.values()) == len(after)
        already_stored = sum(1 for m in resend if counts[m])
        assert deduplicated(restarted) == already_stored
    finally:
        restarted.stop()


def test_sigterm_keeps_every_acknowledged_event(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    try:
        senders = signal_under_load(server, signal.SIGTERM)
        # It stops by itself, well within its 30 s grace period.
        server.process.wait(timeout=40)
    finally:
        server.stop(signal.SIGKILL)
    # The senders were cut off by the server going away, not by the test, and requests
    # in flight when the signal came were answered (and must be stored).
    assert all(s.late_failures for s in senders), [s.late_failures for s in senders]
    assert sum(s.acked_after_signal for s in senders) > 0
    check_exactly_once(server.events(), senders)


def test_sigterm_is_a_clean_exit(tmp_path: Path) -> None:
    """A stop by SIGTERM is the normal way to stop: exit status 0, and it says so."""
    server = start_server(tmp_path / "data")
    try:
        senders = signal_under_load(server, signal.SIGTERM)
        try:
            code = server.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            pytest.fail("the server did not stop within 40 s of SIGTERM")
    finally:
        server.stop(signal.SIGKILL)
    check_exactly_once(server.events(), senders)
    output = "\n".join(server.banner[-5:])
    assert code == 0, f"exit status {code} after SIGTERM; last output:\n{output}"
    assert server.banner[-1] == STOPPED_LINE, output
