"""The event delivery view: per destination and per action, what happened to events
over a window, the waiting retries, the dead letters, the last errors with their
samples and the alerts. Shared by `trackway destinations delivery` and the admin API."""

import math
import time
from typing import Any

import msgspec
from rich.table import Table

from trackway import codec, terminal
from trackway.destinations.config import DestinationSpec
from trackway.destinations.state import COUNTERS, Alert, Counts, DeliveryStore

COLUMNS = (*COUNTERS, "p50_ms", "p95_ms")


def delivery_report(
    spec: DestinationSpec, store: DeliveryStore, end_of_log: int, window_s: float, errors: int
) -> dict[str, Any]:
    """The delivery view of one destination as plain data (JSON-ready)."""
    now_ms = int(time.time() * 1000)
    by_action = store.counts(spec.name, now_ms - int(window_s * 1000))
    total = Counts()
    rows = []
    for action in sorted(by_action):
        counts = by_action[action]
        total.add(counts)
        rows.append({"action": action or "(no action)", **_row(counts)})
    cursor = store.cursor(spec.name, spec.start_position or 0)
    return {
        "destination": spec.name,
        "type": spec.type,
        "enabled": spec.enabled,
        "sources": spec.sources,
        "window_s": window_s,
        "actions": rows,
        "total": _row(total),
        "success_rate": _rate(total),
        "lag_events": max(0, end_of_log - cursor.position),
        "retry_waiting": store.waiting(spec.name),
        "held_waiting": store.held(spec.name),
        "dead_letters": store.dead_letter_count(spec.name),
        "errors": [
            {
                "at": _iso(e.at_ms),
                "action": e.action,
                "kind": e.kind,
                "message": e.message,
                "event": e.event,
                "request": e.request,
                "response": e.response,
            }
            for e in store.errors(spec.name, errors)
        ],
        "alerts": [_alert(a) for a in store.alerts(spec.name, 10)],
    }


SERIES_POINTS = 60
"""About how many points a delivery series has, whatever its window."""


def delivery_series(spec: DestinationSpec, store: DeliveryStore, window_s: float) -> dict[str, Any]:
    """The counts of every action together over time, for a chart: the window cut into
    whole minutes' buckets (about SERIES_POINTS of them), oldest first, empty ones too."""
    bucket_min = max(1, math.ceil(window_s / 60 / SERIES_POINTS))
    now_min = int(time.time() * 1000) // 60_000
    first = (now_min - max(1, math.ceil(window_s / 60)) + 1) // bucket_min * bucket_min
    buckets = {start: Counts() for start in range(first, now_min + 1, bucket_min)}
    for minute, counts in store.minutes(spec.name, first * 60_000).items():
        buckets[first + (minute - first) // bucket_min * bucket_min].add(counts)
    return {
        "destination": spec.name,
        "window_s": window_s,
        "bucket_s": bucket_min * 60,
        "points": [{"at": _iso(start * 60_000), **_row(c)} for start, c in buckets.items()],
    }


def alerts_view(spec: DestinationSpec, store: DeliveryStore, limit: int) -> dict[str, Any]:
    """The destination's alert rules, whether it is alerting now, and the history of its
    alerts and recoveries, newest first."""
    history = store.alerts(spec.name, limit)
    return {
        "destination": spec.name,
        "rules": None if spec.alerts is None else msgspec.to_builtins(spec.alerts),
        "alerting": bool(history) and history[0].kind == "alert",
        "history": [_alert(a) for a in history],
    }


def health(spec: DestinationSpec, store: DeliveryStore, window_s: float) -> dict[str, Any]:
    """The successful delivery rate over the window and whether an alert is open."""
    total = Counts()
    for counts in store.counts(spec.name, int((time.time() - window_s) * 1000)).values():
        total.add(counts)
    last = store.alerts(spec.name, 1)
    return {"success_rate": _rate(total), "alerting": bool(last) and last[0].kind == "alert"}


def _rate(total: Counts) -> float | None:
    return round(total.delivered / total.attempts, 4) if total.attempts else None


def _alert(alert: Alert) -> dict[str, Any]:
    return {
        "at": _iso(alert.at_ms),
        "kind": alert.kind,
        "rate": round(alert.rate, 4),
        "threshold": alert.threshold,
        "attempts": alert.attempts,
        "notified": alert.notified,
    }


def render(report: dict[str, Any]) -> str:
    """The delivery view as a readable table, then the errors and alerts."""
    console = terminal.console()
    window_h = report["window_s"] / 3600
    sources = ", ".join(report["sources"]) if report["sources"] else "every source"
    table = Table(
        title=f"{report['destination']} ({report['type']}, from {sources}): last {window_h:g} h"
    )
    table.add_column("action")
    for column in COLUMNS:
        table.add_column(column.replace("_", " "), justify="right")
    for row in [*report["actions"], {"action": "total", **report["total"]}]:
        table.add_row(row["action"], *(_cell(row[c]) for c in COLUMNS))
    console.print(table)
    rate = report["success_rate"]
    console.print(
        f"successful delivery rate: {'-' if rate is None else f'{rate * 100:.2f}%'}   "
        f"behind the log: {report['lag_events']} events   "
        f"waiting to be retried: {report['retry_waiting']}"
        f"{_held(report['held_waiting'])}   "
        f"dead letters: {report['dead_letters']}"
    )
    for error in report["errors"]:
        console.print(f"\n[{error['at']}] {error['action']}: {error['message']}", markup=False)
        for sample in ("event", "request", "response"):
            if error[sample] is not None:
                console.print(f"  {sample}: {_short(error[sample])}", markup=False)
    for alert in report["alerts"]:
        console.print(
            f"\n{alert['kind']} at {alert['at']}: rate {alert['rate'] * 100:.2f}% < threshold"
            f" {alert['threshold'] * 100:g}% over {alert['attempts']} attempts"
            f" (notification: {alert['notified']})"
            if alert["kind"] == "alert"
            else f"\nrecovered at {alert['at']}: rate {alert['rate'] * 100:.2f}%"
            f" (notification: {alert['notified']})",
            markup=False,
        )
    return terminal.text(console).rstrip()


def _held(held: int) -> str:
    return f" (held by creation limits: {held})" if held else ""


def _row(counts: Counts) -> dict[str, Any]:
    return {
        **{name: getattr(counts, name) for name in COUNTERS},
        "p50_ms": counts.percentile(0.5),
        "p95_ms": counts.percentile(0.95),
    }


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "inf" if value == float("inf") else f"≤{value:g}"
    return str(value)


def _short(value: Any, limit: int = 300) -> str:
    text = codec.dumps_text(value) if not isinstance(value, str) else value
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))
