"""Shared fixtures: a real `trackway serve` process per test or per module."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import Server, start_server


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
