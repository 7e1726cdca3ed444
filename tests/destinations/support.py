"""A workspace for the delivery tests: a real log and state (SQLite files, or PostgreSQL
with a database URL), destinations applied as from a workspace file, and the
destination workers running in this process."""

import asyncio
import socket
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tests.support import Server
from trackway import codec
from trackway.destinations import config
from trackway.destinations.secrets import Secrets
from trackway.destinations.state import Counts
from trackway.destinations.state.sqlite import FILE
from trackway.destinations.worker import Deliveries
from trackway.server.run import open_log, open_state
from trackway.settings import Settings
from trackway.storage.dedup import message_hash
from trackway.storage.records import AcceptedEvent, IngestBatch


def track(event: str = "Order Completed", **fields: Any) -> dict[str, Any]:
    """A stored (normalized) track event with a fresh messageId."""
    return {
        "messageId": str(uuid.uuid4()),
        "type": "track",
        "event": event,
        "userId": "user-1",
        "properties": {"total": 10},
        "context": {"library": {"name": "analytics-python", "version": "2.4.0"}},
        "timestamp": "2026-11-22T10:00:00.123Z",
        "receivedAt": "2026-11-22T10:00:00.300Z",
        **fields,
    }


class Workspace:
    """A data directory with a running log, a state store and (after `start`) the
    destination workers."""

    def __init__(self, data_dir: Path, database_url: str | None = None) -> None:
        self.data_dir = data_dir
        self.settings = Settings(data_dir=data_dir, database_url=database_url)
        self.log = open_log(self.settings, create=True)
        self.log.start()
        self.store = open_state(self.settings, create=True)
        self.deliveries: Deliveries | None = None

    def apply(self, *destinations: dict[str, Any]) -> list[str]:
        return config.apply(
            [msgspec.convert(d, config.DestinationSpec) for d in destinations],
            self.store,
            Secrets.of(self.data_dir),
            lambda: self.log.last_seqs()["accepted"],
            base_dir=self.data_dir,
        )

    def send(
        self, *events: dict[str, Any], source_id: int = 1, received_at_ms: int | None = None
    ) -> None:
        """Append events to the log as one request (received now, or at `received_at_ms`)."""
        accepted = [
            AcceptedEvent(e["messageId"], message_hash(source_id, e["messageId"])) for e in events
        ]
        received = int(time.time() * 1000) if received_at_ms is None else received_at_ms
        batch = IngestBatch(source_id, received, accepted, codec.dumps(list(events)))
        asyncio.run(self.log.append(batch))

    def start(self, clock: Callable[[], float] = time.time) -> Deliveries:
        self.deliveries = Deliveries(self.settings, self.log, self.store, clock=clock)
        self.deliveries.start()
        return self.deliveries

    def counts(self, name: str) -> Counts:
        assert self.deliveries is not None
        total = Counts()
        for counts in self.deliveries.delivery_store.counts(name, 0).values():
            total.add(counts)
        return total

    def close(self) -> None:
        if self.deliveries is not None:
            self.deliveries.stop()
        self.log.close()
        self.store.close()


BATCHED = [{"name": "all", "action": "send", "if": "all", "batch": True}]
"""Subscriptions of a webhook that sends every event in batches (opt-in)."""


def webhook(name: str, url: str, **extra: Any) -> dict[str, Any]:
    """A webhook destination sending every event to `url` (loopback allowed)."""
    delivery = {"allow_private_addresses": True, **extra.pop("delivery", {})}
    return {
        "name": name,
        "type": "webhook",
        "settings": {"url": url},
        "delivery": delivery,
        **extra,
    }


def received_ids(requests: Iterator[Any] | list[Any]) -> list[str]:
    """The messageIds in the bodies a fake server received (objects or arrays)."""
    ids: list[str] = []
    for request in requests:
        body = codec.loads(request.body)
        for event in body if isinstance(body, list) else [body]:
            ids.append(event["messageId"])
    return ids


def worker_started(server: Server, destinations: int = 1) -> bool:
    """Whether the SQLite server's workers for its `destinations` have started (each
    destination's cursor exists then)."""
    path = server.data_dir / FILE
    if not path.exists():
        return False
    conn = sqlite3.connect(path)
    try:
        return bool(conn.execute("SELECT count(*) FROM cursors").fetchone()[0] == destinations)
    finally:
        conn.close()


def resolve(
    monkeypatch: pytest.MonkeyPatch,
    names: dict[str, list[str]],
    once: bool = False,
    then: dict[str, list[str]] | None = None,
) -> None:
    """Make `socket.getaddrinfo` answer `names` (other names resolve as usual); with
    `once`, a second lookup of a name fails; with `then`, it gets that answer (a DNS
    server rebinding the name)."""
    real = socket.getaddrinfo
    asked: set[str] = set()

    def fake(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in names:
            return real(host, port, *args, **kwargs)
        if once and host in asked:
            raise socket.gaierror(socket.EAI_NONAME, "asked twice")
        answer = (then or {}).get(host, names[host]) if host in asked else names[host]
        asked.add(host)
        family = {True: socket.AF_INET6, False: socket.AF_INET}
        return [(family[":" in ip], socket.SOCK_STREAM, 6, "", (ip, port)) for ip in answer]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
