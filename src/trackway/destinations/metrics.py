"""Prometheus metrics of this process's deliveries, served on `/metrics`.

`trackway_destination_events_total{destination, action, outcome}` counts events by what
happened to them (the delivery view's columns) since the process started; per
destination this process delivers, `trackway_destination_lag_events` (events in the log
not yet read), `trackway_destination_retry_waiting` and
`trackway_destination_dead_letters` are read from the delivery store when scraped.
"""

import threading
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from trackway.destinations.state import COUNTERS, DeliveryStore, Outcome


class DeliveryMetrics(Collector):
    """Counts outcomes as workers record them; reads the gauges at scrape time."""

    def __init__(
        self,
        store: DeliveryStore,
        destinations: Callable[[], list[tuple[str, int]]],
        end_of_log: Callable[[], int],
    ) -> None:
        """`destinations` gives (name, start position) of those this process delivers."""
        self._store = store
        self._destinations = destinations
        self._end_of_log = end_of_log
        self._counts: dict[tuple[str, str, str], int] = {}
        self._lock = threading.Lock()

    def add(self, destination: str, outcome: Outcome) -> None:
        with self._lock:
            for action, counts in outcome.counts.items():
                for name in COUNTERS:
                    value = getattr(counts, name)
                    if value:
                        key = (destination, action or "-", name)
                        self._counts[key] = self._counts.get(key, 0) + value

    def collect(self) -> Iterator[Metric]:
        events = CounterMetricFamily(
            "trackway_destination_events",
            "Events by destination, action and outcome (delivered, retried, discarded,"
            " dead_lettered, filtered, unsubscribed, skipped)",
            labels=["destination", "action", "outcome"],
        )
        with self._lock:
            for labels, value in sorted(self._counts.items()):
                events.add_metric(list(labels), value)
        yield events
        lag = GaugeMetricFamily(
            "trackway_destination_lag_events",
            "Events in the log the destination has not read yet",
            labels=["destination"],
        )
        waiting = GaugeMetricFamily(
            "trackway_destination_retry_waiting",
            "Events waiting in the destination's retry schedule",
            labels=["destination"],
        )
        dead = GaugeMetricFamily(
            "trackway_destination_dead_letters",
            "Dead letters kept for the destination",
            labels=["destination"],
        )
        end = self._end_of_log()
        for name, start in self._destinations():
            cursor = self._store.cursor(name, start)
            lag.add_metric([name], max(0, end - cursor.position))
            waiting.add_metric([name], self._store.waiting(name))
            dead.add_metric([name], self._store.dead_letter_count(name))
        yield lag
        yield waiting
        yield dead
