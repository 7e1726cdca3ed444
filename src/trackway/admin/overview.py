"""`GET /api/v1/overview`: the state of the whole workspace at a glance, the data of the
dashboard's Overview page.

Per source the last hour's records per minute and status; per destination its lag,
waiting retries, dead letters, the last hour's delivery rate and whether an alert is
open; per warehouse its lag and last load; per sync its last run.
"""

import time
from contextlib import closing
from typing import Any

from trackway.destinations import config as destination_config
from trackway.destinations import operations
from trackway.destinations.state import Counts, open_delivery_store
from trackway.reverse_etl import config as sync_config
from trackway.reverse_etl.state import open_sync_store
from trackway.settings import Settings
from trackway.storage.base import EventLog, StateStore
from trackway.warehouse import status as warehouse_status
from trackway.warehouse.config import WarehouseSpec, warehouses

WINDOW_MINUTES = 60


def overview(store: StateStore, log: EventLog, settings: Settings) -> dict[str, Any]:
    """The overview as JSON-ready data; `now_minute` is the last of the window's minutes
    (minutes since the epoch, UTC), each source's `per_minute` lists counts oldest first."""
    now_ms = int(time.time() * 1000)
    return {
        "window_minutes": WINDOW_MINUTES,
        "now_minute": now_ms // 60_000,
        "sources": _sources(store, log, now_ms),
        "destinations": _destinations(store, log, settings, now_ms),
        "warehouses": [_warehouse(s, settings, log) for s in warehouses(store)],
        "syncs": _syncs(store, settings),
    }


def _sources(store: StateStore, log: EventLog, now_ms: int) -> list[dict[str, Any]]:
    last = now_ms // 60_000
    first = last - WINDOW_MINUTES + 1
    rows: dict[int, dict[str, Any]] = {
        s.id: {
            "name": s.name,
            "type": s.type,
            "enabled": s.enabled,
            "accepted": 0,
            "rejected": 0,
            "duplicates": 0,
            "per_minute": [0] * WINDOW_MINUTES,
        }
        for s in store.list_sources()
    }
    for source_id, status, minute, count in log.volume(first * 60_000):
        row = rows.get(source_id)
        if row is None or minute > last:  # a deleted source's; a clock gone backwards
            continue
        row["duplicates" if status == "duplicate" else status] += count
        if status == "accepted":
            row["per_minute"][minute - first] += count
    return list(rows.values())


def _destinations(
    store: StateStore, log: EventLog, settings: Settings, now_ms: int
) -> list[dict[str, Any]]:
    specs = destination_config.destinations(store)
    with closing(open_delivery_store(settings)) as delivery:
        rows = operations.overview(specs, delivery, log.last_seqs()["accepted"])
        for spec, row in zip(specs, rows, strict=True):
            total = Counts()
            for counts in delivery.counts(spec.name, now_ms - WINDOW_MINUTES * 60_000).values():
                total.add(counts)
            row["attempts"] = total.attempts
            row["delivery_rate"] = total.delivered / total.attempts if total.attempts else None
            last_alert = delivery.alerts(spec.name, 1)
            row["alert_open"] = bool(last_alert) and last_alert[0].kind == "alert"
    return rows


def _warehouse(spec: WarehouseSpec, settings: Settings, log: EventLog) -> dict[str, Any]:
    full = warehouse_status.status(spec, settings.data_dir, log)
    keep = ("name", "type", "enabled", "available", "error", "lag_events", "lag_seconds")
    out = {k: full[k] for k in keep if k in full}
    out["last_load"] = full.get("last_load")
    return out


def _syncs(store: StateStore, settings: Settings) -> list[dict[str, Any]]:
    specs = sync_config.syncs(store)
    if not specs:  # no sync store to open
        return []
    with closing(open_sync_store(settings)) as runs:
        last = runs.last_runs()
    out = []
    for name in sorted(specs):
        run = last.get(name)
        out.append(
            {
                "name": name,
                "last_run": None
                if run is None
                else {
                    "id": run.id,
                    "status": run.status,
                    "started_at": run.started_at,
                    "ended_at": run.ended_at,
                    "error": run.error,
                },
            }
        )
    return out
