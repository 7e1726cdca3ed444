"""The log writer both backends share: one thread commits every waiting append at once.

Appends from the event loop wait in a queue; the writer thread drains it, stages
everything it found into one `Group` (deduplicated against the in-memory `RecentIds`
and within the group), the backend commits the group in one transaction, and only then
are the callers' futures resolved (on their own event loops). A backend supplies how
to open, commit and tidy up.
"""

import asyncio
import queue
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np

from trackway import codec
from trackway.storage.base import StorageUnavailable, Subscriber
from trackway.storage.dedup import RecentIds
from trackway.storage.records import AppendResult, Commit, DebugRecord, IngestBatch

_RETENTION_EVERY_S = 60.0
_STOP = object()


@dataclass(slots=True)
class Pending:
    """An append waiting for the next group commit."""

    batch: IngestBatch
    loop: asyncio.AbstractEventLoop
    future: "asyncio.Future[AppendResult]"


@dataclass(slots=True)
class Group:
    """What one commit writes, staged before the transaction starts."""

    first_pos: int
    end_pos: int
    chunks: list[tuple[int, int, int, int, bytes, bytes]] = field(default_factory=list)
    """(pos, count, source, received_at, events JSON array, uint64 hashes)"""
    failures: list[tuple[int, int, int, str, str, bytes | None]] = field(default_factory=list)
    """(source, received_at, index, code, message, raw)"""
    duplicates: list[tuple[int, int, str, bytes]] = field(default_factory=list)
    """(source, received_at, messageId, body)"""
    hashes: list[tuple[list[int], int]] = field(default_factory=list)
    results: list[AppendResult] = field(default_factory=list)


class GroupCommitLog(ABC):
    """The writer thread, appends, dedup, backpressure counts and live subscribers of a log."""

    def __init__(self, dedup_window_s: float) -> None:
        self._recent = RecentIds(int(dedup_window_s * 1000))
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pending_events = 0
        self._subscribers: list[tuple[asyncio.AbstractEventLoop, Subscriber]] = []
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._last_pos = 0
        """The newest position known to be committed (`wait_for`)."""
        self._end_changed = threading.Condition()

    @abstractmethod
    def _open_writer(self) -> None:
        """Prepare the writer (in its thread); an exception fails `start`."""

    @abstractmethod
    def _commit(self, work: list[Pending]) -> None:
        """Commit the appends in one transaction (`_stage`), then `_committed` or `_failed`."""

    @abstractmethod
    def _upkeep(self, now_ms: int) -> None:
        """Periodic tidying in the writer thread (retention)."""

    @abstractmethod
    def _close_writer(self) -> None:
        """Release what the writer holds (in its thread, after the last commit)."""

    _LOOK_EVERY_S: float
    """How often `wait_for` calls `_look_for_commits` while it waits."""

    @abstractmethod
    def _look_for_commits(self) -> None:
        """Learn the end of the log (`_advance`), commits of other processes included."""

    def wait_for(self, after: int, timeout_s: float) -> None:
        """Return once an event after position `after` is committed, or after `timeout_s`.

        This process's commits wake the waiters at once; other processes' commits are
        learnt by `_look_for_commits` (a poll, or a notification from the database).
        """
        deadline = time.monotonic() + timeout_s
        while True:
            self._look_for_commits()
            with self._end_changed:
                remaining = deadline - time.monotonic()
                if self._last_pos > after or remaining <= 0:
                    return
                self._end_changed.wait(min(remaining, self._LOOK_EVERY_S))

    def _advance(self, end_pos: int) -> None:
        """Positions below `end_pos` are committed: wake the waiters past them."""
        with self._end_changed:
            if end_pos - 1 > self._last_pos:
                self._last_pos = end_pos - 1
                self._end_changed.notify_all()

    def start(self) -> None:
        """Start the writer thread; returns once it is ready to commit."""
        self._ready.clear()
        self._failure = None
        self._thread = threading.Thread(target=self._run, name="trackway-log-writer", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            raise StorageUnavailable(str(self._failure)) from self._failure

    def _stop_writer(self) -> None:
        """Commit everything queued and stop the writer."""
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()
        self._thread = None

    def _writer_running(self) -> bool:
        return self._thread is None or self._thread.is_alive()

    async def append(self, batch: IngestBatch) -> AppendResult:
        """Queue a batch for the next group commit and wait until it is committed."""
        if self._thread is None or not self._thread.is_alive():
            raise StorageUnavailable("the log writer is not running")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[AppendResult] = loop.create_future()
        self._pending_events += len(batch.events)
        try:
            self._queue.put(Pending(batch, loop, future))
            return await asyncio.shield(future)
        finally:
            self._pending_events -= len(batch.events)

    @property
    def pending_events(self) -> int:
        """Events queued and not yet committed (used for backpressure)."""
        return self._pending_events

    def subscribe(self, loop: asyncio.AbstractEventLoop, fn: Subscriber) -> Callable[[], None]:
        """Call `fn` on `loop` with the debug records of every commit; returns unsubscribe."""
        entry = (loop, fn)
        self._subscribers = [*self._subscribers, entry]

        def unsubscribe() -> None:
            self._subscribers = [s for s in self._subscribers if s is not entry]

        return unsubscribe

    def _run(self) -> None:
        try:
            self._open_writer()
        except BaseException as exc:  # reported by start()
            self._failure = exc
            self._ready.set()
            return
        self._ready.set()
        last_retention = 0.0
        while True:
            items = [self._queue.get()]
            while True:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            work = [item for item in items if item is not _STOP]
            if work:
                self._commit(work)
            if len(work) < len(items):
                break
            if time.monotonic() - last_retention > _RETENTION_EVERY_S:
                last_retention = time.monotonic()
                self._upkeep(current_ms())
        self._close_writer()

    def _stage(self, work: list[Pending], pos: int) -> Group:
        """The group of appends, positions from `pos` on; ids already seen are duplicates.

        An id counts as seen when the index holds it or an earlier event of the group
        carries it.
        """
        group = Group(pos, pos)
        in_group: set[int] = set()
        for item in work:
            self._stage_batch(item.batch, group, in_group)
        return group

    def _stage_batch(self, batch: IngestBatch, group: Group, in_group: set[int]) -> None:
        events = batch.events
        hashes = [e.mid_hash for e in events]
        seen = self._recent.seen(hashes) if hashes else []
        if not any(seen) and in_group.isdisjoint(hashes) and len(set(hashes)) == len(hashes):
            # The common case: nothing to split out, the request's JSON array is the chunk.
            fresh_hashes, blob = hashes, batch.encoded
            in_group.update(hashes)
        else:
            bodies = split_events(batch.encoded)
            fresh_hashes, fresh_bodies = [], []
            for event, body, was_seen in zip(events, bodies, seen, strict=True):
                if was_seen or event.mid_hash in in_group:
                    group.duplicates.append(
                        (batch.source_id, batch.received_at_ms, event.message_id, bytes(body))
                    )
                else:
                    in_group.add(event.mid_hash)
                    fresh_hashes.append(event.mid_hash)
                    fresh_bodies.append(body)
            blob = b"[" + b",".join(fresh_bodies) + b"]"
        if fresh_hashes:
            group.chunks.append(
                (
                    group.end_pos,
                    len(fresh_hashes),
                    batch.source_id,
                    batch.received_at_ms,
                    blob,
                    np.array(fresh_hashes, dtype=np.uint64).tobytes(),
                )
            )
            group.hashes.append((fresh_hashes, batch.received_at_ms))
            group.end_pos += len(fresh_hashes)
        group.failures.extend(
            (batch.source_id, batch.received_at_ms, r.index, r.code, r.message, r.raw)
            for r in batch.rejected
        )
        group.results.append(AppendResult(len(fresh_hashes), len(events) - len(fresh_hashes)))

    def _committed(self, work: list[Pending], group: Group) -> None:
        """The group is durable: remember its ids, answer the callers, tell subscribers."""
        for hashes, at_ms in group.hashes:
            self._recent.add(hashes, at_ms)
        # Who hears of the commit is decided before any caller is answered: a subscriber
        # that comes after its append returned must not get that commit too.
        subscribers = self._subscribers
        self._resolve(work, group.results)
        if group.chunks:
            self._advance(group.end_pos)
        if subscribers:
            self._publish(group, subscribers)

    def _failed(self, work: list[Pending], error: StorageUnavailable) -> None:
        """Nothing was acknowledged, so none of the group's ids counts as seen."""
        self._resolve(work, [error] * len(work))

    @staticmethod
    def _resolve(work: list[Pending], outcomes: list[Any]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any]]] = {}
        for item, outcome in zip(work, outcomes, strict=True):
            by_loop.setdefault(item.loop, []).append((item.future, outcome))
        for loop, pairs in by_loop.items():
            loop.call_soon_threadsafe(_settle, pairs)

    @staticmethod
    def _publish(
        group: Group, subscribers: list[tuple[asyncio.AbstractEventLoop, Subscriber]]
    ) -> None:
        # Nothing is decoded here, on the writer: a subscriber decodes what it shows.
        commit = Commit(group.chunks, group.duplicates, group.failures)
        for loop, fn in subscribers:
            loop.call_soon_threadsafe(fn, commit)


def accepted_records(rows: Iterable[Any], limit: int | None) -> list[DebugRecord]:
    """Debug records of chunk rows (pos, source_id, received_at, events): newest first
    with a limit."""
    out: list[DebugRecord] = []
    for pos, source_id, at_ms, events in rows:
        decoded = codec.loads(events)
        for offset in range(len(decoded) - 1, -1, -1) if limit else range(len(decoded)):
            out.append(DebugRecord("accepted", source_id, at_ms, pos + offset, decoded[offset]))
            if limit is not None and len(out) == limit:
                return out
    return out


split_events = msgspec.json.Decoder(list[msgspec.Raw]).decode
"""Splits a chunk's JSON array into each event's JSON without decoding them."""


def _settle(pairs: list[tuple["asyncio.Future[Any]", Any]]) -> None:
    for future, outcome in pairs:
        if future.done():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


def current_ms() -> int:
    return int(time.time() * 1000)
