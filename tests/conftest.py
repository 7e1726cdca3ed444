"""Shared fixtures: a real `trackway serve` process per test or per module."""

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.support import Server, start_server

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A fresh server per test, stopped (SIGTERM) afterwards."""
    srv = start_server(tmp_path / "data")
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for a whole test module (tests must use distinct ids)."""
    srv = start_server(tmp_path_factory.mktemp("shared") / "data")
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def backend_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One server per test module and storage backend: the log and state in SQLite
    files, or in a PostgreSQL database made for it."""
    data_dir = tmp_path_factory.mktemp(f"shared-{request.param}") / "data"
    if request.param == "sqlite":
        srv = start_server(data_dir)
        try:
            yield srv
        finally:
            srv.stop()
        return
    name = f"trackway_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        srv = start_server(data_dir, "--database", f"postgresql://postgres@127.0.0.1:5432/{name}")
        try:
            yield srv
        finally:
            srv.stop()
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgres"])
def storage(request: pytest.FixtureRequest) -> tuple[str, ...]:
    """The extra `serve` (and CLI) arguments of each storage backend in turn: none for
    the SQLite files of the data directory, `--database URL` for a fresh (or emptied) PostgreSQL
    database.

    Needs a `pg_url` fixture where it is used (tests/server and tests/warehouse have one)."""
    if request.param == "postgres":
        return ("--database", request.getfixturevalue("pg_url"))
    return ()
