"""Destination workers: each enabled destination reads the log from its own cursor in
its own thread, with its own connection pool, so a slow, failing or down destination
never slows ingestion or another destination.

A window of events is routed, delivered and recorded, then the cursor moves past it in
the same transaction as the outcome (retries, dead letters, counts): a crash in between
delivers the window again (at least once; messageIds are kept, so receivers dedupe).
Due retries are delivered between windows. When every attempt of windows in a row
failed and will be retried (the destination looks down), the worker waits longer
between windows, so the retry schedule does not swallow the whole log meanwhile.

With several worker processes on one storage, each destination is worked by the one
process holding its lease (`destination:<name>`); a worker that loses its lease stops
before the lease can be taken, and the process taking over starts from the stored
cursor, so only the window that was in flight can be delivered twice.
"""

import dataclasses
import functools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from trackway.console import ConsoleLines
from trackway.destinations import alerts, config
from trackway.destinations.config import DestinationSpec
from trackway.destinations.delivery import HELD, Delivery, Functions, Job
from trackway.destinations.http import HttpTransport
from trackway.destinations.metrics import DeliveryMetrics
from trackway.destinations.pacing import NamePacer
from trackway.destinations.pipeline import Destination
from trackway.destinations.secrets import Secrets
from trackway.destinations.state import Cursor, DeliveryStore, Outcome, open_delivery_store
from trackway.destinations.transport import Transport
from trackway.functions import FunctionPool
from trackway.settings import Settings
from trackway.storage.base import EventLog, StateStore
from trackway.storage.leases import LeaseHolder, Leases

logger = logging.getLogger("trackway.destinations")

TransportFactory = Callable[[Destination], Transport]

_IDLE_WAIT_S = 0.25
"""At the end of the log, how long a worker waits for new events before it looks at
due retries and a cursor moved by hand again (new events wake it at once)."""
_REFRESH_S = 1.0
_ALERT_EVERY_S = 5.0
_DOWN_WAIT_MAX_S = 60.0
_UNBATCHED_PER_SLOT = 16
"""Events per window per concurrency slot when no subscription batches."""
_WINDOW_MAX = 4_000


def console_summary(outcome: Outcome) -> str:
    """What went wrong in an outcome, for the console ("" when nothing did): how many
    events were blocked, dead-lettered, will be retried or wait for room under the
    destination's creation limits (held), each with its first error."""
    blocked = [d.error for d in outcome.dead if d.error.startswith("blocked:")]
    dead = [d.error for d in outcome.dead if not d.error.startswith("blocked:")]
    held = [p.error for p in outcome.retry if p.error.startswith(HELD)]
    retrying = [p.error for p in outcome.retry if not p.error.startswith(HELD)]
    parts = [
        f"{len(errors)} {what} ({errors[0]})"
        for what, errors in (
            ("blocked", blocked),
            ("dead-lettered", dead),
            ("retrying", retrying),
            ("held", held),
        )
        if errors
    ]
    return "; ".join(parts)


def http_transport(destination: Destination) -> Transport:
    """The real transport for a destination, from its delivery options."""
    delivery = destination.spec.delivery
    return HttpTransport(
        timeout_s=destination.timeout_s,
        allow_private=delivery.allow_private_addresses,
        max_connections=delivery.concurrency,
        destination=destination.name,
    )


class DestinationWorker:
    """Delivers one destination's events in a thread until `stop()`."""

    def __init__(
        self,
        destination: Destination,
        log: EventLog,
        store: DeliveryStore,
        transport: Transport,
        functions: Functions | None,
        leased: Callable[[], bool] = lambda: True,
        metrics: DeliveryMetrics | None = None,
        console: ConsoleLines | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.destination = destination
        self.metrics = metrics
        self.console = console or ConsoleLines(logger)
        self.leased = leased
        """Whether this process still holds the destination's lease: checked before
        each window, so a worker never starts one after losing it."""
        self.log = log
        self.store = store
        self.transport = transport
        concurrency = destination.spec.delivery.concurrency
        self._executor = ThreadPoolExecutor(
            concurrency, thread_name_prefix=f"trackway-deliver-{destination.name}"
        )
        limits = destination.definition.creation_limits
        pacer = NamePacer(limits, store.names(destination.name), clock) if limits else None
        self.delivery = Delivery(
            destination, transport, self._executor, functions, clock=clock, pacer=pacer
        )
        batched = any(s.batch and s.action.perform_batch for s in destination.subscriptions)
        per_slot = destination.spec.delivery.batch_size if batched else _UNBATCHED_PER_SLOT
        self.window = min(_WINDOW_MAX, concurrency * per_slot)
        self._stop = threading.Event()
        self._next_alert = 0.0
        self._thread = threading.Thread(
            target=self._run, name=f"trackway-destination-{destination.name}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def signal_stop(self) -> None:
        """Stop after the window in progress, without waiting for it."""
        self._stop.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the window in progress and stop."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.transport.close()

    def _run(self) -> None:
        spec = self.destination.spec
        start = spec.start_position
        if start is None:
            start = self.log.last_seqs()["accepted"]
        cursor = self.store.cursor(spec.name, start)
        while not self._stop.is_set() and self.leased():
            try:
                if self._retry_due(cursor):
                    continue
                wait = self._down_wait()
                if wait and self._stop.wait(wait):
                    break
                if not self.leased():
                    break
                cursor, read = self._window(cursor)
                self._check_alerts()
                if not read and not self._stop.is_set():
                    self.log.wait_for(cursor.position, _IDLE_WAIT_S)
            except Exception:
                logger.exception("destination %s: delivery failed; retrying", spec.name)
                self._stop.wait(1.0)
                cursor = self.store.cursor(spec.name, start)

    def _window(self, cursor: Cursor) -> tuple[Cursor, int]:
        """Deliver the next window of the log; returns the new cursor and events read."""
        events = self.log.read(cursor.position, self.window)
        if not events:
            # idle: pick up a cursor moved by hand (replay) since
            return self.store.cursor(self.destination.name, cursor.position), 0
        outcome = Outcome()
        jobs: list[Job] = []
        for logged in events:
            if not self.destination.takes(logged.source_id):
                continue
            routed = self.destination.route(logged.body)
            if routed.event is None or not routed.subscriptions:
                counts = outcome.count("")
                setattr(counts, routed.reason, getattr(counts, routed.reason) + 1)
                continue
            since = max(logged.received_at_ms, cursor.replayed_at_ms)
            jobs.extend(
                Job(sub, routed.event, logged.position, logged.received_at_ms, since)
                for sub in routed.subscriptions
            )
        if jobs:
            self.delivery.run(jobs, outcome)
        moved = dataclasses.replace(cursor, position=events[-1].position)
        recorded = self.store.record(self.destination.name, outcome, moved)
        self._count(outcome)
        self._tell(outcome)
        if recorded:
            return moved, len(events)
        # moved by hand (replay) meanwhile: continue from there
        return self.store.cursor(self.destination.name, moved.position), len(events)

    def _retry_due(self, cursor: Cursor) -> bool:
        """Deliver retries that are due; False when none are."""
        now_ms = int(self.delivery.clock() * 1000)
        due = self.store.due(self.destination.name, now_ms, self.window)
        if not due:
            return False
        by_name = {s.name: s for s in self.destination.subscriptions}
        outcome = Outcome()
        jobs: list[Job] = []
        for pending in due:
            subscription = by_name.get(pending.subscription)
            if subscription is None:  # removed or disabled since: nothing to deliver to
                outcome.count("").unsubscribed += 1
                if pending.id is not None:
                    outcome.done.append(pending.id)
                continue
            since = max(pending.received_at_ms, cursor.replayed_at_ms)
            jobs.append(
                Job(
                    subscription,
                    pending.event,
                    pending.position,
                    pending.received_at_ms,
                    since,
                    pending,
                )
            )
        if jobs:
            self.delivery.run(jobs, outcome)
        self.store.record(self.destination.name, outcome, None)
        self._count(outcome)
        self._tell(outcome)
        return True

    def _count(self, outcome: Outcome) -> None:
        if self.metrics is not None:
            self.metrics.add(self.destination.name, outcome)

    def _tell(self, outcome: Outcome) -> None:
        """One console line (rate-limited) when events were blocked, dead-lettered or
        put back for a retry."""
        summary = console_summary(outcome)
        if summary:
            self.console.line(
                self.destination.name, f"destination '{self.destination.name}': {summary}"
            )

    def _down_wait(self) -> float:
        failures = self.delivery.failures_in_row
        if failures < 2:
            return 0.0
        return float(min(_DOWN_WAIT_MAX_S, 2 ** (failures - 2)))

    def _check_alerts(self) -> None:
        if self.destination.spec.alerts is None or time.monotonic() < self._next_alert:
            return
        self._next_alert = time.monotonic() + _ALERT_EVERY_S
        alerts.check(self.destination.spec, self.store)


class Deliveries:
    """The workers of every enabled destination of a workspace: a worker of
    `trackway serve` (`start()`, `stop()`).

    About once a second it re-reads the destinations, takes the leases of those it can
    work (with `leases`, shared by every worker process), and starts, restarts or stops
    workers to match; a destination that cannot start (e.g. its secrets cannot be
    decrypted) is logged and retried.
    """

    def __init__(
        self,
        settings: Settings,
        log: EventLog,
        store: StateStore,
        transports: TransportFactory = http_transport,
        functions: Callable[[], Functions] | None = None,
        leases: Leases | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.clock = clock
        """The time deliveries see (retries due, creation limits): injectable for tests."""
        self.data_dir = settings.data_dir
        self.log = log
        self.store = store
        self.transports = transports
        self._functions_factory = functions or (lambda: FunctionPool(hidden=[self.data_dir]))
        self._functions: Functions | None = None
        self.delivery_store: DeliveryStore = open_delivery_store(settings)
        self.metrics = DeliveryMetrics(
            self.delivery_store,
            lambda: [(s.name, s.start_position or 0) for s, _w in list(self.running.values())],
            lambda: self.log.last_seqs()["accepted"],
        )
        self.leases = LeaseHolder(leases, self._lost)
        self.console = ConsoleLines(logger)
        """Shared by the workers, so a restarted worker keeps its destination's limit."""
        self.running: dict[str, tuple[DestinationSpec, DestinationWorker]] = {}
        self._failed: dict[str, DestinationSpec] = {}
        self._stopped = threading.Event()
        self._watcher: threading.Thread | None = None

    def start(self) -> None:
        self.refresh()
        self._watcher = threading.Thread(target=self._watch, name="trackway-destinations")
        self._watcher.start()

    def refresh(self) -> None:
        """Make the running workers match the enabled destinations whose lease is held."""
        specs = config.destinations(self.store)
        enabled = {s.name: s for s in specs if s.enabled}
        # one that cannot start here (e.g. another secret key) is left to other workers
        workable = [name for name, spec in enabled.items() if self._failed.get(name) != spec]
        held = self.leases.hold(_lease_key(name) for name in workable)
        wanted = {name: spec for name, spec in enabled.items() if _lease_key(name) in held}
        for name, (spec, worker) in list(self.running.items()):
            if wanted.get(name) != spec or not worker.alive:
                worker.stop()
                del self.running[name]
                if all(s.name != name for s in specs):
                    # deleted while it delivered: keep what its last window left waiting
                    self.delivery_store.retire(name, int(time.time() * 1000))
        secrets: Secrets | None = None
        for name, spec in wanted.items():
            if name in self.running or self._failed.get(name) == spec:
                continue
            try:
                secrets = secrets or Secrets.of(self.data_dir)
                destination = Destination(
                    spec,
                    config.plain_settings(spec, secrets),
                    source_ids=config.source_ids(spec, self.store),
                )
            except Exception as exc:
                logger.error("destination %s cannot start: %s", name, exc)
                self._failed[name] = spec
                continue
            self._failed.pop(name, None)
            key = _lease_key(name)
            worker = DestinationWorker(
                destination,
                self.log,
                self.delivery_store,
                self.transports(destination),
                self._function_pool() if spec.function else None,
                leased=functools.partial(self.leases.holds, key),
                metrics=self.metrics,
                console=self.console,
                clock=self.clock,
            )
            worker.start()
            self.running[name] = (spec, worker)

    def stop(self) -> None:
        """Stop every worker (each finishes its window), then give the leases up."""
        self._stopped.set()
        if self._watcher is not None:
            self._watcher.join()
        for _spec, worker in self.running.values():
            worker.stop()
        self.running.clear()
        self.leases.close()
        close = getattr(self._functions, "close", None)
        if close is not None:
            close()
        self.delivery_store.close()

    def _lost(self, key: str) -> None:
        entry = self.running.get(key.removeprefix("destination:"))
        if entry is not None:
            entry[1].signal_stop()

    def _function_pool(self) -> Functions:
        if self._functions is None:
            self._functions = self._functions_factory()
        return self._functions

    def _watch(self) -> None:
        while not self._stopped.wait(_REFRESH_S):
            try:
                self.refresh()
            except Exception:
                logger.exception("destination specs could not be read")


def _lease_key(destination: str) -> str:
    return f"destination:{destination}"
