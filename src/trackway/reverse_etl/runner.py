"""One run of a sync: query, stage, check keys, diff, send, and advance the snapshot.

Nothing is sent before the whole result is staged and its keys checked. Changes are
then sent in batches (`deliver`); after each answer, one transaction advances the
snapshot for the acknowledged rows and updates the run's counters. A run killed at any
point therefore loses no change: the next run's diff holds everything not acknowledged,
and re-sends at most the batches that were in flight, under the same messageIds.
"""

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from trackway.reverse_etl.config import (
    DEFAULT_SEGMENT_DATA_PLANE,
    ModelSpec,
    SyncSpec,
    get_model,
    get_sync,
)
from trackway.reverse_etl.connections import run_query
from trackway.reverse_etl.deliver import Delivery
from trackway.reverse_etl.errors import ConfigError, ReverseEtlError, RunError
from trackway.reverse_etl.mapping import Mapper
from trackway.reverse_etl.send import Endpoint, RetryPolicy, Stopped
from trackway.reverse_etl.state import Counts, Run, Status, SyncStore, Trigger
from trackway.storage.base import SourceNotFound, StateStore

DEFAULT_OWN_SOURCE = "default"
CHANGES_PER_CHUNK = 2_500
KEY_SAMPLE = 5

Progress = Callable[[int, int], None]
"""Called with (changes done, changes planned): once the diff is planned (0 done), as
changes are settled, and at the end."""


@dataclass
class Runner:
    """Runs syncs of one data directory; one Runner serves one thread.

    `own_data_plane` is where Trackway's own ingest listens, for syncs whose own
    target names no `data_plane`. Setting `stop` ends a run between batches.
    `on_finish` is told of every run that ended (with its final record).
    """

    data_dir: Path
    store: StateStore
    syncs: SyncStore
    own_data_plane: str
    client: httpx.Client
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    stop: threading.Event = field(default_factory=threading.Event)
    on_finish: Callable[[Run], None] | None = None

    def run(
        self,
        name: str,
        trigger: Trigger = "manual",
        full_resync: bool = False,
        progress: Progress | None = None,
    ) -> Run:
        """Run the sync once and return its run record (also kept in the history)."""
        sync = get_sync(self.store, name)
        with self.syncs.lock(name):
            run = self.syncs.start_run(name, trigger, full_resync)
            counts = Counts()
            status: Status = "failed"
            error: str | None = None
            try:
                status, error = _Pass(self, run, sync, counts, progress).execute()
            except ReverseEtlError as exc:
                error = str(exc)
            except Stopped:
                status, error = "cancelled", "stopped before it finished; the next run goes on"
            except BaseException as exc:
                if isinstance(exc, KeyboardInterrupt):
                    status, error = "cancelled", "interrupted; the next run goes on"
                else:
                    error = f"unexpected error: {exc!r}"
                raise
            finally:
                run = self.syncs.finish_run(run, status, counts, error)
                if self.on_finish is not None:
                    self.on_finish(run)
            return run

    def endpoint(self, sync: SyncSpec) -> Endpoint:
        """Where the sync's events go, with the write key to use."""
        target = sync.target
        if target.type == "segment":
            assert target.write_key is not None
            return Endpoint(target.data_plane or DEFAULT_SEGMENT_DATA_PLANE, target.write_key)
        name = target.source or DEFAULT_OWN_SOURCE
        try:
            source = self.store.get_source(name)
        except SourceNotFound:
            raise ConfigError(f"sync '{sync.name}': no source named '{name}'") from None
        if not source.enabled:
            raise ConfigError(f"sync '{sync.name}': source '{name}' is disabled")
        key = next(k.key for k in self.store.write_keys(source.id) if k.expires_at is None)
        return Endpoint(target.data_plane or self.own_data_plane, key)


@dataclass
class _Pass:
    """The body of one run, with the state it accumulates."""

    runner: Runner
    run: Run
    sync: SyncSpec
    counts: Counts
    progress: Progress | None

    def execute(self) -> tuple[Status, str | None]:
        syncs, sync = self.runner.syncs, self.sync
        model = get_model(self.runner.store, sync.model)
        endpoint = self.runner.endpoint(sync)
        self._stage(model)
        if not (sync.type == "identify" or sync.send_initial or self.run.full_resync) and (
            not syncs.initialized(sync.name)
        ):
            self.counts.added = syncs.record_initial(self.run)
            return "succeeded", None
        planned = syncs.plan(self.run)
        self.counts.added, self.counts.changed, self.counts.removed = (
            planned.added,
            planned.changed,
            planned.removed,
        )
        total = planned.added + planned.changed + planned.removed
        if self.progress is not None:
            self.progress(0, total)
        runner, after = self.runner, 0
        with Delivery(
            syncs, self.run, sync, endpoint, runner.client, runner.retry, runner.stop, self.counts
        ) as delivery:
            while changes := syncs.changes(after, CHANGES_PER_CHUNK):
                if runner.stop.is_set():
                    raise Stopped
                after = changes[-1].id
                delivery.add(changes)
                if self.progress is not None:
                    self.progress(delivery.done, total)
            delivery.finish()
        if self.progress is not None:
            self.progress(delivery.done, total)
        partial = self.counts.failed or self.counts.rejected
        return ("partial" if partial else "succeeded"), None

    def _stage(self, model: ModelSpec) -> None:
        runner = self.runner
        nulls = 0
        with run_query(model, runner.data_dir, runner.store) as result:
            mapper = Mapper(self.sync, model, result.columns)
            for rows in result.chunks():
                if runner.stop.is_set():
                    raise Stopped
                staged, missing = mapper.stage(rows)
                nulls += missing
                runner.syncs.stage(staged)
        where = f"model '{model.name}'"
        if nulls:
            raise RunError(
                f"{where}: {nulls} row(s) have a null primary key ('{model.primary_key}');"
                " nothing was sent"
            )
        count, sample = runner.syncs.duplicate_keys(KEY_SAMPLE)
        if count:
            keys = ", ".join(repr(k) for k in sample) + (", ..." if count > len(sample) else "")
            raise RunError(
                f"{where}: {count} primary key value(s) of '{model.primary_key}' occur more"
                f" than once: {keys}; nothing was sent"
            )
