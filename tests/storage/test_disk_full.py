"""SQLite files on a real full disk (a 16 MB tmpfs): a write fails with the disk's error,
nothing half-written stays behind, and the same connection works once space returns."""

import asyncio
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.storage.test_log import batch
from tests.support import fill, small_disk
from trackway.destinations.state import ErrorSample, Outcome
from trackway.destinations.state.sqlite import SQLiteDeliveryStore
from trackway.storage.base import StorageUnavailable
from trackway.storage.sqlite.leases import SQLiteLeases
from trackway.storage.sqlite.log import SQLiteEventLog


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    with small_disk(tmp_path / "disk") as mount:
        yield mount


def intact(path: Path) -> bool:
    conn = sqlite3.connect(path)
    try:
        return bool(conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)])
    finally:
        conn.close()


def test_the_log_refuses_appends_until_space_returns(disk: Path) -> None:
    log = SQLiteEventLog(disk / "log.db")
    log.start()
    try:
        fill(disk / "filler")
        acked: list[str] = []
        for n in range(200):  # until the last free pages are used up
            ids = [f"full-{n}-{i}-{'x' * 200}" for i in range(100)]
            try:
                asyncio.run(log.append(batch(1, ids)))
            except StorageUnavailable as exc:
                assert "disk is full" in str(exc)
                break
            acked.extend(ids)
        else:
            pytest.fail("the full disk took every append")
        (disk / "filler").unlink()
        # Nothing of the refused batch was stored, so its ids are new.
        asyncio.run(log.append(batch(1, [f"full-{n}-0-{'x' * 200}", "after"])))
        stored = [e.body["messageId"] for e in log.read(0, 100_000)]
        assert stored == [*acked, f"full-{n}-0-{'x' * 200}", "after"]
    finally:
        log.close()
    assert intact(disk / "log.db")


def test_leases_and_delivery_bookkeeping_fail_with_the_disk_error_then_work(
    disk: Path,
) -> None:
    leases = SQLiteLeases(disk / "leases.db")
    store = SQLiteDeliveryStore(disk / "destinations.db")
    try:
        cursor = store.cursor("hook", 0)
        fill(disk / "filler")
        with pytest.raises(sqlite3.OperationalError, match="disk is full"):
            for n in range(10_000):  # error samples until the last free pages are used
                sample = ErrorSample(n, "send", "http", "x" * 4000, {"n": n})
                store.record("hook", Outcome(errors=[sample]), cursor)
        with pytest.raises(sqlite3.OperationalError, match="disk is full"):
            leases.acquire("me", [f"key-{n}-{'k' * 500}" for n in range(200)], 30)
        (disk / "filler").unlink()
        # The same connections, not stuck in the transaction that failed.
        assert leases.acquire("me", ["warehouse"], 30) == {"warehouse"}
        assert store.record("hook", Outcome(), replace(cursor, position=42))
        assert store.cursor("hook", 0).position == 42
    finally:
        leases.close()
        store.close()
    assert intact(disk / "leases.db") and intact(disk / "destinations.db")
