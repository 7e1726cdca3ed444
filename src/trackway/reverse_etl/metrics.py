"""Prometheus metrics of this process's sync runs, served on `/metrics`.

Counted since the process started, per sync: `trackway_reverse_etl_runs_total{sync,
status}` (runs that ended: succeeded, partial, failed, cancelled) and
`trackway_reverse_etl_rows_total{sync, kind}` (the rows of their diffs: added, changed,
removed); `trackway_reverse_etl_last_run_timestamp_seconds{sync}` is when this
process's last run of the sync ended.
"""

import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from trackway.reverse_etl.state import KINDS, Run


@dataclass(slots=True)
class _Totals:
    runs: Counter[str] = field(default_factory=Counter)
    rows: Counter[str] = field(default_factory=Counter)
    last_run_s: float | None = None


class ReverseEtlMetrics(Collector):
    """Counts the runs a runner reports as they end (`finished`)."""

    def __init__(self) -> None:
        self._totals: dict[str, _Totals] = {}
        self._lock = threading.Lock()

    def finished(self, run: Run) -> None:
        """A run of `run.sync` ended (any status)."""
        with self._lock:
            totals = self._totals.setdefault(run.sync, _Totals())
            totals.runs[run.status] += 1
            for kind in KINDS:
                totals.rows[kind] += getattr(run.counts, kind)
            if run.ended_at is not None:
                ended = datetime.fromisoformat(run.ended_at.replace("Z", "+00:00"))
                totals.last_run_s = ended.timestamp()

    def collect(self) -> Iterator[Metric]:
        runs = CounterMetricFamily(
            "trackway_reverse_etl_runs",
            "Sync runs this process ended, by status",
            labels=["sync", "status"],
        )
        rows = CounterMetricFamily(
            "trackway_reverse_etl_rows",
            "Rows of the diffs of this process's sync runs, by change kind",
            labels=["sync", "kind"],
        )
        last_run = GaugeMetricFamily(
            "trackway_reverse_etl_last_run_timestamp_seconds",
            "When this process's last run of the sync ended",
            labels=["sync"],
        )
        with self._lock:
            for name, totals in sorted(self._totals.items()):
                for status, count in sorted(totals.runs.items()):
                    runs.add_metric([name, status], count)
                for kind in KINDS:
                    rows.add_metric([name, kind], totals.rows[kind])
                if totals.last_run_s is not None:
                    last_run.add_metric([name], totals.last_run_s)
        yield runs
        yield rows
        yield last_run
