"""The sync state itself, on both backends: holding a sync, keys, a lost connection."""

import contextlib
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from tests.storage.conftest import PG_ADMIN_URL
from trackway.reverse_etl.errors import SyncBusy
from trackway.reverse_etl.state import Counts, RowError, SyncStore, open_sync_store
from trackway.reverse_etl.state.sqlite import MIGRATIONS as SQLITE_MIGRATIONS
from trackway.reverse_etl.state.sqlite import SQLiteSyncStore
from trackway.settings import Settings
from trackway.storage.base import StorageUnavailable
from trackway.storage.commands import db_group
from trackway.storage.postgres import migrations as pg_migrations
from trackway.storage.postgres.connect import connect
from trackway.storage.sqlite.connect import connect as sqlite_connect

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
    assert [e.pk for e in store.row_errors(run.sync, run.id)] == keys  # in the order kept
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


_OLD_RUNS = (1, 2, 1, 1, 2)
"""The sync ids of five runs kept before runs were numbered per sync: run ids 1-5, so
sync 1 has runs 1, 3, 4 (to be 1, 2, 3) and sync 2 has runs 2, 5 (to be 1, 2)."""


_PG_NUMBERS = next(
    i for i, script in enumerate(pg_migrations.MIGRATIONS) if "reverse_etl_runs_by_number" in script
)
"""The PostgreSQL migrations before the one that numbers runs per sync."""


@pytest.fixture(params=["sqlite", "postgres"])
def old_state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """The sync state at the schema before run numbers, holding `_OLD_RUNS` of the syncs
    'a' and 'b' and a row error of sync a's third run (id 4)."""
    run = "INSERT INTO {p}runs(sync_id, trigger, full_resync, status, started_at) VALUES"
    run += " ({ph}, 'manual', {ph}, 'succeeded', '2026-01-01T00:00:00Z')"
    error = "INSERT INTO {p}run_errors(run_id, pk, kind, status, error) VALUES"
    error += " (4, {ph}, 'added', 'rejected', 'no userId')"
    if request.param == "sqlite":
        path = SQLiteSyncStore.state_path(tmp_path)
        path.parent.mkdir()
        with contextlib.closing(sqlite_connect(path, SQLITE_MIGRATIONS[:1])) as conn:
            conn.execute("INSERT INTO syncs(name) VALUES ('a'), ('b')")
            for sync_id in _OLD_RUNS:
                conn.execute(run.format(p="", ph="?"), (sync_id, False))
            conn.execute(error.format(p="", ph="?"), (7,))
        yield Settings(data_dir=tmp_path)
        return
    name = f"trackway_test_{secrets.token_hex(6)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    try:
        with connect(url) as conn:
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(pg_migrations, "MIGRATIONS", pg_migrations.MIGRATIONS[:_PG_NUMBERS])
                pg_migrations.migrate(conn)
            conn.execute("INSERT INTO reverse_etl_syncs(name) VALUES ('a'), ('b')")
            for sync_id in _OLD_RUNS:
                conn.execute(run.format(p="reverse_etl_", ph="%s"), (sync_id, False))
            conn.execute(error.format(p="reverse_etl_", ph="%s"), ("i7",))
            conn.commit()
        yield Settings(data_dir=tmp_path, database_url=url)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def test_the_migration_numbers_existing_runs_per_sync(old_state: Settings) -> None:
    args = ["migrate", "--data-dir", str(old_state.data_dir)]
    if old_state.database_url:
        args += ["--database", old_state.database_url]
    migrated = CliRunner().invoke(db_group, args)
    assert migrated.exit_code == 0, migrated.output
    line = (
        f"{SQLiteSyncStore.state_path(old_state.data_dir)}: schema version 1 -> 2"
        if old_state.database_url is None
        else f"schema version {_PG_NUMBERS} -> {len(pg_migrations.MIGRATIONS)}"
    )
    assert line in migrated.output
    store = open_sync_store(old_state)
    try:
        assert [r.id for r in store.runs("a", 10)] == [3, 2, 1]
        assert [r.id for r in store.runs("b", 10)] == [2, 1]
        assert store.row_errors("a", 3) == [RowError(7, "added", "rejected", "no userId")]
        assert store.row_errors("a", 2) == store.row_errors("b", 2) == []
        with store.lock("b"):
            run = store.start_run("b", "manual", False)
            store.finish_run(run, "succeeded", Counts(), None)
        assert run.id == 3
        assert {name: r.id for name, r in store.last_runs().items()} == {"a": 3, "b": 3}
    finally:
        store.close()
