"""kill -9 of a loader in the middle of a micro-batch, and of `trackway warehouse reload`
in the middle of a reload, then a restart: every event is in the tables exactly once
(the cursor commits with the rows, rows are replaced by id)."""

import os
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import Server, cli, on_terminal, start_server, until
from tests.warehouse.conftest import new_pg_database
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


RELOADED = 40_000
RELOAD_BATCH = 2_000
USERS = 50


def _sent(n: int) -> dict[str, Any]:
    """Event n of the reload test: a track of one of four events, every tenth an
    identify of one of `USERS` users."""
    user = f"reload-user-{n // 10 % USERS}"
    if n % 10 == 0:
        return {"type": "identify", "userId": user, "traits": {"n": n}, "messageId": f"r-{n}"}
    return {
        "type": "track",
        "userId": user,
        "event": f"Reload {n % 4}",
        "properties": {"n": n},
        "messageId": f"r-{n}",
    }


def _send(server: Server, numbers: range) -> None:
    events = [_sent(n) for n in numbers]
    with server.client() as client:
        for start in range(0, len(events), 500):
            r = client.post(
                "/v1/batch",
                auth=(server.write_key, ""),
                json={"batch": events[start : start + 500]},
            )
            assert r.status_code == 200, r.text


_EXACT = (
    "SELECT (SELECT count(*) FROM tracks), (SELECT count(DISTINCT id) FROM tracks),"
    " (SELECT count(*) FROM reload_0) + (SELECT count(*) FROM reload_1)"
    " + (SELECT count(*) FROM reload_2) + (SELECT count(*) FROM reload_3),"
    " (SELECT count(*) FROM identifies), (SELECT count(DISTINCT id) FROM identifies),"
    " (SELECT count(*) FROM users)"
)


def _exact(events: int) -> list[list[int]]:
    """What `_EXACT` answers when the first `events` events are each loaded once."""
    identifies = len(range(0, events, 10))
    tracks = events - identifies
    return [[tracks, tracks, tracks, identifies, identifies, min(USERS, identifies)]]


def _progress(terminal: int, past: int, seconds: float) -> int:
    """Read the reload's progress bar until it shows more than `past` events done;
    returns how many it shows."""
    seen = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready, _, _ = select.select([terminal], [], [], 0.1)
        if ready:
            seen += os.read(terminal, 65536)
            shown = [int(done.replace(b",", b"")) for done in _DONE.findall(seen)]
            if shown and shown[-1] > past:
                return shown[-1]
    raise AssertionError(f"the reload never got past {past} events: {seen[-500:]!r}")


_DONE = re.compile(rb"([\d,]+)/[\d,]+")


def _children(pid: int) -> list[int]:
    return [
        int(p.name)
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and _stat(int(p.name))[1:2] == [str(pid)]
    ]


def _stat(pid: int) -> list[str]:
    """State and parent of a process ([] once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []
    return fields[:2]


def _ended(pid: int) -> bool:
    return _stat(pid)[:1] in ([], ["Z"])


@pytest.fixture
def warehouse_kind(storage: tuple[str, ...]) -> Iterator[str]:
    """The warehouse of each storage backend: DuckDB beside SQLite, PostgreSQL beside
    PostgreSQL (a database of its own)."""
    if not storage:
        yield "type: duckdb"
        return
    with new_pg_database() as url:
        yield f"type: postgres\n    url: {url}"


def _planner(reload: subprocess.Popen[bytes], seconds: float) -> list[int]:
    """Wait for the reload to start its planning process (it plans the first
    micro-batch itself meanwhile); returns the process ids of its children."""
    deadline = time.monotonic() + seconds
    while not (children := _children(reload.pid)) and time.monotonic() < deadline:
        time.sleep(0.001)  # the window until the child gets its job is short
    return children


@pytest.mark.parametrize("kill_at", ["first-batch", "midway"])
def test_kill_9_mid_reload_then_restart_and_reload_leave_each_event_once(
    tmp_path: Path, storage: tuple[str, ...], warehouse_kind: str, kill_at: str
) -> None:
    data = tmp_path / "data"
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        "version: 1\nsources:\n  - name: default\nwarehouses:\n  - name: default\n"
        f"    {warehouse_kind}\n    batch_size: {RELOAD_BATCH}\n"
    )
    cli("apply", str(workspace), *storage, data_dir=data)
    server = start_server(data, *storage)
    try:
        _send(server, range(RELOADED))
        assert until(lambda: server.sql(_EXACT), _exact(RELOADED), 120) == _exact(RELOADED)
    finally:
        server.stop()

    # The reload replaces rows micro-batch by micro-batch; it is killed while it plans
    # the first one (its child process waiting for its job), or after it has replaced
    # some while the child plans the next ones.
    spool = tmp_path / "tmp"
    spool.mkdir()
    reload, terminal = on_terminal(
        "warehouse", "reload", "default", "--since", "1d", *storage,
        data_dir=data, columns=120, env={"TMPDIR": str(spool)},
    )  # fmt: skip
    try:
        if kill_at == "midway":
            done = _progress(terminal, 2 * RELOAD_BATCH, seconds=120)
            assert done < RELOADED, "the reload had finished: make the log longer"
        planners = _planner(reload, seconds=60)
    finally:
        reload.kill()
        reload.wait(30)
        os.close(terminal)
        assert reload.stderr is not None
        reload.stderr.close()
    assert len(planners) == 1, planners
    # Its planning process notices, removes its files and ends.
    assert until(lambda: _ended(planners[0]), True, 30)
    assert until(lambda: list(spool.iterdir()), []) == []

    server = start_server(data, *storage)
    try:
        assert server.sql(_EXACT) == _exact(RELOADED)
    finally:
        server.stop()
    out = cli("warehouse", "reload", "default", "--since", "1d", *storage, data_dir=data)
    assert f"Reloaded {RELOADED:,} events" in out
    server = start_server(data, *storage)
    try:
        assert server.sql(_EXACT) == _exact(RELOADED)
        _send(server, range(RELOADED, RELOADED + 1000))
        more = _exact(RELOADED + 1000)
        assert until(lambda: server.sql(_EXACT), more, 60) == more
    finally:
        server.stop()
