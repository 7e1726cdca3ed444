"""`trackway warehouse status`: each warehouse's loads, lag behind the log, tables and
rejected values, read from the warehouse itself (its cursor lives there)."""

import time
from pathlib import Path
from typing import Any

from rich.table import Table

from trackway import terminal
from trackway.storage.base import EventLog
from trackway.warehouse.base import WarehouseUnavailable
from trackway.warehouse.config import WarehouseSpec
from trackway.warehouse.engines import open_warehouse


def status(spec: WarehouseSpec, data_dir: Path, log: EventLog) -> dict[str, Any]:
    """One warehouse's status as JSON-ready data."""
    out: dict[str, Any] = {
        "name": spec.name,
        "type": spec.type,
        "location": spec.location(data_dir),
        "enabled": spec.enabled,
    }
    head = log.last_seqs()["accepted"]
    warehouse = open_warehouse(spec, data_dir)
    try:
        stats = warehouse.stats()
    except WarehouseUnavailable as exc:
        out.update(available=False, error=str(exc), log_position=head)
        return out
    finally:
        warehouse.close()
    position = stats.position if stats else 0
    waiting = log.read(position, 1)
    lag_s = time.time() - waiting[0].received_at_ms / 1000 if waiting else 0.0
    out.update(
        available=True,
        position=position,
        log_position=head,
        lag_events=max(head - position, 0),
        lag_seconds=round(max(lag_s, 0.0), 1),
    )
    if stats is None:
        out.update(loads=0, events_loaded=0, rows_loaded=0, last_load=None, tables=[])
        out.update(rejected_values=0, rejected_by_reason={})
        return out
    out.update(
        loads=stats.loads,
        events_loaded=stats.events,
        rows_loaded=stats.rows,
        last_load={"at": stats.last_loaded_at, "events": stats.last_events}
        if stats.last_loaded_at
        else None,
        tables=[
            {"schema": t.schema, "table": t.name, "columns": t.columns, "rows": t.rows}
            for t in stats.tables
        ],
        rejected_values=sum(stats.rejected.values()),
        rejected_by_reason=stats.rejected,
    )
    return out


def render(statuses: list[dict[str, Any]]) -> str:
    """Statuses as text for people."""
    console = terminal.console()
    for s in statuses:
        state = "" if s["enabled"] else "  (disabled)"
        console.print(f"[bold]{s['name']}[/bold]  {s['type']}  {s['location']}{state}")
        if not s["available"]:
            console.print(f"  unavailable: {s['error']}")
            continue
        last = s["last_load"]
        when = f"{last['at']} ({last['events']:,} events)" if last else "never"
        console.print(f"  last load:       {when}")
        console.print(
            f"  loaded:          {s['events_loaded']:,} events, {s['rows_loaded']:,} rows"
            f" in {s['loads']:,} loads"
        )
        console.print(
            f"  lag:             {s['lag_events']:,} events ({s['lag_seconds']:g} s)"
            f"  position {s['position']:,} of {s['log_position']:,}"
        )
        reasons = ", ".join(f"{k} {v:,}" for k, v in s["rejected_by_reason"].items())
        console.print(
            f"  rejected values: {s['rejected_values']:,}" + (f" ({reasons})" if reasons else "")
        )
        if s["tables"]:
            table = Table("schema", "table", "columns", "rows (est.)", box=None)
            for t in s["tables"]:
                table.add_row(t["schema"], t["table"], str(t["columns"]), f"{t['rows']:,}")
            console.print(table)
    return terminal.text(console).rstrip("\n")
