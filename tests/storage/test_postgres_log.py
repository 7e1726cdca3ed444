"""What only the PostgreSQL log has to do: several processes appending to one log, and
PostgreSQL going away and coming back."""

import asyncio
import threading
import time

import pytest

from tests.storage.conftest import PG_ADMIN_URL
from tests.storage.test_log import append_all, batch
from tests.warehouse.proxy import TcpProxy
from trackway.storage.base import StorageUnavailable
from trackway.storage.postgres.connect import connect
from trackway.storage.postgres.log import PostgresEventLog
from trackway.storage.postgres.migrations import MIGRATIONS, migrate


def test_two_processes_append_concurrently_without_gaps_losses_or_duplicates(
    pg_url: str,
) -> None:
    one, two = PostgresEventLog(pg_url), PostgresEventLog(pg_url)
    reader = PostgresEventLog(pg_url)
    one.start()
    two.start()
    seen: list[int] = []
    gaps: list[tuple[int, list[int]]] = []
    done = threading.Event()

    def follow() -> None:
        # A consumer: it must never see a position before a smaller one has committed.
        after = 0
        while not done.is_set() or after < 2000:
            events = reader.read(after, 500)
            positions = [e.position for e in events]
            if positions != list(range(after + 1, after + 1 + len(positions))):
                gaps.append((after, positions))
                return
            seen.extend(positions)
            after = positions[-1] if positions else after

    follower = threading.Thread(target=follow)
    follower.start()

    async def send() -> list[tuple[int, int]]:
        # 40 requests per process with 50 ids each; every id is sent to both processes.
        requests = [batch(1, [f"r{n}-{i}" for i in range(50)]) for n in range(40)]
        copies = [batch(1, [f"r{n}-{i}" for i in range(50)]) for n in range(40)]
        return await asyncio.gather(
            append_all(one, requests[:20] + copies[20:]),
            append_all(two, copies[:20] + requests[20:]),
        )

    try:
        results = asyncio.run(send())
        done.set()
        follower.join(30)
    finally:
        done.set()
        one.close()
        two.close()
    try:
        assert gaps == []
        accepted = sum(a for part in results for a, _ in part)
        duplicates = sum(d for part in results for _, d in part)
        assert (accepted, duplicates) == (2000, 2000)
        events = reader.read(0, 10_000)
        assert [e.position for e in events] == list(range(1, 2001)) == seen
        assert len({e.body["messageId"] for e in events}) == 2000
        assert reader.last_seqs() == {"accepted": 2000, "rejected": 0, "duplicate": 2000}
    finally:
        reader.close()


def test_an_id_committed_by_another_process_is_a_duplicate(pg_url: str) -> None:
    one, two = PostgresEventLog(pg_url), PostgresEventLog(pg_url)
    one.start()
    two.start()
    try:
        assert asyncio.run(append_all(one, [batch(1, ["a", "b"])])) == [(2, 0)]
        assert asyncio.run(append_all(two, [batch(1, ["b", "c"])])) == [(1, 1)]
        assert asyncio.run(append_all(one, [batch(1, ["c", "d"])])) == [(1, 1)]
        assert [e.body["messageId"] for e in one.read(0, 10)] == ["a", "b", "c", "d"]
    finally:
        one.close()
        two.close()


def test_postgres_going_away_fails_appends_and_recovers(pg_url: str) -> None:
    proxy = TcpProxy(("127.0.0.1", 5432))
    proxy.up()
    log = PostgresEventLog(proxy.route(pg_url))
    log.start()
    try:
        assert asyncio.run(append_all(log, [batch(1, ["before"])])) == [(1, 0)]
        proxy.down()
        with pytest.raises(StorageUnavailable):
            asyncio.run(log.append(batch(1, ["during"])))
        with pytest.raises(StorageUnavailable):
            log.ping()
        proxy.up()
        deadline = time.monotonic() + 10
        while True:
            try:
                result = asyncio.run(append_all(log, [batch(1, ["during", "after"])]))
                break
            except StorageUnavailable:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        # Nothing of the failed append was acknowledged, so "during" is new.
        assert result == [(2, 0)]
        log.ping()
        assert [(e.position, e.body["messageId"]) for e in log.read(0, 10)] == [
            (1, "before"),
            (2, "during"),
            (3, "after"),
        ]
    finally:
        log.close()
        proxy.down()


def test_migrations_run_once_when_processes_start_together() -> None:
    import secrets

    import psycopg

    name = f"trackway_test_{secrets.token_hex(6)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    try:
        outcomes: list[tuple[int, int] | BaseException] = []

        def start() -> None:
            try:
                with connect(url) as conn:
                    outcomes.append(migrate(conn))
            except BaseException as exc:
                outcomes.append(exc)

        threads = [threading.Thread(target=start) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        newest = len(MIGRATIONS)
        assert sorted(outcomes) == [(0, newest)] + [(newest, newest)] * 3  # type: ignore[type-var]
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
