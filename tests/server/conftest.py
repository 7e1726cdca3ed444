"""The server tests that run on PostgreSQL use the storage tests' database fixtures."""

import pytest

from tests.storage.conftest import pg_session_url, pg_url

__all__ = ["pg_session_url", "pg_url"]


@pytest.fixture(params=["sqlite", "postgres"])
def storage(request: pytest.FixtureRequest) -> tuple[str, ...]:
    """The extra `serve` (and CLI) arguments of each storage backend in turn: none for
    the SQLite files of the data directory, `--database URL` for an emptied PostgreSQL
    database."""
    if request.param == "postgres":
        return ("--database", request.getfixturevalue("pg_url"))
    return ()
