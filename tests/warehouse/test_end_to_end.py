"""End to end: the real analytics-python SDK → a real `trackway serve` → the loader
(run here, on the server's data directory) → tables queried with the `trackway sql`,
`trackway warehouse status` and `reload` commands."""

from typing import Any

import httpx
from click.testing import CliRunner
from segment.analytics import Client

from tests.support import Server, until
from tests.warehouse.proxy import TcpProxy
from trackway import codec
from trackway.storage.sqlite.state import SQLiteStateStore
from trackway.warehouse.commands import sql_command, warehouse_group
from trackway.warehouse.config import default_spec
from trackway.warehouse.engines import open_warehouse, sources
from trackway.warehouse.loader import LoaderThread, WarehouseLoader
from trackway.warehouse.postgres import PostgresWarehouse

COMMON = {
    "id",
    "anonymous_id",
    "user_id",
    "received_at",
    "sent_at",
    "timestamp",
    "original_timestamp",
    "uuid_ts",
}


def run(command: Any, *args: str, ok: bool = True) -> str:
    result = CliRunner().invoke(command, list(args), catch_exceptions=False)
    assert (result.exit_code == 0) is ok, result.output
    return result.output


def sql(server: Server, query: str) -> list[dict[str, Any]]:
    out = run(sql_command, query, "--format", "json", "--data-dir", str(server.data_dir))
    rows: list[dict[str, Any]] = codec.loads(out)
    return rows


def load_all(server: Server) -> int:
    """Load the default warehouse here until it has caught up with the log; returns the
    events in the warehouse (the server's own loader may have loaded some of them)."""
    store = SQLiteStateStore(server.data_dir / "state.db")
    log = server.log()
    try:
        spec = default_spec()
        warehouse = open_warehouse(spec, server.data_dir)
        loader = WarehouseLoader(spec, warehouse, log, lambda: sources(store))
        while loader.run_once() is not None:
            pass
        stats = warehouse.stats()
        warehouse.close()
        return stats.events if stats is not None else 0
    finally:
        log.close()
        store.close()


def test_events_from_the_python_sdk_are_queryable(server: Server) -> None:
    client = Client(server.write_key, host=server.url, max_retries=2, upload_interval=0.05)
    try:
        client.track(
            "u-1",
            "Order Completed",
            {"revenue": 39.5, "items": [{"sku": "a"}]},
            context={"campaign": {"name": "spring"}},
            message_id="sdk-track-1",
        )
        client.track(
            "u-1", "Order Completed", {"revenue": 12, "coupon": "X"}, message_id="sdk-track-2"
        )
        client.track("u-1", "Order Completed", {"revenue": 1}, message_id="sdk-track-2")
        client.identify("u-1", {"email": "u1@example.com", "logins": 3}, message_id="sdk-id-1")
        client.page(
            anonymous_id="anon-1",
            category="Docs",
            name="Start",
            properties={"path": "/start"},
            message_id="sdk-page-1",
        )
        client.screen(
            "u-1", name="Settings", properties={"tab": "billing"}, message_id="sdk-screen-1"
        )
        client.group("u-1", "g-1", {"employees": 42}, message_id="sdk-group-1")
        client.alias("anon-1", "u-1", message_id="sdk-alias-1")
        client.flush()
    finally:
        client.shutdown()
    assert until(lambda: len(server.events()), 7) == 7  # the resent track was deduplicated
    assert load_all(server) == 7

    columns = {
        r["column_name"]: r["data_type"]
        for r in sql(
            server,
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = 'default_' AND table_name = 'order_completed'",
        )
    }
    assert set(columns) >= COMMON
    assert {
        "event",
        "event_text",
        "context_library_name",
        "context_library_version",
        "context_campaign_name",
        "revenue",
        "items",
        "coupon",
    } <= set(columns)
    assert (columns["revenue"], columns["received_at"]) == ("DOUBLE", "TIMESTAMP")
    rows = sql(
        server,
        "SELECT id, revenue, coupon, items, context_library_name FROM order_completed ORDER BY id",
    )
    assert rows == [
        {
            "id": "sdk-track-1",
            "revenue": 39.5,
            "coupon": None,
            "items": '[{"sku":"a"}]',
            "context_library_name": "analytics-python",
        },
        {
            "id": "sdk-track-2",
            "revenue": 12.0,
            "coupon": "X",
            "items": None,
            "context_library_name": "analytics-python",
        },
    ]
    assert sql(server, "SELECT id, email, logins FROM users") == [
        {"id": "u-1", "email": "u1@example.com", "logins": 3}
    ]
    counts = sql(
        server,
        "SELECT (SELECT count(*) FROM tracks) AS tracks,"
        " (SELECT count(*) FROM identifies) AS identifies,"
        " (SELECT count(*) FROM pages) AS pages,"
        " (SELECT count(*) FROM screens) AS screens,"
        " (SELECT count(*) FROM groups) AS groups,"
        " (SELECT count(*) FROM aliases) AS aliases",
    )
    assert counts == [
        {"tracks": 2, "identifies": 1, "pages": 1, "screens": 1, "groups": 1, "aliases": 1}
    ]
    assert sql(server, "SELECT path, category FROM pages") == [
        {"path": "/start", "category": "Docs"}
    ]


def test_sql_status_and_reload_commands(server: Server) -> None:
    data_dir = str(server.data_dir)
    with server.client() as http:
        batch = [
            {
                "type": "track",
                "userId": "c",
                "event": "Signed Up",
                "properties": {"plan": "pro" if i else 7},
                "messageId": f"cli-{i}",
            }
            for i in range(30)
        ]
        assert (
            http.post("/v1/batch", json={"batch": batch}, auth=(server.write_key, "")).status_code
            == 200
        )
    assert load_all(server) == 30

    status = codec.loads(run(warehouse_group, "status", "--json", "--data-dir", data_dir))
    (default,) = status
    assert default["name"] == "default" and default["available"] is True
    assert (default["position"], default["lag_events"], default["events_loaded"]) == (30, 0, 30)
    assert default["rejected_values"] == 29  # "pro" does not fit the integer column
    assert {"schema": "default_", "table": "signed_up", "columns": 11, "rows": 30} in default[
        "tables"
    ]
    text = run(warehouse_group, "status", "--data-dir", data_dir)
    assert "lag:" in text and "signed_up" in text

    out = run(warehouse_group, "reload", "default", "--since", "1h", "--data-dir", data_dir)
    assert "Reloaded 30 events" in out
    assert sql(server, "SELECT count(*) AS n, count(DISTINCT id) AS d FROM signed_up") == [
        {"n": 30, "d": 30}
    ]
    assert sql(server, "SELECT count(*) AS n FROM _rejected_values") == [{"n": 29}]

    csv = run(
        sql_command,
        "SELECT id, plan FROM signed_up WHERE id = 'cli-0'",
        "--format",
        "csv",
        "--data-dir",
        data_dir,
    )
    assert csv.splitlines() == ["id,plan", "cli-0,7"]
    table = run(
        sql_command,
        "SELECT id FROM signed_up ORDER BY id LIMIT 3",
        "--max-rows",
        "2",
        "--data-dir",
        data_dir,
    )
    assert "cli-0" in table and "2 rows (more rows exist" in table
    refused = run(sql_command, "DELETE FROM signed_up", "--data-dir", data_dir, ok=False)
    assert "only SELECT" in refused
    refused = run(
        sql_command, "SELECT * FROM read_csv('/etc/passwd')", "--data-dir", data_dir, ok=False
    )
    assert "query failed" in refused
    missing = run(sql_command, "SELECT 1", "--warehouse", "nope", "--data-dir", data_dir, ok=False)
    assert "no warehouse named 'nope'" in missing


def test_the_servers_loader_reports_on_metrics(server: Server) -> None:
    batch = [
        {"type": "track", "userId": "m", "event": "Paid", "properties": {"n": "x" if i else 1}}
        for i in range(12)
    ]
    with server.client() as http:
        sent = http.post("/v1/batch", json={"batch": batch}, auth=(server.write_key, ""))
        assert sent.status_code == 200

        def loaded() -> bool:
            text = http.get("/metrics").text
            return 'trackway_warehouse_events_loaded_total{warehouse="default"} 12.0' in text

        assert until(loaded, True) is True
        text = http.get("/metrics").text
    assert 'trackway_warehouse_rows_loaded_total{warehouse="default"} 24.0' in text
    assert 'trackway_warehouse_rejected_values_total{warehouse="default"} 11.0' in text
    assert 'trackway_warehouse_lag_events{warehouse="default"} 0.0' in text
    assert 'trackway_warehouse_failing_attempts{warehouse="default"} 0.0' in text
    assert 'trackway_warehouse_load_failures_total{warehouse="default"} 0.0' in text


def test_ingestion_goes_on_while_the_warehouse_is_down(server: Server, pg_url: str) -> None:
    proxy = TcpProxy(("127.0.0.1", 5432))
    proxy.up()
    port = proxy.port
    proxy.down()  # the warehouse is down from the start: nothing listens on the port
    store = SQLiteStateStore(server.data_dir / "state.db")
    log = server.log()
    warehouse = PostgresWarehouse(pg_url.replace(":5432/", f":{port}/"), connect_timeout_s=2)
    spec = default_spec()
    loader = WarehouseLoader(spec, warehouse, log, lambda: sources(store))
    thread = LoaderThread(loader, poll_s=0.05, backoff_max_s=0.5)
    thread.start()
    try:
        with httpx.Client(base_url=server.url, auth=(server.write_key, ""), timeout=10) as http:
            for n in range(20):
                batch = [
                    {"type": "track", "userId": "d", "event": "Down", "messageId": f"down-{n}-{i}"}
                    for i in range(50)
                ]
                assert http.post("/v1/batch", json={"batch": batch}).status_code == 200
        assert until(lambda: thread.failures >= 2, True) is True
        assert loader.position is None
        proxy.up()
        assert until(lambda: loader.position, 1000, seconds=30) == 1000
        direct = PostgresWarehouse(pg_url)
        try:
            rows = direct.query("SELECT count(*), count(DISTINCT id) FROM default_.down", 1, 10, [])
            assert rows.rows == [(1000, 1000)]
        finally:
            direct.close()
    finally:
        thread.stop()
        warehouse.close()
        proxy.down()
        log.close()
        store.close()
