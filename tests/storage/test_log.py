"""The event log on both backends: group commit, positions, dedup across restarts, retention."""

import asyncio
import threading
import time

import pytest

from tests.storage.conftest import Backend
from trackway import codec
from trackway.storage.base import EventLog, StorageUnavailable
from trackway.storage.dedup import message_hash
from trackway.storage.records import AcceptedEvent, IngestBatch, RejectedEvent


def batch(source_id: int, ids: list[str], at_ms: int | None = None) -> IngestBatch:
    at = at_ms if at_ms is not None else int(time.time() * 1000)
    events = [AcceptedEvent(i, message_hash(source_id, i)) for i in ids]
    return IngestBatch(source_id, at, events, codec.dumps([{"messageId": i} for i in ids]))


async def append_all(log: EventLog, batches: list[IngestBatch]) -> list[tuple[int, int]]:
    results = await asyncio.gather(*(log.append(b) for b in batches))
    return [(r.accepted, r.duplicates) for r in results]


def test_concurrent_appends_get_consecutive_positions(backend: Backend) -> None:
    log = backend.log()
    log.start()
    try:
        batches = [batch(1, [f"m{n}-{i}" for i in range(10)]) for n in range(50)]
        assert asyncio.run(append_all(log, batches)) == [(10, 0)] * 50
        events = log.read(0, 10_000)
        assert [e.position for e in events] == list(range(1, 501))
        assert len({e.body["messageId"] for e in events}) == 500
        assert [e.position for e in log.read(250, 5)] == [251, 252, 253, 254, 255]
    finally:
        log.close()


def test_duplicates_within_a_request_a_group_and_across_restarts(backend: Backend) -> None:
    log = backend.log()
    log.start()
    try:
        results = asyncio.run(
            append_all(log, [batch(1, ["a", "a", "b"]), batch(1, ["b", "c"]), batch(2, ["a"])])
        )
        assert results == [(2, 1), (1, 1), (1, 0)]
    finally:
        log.close()
    again = backend.log()
    again.start()
    try:
        assert asyncio.run(append_all(again, [batch(1, ["a", "c", "d"])])) == [(1, 2)]
        assert [e.body["messageId"] for e in again.read(0, 100)] == ["a", "b", "c", "a", "d"]
        dups = again.debug_records(1, 100, frozenset(["duplicate"]))
        assert sorted(r.event["messageId"] for r in dups) == ["a", "a", "b", "c"]
    finally:
        again.close()


def test_window_zero_keeps_no_dedup_memory(backend: Backend) -> None:
    log = backend.log(dedup_window_s=0)
    log.start()
    try:
        asyncio.run(append_all(log, [batch(1, ["x"], at_ms=0)]))
    finally:
        log.close()
    again = backend.log(dedup_window_s=0)
    again.start()
    try:
        assert asyncio.run(append_all(again, [batch(1, ["x"])])) == [(1, 0)]
    finally:
        again.close()


def test_rejected_events_are_kept_per_source(backend: Backend) -> None:
    log = backend.log()
    log.start()
    try:
        b = batch(3, ["ok"])
        b.rejected.append(RejectedEvent(1, "missing_field", "'event' is required", b'{"x":1}'))
        asyncio.run(append_all(log, [b]))
        records = log.debug_records(3, 10)
        assert {r.status for r in records} == {"accepted", "rejected"}
        [rejected] = [r for r in records if r.status == "rejected"]
        assert rejected.event == {"x": 1}
        assert rejected.error == {
            "code": "missing_field",
            "message": "'event' is required",
            "index": 1,
        }
        assert log.debug_records(4, 10) == []
    finally:
        log.close()


def test_retention_deletes_old_records_only(backend: Backend) -> None:
    log = backend.log(retention_s=3600)
    log.start()
    now = int(time.time() * 1000)
    try:
        old = batch(1, ["old"], at_ms=now - 2 * 3600 * 1000)
        old.rejected.append(RejectedEvent(0, "c", "m", None))
        asyncio.run(append_all(log, [old, batch(1, ["new"], at_ms=now)]))
        # The writer also enforces retention by itself after commits; either way:
        log.enforce_retention(now)
        assert [e.body["messageId"] for e in log.read(0, 10)] == ["new"]
        assert [r.status for r in log.debug_records(1, 10)] == ["accepted"]
    finally:
        log.close()


def test_append_fails_loudly_when_the_disk_refuses(backend: Backend) -> None:
    log = backend.log()
    log.start()
    try:
        backend.refuse_chunks(True)
        with pytest.raises(StorageUnavailable, match="disk full"):
            asyncio.run(log.append(batch(1, ["lost?"])))
        backend.refuse_chunks(False)
        # Nothing was acknowledged, so the same messageId is new, not a duplicate.
        assert asyncio.run(append_all(log, [batch(1, ["lost?"])])) == [(1, 0)]
        assert [e.position for e in log.read(0, 10)] == [1]
    finally:
        log.close()


def test_append_without_a_running_writer_is_refused(backend: Backend) -> None:
    log = backend.log()
    with pytest.raises(StorageUnavailable):
        asyncio.run(log.append(batch(1, ["x"])))
    log.close()


def test_positions_never_start_over_after_everything_expired(backend: Backend) -> None:
    log = backend.log(retention_s=3600)
    log.start()
    now = int(time.time() * 1000)
    old = now - 2 * 3600 * 1000
    try:
        asyncio.run(append_all(log, [batch(1, ["a", "b"], at_ms=old)]))
        asyncio.run(append_all(log, [batch(1, ["c"], at_ms=old)]))
        log.enforce_retention(now)
        assert [e.position for e in log.read(0, 10)] == [3]
    finally:
        log.close()
    again = backend.log(retention_s=3600)
    again.start()
    try:
        asyncio.run(append_all(again, [batch(1, ["d"])]))
        # "c" (position 3) may now expire too; "d" continues after it, not at 1.
        assert [e.position for e in again.read(0, 10)][-1] == 4
    finally:
        again.close()


def test_a_consumer_waits_for_commits_of_any_process(backend: Backend) -> None:
    writer, reader = backend.log(), backend.log()  # as two processes
    writer.start()
    try:
        asyncio.run(writer.append(batch(1, ["a"])))
        started = time.monotonic()
        reader.wait_for(0, 5)  # already past: at once
        reader.wait_for(1, 0.3)  # nothing new: the timeout
        assert 0.25 <= time.monotonic() - started < 1.5

        woke: list[float] = []

        def wait() -> None:
            reader.wait_for(1, 10)
            woke.append(time.monotonic())

        waiter = threading.Thread(target=wait)
        waiter.start()
        time.sleep(0.3)
        sent = time.monotonic()
        asyncio.run(writer.append(batch(1, ["b"])))
        waiter.join()
        assert woke and woke[0] - sent < 0.5  # woken by the commit, not the timeout
        own = time.monotonic()
        asyncio.run(writer.append(batch(1, ["c"])))
        writer.wait_for(2, 10)  # this process's own commit wakes it at once
        assert time.monotonic() - own < 0.5
    finally:
        writer.close()
        reader.close()


def test_volume_counts_per_source_status_and_minute_since_a_time(backend: Backend) -> None:
    log = backend.log(retention_s=7 * 86400)
    log.start()
    minute = int(time.time() * 1000) // 60_000 * 60_000
    try:
        batches = [batch(1, [f"old-{i}"], at_ms=minute - 3 * 3600 * 1000) for i in range(30)]
        batches += [batch(1, ["a1", "a2"], at_ms=minute - 60_000), batch(2, ["b1"], at_ms=minute)]
        asyncio.run(append_all(log, batches))
        late = batch(1, ["a1", "a3"], at_ms=minute + 1)  # a1 again: a duplicate
        late.rejected.append(RejectedEvent(2, "missing_field", "'event' is required", None))
        asyncio.run(append_all(log, [late]))
        got = sorted(log.volume(minute - 60_000))
        m = minute // 60_000
        assert got == [
            (1, "accepted", m - 1, 2),
            (1, "accepted", m, 1),
            (1, "duplicate", m, 1),
            (1, "rejected", m, 1),
            (2, "accepted", m, 1),
        ]
        assert log.volume(minute + 60_000) == []
        assert sum(n for *_, n in log.volume(0)) == 36  # 30 old + 4 accepted + 2 others
    finally:
        log.close()


def test_volume_of_an_empty_log_is_empty(backend: Backend) -> None:
    log = backend.log()
    log.start()
    try:
        assert log.volume(0) == []
    finally:
        log.close()
