"""Prometheus metrics of one Trackway process."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """Counters per source and the request latency histogram, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ["source"]
        self.received = Counter(
            "trackway_events_received", "Events received", labels, registry=self.registry
        )
        self.accepted = Counter(
            "trackway_events_accepted",
            "Events accepted into the log",
            labels,
            registry=self.registry,
        )
        self.rejected = Counter(
            "trackway_events_rejected",
            "Events rejected on ingest (kept as failures)",
            labels,
            registry=self.registry,
        )
        self.deduplicated = Counter(
            "trackway_events_deduplicated",
            "Events acknowledged but not stored again",
            labels,
            registry=self.registry,
        )
        self.requests = Counter(
            "trackway_http_requests",
            "Tracking API requests by status code",
            ["status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "trackway_request_duration_seconds",
            "Tracking API request latency",
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.pending = Gauge(
            "trackway_log_pending_events",
            "Events waiting for the next commit",
            registry=self.registry,
        )

    def count(
        self, source: str, received: int, accepted: int, rejected: int, duplicates: int
    ) -> None:
        self.received.labels(source).inc(received)
        if accepted:
            self.accepted.labels(source).inc(accepted)
        if rejected:
            self.rejected.labels(source).inc(rejected)
        if duplicates:
            self.deduplicated.labels(source).inc(duplicates)

    def render(self) -> bytes:
        return generate_latest(self.registry)
