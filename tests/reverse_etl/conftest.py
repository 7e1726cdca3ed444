"""Fixtures: real source engines, a real `trackway serve`, and a runner wired to both.

`env` runs each test on both state backends: SQLite files in a data directory, and
PostgreSQL (the workspace state and the sync state in the test session's database).
"""

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from tests.reverse_etl.engines import ENGINES, Engine, make_engine
from tests.storage.conftest import pg_session_url, pg_url
from tests.support import Server
from trackway.reverse_etl.apply import apply_reverse_etl
from trackway.reverse_etl.config import EventNames, ModelSpec, SyncSpec
from trackway.reverse_etl.runner import Runner
from trackway.reverse_etl.send import RetryPolicy
from trackway.reverse_etl.state import Run, SyncStore, open_sync_store
from trackway.server.run import open_state
from trackway.settings import Settings
from trackway.storage.base import StateStore
from trackway.storage.postgres.connect import connect

__all__ = ["pg_session_url", "pg_url"]

FAST_RETRY = RetryPolicy(max_retries=3, base_s=0.01, max_backoff_s=0.05)
"""The SDK rules with short waits, so that failing endpoints cost milliseconds."""

USERS = "CREATE TABLE users(id INTEGER, uid TEXT, anon TEXT, plan TEXT, note TEXT, seen {ts})"


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """Each engine in turn: a fresh DuckDB file, SQLite file or PostgreSQL schema."""
    db = make_engine(request.param, tmp_path)
    try:
        yield db
    finally:
        db.drop()


@pytest.fixture
def duck(tmp_path: Path) -> Iterator[Engine]:
    """One engine, for tests about what happens after the query (same on every engine)."""
    db = make_engine("duckdb", tmp_path)
    try:
        yield db
    finally:
        db.drop()


@dataclass
class Env:
    """A test's view of Trackway: the server, a data directory, and a runner of syncs."""

    server: Server
    data_dir: Path
    store: StateStore
    syncs: SyncStore
    client: httpx.Client
    tag: str
    database_url: str | None = None

    @property
    def storage_args(self) -> list[str]:
        """`--data-dir` (and `--database`) for a command on this test's state."""
        args = ["--data-dir", str(self.data_dir)]
        return args + (["--database", self.database_url] if self.database_url else [])

    def apply(self, models: list[ModelSpec], syncs: list[SyncSpec]) -> list[str]:
        return apply_reverse_etl(models, syncs, self.store, data_dir=self.data_dir)

    def runner(self) -> Runner:
        return Runner(
            self.data_dir, self.store, self.syncs, self.server.url, self.client, FAST_RETRY
        )

    def run(self, name: str, full_resync: bool = False) -> Run:
        return self.runner().run(name, full_resync=full_resync)

    def events(self) -> list[dict[str, Any]]:
        """The events the server stored for this test's users (ids start with the tag)."""
        return [
            e
            for e in self.server.events()
            if str(e.get("userId") or e.get("anonymousId")).startswith(self.tag)
        ]

    def users(self, engine: Engine, *rows: tuple[Any, ...]) -> None:
        """Create the users table with rows `(id, plan, note)`; ids become `<tag>-<id>`."""
        engine.execute(USERS.format(ts=engine.timestamp_type))
        self.insert(engine, *rows)

    def insert(self, engine: Engine, *rows: tuple[Any, ...]) -> None:
        for pk, plan, note in rows:
            engine.execute(
                f"INSERT INTO users(id, uid, plan, note) VALUES"
                f" ({pk}, '{self.tag}-{pk}', '{plan}', '{note}')"
            )


_EMPTY_SYNCS = (
    "TRUNCATE reverse_etl_run_errors, reverse_etl_runs, reverse_etl_snapshot,"
    " reverse_etl_syncs RESTART IDENTITY CASCADE"
)


@pytest.fixture(params=["sqlite", "postgres"])
def env(request: pytest.FixtureRequest, shared_server: Server, tmp_path: Path) -> Iterator[Env]:
    """A data directory of its own (or an emptied PostgreSQL database), sending to the
    module's shared server.

    Its source `default` has the server's write key, so models, syncs and their state
    are the test's own while the events go to the one server; the test's users are told
    apart there by a tag in their ids.
    """
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    url: str | None = None
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
        with connect(url) as conn:
            conn.execute(_EMPTY_SYNCS)
    settings = Settings(data_dir=data_dir, database_url=url)
    store = open_state(settings, create=True)
    store.create_source("default", "segment", shared_server.write_key)
    syncs = open_sync_store(settings)
    client = httpx.Client()
    try:
        yield Env(shared_server, data_dir, store, syncs, client, "t" + secrets.token_hex(4), url)
    finally:
        client.close()
        syncs.close()
        store.close()


def model(
    engine: Engine, name: str, query: str = "SELECT * FROM users", pk: str = "id"
) -> ModelSpec:
    return ModelSpec(name, engine.connection(), query, pk)


def track(name: str, model: str, **overrides: Any) -> SyncSpec:
    """A generic track sync of the users table, sending all three kinds of change."""
    base = SyncSpec(
        name,
        model,
        "track",
        mapping={"plan": "plan"},
        user_id="uid",
        events=EventNames(added="User Added", changed="Plan Changed", removed="User Removed"),
        send_initial=True,
    )
    return msgspec.structs.replace(base, **overrides)
