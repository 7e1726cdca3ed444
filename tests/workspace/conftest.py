"""The workspace tests run on both storage backends: the PostgreSQL database fixtures of
the storage tests."""

from tests.storage.conftest import pg_session_url, pg_url

__all__ = ["pg_session_url", "pg_url"]
