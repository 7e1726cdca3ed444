"""Real source databases for reverse-ETL tests: DuckDB and SQLite files, PostgreSQL schemas."""

import secrets
import sqlite3
from pathlib import Path
from typing import Protocol

import duckdb
import psycopg

from trackway.reverse_etl.config import Connection

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
ENGINES = ("duckdb", "sqlite", "postgres")


class Engine(Protocol):
    """A database a test writes to and a model reads from."""

    name: str
    timestamp_type: str

    def execute(self, *statements: str) -> None: ...

    def connection(self) -> Connection: ...

    def drop(self) -> None: ...


class DuckDBEngine:
    name = "duckdb"
    timestamp_type = "TIMESTAMP"

    def __init__(self, path: Path) -> None:
        self.path = path

    def execute(self, *statements: str) -> None:
        # Closed after each use: a model opens the file read-only, which DuckDB refuses
        # while this process holds it open for writing.
        conn = duckdb.connect(str(self.path))
        try:
            for statement in statements:
                conn.execute(statement)
        finally:
            conn.close()

    def connection(self) -> Connection:
        return Connection("duckdb", path=str(self.path))

    def drop(self) -> None:
        self.path.unlink(missing_ok=True)


class SQLiteEngine:
    name = "sqlite"
    timestamp_type = "TEXT"

    def __init__(self, path: Path) -> None:
        self.path = path

    def execute(self, *statements: str) -> None:
        conn = sqlite3.connect(self.path)
        try:
            with conn:
                for statement in statements:
                    conn.execute(statement)
        finally:
            conn.close()

    def connection(self) -> Connection:
        return Connection("sqlite", path=str(self.path))

    def drop(self) -> None:
        self.path.unlink(missing_ok=True)


class PostgresEngine:
    name = "postgres"
    timestamp_type = "TIMESTAMP"

    def __init__(self) -> None:
        self.schema = "retl_" + secrets.token_hex(6)
        self.execute(f"CREATE SCHEMA {self.schema}")

    def execute(self, *statements: str) -> None:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f"SET search_path TO {self.schema}".encode())
            for statement in statements:
                conn.execute(statement.encode())

    def connection(self) -> Connection:
        return Connection("postgres", url=f"{POSTGRES_URL}?options=-csearch_path%3D{self.schema}")

    def drop(self) -> None:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {self.schema} CASCADE".encode())


def make_engine(name: str, directory: Path) -> Engine:
    """A fresh, empty database of the named engine."""
    if name == "duckdb":
        return DuckDBEngine(directory / "source.duckdb")
    if name == "sqlite":
        return SQLiteEngine(directory / "source.sqlite")
    return PostgresEngine()
