"""A real `trackway serve` on each state backend, for the ConfigCat SDK tests."""

from collections.abc import Iterator

import pytest

from tests.support import Server, start_server
from tests.warehouse.conftest import new_pg_database


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def flag_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("flags") / "data"
    if request.param == "sqlite":
        srv = start_server(data)
        try:
            yield srv
        finally:
            srv.stop()
        return
    with new_pg_database() as url:
        srv = start_server(data, "--database", url)
        try:
            yield srv
        finally:
            srv.stop()
