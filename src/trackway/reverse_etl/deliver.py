"""Delivering a run's planned changes: batches in flight, and what each answer records.

Events are gathered into full batches across chunks of changes. Up to `IN_FLIGHT`
batches are sent at once, so that planning and recording the next batch overlap with
the endpoint's work on the last; answers are recorded in the order they were sent.
Each answer is one transaction: the acknowledged rows advance the snapshot, the failed
ones stay as they were (so the next run sends them again), and the run's counters
move. However delivery ends, the answers of every batch in flight are recorded first.
"""

import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal

import httpx

from trackway.reverse_etl.config import SyncSpec
from trackway.reverse_etl.plan import plan_events
from trackway.reverse_etl.send import (
    Batch,
    BatchResult,
    Endpoint,
    EndpointUnavailable,
    RetryPolicy,
    send_batch,
)
from trackway.reverse_etl.state import Change, Counts, RowError, Run, SyncStore

IN_FLIGHT = 2
MAX_ROW_ERRORS = 20
"""Row errors kept per run (the counters have the totals)."""


@dataclass
class Delivery:
    """Sends one run's changes and records what became of them; use it as a context."""

    syncs: SyncStore
    run: Run
    sync: SyncSpec
    endpoint: Endpoint
    client: httpx.Client
    retry: RetryPolicy
    stop: threading.Event
    counts: Counts
    done: int = 0
    """Changes settled so far (sent, failed, rejected or recorded)."""
    _batch: Batch = field(default_factory=Batch)
    _changes: list[Change] = field(default_factory=list)
    _in_flight: deque[tuple[list[Change], "Future[BatchResult]"]] = field(default_factory=deque)
    _pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(IN_FLIGHT))
    _errors_kept: int = 0

    def add(self, changes: list[Change]) -> None:
        """Plan a chunk of changes; send its events as batches fill up."""
        planned = plan_events(self.sync, changes)
        if planned.record or planned.reject:
            self.counts.rejected += len(planned.reject)
            errors = self._errors(planned.reject, "rejected")
            self.syncs.save(self.run, planned.record, [], errors, self.counts)
            self.done += len({c.id for c in planned.record} | {c.id for c, _ in planned.reject})
        for change, event in planned.send:
            if not self._batch.fits(event):
                self._dispatch()
            self._batch.add(event)
            self._changes.append(change)

    def finish(self) -> None:
        """Send what is left and wait for every answer."""
        if self._batch.events:
            self._dispatch()
        while self._in_flight:
            self._settle()

    def __enter__(self) -> "Delivery":
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(exc, KeyboardInterrupt):
            self.stop.set()  # the batches in flight stop retrying
        try:
            while self._in_flight:
                try:
                    self._settle()
                except Exception:
                    if exc is None:
                        raise
        finally:
            self._pool.shutdown()

    def _dispatch(self) -> None:
        events, self._batch = self._batch.events, Batch()
        changes, self._changes = self._changes, []
        future = self._pool.submit(
            send_batch, self.client, self.endpoint, events, self.retry, self.stop
        )
        self._in_flight.append((changes, future))
        if len(self._in_flight) >= IN_FLIGHT:
            self._settle()

    def _settle(self) -> None:
        """Record the answer to the oldest batch in flight (re-raising why it failed)."""
        changes, future = self._in_flight.popleft()
        try:
            result = future.result()
        except EndpointUnavailable as exc:
            self._record(changes, BatchResult([], {i: str(exc) for i in range(len(changes))}))
            raise
        self._record(changes, result)

    def _record(self, changes: list[Change], result: BatchResult) -> None:
        applied = [changes[i] for i in result.acked]
        failures = [(changes[i], why) for i, why in result.failed.items()]
        self.counts.sent += len(applied)
        self.counts.failed += len(failures)
        # A full resync re-sends rows the snapshot already holds; if that fails, mark
        # them so that later runs retry them until they get through.
        resend = [c for c, _ in failures if self.run.full_resync and c.kind == "added"]
        errors = self._errors(failures, "failed")
        self.syncs.save(self.run, applied, resend, errors, self.counts)
        self.done += len(changes)

    def _errors(
        self, rows: list[tuple[Change, str]], status: Literal["failed", "rejected"]
    ) -> list[RowError]:
        """The row errors worth keeping: only the first few of a run are."""
        kept = [RowError(c.pk, c.kind, status, why) for c, why in rows]
        kept = kept[: max(0, MAX_ROW_ERRORS - self._errors_kept)]
        self._errors_kept += len(kept)
        return kept
