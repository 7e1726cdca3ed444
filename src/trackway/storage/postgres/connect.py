"""Connections to PostgreSQL with Trackway's session settings."""

from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from trackway.storage.base import StorageUnavailable

SCHEMA = "trackway"
"""Every table lives in this schema, so the database can also hold a warehouse."""

_OPTIONS: dict[str, Any] = {
    "connect_timeout": 5,
    "application_name": "trackway",
    # A dead network must fail a commit (answered 503), not hang it: libpq gives up on
    # a connection whose sent data stays unacknowledged this long (ms).
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
}


def connect(url: str) -> psycopg.Connection[Any]:
    """An autocommit connection whose commits wait for the WAL flush.

    `synchronous_commit` is set on the session, whatever the server's default: an
    acknowledged event must survive a crash of PostgreSQL.
    """
    try:
        conn = psycopg.connect(url, autocommit=True, **_OPTIONS)
    except psycopg.Error as exc:
        raise StorageUnavailable(f"cannot connect to PostgreSQL: {_first_line(exc)}") from exc
    try:
        conn.execute("SET synchronous_commit = on")
        conn.execute(f"SET search_path = {SCHEMA}")
    except psycopg.Error as exc:
        conn.close()
        raise StorageUnavailable(f"PostgreSQL: {_first_line(exc)}") from exc
    return conn


def unavailable(exc: psycopg.Error) -> StorageUnavailable:
    """The error to raise when PostgreSQL failed a statement."""
    return StorageUnavailable(f"PostgreSQL: {_first_line(exc)}")


def describe(url: str) -> str:
    """`host:port/dbname` of a URL, without its user or password (for messages)."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "PostgreSQL"
    host = parts.get("host") or "localhost"
    port = parts.get("port") or 5432
    return f"postgresql://{host}:{port}/{parts.get('dbname') or ''}"


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
