"""The warehouse loader: a consumer of the event log that fills one warehouse.

Its cursor lives in the warehouse (`_trackway_loads`) and moves in the same transaction
as the rows, so a crash between the two cannot happen; rows are upserted by `id`, so
loading an event twice (a reload) leaves one row. Together: exactly once in the tables.
"""

import functools
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from trackway.storage.base import EventLog, StateStore
from trackway.storage.leases import LeaseHolder, Leases
from trackway.warehouse.base import Session, Warehouse
from trackway.warehouse.config import WarehouseSpec, warehouses
from trackway.warehouse.engines import open_warehouse, sources
from trackway.warehouse.metrics import WarehouseMetrics
from trackway.warehouse.naming import source_schemas
from trackway.warehouse.plan import LoadPlan, Planner
from trackway.warehouse.planning import Job, PlanningProcess, log_location, read_plan
from trackway.warehouse.yielding import Yielder

logger = logging.getLogger("trackway.warehouse")

SourceList = Callable[[], list[tuple[int, str]]]
"""Returns (source id, source name) of every source."""

_POLL_S = 0.25
_REFRESH_S = 1.0
_BACKOFF_FIRST_S = 1.0
_BACKOFF_MAX_S = 30.0


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What one micro-batch loaded."""

    first_position: int
    position: int
    events: int
    rows: int
    rejected: int
    oldest_received_ms: int
    committed_ms: int


class WarehouseLoader:
    """Loads accepted events from the log into one warehouse, one micro-batch at a time."""

    def __init__(
        self, spec: WarehouseSpec, warehouse: Warehouse, log: EventLog, sources: SourceList
    ) -> None:
        self.spec = spec
        self.warehouse = warehouse
        self.log = log
        self.sources = sources
        self.position: int | None = None
        """The cursor as of the last load or look (None until the warehouse was opened)."""
        self._schemas: dict[int, str] = {}

    def run_once(self) -> LoadResult | None:
        """Load the next micro-batch after the warehouse's cursor; None when none waits."""
        with self.warehouse.session() as session:
            self.position = session.position()
            planner = Planner(session.catalog(), self.spec.max_columns)
            plan = self._read_plan(planner, self.position, self.spec.batch_size)
            if plan is None:
                return None
            result = self._load(session, plan)
        self.position = result.position
        return result

    def catch_up(
        self,
        after: int | None = None,
        end: int | None = None,
        on_batch: Callable[[LoadResult], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> int:
        """Load every micro-batch after `after` (default: the warehouse's cursor) up to
        position `end` (default: the end of the log now), in one session; returns the
        number of events loaded.

        While the warehouse writes one micro-batch, a child process reads and plans the
        next one (planning.py says why a process); the first micro-batch is planned here
        while that process starts. Loading events again
        replaces their rows (by `id`), and the cursor never moves back, so this also
        serves reloads, while a server loads the same warehouse too. Setting `cancel`
        stops it after the micro-batch being loaded.
        """
        end = self.log.last_seqs()["accepted"] if end is None else end
        location = log_location(self.log)
        if location is None:
            raise TypeError(f"cannot plan in another process for {type(self.log).__name__}")
        loaded = 0
        with self.warehouse.session() as session:
            after = session.position() if after is None else after
            if after >= end:
                return 0
            self._refresh_schemas()
            planning = PlanningProcess(self._lookup)
            try:
                planner = Planner(session.catalog(), self.spec.max_columns)
                first = self._read_plan(planner, after, min(self.spec.batch_size, end - after))
                if first is None:
                    return 0
                plans: Iterable[LoadPlan] = [first]
                if first.position < end:
                    job = Job(
                        location,
                        planner.catalog,
                        self.spec.max_columns,
                        dict(self._schemas),
                        first.position,
                        end,
                        self.spec.batch_size,
                        self.warehouse.engine,
                        first.first_position - 1,
                    )
                    planning.start(job)
                    plans = itertools.chain(plans, planning)
                for plan in plans:
                    result = self._load(session, plan)
                    self.position = max(self.position or 0, result.position)
                    loaded += result.events
                    if on_batch is not None:
                        on_batch(result)
                    if cancel is not None and cancel.is_set():
                        break
            finally:
                planning.close()
        return loaded

    def _read_plan(self, planner: Planner, after: int, limit: int) -> LoadPlan | None:
        """The plan of up to `limit` events after position `after`; None when none waits."""
        return read_plan(self.log, planner, after, limit, self._schemas, self._lookup)

    def _lookup(self, source_ids: list[int]) -> dict[int, str]:
        self._refresh_schemas()
        return dict(self._schemas)

    def _refresh_schemas(self) -> None:
        self._schemas = source_schemas(self.sources())

    @staticmethod
    def _load(session: Session, plan: LoadPlan) -> LoadResult:
        session.load(plan)
        return LoadResult(
            plan.first_position,
            plan.position,
            plan.events,
            plan.rows,
            len(plan.rejected),
            plan.oldest_received_ms,
            int(time.time() * 1000),
        )


class LoaderThread:
    """Runs a `WarehouseLoader` in the background until `stop()`.

    A micro-batch is loaded when `batch_size` events wait, or when some wait and
    `interval_s` has passed since the last load. When the warehouse fails (down,
    unreachable, locked) it retries with exponential backoff; ingestion never waits.
    `on_load` is called with each micro-batch loaded, `on_failure` after each failed
    attempt. With `busy` (the server's `IngestPressure.busy`), it gives way to
    ingestion after each micro-batch (yielding.py).
    """

    def __init__(
        self,
        loader: WarehouseLoader,
        poll_s: float = _POLL_S,
        backoff_max_s: float = _BACKOFF_MAX_S,
        on_load: Callable[[LoadResult], None] | None = None,
        on_failure: Callable[[], None] | None = None,
        busy: Callable[[], bool] | None = None,
    ) -> None:
        self.loader = loader
        self.poll_s = poll_s
        self.backoff_max_s = backoff_max_s
        self.on_load = on_load
        self.on_failure = on_failure
        self.failures = 0
        """Failed attempts in a row (0 once one succeeds)."""
        self._stop = threading.Event()
        self.yielder = Yielder(busy, self._stop) if busy is not None else None
        self._batch_started = 0.0
        self._thread = threading.Thread(
            target=self._run, name=f"trackway-warehouse-{loader.spec.name}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def signal_stop(self) -> None:
        """Stop after the micro-batch in progress, without waiting for it."""
        self._stop.set()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 60.0) -> None:
        """Finish the micro-batch in progress (if any) and stop."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _wait(self, head: int, known: int, since_load_s: float) -> None:
        """Sleep until a micro-batch may be due: it fills, or the interval ends (then the
        next commit), rather than at every commit: with single events the API's process
        commits thousands of times a second, and each wake-up reads the log's head."""
        spec = self.loader.spec
        left_s = spec.interval_s - since_load_s
        if left_s > 0:
            self.loader.log.wait_for(known + spec.batch_size - 1, min(left_s, self.poll_s))
        else:
            self.loader.log.wait_for(head, self.poll_s)

    def _loaded(self, result: LoadResult) -> None:
        if self.on_load is not None:
            self.on_load(result)
        if self.yielder is not None:
            self.yielder.after(time.monotonic() - self._batch_started)
            self._batch_started = time.monotonic()

    def _run(self) -> None:
        spec = self.loader.spec
        last_load = 0.0
        while not self._stop.is_set():
            try:
                head = self.loader.log.last_seqs()["accepted"]
                known = self.loader.position
                waiting = head - known if known is not None else head
                due = waiting >= spec.batch_size or (
                    waiting > 0 and time.monotonic() - last_load >= spec.interval_s
                )
                if not due:
                    self._wait(head, known or 0, time.monotonic() - last_load)
                    continue
                self._batch_started = time.monotonic()
                if waiting >= 2 * spec.batch_size:
                    self.loader.catch_up(end=head, on_batch=self._loaded, cancel=self._stop)
                else:
                    result = self.loader.run_once()
                    if result is not None:
                        self._loaded(result)
            except Exception as exc:
                self.failures += 1
                if self.on_failure is not None:
                    self.on_failure()
                delay = min(_BACKOFF_FIRST_S * 2 ** (self.failures - 1), self.backoff_max_s)
                logger.warning(
                    "warehouse %s: load failed (%s); retrying in %.0f s", spec.name, exc, delay
                )
                self._stop.wait(delay)
                continue
            self.failures = 0
            last_load = time.monotonic()


class Loaders:
    """The loader threads of every enabled warehouse of a data directory: a worker of
    `trackway serve` (`start()`, `stop()`).

    About once a second it re-reads the warehouse specs, starts loaders for warehouses
    that appeared or changed and stops those removed or disabled. With `leases` (shared
    by every worker process) a warehouse is loaded only by the process holding its lease.
    `busy` is handed to each loader (`LoaderThread`).
    """

    def __init__(
        self,
        data_dir: Path,
        log: EventLog,
        store: StateStore,
        leases: Leases | None = None,
        busy: Callable[[], bool] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.busy = busy
        self.log = log
        self.store = store
        self.leases = LeaseHolder(leases, self._lost)
        self.running: dict[str, tuple[WarehouseSpec, LoaderThread]] = {}
        self.metrics = WarehouseMetrics(self._loading, lambda: log.last_seqs()["accepted"])
        self._stopped = threading.Event()
        self._watcher: threading.Thread | None = None

    def start(self) -> None:
        self.refresh()
        self._watcher = threading.Thread(target=self._watch, name="trackway-warehouses")
        self._watcher.start()

    def refresh(self) -> None:
        """Make the running loaders match the enabled warehouses whose lease is held."""
        enabled = {s.name: s for s in warehouses(self.store) if s.enabled}
        held = self.leases.hold(_lease_key(name) for name in enabled)
        wanted = {name: spec for name, spec in enabled.items() if _lease_key(name) in held}
        for name, (spec, thread) in list(self.running.items()):
            if wanted.get(name) != spec or not thread.alive:
                thread.stop()
                thread.loader.warehouse.close()
                del self.running[name]
        for name, spec in wanted.items():
            if name not in self.running:
                warehouse = open_warehouse(spec, self.data_dir)
                loader = WarehouseLoader(spec, warehouse, self.log, self._sources)
                thread = LoaderThread(
                    loader,
                    on_load=functools.partial(self.metrics.loaded, name),
                    on_failure=functools.partial(self.metrics.failed, name),
                    busy=self.busy,
                )
                thread.start()
                self.running[name] = (spec, thread)

    def stop(self) -> None:
        """Stop every loader (each finishes the micro-batches it has planned)."""
        self._stopped.set()
        if self._watcher is not None:
            self._watcher.join()
        for _spec, thread in self.running.values():
            thread.stop()
            thread.loader.warehouse.close()
        self.running.clear()
        self.leases.close()

    def _lost(self, key: str) -> None:
        entry = self.running.get(key.removeprefix("warehouse:"))
        if entry is not None:
            entry[1].signal_stop()

    def _watch(self) -> None:
        while not self._stopped.wait(_REFRESH_S):
            try:
                self.refresh()
            except Exception:
                logger.exception("warehouse specs could not be read")

    def _sources(self) -> list[tuple[int, str]]:
        return sources(self.store)

    def _loading(self) -> list[tuple[str, int, int | None]]:
        return [(n, t.failures, t.loader.position) for n, (_s, t) in list(self.running.items())]


def _lease_key(warehouse: str) -> str:
    return f"warehouse:{warehouse}"
