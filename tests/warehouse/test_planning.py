"""A backlog planned in the child process, from either event log (SQLite or
PostgreSQL), including a source the child learns about while it plans."""

import asyncio
import time
from pathlib import Path

import pytest

from tests.warehouse.support import query, track
from trackway import codec
from trackway.storage.base import EventLog
from trackway.storage.dedup import message_hash
from trackway.storage.postgres.log import PostgresEventLog
from trackway.storage.records import AcceptedEvent, IngestBatch
from trackway.storage.sqlite.log import SQLiteEventLog
from trackway.warehouse.config import WarehouseSpec
from trackway.warehouse.duckdb import DuckDBWarehouse
from trackway.warehouse.loader import WarehouseLoader
from trackway.warehouse.planning import Job, PlanningProcess


def append(log: EventLog, source_id: int, bodies: list[dict[str, object]]) -> None:
    events = [
        AcceptedEvent(str(b["messageId"]), message_hash(source_id, str(b["messageId"])))
        for b in bodies
    ]
    batch = IngestBatch(source_id, int(time.time() * 1000), events, codec.dumps(bodies))
    asyncio.run(log.append(batch))


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_backlog_is_planned_in_a_child_process(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    log: EventLog = (
        PostgresEventLog(request.getfixturevalue("pg_url"))
        if backend == "postgres"
        else SQLiteEventLog(tmp_path / "log.db")
    )
    log.start()
    try:
        for part in range(3):
            append(log, 1, [track("Signed Up", {"n": part * 40 + i}) for i in range(40)])
        append(log, 2, [track("Opened App", {"screen": "home"}) for _ in range(30)])
        calls = 0

        def sources() -> list[tuple[int, str]]:
            # The source "app" is created after the backlog started: the planning
            # process meets its events and asks for its schema.
            nonlocal calls
            calls += 1
            return [(1, "web")] if calls == 1 else [(1, "web"), (2, "app")]

        warehouse = DuckDBWarehouse(tmp_path / "warehouse.duckdb")
        loader = WarehouseLoader(WarehouseSpec(name="t", batch_size=50), warehouse, log, sources)
        batches: list[int] = []
        assert loader.catch_up(on_batch=lambda r: batches.append(r.events)) == 150
        assert batches == [50, 50, 50]
        assert calls >= 2
        assert query(warehouse, "SELECT count(*) AS n FROM web.tracks") == [{"n": 120}]
        assert query(warehouse, "SELECT count(*) AS n FROM app.opened_app") == [{"n": 30}]
        assert query(warehouse, "SELECT max(n) AS n FROM web.signed_up") == [{"n": 119}]
        # Loading again replaces the rows: still one per event
        assert loader.catch_up(after=0) == 150
        assert query(warehouse, "SELECT count(*) AS n FROM web.tracks") == [{"n": 120}]
        warehouse.close()
    finally:
        log.close()


def test_the_planning_process_ends_when_nobody_reads_its_plans(tmp_path: Path) -> None:
    log = SQLiteEventLog(tmp_path / "log.db")
    log.start()
    try:
        # 200 plans: far more than the pipe's buffer holds, so the child must write again
        for part in range(20):
            append(log, 1, [track("Signed Up", {"n": part * 100 + i}) for i in range(100)])
        job = Job(("sqlite", str(tmp_path / "log.db")), {}, 100, {1: "web"}, 0, 2000, 10, "duckdb")
        planning = PlanningProcess(lambda ids: {1: "web"})
        planning.start(job)
        plans = iter(planning)
        assert next(plans).events == 10
        spool = Path(planning._spool)
        assert list(spool.glob("*.json")), "the rows of the plans wait in files"
        # The parent goes away (it crashed, say: the kernel closes its ends of the
        # pipes): the child's writes fail, and it removes the files and exits instead
        # of waiting forever with its plans.
        planning._from.close()
        planning._to.close()
        planning._process.wait(timeout=30)
        assert not spool.exists()
        planning.close()
    finally:
        log.close()
