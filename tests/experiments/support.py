"""Events for the experiments' tests: flag exposures and orders as the loader stores them,
and a warehouse `wh` declared on each engine with such events loaded."""

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.destinations.support import Workspace
from tests.warehouse.support import load, track
from trackway.warehouse.config import KIND as WAREHOUSE
from trackway.warehouse.duckdb import DuckDBWarehouse
from trackway.warehouse.postgres import PostgresWarehouse


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def exposure(user: str, value: Any, at: datetime, spelling: str = "segment") -> dict[str, Any]:
    """A Feature Flag Evaluated event of the flag `newCheckout` (either spelling)."""
    if spelling == "segment":
        props = {"feature_flag_key": "newCheckout", "value": value, "variation_id": None}
        return track("Feature Flag Evaluated", props, userId=user, timestamp=iso(at))
    props = {"featureFlagKey": "newCheckout", "value": value, "variationId": None}
    return track("featureFlagEvaluated", props, userId=user, timestamp=iso(at))


def order(user: str, at: datetime, revenue: float = 10.0) -> dict[str, Any]:
    return track("Order Completed", {"revenue": revenue}, userId=user, timestamp=iso(at))


def split_events(start: datetime, users: int) -> list[dict[str, Any]]:
    """`users` exposed a minute apart, odd ones to `true`; every user whose number is
    1 mod 4 or 0 mod 10 orders an hour later (control 20 %, treatment 50 %)."""
    events = []
    for i in range(users):
        at = start + timedelta(minutes=i)
        events.append(exposure(f"u{i}", i % 2 == 1, at))
        if i % 4 == 1 or i % 10 == 0:
            events.append(order(f"u{i}", at + timedelta(hours=1)))
    return events


def declared_warehouse(
    request: pytest.FixtureRequest, tmp_path: Path, events: list[dict[str, Any]]
) -> Iterator[Workspace]:
    """A workspace (source `default`) whose warehouse `wh`, on the engine of
    `request.param`, holds `events`."""
    workspace = Workspace(tmp_path)
    workspace.store.create_source("default", "segment")
    spec: dict[str, Any] = {"name": "wh", "path": "wh.duckdb"}
    if request.param == "duckdb":
        warehouse: DuckDBWarehouse | PostgresWarehouse = DuckDBWarehouse(tmp_path / "wh.duckdb")
    else:
        url = request.getfixturevalue("pg_url")
        spec = {"name": "wh", "type": "postgres", "url": url}
        warehouse = PostgresWarehouse(url)
    workspace.store.put_object(WAREHOUSE, "wh", spec)
    try:
        load(warehouse, events)
    finally:
        warehouse.close()
    try:
        yield workspace
    finally:
        workspace.close()
