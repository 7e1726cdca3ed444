"""The loaders' Prometheus metrics: what was loaded, how far behind, and a warehouse that
fails (PostgreSQL behind a proxy taken down) then recovers."""

from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry

from tests.support import until
from tests.warehouse.proxy import TcpProxy
from tests.warehouse.support import track, write_log
from trackway.storage.sqlite.log import SQLiteEventLog
from trackway.storage.sqlite.state import SQLiteStateStore
from trackway.warehouse.config import WarehouseSpec, apply
from trackway.warehouse.loader import Loaders


def sampler(loaders: Loaders) -> Callable[[str, str], float | None]:
    """Reads one sample of the loaders' metrics, as a scrape of `/metrics` would."""
    registry = CollectorRegistry()
    registry.register(loaders.metrics)

    def sample(metric: str, warehouse: str) -> float | None:
        return registry.get_sample_value(f"trackway_warehouse_{metric}", {"warehouse": warehouse})

    return sample


def test_loads_are_counted_and_the_lag_is_read_from_the_loader(tmp_path: Path) -> None:
    store = SQLiteStateStore(tmp_path / "state.db")
    store.create_source("default", "segment")
    write_log(tmp_path / "log.db", [track("Seen", {"n": 1}) for _ in range(5)])
    log = SQLiteEventLog(tmp_path / "log.db")
    loaders = Loaders(tmp_path, log, store)
    sample = sampler(loaders)
    try:
        assert sample("events_loaded_total", "default") is None  # nothing loaded yet
        loaders.start()
        assert until(lambda: sample("events_loaded_total", "default"), 5.0) == 5.0
        assert sample("rows_loaded_total", "default") == 10.0  # tracks + seen
        assert sample("lag_events", "default") == 0.0
        assert sample("failing_attempts", "default") == 0.0
        assert sample("load_failures_total", "default") == 0.0
        assert sample("rejected_values_total", "default") == 0.0
        assert (sample("last_load_timestamp_seconds", "default") or 0) > 1.7e9
    finally:
        loaders.stop()
        log.close()
        store.close()


def test_a_failing_warehouse_shows_failures_and_lag_until_it_recovers(
    pg_url: str, tmp_path: Path
) -> None:
    proxy = TcpProxy(("127.0.0.1", 5432))
    proxy.up()
    url = proxy.route(pg_url)
    store = SQLiteStateStore(tmp_path / "state.db")
    store.create_source("default", "segment")
    apply(
        [
            WarehouseSpec(name="default", enabled=False),
            WarehouseSpec(name="pg", type="postgres", url=url, interval_s=0.1),
        ],
        store,
    )
    write_log(tmp_path / "log.db", [track("Before", {"n": i}) for i in range(10)])
    log = SQLiteEventLog(tmp_path / "log.db")
    loaders = Loaders(tmp_path, log, store)
    sample = sampler(loaders)
    try:
        loaders.start()
        assert list(loaders.running) == ["pg"]
        assert until(lambda: sample("events_loaded_total", "pg"), 10.0) == 10.0
        proxy.down()
        write_log(tmp_path / "log.db", [track("During", {"n": i}) for i in range(30)])
        assert until(lambda: (sample("failing_attempts", "pg") or 0) >= 2, True) is True
        assert (sample("load_failures_total", "pg") or 0) >= 2
        assert sample("lag_events", "pg") == 30.0
        assert sample("events_loaded_total", "pg") == 10.0
        proxy.up()
        assert until(lambda: sample("lag_events", "pg"), 0.0, seconds=20) == 0.0
        assert sample("failing_attempts", "pg") == 0.0
        assert sample("events_loaded_total", "pg") == 40.0
        assert (sample("load_failures_total", "pg") or 0) >= 2  # a counter keeps them
    finally:
        loaders.stop()
        proxy.down()
        log.close()
        store.close()
