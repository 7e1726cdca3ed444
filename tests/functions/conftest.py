"""A pool of real worker processes with a short time limit, and helpers to write code."""

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from trackway.functions import FunctionPool

TIME_LIMIT_S = 0.5


@pytest.fixture(scope="module")
def pool() -> Iterator[FunctionPool]:
    """Shared by a test module: its tests also show that one bad function leaves the
    pool working for the next."""
    with FunctionPool(workers=2, time_limit_s=TIME_LIMIT_S, memory_limit_mb=256) as pool:
        yield pool


@pytest.fixture
def single() -> Iterator[FunctionPool]:
    """One worker, so that successive calls show whether it was kept or replaced."""
    with FunctionPool(workers=1, time_limit_s=TIME_LIMIT_S, memory_limit_mb=256) as pool:
        yield pool


def function(body: str) -> str:
    """Code whose transform has `body` (indented by the helper), with `os` imported."""
    return "import os\n\ndef transform(event, settings):\n" + textwrap.indent(
        textwrap.dedent(body).strip("\n"), "    "
    )


def worker_processes(parent: int) -> list[int]:
    """The pids of `parent`'s function worker processes, as seen from here."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except (FileNotFoundError, NotADirectoryError, ProcessLookupError):
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent and b"functions.worker" in command:
            pids.append(int(entry.name))
    return pids
