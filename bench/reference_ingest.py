"""The reference ingest app: the least a durable Segment-compatible endpoint has to do.

    granian --interface rsgi --loop uvloop --workers 1 --port PORT \\
        --working-dir bench reference_ingest:app           (REFERENCE_LOG=PATH)

bench/ingest.py --against reference runs it under the same load, on the same core, as
Trackway, so that Trackway's figures are read as a share of what this machine can do
(issue 16: the ratios in bench/RESULTS.md). It keeps only what no durable ingest can
skip:

- HTTP on granian's RSGI interface (Rust HTTP/1, no framework);
- the write key checked (HTTP Basic, as the SDKs send it);
- every event decoded and type-checked by msgspec in one call, with the required ids;
- the request's raw bytes appended to one file, and the answer (200) sent only after an
  fdatasync that covers them: one writer thread appends whatever is waiting, syncs once
  for all of it (group commit), then answers every request of the group.

No dedup, no index, no per-event output, no metrics: Trackway's extra work is what the
ratio measures.
"""

from __future__ import annotations

import asyncio
import base64
import os
import queue
import threading
from typing import Any

import msgspec


class Event(msgspec.Struct):
    """A Segment call, with the fields every durable ingest must check."""

    type: str
    messageId: str | None = None
    userId: str | int | None = None
    anonymousId: str | int | None = None
    event: str | None = None
    properties: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    timestamp: str | None = None


class Batch(msgspec.Struct):
    batch: list[Event]


_decode_batch = msgspec.json.Decoder(Batch).decode
_decode_event = msgspec.json.Decoder(Event).decode
_OK = b'{"success":true}'
_JSON = [("content-type", "application/json")]
_WRITE_KEY = os.environ.get("REFERENCE_WRITE_KEY", "")
_AUTH = "Basic " + base64.b64encode(f"{_WRITE_KEY}:".encode()).decode()


class GroupWriter(threading.Thread):
    """Appends what the requests hand it to one file; one fdatasync per group."""

    def __init__(self, path: str) -> None:
        super().__init__(daemon=True)
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.waiting: queue.SimpleQueue[tuple[bytes, asyncio.Future[None]]] = queue.SimpleQueue()

    def run(self) -> None:
        while True:
            group = [self.waiting.get()]
            while not self.waiting.empty():
                group.append(self.waiting.get_nowait())
            os.write(self.fd, b"".join(body + b"\n" for body, _ in group))
            os.fdatasync(self.fd)
            loop = group[0][1].get_loop()
            loop.call_soon_threadsafe(_settle, [future for _, future in group])


def _settle(futures: list[asyncio.Future[None]]) -> None:
    for future in futures:
        if not future.done():
            future.set_result(None)


_writer = GroupWriter(os.environ.get("REFERENCE_LOG", "reference.log"))
_writer.start()


def _valid(event: Event) -> bool:
    has_id = event.userId is not None or event.anonymousId is not None
    return has_id and (event.type != "track" or bool(event.event))


async def app(scope: Any, proto: Any) -> None:
    """The RSGI application: POST /v1/batch and /v1/track (and the other call types)."""
    if scope.proto != "http":
        return
    if scope.method != "POST":
        proto.response_bytes(405, _JSON, b'{"code":"method_not_allowed"}')
        return
    if scope.headers.get("authorization") != _AUTH:
        proto.response_bytes(401, _JSON, b'{"code":"unauthorized"}')
        return
    body = await proto()
    try:
        if scope.path == "/v1/batch":
            valid = all(_valid(e) for e in _decode_batch(body).batch)
        else:
            valid = _valid(_decode_event(body))
    except msgspec.ValidationError:
        valid = False
    except msgspec.DecodeError:
        proto.response_bytes(400, _JSON, b'{"code":"invalid_json"}')
        return
    if not valid:
        proto.response_bytes(400, _JSON, b'{"code":"invalid_event"}')
        return
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    _writer.waiting.put((body, done))
    await done
    proto.response_bytes(200, _JSON, _OK)
