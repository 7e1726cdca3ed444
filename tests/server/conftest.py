"""The server tests that run on PostgreSQL use the storage tests' database fixtures."""

from tests.storage.conftest import pg_session_url, pg_url

__all__ = ["pg_session_url", "pg_url"]
