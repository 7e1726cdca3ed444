"""Prometheus metrics of this process's warehouse loaders, served on `/metrics`.

Counted since the process started, per warehouse:
`trackway_warehouse_events_loaded_total`, `trackway_warehouse_rows_loaded_total`,
`trackway_warehouse_rejected_values_total` and `trackway_warehouse_load_failures_total`.
Read from the loaders this process runs when scraped: `trackway_warehouse_lag_events`
(events in the log after the warehouse's cursor), `trackway_warehouse_failing_attempts`
(failed attempts in a row, 0 once a load succeeds) and
`trackway_warehouse_last_load_timestamp_seconds`.
"""

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:  # loader.py imports this module
    from trackway.warehouse.loader import LoadResult

Loading = Callable[[], list[tuple[str, int, int | None]]]
"""Gives (warehouse, failed attempts in a row, cursor or None if never read) of each
loader this process runs."""


@dataclass(slots=True)
class _Totals:
    events: int = 0
    rows: int = 0
    rejected: int = 0
    failures: int = 0
    last_load_s: float | None = None


class WarehouseMetrics(Collector):
    """Counts loads and failures as loader threads report them; reads the gauges from
    the running threads at scrape time."""

    def __init__(self, loading: Loading, end_of_log: Callable[[], int]) -> None:
        self._loading = loading
        self._end_of_log = end_of_log
        self._totals: dict[str, _Totals] = {}
        self._lock = threading.Lock()

    def loaded(self, warehouse: str, result: "LoadResult") -> None:
        """A micro-batch was loaded into `warehouse`."""
        with self._lock:
            totals = self._totals.setdefault(warehouse, _Totals())
            totals.events += result.events
            totals.rows += result.rows
            totals.rejected += result.rejected
            totals.last_load_s = result.committed_ms / 1000

    def failed(self, warehouse: str) -> None:
        """An attempt to load into `warehouse` failed (it will be retried)."""
        with self._lock:
            self._totals.setdefault(warehouse, _Totals()).failures += 1

    def collect(self) -> Iterator[Metric]:
        families = {
            "events": CounterMetricFamily(
                "trackway_warehouse_events_loaded",
                "Events loaded into the warehouse by this process",
                labels=["warehouse"],
            ),
            "rows": CounterMetricFamily(
                "trackway_warehouse_rows_loaded",
                "Rows written into the warehouse's tables by this process",
                labels=["warehouse"],
            ),
            "rejected": CounterMetricFamily(
                "trackway_warehouse_rejected_values",
                "Values kept in _rejected_values instead of their column",
                labels=["warehouse"],
            ),
            "failures": CounterMetricFamily(
                "trackway_warehouse_load_failures",
                "Failed attempts to load a micro-batch (each is retried)",
                labels=["warehouse"],
            ),
        }
        last_load = GaugeMetricFamily(
            "trackway_warehouse_last_load_timestamp_seconds",
            "When this process last committed a micro-batch into the warehouse",
            labels=["warehouse"],
        )
        with self._lock:
            for name, totals in sorted(self._totals.items()):
                for field, family in families.items():
                    family.add_metric([name], getattr(totals, field))
                if totals.last_load_s is not None:
                    last_load.add_metric([name], totals.last_load_s)
        yield from families.values()
        yield last_load
        lag = GaugeMetricFamily(
            "trackway_warehouse_lag_events",
            "Events in the log after the warehouse's cursor",
            labels=["warehouse"],
        )
        failing = GaugeMetricFamily(
            "trackway_warehouse_failing_attempts",
            "Failed load attempts in a row (0: the last attempt succeeded)",
            labels=["warehouse"],
        )
        end = self._end_of_log()
        for name, failures, position in sorted(self._loading()):
            failing.add_metric([name], failures)
            if position is not None:  # None: the warehouse was never reached
                lag.add_metric([name], max(0, end - position))
        yield lag
        yield failing
