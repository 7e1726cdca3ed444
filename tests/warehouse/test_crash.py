"""kill -9 of a loader in the middle of a micro-batch, then a restart: every event is
in the tables exactly once (the cursor commits with the rows)."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.warehouse.support import SOURCES, query, track, write_log
from trackway.storage.sqlite.log import SQLiteEventLog
from trackway.warehouse.config import WarehouseSpec
from trackway.warehouse.duckdb import DuckDBWarehouse
from trackway.warehouse.loader import WarehouseLoader

pytestmark = pytest.mark.slow

EVENTS = 30_000
BATCH = 2_000

LOADER = """
import sys
from pathlib import Path
from trackway.storage.sqlite.log import SQLiteEventLog
from trackway.warehouse.config import WarehouseSpec
from trackway.warehouse.duckdb import DuckDBWarehouse
from trackway.warehouse.loader import WarehouseLoader

data = Path(sys.argv[1])
spec = WarehouseSpec(name="crash", batch_size=int(sys.argv[2]))
loader = WarehouseLoader(
    spec, DuckDBWarehouse(data / "w.duckdb"), SQLiteEventLog(data / "log.db"),
    lambda: [(1, "default")],
)
while (result := loader.run_once()) is not None:
    print(result.position, flush=True)
"""


def test_kill_9_mid_batch_then_restart_loses_nothing_and_doubles_nothing(
    tmp_path: Path,
) -> None:
    names = [f"Event {n}" for n in range(5)]
    write_log(
        tmp_path / "log.db",
        [track(names[i % 5], {"n": i, f"p{i % 7}": "x"}) for i in range(EVENTS)],
        per_request=500,
    )
    process = subprocess.Popen(
        [sys.executable, "-c", LOADER, str(tmp_path), str(BATCH)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    with process.stdout:
        # Two batches are committed; the third is being read, planned or written.
        committed = [int(process.stdout.readline()) for _ in range(2)]
        process.kill()
    assert process.wait(30) == -9
    assert committed == [BATCH, 2 * BATCH]

    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    log = SQLiteEventLog(tmp_path / "log.db")
    try:
        loader = WarehouseLoader(WarehouseSpec(name="crash"), warehouse, log, lambda: SOURCES)
        with warehouse.session() as session:
            survived = session.position()
        assert survived in (2 * BATCH, 3 * BATCH)  # the batch in flight is all or nothing
        while loader.run_once() is not None:
            pass
        (row,) = query(
            warehouse,
            "SELECT count(*) AS n, count(DISTINCT id) AS d,"
            " (SELECT max(position) FROM _trackway_loads) AS position FROM tracks",
        )
        assert row == {"n": EVENTS, "d": EVENTS, "position": EVENTS}
        for n in range(5):
            (row,) = query(
                warehouse, f"SELECT count(*) AS n, count(DISTINCT id) AS d FROM event_{n}"
            )
            assert row == {"n": EVENTS // 5, "d": EVENTS // 5}
    finally:
        log.close()
