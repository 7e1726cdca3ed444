"""Both storage backends for the storage tests: SQLite files in a temporary directory, and
one PostgreSQL database per test session (created on 127.0.0.1:5432, emptied before each
test, dropped at the end)."""

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from trackway.storage.postgres.connect import connect
from trackway.storage.postgres.leases import PostgresLeases
from trackway.storage.postgres.log import PostgresEventLog
from trackway.storage.postgres.migrations import migrate
from trackway.storage.postgres.state import PostgresStateStore
from trackway.storage.sqlite.leases import SQLiteLeases
from trackway.storage.sqlite.log import SQLiteEventLog
from trackway.storage.sqlite.state import SQLiteStateStore

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

_EMPTY = """
    TRUNCATE chunks, failures, duplicates, write_keys, sources, admin_tokens, objects,
        leases, delivery_cursors, delivery_retries, delivery_dead_letters, delivery_stats,
        delivery_errors, delivery_alerts, delivery_names
        RESTART IDENTITY CASCADE;
    UPDATE head SET next_pos = 1;
    UPDATE state_version SET version = 0
"""


@pytest.fixture(scope="session")
def pg_session_url() -> Iterator[str]:
    """A database for this test session, migrated."""
    name = f"trackway_test_{secrets.token_hex(6)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    try:
        with connect(url) as conn:
            migrate(conn)
        yield url
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def pg_url(pg_session_url: str) -> str:
    """The session's database, emptied: positions and ids start at 1 again."""
    with connect(pg_session_url) as conn:
        conn.execute(_EMPTY)
    return pg_session_url


@dataclass
class Backend:
    """Opens logs and state stores on one backend; each call is another connection (or
    process) on the same storage."""

    name: str
    path: Path
    url: str | None

    def log(self, **kwargs: Any) -> SQLiteEventLog | PostgresEventLog:
        if self.url is None:
            return SQLiteEventLog(self.path / "log.db", **kwargs)
        return PostgresEventLog(self.url, **kwargs)

    def state(self) -> SQLiteStateStore | PostgresStateStore:
        if self.url is None:
            return SQLiteStateStore(self.path / "state.db")
        return PostgresStateStore(self.url)

    def leases(self) -> SQLiteLeases | PostgresLeases:
        if self.url is None:
            return SQLiteLeases(self.path / "leases.db")
        return PostgresLeases(self.url)

    def refuse_chunks(self, refuse: bool) -> None:
        """Make every insert into the log's chunks fail ("disk full"), or stop that."""
        if self.url is None:
            import sqlite3

            conn = sqlite3.connect(self.path / "log.db", isolation_level=None)
            conn.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON chunks BEGIN"
                " SELECT RAISE(FAIL, 'disk full'); END"
                if refuse
                else "DROP TRIGGER refuse"
            )
            conn.close()
            return
        with connect(self.url) as conn:
            if refuse:
                conn.execute(
                    "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql"
                    " AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$;"
                    " CREATE TRIGGER refuse BEFORE INSERT ON chunks"
                    " FOR EACH ROW EXECUTE FUNCTION refuse()"
                )
            else:
                conn.execute("DROP TRIGGER refuse ON chunks; DROP FUNCTION refuse()")


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    return Backend(request.param, tmp_path, url)
