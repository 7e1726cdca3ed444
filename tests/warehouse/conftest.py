"""Fixtures: a fresh DuckDB file or PostgreSQL database per test."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from trackway.warehouse.base import Warehouse
from trackway.warehouse.duckdb import DuckDBWarehouse
from trackway.warehouse.postgres import PostgresWarehouse

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


@contextmanager
def new_pg_database() -> Iterator[str]:
    """The URL of a new PostgreSQL database, dropped afterwards."""
    name = f"trackway_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """The URL of a new PostgreSQL database, dropped afterwards."""
    with new_pg_database() as url:
        yield url


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Warehouse]:
    """An empty warehouse on each engine."""
    engine: Warehouse
    if request.param == "duckdb":
        engine = DuckDBWarehouse(tmp_path / "warehouse.duckdb")
    else:
        engine = PostgresWarehouse(request.getfixturevalue("pg_url"))
    try:
        yield engine
    finally:
        engine.close()
