"""Helpers for the warehouse tests: normalized events, a real SQLite log, loads, queries."""

import asyncio
import itertools
import time
import uuid
from pathlib import Path
from typing import Any

from trackway import codec
from trackway.storage.dedup import message_hash
from trackway.storage.records import AcceptedEvent, IngestBatch, LogEvent
from trackway.storage.sqlite.log import SQLiteEventLog
from trackway.warehouse.base import Warehouse
from trackway.warehouse.plan import LoadPlan, Planner

SCHEMA = "default_"  # the schema of the source named "default"
SOURCES = [(1, "default")]
_positions = itertools.count(1)


def body(type_: str, **fields: Any) -> dict[str, Any]:
    """A stored (normalized) event: camelCase keys, ISO timestamps with Z."""
    out: dict[str, Any] = {
        "messageId": fields.pop("messageId", None) or str(uuid.uuid4()),
        "type": type_,
        "userId": "user-1",
        "context": {"library": {"name": "analytics-python", "version": "2.3.0"}},
        "timestamp": "2026-11-22T10:00:00.123456Z",
        "originalTimestamp": "2026-11-22T10:00:00.100000Z",
        "sentAt": "2026-11-22T10:00:00.200000Z",
        "receivedAt": "2026-11-22T10:00:00.300000Z",
    }
    out.update(fields)
    return {k: v for k, v in out.items() if v is not None}


def track(event: str, properties: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    return body("track", event=event, properties=properties or {}, **fields)


def load(warehouse: Warehouse, bodies: list[dict[str, Any]], max_columns: int = 1000) -> LoadPlan:
    """Plan and load `bodies` as events of the source `default` at the next positions."""
    events = [LogEvent(next(_positions), 1, 1_700_000_000_000, b) for b in bodies]
    with warehouse.session() as session:
        plan = Planner(session.catalog(), max_columns).plan(
            events, {1: SCHEMA}, "2026-11-22T10:00:05Z"
        )
        session.load(plan)
    return plan


def query(warehouse: Warehouse, sql: str) -> list[dict[str, Any]]:
    """Rows as dicts (timestamps as ISO text), with the source schema on the search path."""
    from trackway.warehouse.results import jsonable

    result = warehouse.query(sql, 100_000, 30, [SCHEMA])
    return [dict(zip(result.columns, map(jsonable, row), strict=True)) for row in result.rows]


def columns(warehouse: Warehouse, table: str) -> dict[str, str]:
    """Column name → loader type of a table of the default source."""
    with warehouse.session() as session:
        return dict(session.catalog()[SCHEMA, table])


def write_log(
    path: Path, bodies: list[dict[str, Any]], source_id: int = 1, per_request: int = 100
) -> None:
    """Append events to a real SQLite event log, `per_request` per chunk."""
    log = SQLiteEventLog(path)
    log.start()
    try:

        async def append() -> None:
            for i in range(0, len(bodies), per_request):
                chunk = bodies[i : i + per_request]
                events = [
                    AcceptedEvent(b["messageId"], message_hash(source_id, b["messageId"]))
                    for b in chunk
                ]
                at_ms = int(time.time() * 1000)
                await log.append(IngestBatch(source_id, at_ms, events, codec.dumps(chunk)))

        asyncio.run(append())
    finally:
        log.close()
