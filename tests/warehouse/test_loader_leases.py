"""Warehouse loaders in two processes on one data directory: the lease decides which
one loads, and the other takes over when it stops."""

from pathlib import Path

import pytest

from tests.support import until
from tests.warehouse.support import track, write_log
from trackway.storage.sqlite.leases import SQLiteLeases
from trackway.storage.sqlite.log import SQLiteEventLog
from trackway.storage.sqlite.state import SQLiteStateStore
from trackway.warehouse.loader import Loaders


def test_one_loader_holds_the_warehouse_and_another_takes_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKWAY_LEASE_TTL", "2")
    store = SQLiteStateStore(tmp_path / "state.db")
    store.create_source("default", "segment")
    write_log(tmp_path / "log.db", [track("Seen") for _ in range(5)])
    logs = [SQLiteEventLog(tmp_path / "log.db") for _ in range(2)]
    leases = [SQLiteLeases(tmp_path / "leases.db") for _ in range(2)]
    first, second = (
        Loaders(tmp_path, log, store, lease) for log, lease in zip(logs, leases, strict=True)
    )
    try:
        first.start()
        second.start()
        assert list(first.running) == ["default"]
        assert list(second.running) == []
        (_spec, thread) = first.running["default"]
        assert until(lambda: thread.loader.position, 5) == 5
        first.stop()  # releases its lease
        assert until(lambda: list(second.running), ["default"], seconds=5) == ["default"]
        write_log(tmp_path / "log.db", [track("Later") for _ in range(3)])
        (_spec, thread) = second.running["default"]
        assert until(lambda: thread.loader.position, 8) == 8
    finally:
        first.stop()
        second.stop()
        for log in logs:
            log.close()
        for lease in leases:
            lease.close()
        store.close()
