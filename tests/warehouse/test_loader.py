"""The loader on a real SQLite event log: micro-batches, the cursor in the warehouse,
reloads, and a warehouse that goes down and comes back."""

import time
from pathlib import Path

from tests.support import until
from tests.warehouse.proxy import TcpProxy
from tests.warehouse.support import SOURCES, body, query, track, write_log
from trackway.storage.positions import position_at
from trackway.storage.sqlite.log import SQLiteEventLog
from trackway.storage.sqlite.state import SQLiteStateStore
from trackway.warehouse.base import Warehouse
from trackway.warehouse.config import WarehouseSpec, apply
from trackway.warehouse.duckdb import DuckDBWarehouse
from trackway.warehouse.loader import Loaders, LoaderThread, WarehouseLoader
from trackway.warehouse.postgres import PostgresWarehouse


def spec(**fields: object) -> WarehouseSpec:
    return WarehouseSpec(name="test", **fields)  # type: ignore[arg-type]


def count(warehouse: Warehouse, table: str) -> int:
    return int(query(warehouse, f"SELECT count(*) AS n FROM {table}")[0]["n"])


def ids_are_unique(warehouse: Warehouse, table: str) -> bool:
    rows = query(warehouse, f"SELECT count(*) AS n, count(DISTINCT id) AS d FROM {table}")
    return rows[0]["n"] == rows[0]["d"]


def test_run_once_loads_micro_batches_and_keeps_the_cursor_in_the_warehouse(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    write_log(tmp_path / "log.db", [track("Viewed", {"n": i}) for i in range(250)])
    log = SQLiteEventLog(tmp_path / "log.db")
    try:
        loader = WarehouseLoader(spec(batch_size=100), warehouse, log, lambda: SOURCES)
        sizes = []
        while (result := loader.run_once()) is not None:
            sizes.append(result.events)
        assert sizes == [100, 100, 50]
        assert loader.position == 250
        assert count(warehouse, "viewed") == 250
        # A new loader (a restart) starts from the warehouse's cursor, not from zero.
        write_log(tmp_path / "log.db", [body("identify", traits={"a": 1})])
        again = WarehouseLoader(spec(batch_size=100), warehouse, log, lambda: SOURCES)
        result = again.run_once()
        assert result is not None and (result.first_position, result.events) == (251, 1)
        assert again.run_once() is None
        assert count(warehouse, "tracks") == 250
    finally:
        log.close()


def test_catching_up_plans_ahead_while_columns_appear_and_widen(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    # Each micro-batch of 20 brings new columns and widens one: the next batch is
    # planned while the previous one is written.
    bodies = [
        track("Grown", {f"p{i // 20}": i, "w": i if i < 60 else i + 0.5}, messageId=f"g-{i:03}")
        for i in range(100)
    ]
    write_log(tmp_path / "log.db", bodies)
    log = SQLiteEventLog(tmp_path / "log.db")
    try:
        loader = WarehouseLoader(spec(batch_size=20), warehouse, log, lambda: SOURCES)
        batches: list[int] = []
        assert loader.catch_up(on_batch=lambda r: batches.append(r.position)) == 100
        assert batches == [20, 40, 60, 80, 100]
        rows = query(warehouse, "SELECT id, p0, p4, w FROM grown ORDER BY id")
        assert rows[0] == {"id": "g-000", "p0": 0, "p4": None, "w": 0.0}
        assert rows[99] == {"id": "g-099", "p0": None, "p4": 99, "w": 99.5}
    finally:
        log.close()


def test_events_of_each_source_go_to_its_schema(tmp_path: Path) -> None:
    write_log(tmp_path / "log.db", [track("Opened")], source_id=1)
    write_log(tmp_path / "log.db", [track("Opened"), track("Opened")], source_id=2)
    log = SQLiteEventLog(tmp_path / "log.db")
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    try:
        sources = [(1, "default"), (2, "mobile-app")]
        WarehouseLoader(spec(), warehouse, log, lambda: sources).run_once()
        counts = query(
            warehouse,
            "SELECT (SELECT count(*) FROM default_.opened) AS a,"
            " (SELECT count(*) FROM mobile_app.opened) AS b",
        )
        assert counts == [{"a": 1, "b": 2}]
    finally:
        log.close()


def test_reload_since_a_time_replaces_rows_and_never_moves_the_cursor_back(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    write_log(tmp_path / "log.db", [track("Clicked", {"n": i}) for i in range(120)])
    log = SQLiteEventLog(tmp_path / "log.db")
    try:
        loader = WarehouseLoader(spec(batch_size=50), warehouse, log, lambda: SOURCES)
        while loader.run_once():
            pass
        start = position_at(log, 0)
        assert start == 0
        assert position_at(log, int(time.time() * 1000) + 60_000) == 120
        batches: list[int] = []
        assert loader.catch_up(after=start, on_batch=lambda r: batches.append(r.events)) == 120
        assert batches == [50, 50, 20]
        assert count(warehouse, "clicked") == count(warehouse, "tracks") == 120
        assert ids_are_unique(warehouse, "clicked") and ids_are_unique(warehouse, "tracks")
        assert loader.catch_up(after=100) == 20
        assert loader.catch_up() == 0  # the cursor is at the end
        with warehouse.session() as session:
            assert session.position() == 120
    finally:
        log.close()


def test_loaders_follow_the_configured_warehouses(tmp_path: Path) -> None:
    store = SQLiteStateStore(tmp_path / "state.db")
    store.create_source("default", "segment")
    write_log(tmp_path / "log.db", [track("Seen") for _ in range(5)])
    log = SQLiteEventLog(tmp_path / "log.db")
    loaders = Loaders(tmp_path, log, store)
    try:
        loaders.start()
        assert list(loaders.running) == ["default"]
        (_spec, thread) = loaders.running["default"]
        assert until(lambda: thread.loader.position, 5) == 5
        apply([WarehouseSpec(name="default", enabled=False)], store)
        assert until(lambda: list(loaders.running), []) == []  # noticed within a second
    finally:
        loaders.stop()
        log.close()
        store.close()
    assert count(DuckDBWarehouse(tmp_path / "warehouse.duckdb"), "seen") == 5


def test_a_warehouse_that_is_down_is_retried_until_it_catches_up(
    pg_url: str, tmp_path: Path
) -> None:
    proxy = TcpProxy(("127.0.0.1", 5432))
    proxy.up()
    url = proxy.route(pg_url)
    warehouse = PostgresWarehouse(url, connect_timeout_s=2)
    log = SQLiteEventLog(tmp_path / "log.db")
    loader = WarehouseLoader(spec(interval_s=0.1), warehouse, log, lambda: SOURCES)
    thread = LoaderThread(loader, poll_s=0.05, backoff_max_s=0.5)
    thread.start()
    try:
        write_log(tmp_path / "log.db", [track("Before", {"n": i}) for i in range(10)])
        assert until(lambda: loader.position, 10) == 10
        proxy.down()
        write_log(tmp_path / "log.db", [track("During", {"n": i}) for i in range(30)])
        assert until(lambda: thread.failures >= 2, True) is True
        assert loader.position == 10
        proxy.up()
        assert until(lambda: loader.position, 40, seconds=20) == 40
        assert thread.failures == 0
        direct = PostgresWarehouse(pg_url)
        try:
            assert count(direct, "during") == 30
            assert ids_are_unique(direct, "tracks")
        finally:
            direct.close()
    finally:
        thread.stop()
        warehouse.close()
        proxy.down()
        log.close()
