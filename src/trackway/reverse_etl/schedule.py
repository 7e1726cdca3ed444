"""Scheduled syncs: which are due, and the worker thread the server runs them on.

A sync with `schedule.interval` is due when that long has passed since its last run
started (at once if it never ran). A sync with `schedule.cron` is due when the
expression fired after its last run started (or, if it never ran, after the worker
started). A worker that was down runs each overdue sync once, not once per missed
firing. Every run, failed ones included, is kept in the run history.

With several worker processes, each sync's schedule is worked by the process holding its
lease (`sync:<name>`); losing the lease ends a run in progress after its current batch.
"""

import logging
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from trackway.console import ConsoleLines
from trackway.outbound import outbound_client
from trackway.reverse_etl import config
from trackway.reverse_etl.cron import parse_cron
from trackway.reverse_etl.errors import ReverseEtlError
from trackway.reverse_etl.metrics import ReverseEtlMetrics
from trackway.reverse_etl.runner import Runner
from trackway.reverse_etl.state import Run, SyncStore, describe_run, open_sync_store
from trackway.settings import Settings, parse_duration
from trackway.storage.base import StateStore, StorageUnavailable
from trackway.storage.leases import LeaseHolder, Leases
from trackway.storage.postgres.state import PostgresStateStore

POLL_S = 1.0
"""How often the worker looks for due syncs (and notices syncs added by `apply`)."""

_log = logging.getLogger(__name__)


def next_run(sync: config.SyncSpec, last: Run | None, since: float) -> str | None:
    """When the sync is next due (UTC ISO 8601), or None when it has no schedule.

    `since` (a Unix time) stands for the last run's start when there is none.
    """
    due = _due_at(sync, last, since)
    if due is None:
        return None
    return datetime.fromtimestamp(due, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _due_at(sync: config.SyncSpec, last: Run | None, since: float) -> float | None:
    schedule = sync.schedule
    if schedule is None:
        return None
    started = _unix(last.started_at) if last is not None else None
    if schedule.interval is not None:
        return since if started is None else started + parse_duration(schedule.interval)
    assert schedule.cron is not None
    after = datetime.fromtimestamp(started if started is not None else since, UTC)
    return parse_cron(schedule.cron).next_after(after).timestamp()


class Scheduler:
    """Decides which scheduled syncs are due, from their declarations and run history."""

    def __init__(self, store: StateStore, syncs: SyncStore, started: float) -> None:
        self.store = store
        self.syncs = syncs
        self.started = started

    def due(self, now: float) -> list[str]:
        """Names of the syncs due at `now` (a Unix time), in name order."""
        last = self.syncs.last_runs()
        due = []
        for name, sync in sorted(config.syncs(self.store).items()):
            try:
                at = _due_at(sync, last.get(name), self.started)
            except ValueError:
                continue  # apply refuses bad schedules; a hand-edited one is skipped
            if at is not None and at <= now:
                due.append(name)
        return due


class SchedulerThread(threading.Thread):
    """The worker that runs due syncs, one at a time, until `stop()`.

    `own_data_plane` is the server's own origin (for syncs to Trackway's own ingest).
    A sync already running elsewhere (`trackway syncs run`) is skipped this time, and so
    is a sync whose schedule another worker process holds (with `leases`). The sync state
    is `settings`' (by default: in PostgreSQL when the workspace state is, else in
    `data_dir`), so that with `--database` any worker can run any sync.
    """

    def __init__(
        self,
        data_dir: Path,
        store: StateStore,
        own_data_plane: str,
        poll_s: float = POLL_S,
        leases: Leases | None = None,
        settings: Settings | None = None,
    ) -> None:
        super().__init__(name="trackway-syncs", daemon=True)
        if settings is None:
            url = store.url if isinstance(store, PostgresStateStore) else None
            settings = Settings(data_dir=data_dir, database_url=url)
        self.settings = settings
        self.data_dir = data_dir
        self.store = store
        self.own_data_plane = own_data_plane
        self.poll_s = poll_s
        self.leases = LeaseHolder(leases, self._lost)
        self._stopping = threading.Event()
        self._cancel = threading.Event()
        """Ends the run in progress: set by `stop()`, or when its lease is lost."""
        self._running: str | None = None
        self.metrics = ReverseEtlMetrics()
        """The runs of this worker, for `/metrics`."""
        self.console = ConsoleLines(_log)
        """One line per run on the server console, at most one per sync every 10 s."""

    def stop(self, timeout: float | None = 30.0) -> None:
        """Ask the worker to stop (a run in progress ends after its current batch); wait."""
        self._stopping.set()
        self._cancel.set()
        if self.is_alive():
            self.join(timeout)

    def run(self) -> None:
        syncs = open_sync_store(self.settings)
        try:
            with outbound_client() as client:
                runner = Runner(
                    self.data_dir,
                    self.store,
                    syncs,
                    self.own_data_plane,
                    client,
                    stop=self._cancel,
                    on_finish=self.metrics.finished,
                )
                scheduler = Scheduler(self.store, syncs, time.time())
                while not self._stopping.is_set():
                    try:
                        self._poll(runner, scheduler)
                    except StorageUnavailable as exc:
                        # PostgreSQL down or cut: the next poll tries again.
                        _log.warning("scheduled syncs: %s", exc)
                    self._stopping.wait(self.poll_s)
        finally:
            self.leases.close()
            syncs.close()

    def _poll(self, runner: Runner, scheduler: Scheduler) -> None:
        scheduled = [n for n, s in config.syncs(self.store).items() if s.schedule]
        self.leases.hold(_lease_key(name) for name in scheduled)
        for name in scheduler.due(time.time()):
            if not self.leases.holds(_lease_key(name)):
                continue
            self._running = _lease_key(name)
            self._cancel.clear()
            if self._stopping.is_set():
                break
            self._run_one(runner, name)
            self._running = None

    def _lost(self, key: str) -> None:
        if key == self._running:
            self._cancel.set()

    def _run_one(self, runner: Runner, name: str) -> None:
        try:
            run = runner.run(name, trigger="schedule")
        except ReverseEtlError as exc:
            # Busy (a manual run holds the sync) or gone since `due`; the next poll retries.
            _log.info("scheduled run of sync %r skipped: %s", name, exc)
            return
        except Exception:
            # Already recorded as a failed run; the worker must outlive any one sync.
            _log.exception("scheduled run of sync %r failed", name)
            return
        level = logging.INFO if run.status == "succeeded" else logging.WARNING
        self.console.line(name, f"sync '{name}': {describe_run(run)}", level)


def _lease_key(sync: str) -> str:
    return f"sync:{sync}"


def _unix(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
