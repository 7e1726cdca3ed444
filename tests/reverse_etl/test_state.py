"""The sync state itself, on both backends: holding a sync, keys, a lost connection."""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from trackway.reverse_etl.errors import SyncBusy
from trackway.reverse_etl.state import Counts, RowError, SyncStore, open_sync_store
from trackway.settings import Settings
from trackway.storage.base import StorageUnavailable
from trackway.storage.postgres.connect import connect

Opener = Callable[[], SyncStore]


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    url = None
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
        with connect(url) as conn:
            conn.execute(
                "TRUNCATE reverse_etl_run_errors, reverse_etl_runs, reverse_etl_snapshot,"
                " reverse_etl_syncs RESTART IDENTITY CASCADE"
            )
    return Settings(data_dir=tmp_path, database_url=url)


@pytest.fixture
def open_store(settings: Settings) -> Iterator[Opener]:
    """Opens stores on one backend: each is another process's view of the same state."""
    opened: list[SyncStore] = []

    def opener() -> SyncStore:
        opened.append(open_sync_store(settings))
        return opened[-1]

    yield opener
    for store in opened:
        store.close()


def test_a_sync_is_held_by_one_store_at_a_time(open_store: Opener) -> None:
    one, two = open_store(), open_store()
    with one.lock("s"):
        with pytest.raises(SyncBusy, match="sync 's' is running already"), two.lock("s"):
            pass
        with two.lock("other"):  # other syncs are free
            pass
    with two.lock("s"), pytest.raises(SyncBusy), one.lock("s"):  # released, then held
        pass


def test_keys_keep_their_type_through_plan_snapshot_and_errors(open_store: Opener) -> None:
    store = open_store()
    keys = [7, "7", "i7", "", 2**62, -3, "sé ☃"]
    with store.lock("k"):
        run = store.start_run("k", "manual", False)
        store.stage([(k, n, b"{}", None, None) for n, k in enumerate(keys)])
        assert store.duplicate_keys(5) == (0, [])
        assert store.plan(run) == Counts(added=len(keys))
        changes = store.changes(0, 100)
        assert sorted((c.pk for c in changes), key=repr) == sorted(keys, key=repr)
        errors = [RowError(k, "added", "failed", "no") for k in keys]
        store.save(run, changes, [], errors, Counts(added=len(keys), sent=len(keys)))
        assert store.changes(changes[-1].id, 100) == []
        store.finish_run(run, "succeeded", Counts(added=len(keys), sent=len(keys)), None)
    assert [e.pk for e in store.row_errors(run.id)] == keys  # in the order kept
    assert store.snapshot_size("k") == len(keys)

    with store.lock("k"):
        run = store.start_run("k", "manual", False)
        store.stage([(7, 0, b"{}", None, None), ("7", 99, b"{}", None, None)])
        store.stage([(7, 1, b"{}", None, None)])
        assert store.duplicate_keys(5) == (1, [7])
        store.finish_run(run, "failed", Counts(), "duplicates")

        run = store.start_run("k", "manual", False)  # a new scratch space
        store.stage([(7, 0, b"{}", None, None), ("7", 99, b"{}", None, None)])
        assert store.plan(run) == Counts(changed=1, removed=len(keys) - 2)
        [changed] = [c for c in store.changes(0, 100) if c.kind == "changed"]
        assert (changed.pk, changed.seq) == ("7", 1)
        store.finish_run(run, "succeeded", Counts(), None)


def test_a_connection_lost_mid_run_fails_that_run_only(tmp_path: Path, pg_url: str) -> None:
    # PostgreSQL only: a SQLite store has no connection to lose
    settings = Settings(data_dir=tmp_path, database_url=pg_url)
    assert settings.database_url is not None
    store = open_sync_store(settings)
    try:
        with pytest.raises(StorageUnavailable), store.lock("cut"):
            run = store.start_run("cut", "schedule", False)
            store.stage([(1, 1, b"{}", None, None)])
            with connect(settings.database_url) as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    " AND application_name = 'trackway'"
                )
            store.plan(run)
        # The next run connects again: the killed one is recorded as interrupted.
        with store.lock("cut"):
            run = store.start_run("cut", "schedule", False)
            store.stage([(1, 1, b"{}", None, None)])
            assert store.plan(run) == Counts(added=1)
            store.finish_run(run, "succeeded", Counts(added=1), None)
        [last, cut] = store.runs("cut", 5)
        assert last.status == "succeeded"
        assert cut.status == "failed" and (cut.error or "").startswith("interrupted")
    finally:
        store.close()
