"""The event delivery view: per destination and per action, what happened to events
over a window, the waiting retries, the dead letters, the last errors with their
samples and the alerts. Shared by `trackway destinations delivery` and the admin API."""

import time
from typing import Any

from rich.table import Table

from trackway import codec, terminal
from trackway.destinations.config import DestinationSpec
from trackway.destinations.state import COUNTERS, Counts, DeliveryStore

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
        "success_rate": round(total.delivered / total.attempts, 4) if total.attempts else None,
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
        "alerts": [
            {
                "at": _iso(a.at_ms),
                "kind": a.kind,
                "rate": round(a.rate, 4),
                "threshold": a.threshold,
                "attempts": a.attempts,
                "notified": a.notified,
            }
            for a in store.alerts(spec.name, 10)
        ],
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
