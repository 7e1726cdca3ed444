"""The warehouse loader gives way to ingestion: pauses while the API needs the CPU."""

import threading
import time
from pathlib import Path

import pytest

from tests.support import until
from tests.warehouse.support import SOURCES, track, write_log
from trackway.storage.sqlite.log import SQLiteEventLog
from trackway.warehouse.config import WarehouseSpec
from trackway.warehouse.duckdb import DuckDBWarehouse
from trackway.warehouse.loader import LoaderThread, WarehouseLoader
from trackway.warehouse.yielding import MAX_PAUSE_S, IngestPressure, needs_cpu, pause_after


@pytest.mark.parametrize(
    ("cpus_busy", "thread_share", "expected"),
    [
        (1.0, 0.8, True),  # the CPUs are full and the API works: give way
        (0.95, 0.3, True),
        (1.0, 0.1, False),  # full, but of something else than ingestion
        (0.6, 0.9, False),  # the API works hard, but there is a core to spare
        (0.0, 0.0, False),
    ],
)
def test_ingestion_needs_the_cpu_only_when_the_cpus_are_full_and_the_api_works(
    cpus_busy: float, thread_share: float, expected: bool
) -> None:
    assert needs_cpu(cpus_busy, thread_share) is expected


def test_a_pause_leaves_the_loader_a_fifth_of_the_time_and_is_bounded() -> None:
    assert pause_after(0.1) == pytest.approx(0.4)  # 0.1 s of loading in 0.5 s
    assert pause_after(60.0) == MAX_PAUSE_S


def test_an_idle_api_thread_never_makes_the_loader_wait() -> None:
    idle = threading.Event()
    thread = threading.Thread(target=idle.wait)
    thread.start()
    try:
        pressure = IngestPressure(thread)
        deadline = time.monotonic() + 0.2
        while time.monotonic() < deadline:  # this thread keeps a CPU busy meanwhile
            pass
        assert pressure.busy() is False
    finally:
        idle.set()
        thread.join()


@pytest.mark.parametrize("busy", [True, False])
def test_a_loader_asks_after_each_micro_batch_and_pauses_only_while_busy(
    tmp_path: Path, busy: bool
) -> None:
    write_log(tmp_path / "log.db", [track("Seen", {"n": i}) for i in range(50)])
    log = SQLiteEventLog(tmp_path / "log.db")
    warehouse = DuckDBWarehouse(tmp_path / "warehouse.duckdb")
    asked: list[bool] = []

    def pressure() -> bool:
        asked.append(busy)
        return busy

    loader = WarehouseLoader(
        WarehouseSpec(name="test", batch_size=10), warehouse, log, lambda: SOURCES
    )
    thread = LoaderThread(loader, poll_s=0.05, busy=pressure)
    thread.start()
    try:
        # every event is loaded all the same, in five micro-batches of ten
        assert until(lambda: loader.position, 50, seconds=30) == 50
        assert until(lambda: len(asked), 5) == 5
        assert thread.yielder is not None
        assert (thread.yielder.paused_s > 0) is busy
    finally:
        thread.stop()
        warehouse.close()
        log.close()
