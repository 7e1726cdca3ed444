"""The warehouse views of the admin API on both engines: status, tables with their
columns, and the SQL endpoint's timing, CSV download and verbatim errors."""

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.admin.support import admin_client
from tests.destinations.support import Workspace
from tests.warehouse.support import load, track
from trackway.warehouse.config import KIND
from trackway.warehouse.duckdb import DuckDBWarehouse
from trackway.warehouse.postgres import PostgresWarehouse


@pytest.fixture(params=["duckdb", "postgres"])
def declared(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Workspace, str]]:
    """A workspace with the warehouse `wh` declared and three events loaded into it."""
    workspace = Workspace(tmp_path)
    workspace.store.create_source("default", "segment")
    spec: dict[str, Any] = {"name": "wh", "path": "wh.duckdb"}
    if request.param == "duckdb":
        warehouse: DuckDBWarehouse | PostgresWarehouse = DuckDBWarehouse(tmp_path / "wh.duckdb")
    else:
        url = request.getfixturevalue("pg_url")
        spec = {"name": "wh", "type": "postgres", "url": url}
        warehouse = PostgresWarehouse(url)
    workspace.store.put_object(KIND, "wh", spec)
    try:
        load(warehouse, [track("Bought", {"price": 2.5}, messageId=f"b-{i}") for i in range(3)])
    finally:
        warehouse.close()
    yield workspace, request.param
    workspace.close()


def test_status_tables_and_sql(declared: tuple[Workspace, str]) -> None:
    workspace, engine = declared
    with admin_client(workspace.settings, workspace.store, workspace.log) as api:
        shown = {w["name"]: w for w in api.get("warehouses").json()}
        assert shown["wh"]["type"] == engine and shown["wh"]["available"] is True
        assert shown["wh"]["events_loaded"] == 3 and shown["wh"]["last_load"]["events"] == 3
        assert shown["wh"]["rejected_values"] == 0
        assert "default" in shown  # the undeclared default is listed too

        tables = api.get("warehouses/wh/tables").json()
        assert tables["warehouse"] == "wh"
        bought = next(t for t in tables["tables"] if t["table"] == "bought")
        assert bought["schema"] == "default_"  # the source schema (not the keyword)
        names = [c["name"] for c in bought["columns"]]
        assert {"id", "price", "event", "uuid_ts"} <= set(names)
        price = next(c for c in bought["columns"] if c["name"] == "price")
        assert price["type"].lower() in {"double", "double precision"}

        answer = api.post(
            "sql", json={"sql": "SELECT count(*) AS n FROM bought", "warehouse": "wh"}
        )
        assert answer.status_code == 200
        found = answer.json()
        assert found["rows"] == [[3]] and found["elapsed_ms"] >= 0

        download = api.post(
            "sql",
            json={
                "sql": "SELECT id, price FROM bought ORDER BY id",
                "warehouse": "wh",
                "format": "csv",
            },
        )
        assert download.status_code == 200
        assert download.headers["content-type"].startswith("text/csv")
        assert "attachment" in download.headers["content-disposition"]
        assert list(csv.reader(io.StringIO(download.text))) == [
            ["id", "price"],
            ["b-0", "2.5"],
            ["b-1", "2.5"],
            ["b-2", "2.5"],
        ]

        failed = api.post("sql", json={"sql": "SELECT nope FROM bought", "warehouse": "wh"})
        assert failed.status_code == 400 and failed.json()["code"] == "invalid_parameter"
        assert "nope" in failed.json()["message"]
        assert api.post("sql", json={"sql": "SELECT 1", "format": "xml"}).status_code == 400

        missing = api.get("warehouses/ghost/tables")
        assert (
            missing.status_code == 404 and "no warehouse named 'ghost'" in missing.json()["message"]
        )
        assert api.get("warehouses", headers={"Authorization": "Bearer wrong"}).status_code == 401
