"""Destination workers: each enabled destination reads the log from its own cursor in
its own thread, with its own connection pool, so a slow, failing or down destination
never slows ingestion or another destination.

A window of events is routed, delivered and recorded, then the cursor moves past it in
the same transaction as the outcome (retries, dead letters, counts): a crash in between
delivers the window again (at least once; messageIds are kept, so receivers dedupe).
Due retries are delivered between windows. When every attempt of windows in a row
failed and will be retried (the destination looks down), the worker waits longer
between windows, so the retry schedule does not swallow the whole log meanwhile.
"""

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from trackway.destinations import alerts, config
from trackway.destinations.config import DestinationSpec
from trackway.destinations.delivery import Delivery, Functions, Job
from trackway.destinations.pipeline import Destination
from trackway.destinations.secrets import Secrets
from trackway.destinations.state import Cursor, DeliveryStore, Outcome
from trackway.destinations.state.sqlite import SQLiteDeliveryStore
from trackway.destinations.transport import Transport
from trackway.storage.base import EventLog, StateStore

logger = logging.getLogger("trackway.destinations")

TransportFactory = Callable[[Destination], Transport]

_POLL_S = 0.05
_REFRESH_S = 1.0
_ALERT_EVERY_S = 5.0
_DOWN_WAIT_MAX_S = 60.0
_UNBATCHED_PER_SLOT = 16
"""Events per window per concurrency slot when no subscription batches."""
_WINDOW_MAX = 4_000


def http_transport(destination: Destination) -> Transport:
    """The real transport for a destination, from its delivery options."""
    from trackway.destinations.http import HttpTransport

    delivery = destination.spec.delivery
    return HttpTransport(
        timeout_s=destination.timeout_s,
        allow_private=delivery.allow_private_addresses,
        max_connections=delivery.concurrency,
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
    ) -> None:
        self.destination = destination
        self.log = log
        self.store = store
        self.transport = transport
        concurrency = destination.spec.delivery.concurrency
        self._executor = ThreadPoolExecutor(
            concurrency, thread_name_prefix=f"trackway-deliver-{destination.name}"
        )
        self.delivery = Delivery(destination, transport, self._executor, functions)
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
        while not self._stop.is_set():
            try:
                if self._retry_due():
                    continue
                wait = self._down_wait()
                if wait and self._stop.wait(wait):
                    break
                cursor, read = self._window(cursor)
                self._check_alerts()
                if not read:
                    self._stop.wait(_POLL_S)
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
            routed = self.destination.route(logged.body)
            if routed.event is None or not routed.subscriptions:
                counts = outcome.count("")
                setattr(counts, routed.reason, getattr(counts, routed.reason) + 1)
                continue
            jobs.extend(
                Job(sub, routed.event, logged.position, logged.received_at_ms)
                for sub in routed.subscriptions
            )
        if jobs:
            self.delivery.run(jobs, outcome)
        moved = Cursor(events[-1].position, cursor.generation)
        if self.store.record(self.destination.name, outcome, moved):
            return moved, len(events)
        # moved by hand (replay) meanwhile: continue from there
        return self.store.cursor(self.destination.name, moved.position), len(events)

    def _retry_due(self) -> bool:
        """Deliver retries that are due; False when none are."""
        now_ms = int(time.time() * 1000)
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
            jobs.append(
                Job(subscription, pending.event, pending.position, pending.received_at_ms, pending)
            )
        if jobs:
            self.delivery.run(jobs, outcome)
        self.store.record(self.destination.name, outcome, None)
        return True

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

    About once a second it re-reads the destinations and restarts the workers of those
    that changed; a destination that cannot start (e.g. its secrets cannot be
    decrypted) is logged and retried.
    """

    def __init__(
        self,
        data_dir: Path,
        log: EventLog,
        store: StateStore,
        transports: TransportFactory = http_transport,
        functions: Callable[[], Functions] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.log = log
        self.store = store
        self.transports = transports
        self._functions_factory = functions or _function_pool
        self._functions: Functions | None = None
        self.delivery_store: DeliveryStore = SQLiteDeliveryStore.of(data_dir)
        self.running: dict[str, tuple[DestinationSpec, DestinationWorker]] = {}
        self._failed: dict[str, DestinationSpec] = {}
        self._stopped = threading.Event()
        self._watcher: threading.Thread | None = None

    def start(self) -> None:
        self.refresh()
        self._watcher = threading.Thread(target=self._watch, name="trackway-destinations")
        self._watcher.start()

    def refresh(self) -> None:
        """Make the running workers match the enabled destinations."""
        wanted = {s.name: s for s in config.destinations(self.store) if s.enabled}
        for name, (spec, worker) in list(self.running.items()):
            if wanted.get(name) != spec:
                worker.stop()
                del self.running[name]
        secrets: Secrets | None = None
        for name, spec in wanted.items():
            if name in self.running or self._failed.get(name) == spec:
                continue
            try:
                secrets = secrets or Secrets.of(self.data_dir)
                destination = Destination(spec, config.plain_settings(spec, secrets))
            except Exception as exc:
                logger.error("destination %s cannot start: %s", name, exc)
                self._failed[name] = spec
                continue
            self._failed.pop(name, None)
            worker = DestinationWorker(
                destination,
                self.log,
                self.delivery_store,
                self.transports(destination),
                self._function_pool() if spec.function else None,
            )
            worker.start()
            self.running[name] = (spec, worker)

    def stop(self) -> None:
        """Stop every worker (each finishes its window)."""
        self._stopped.set()
        if self._watcher is not None:
            self._watcher.join()
        for _spec, worker in self.running.values():
            worker.stop()
        self.running.clear()
        close = getattr(self._functions, "close", None)
        if close is not None:
            close()
        self.delivery_store.close()

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


def _function_pool() -> Functions:
    from trackway.functions import FunctionPool

    return FunctionPool()
