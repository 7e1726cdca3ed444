"""Where commands look for their data: a command that only reads (or changes something that
must already exist) never creates a data directory, and every "not found" says where it
looked."""

import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tests.storage.conftest import pg_session_url, pg_url
from tests.support import TRACKWAY
from trackway.cli import main
from trackway.storage.postgres.connect import describe

__all__ = ["pg_session_url", "pg_url"]

HINT = "set --data-dir or TRACKWAY_DATA_DIR"

NEEDS_DATA = [
    ["sources", "list"],
    ["sources", "disable", "web"],
    ["sources", "enable", "web"],
    ["sources", "rotate-key", "web"],
    ["sources", "configure", "web", "--product-id", "p"],
    ["events", "list", "--source", "default"],
    ["events", "tail", "--source", "default"],
    ["destinations", "list"],
    ["destinations", "show", "hook"],
    ["destinations", "delivery", "hook"],
    ["destinations", "dead-letters", "hook"],
    ["destinations", "auth", "hook"],
    ["destinations", "replay", "hook", "--since", "1h"],
    ["destinations", "resend", "hook"],
    ["sql", "SELECT 1"],
    ["warehouse", "status"],
    ["warehouse", "reload", "default", "--since", "1h"],
    ["models", "list"],
    ["models", "preview", "users"],
    ["syncs", "list"],
    ["syncs", "show", "users"],
    ["syncs", "runs", "users"],
    ["syncs", "run", "users"],
    ["syncs", "reset", "users", "--yes"],
]


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.mark.parametrize("command", NEEDS_DATA, ids=" ".join)
@pytest.mark.parametrize("where", ["missing", "empty"])
def test_a_command_on_no_data_directory_says_so_and_creates_nothing(
    tmp_path: Path, command: list[str], where: str
) -> None:
    data_dir = tmp_path / "data"
    if where == "empty":  # an existing directory that holds no Trackway data
        data_dir.mkdir()
    result = invoke(*command, "--data-dir", str(data_dir))
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: no Trackway data directory at {data_dir.resolve()}"
        f" ({HINT}; `trackway serve` creates one)\n"
    )
    assert list(tmp_path.iterdir()) == ([data_dir] if where == "empty" else [])
    assert where == "missing" or list(data_dir.iterdir()) == []


def test_run_from_another_directory_names_the_default_data_directory(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKWAY_")}
    done = subprocess.run(
        [*TRACKWAY, "events", "list", "--source", "default"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr == (
        f"Error: no Trackway data directory at {tmp_path.resolve() / 'trackway-data'}"
        f" ({HINT}; `trackway serve` creates one)\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_commands_that_write_create_the_data_directory(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert invoke("sources", "create", "web", "--data-dir", str(data_dir)).exit_code == 0
    listed = invoke("sources", "list", "--data-dir", str(data_dir))
    assert listed.exit_code == 0 and listed.stdout.startswith("web ")
    fresh = tmp_path / "other"
    assert invoke("admin-token", "--data-dir", str(fresh)).exit_code == 0
    assert (fresh / "state.db").exists()


NOT_FOUND = [
    (["sources", "disable", "ghost"], "no source named 'ghost'"),
    (["sources", "rotate-key", "ghost"], "no source named 'ghost'"),
    (["events", "list", "--source", "ghost"], "no source named 'ghost'"),
    (["events", "tail", "--source", "ghost"], "no source named 'ghost'"),
    (["destinations", "show", "ghost"], "no destination named 'ghost' (there are: none)"),
    (["destinations", "delivery", "ghost"], "no destination named 'ghost' (there are: none)"),
    (["sql", "SELECT 1", "--warehouse", "ghost"], "no warehouse named 'ghost'"),
    (["warehouse", "reload", "ghost", "--since", "1h"], "no warehouse named 'ghost'"),
    (["models", "preview", "ghost"], "no model named 'ghost'"),
    (["syncs", "show", "ghost"], "no sync named 'ghost'"),
    (["syncs", "run", "ghost"], "no sync named 'ghost'"),
]


@pytest.mark.parametrize(("command", "message"), NOT_FOUND, ids=lambda v: str(v))
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_not_found_says_where_it_looked(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    command: list[str],
    message: str,
    backend: str,
) -> None:
    data_dir = tmp_path / "data"
    if backend == "postgres":
        url = request.getfixturevalue("pg_url")
        where = f"{describe(url)} (set --database or TRACKWAY_DATABASE_URL)"
        # in a process of its own: a command leaves closing its connections to the exit
        done = subprocess.run(
            [*TRACKWAY, *command, "--data-dir", str(data_dir), "--database", url],
            capture_output=True,
            text=True,
            timeout=60,
        )
        code, stderr = done.returncode, done.stderr
    else:
        where = f"{data_dir.resolve()} ({HINT})"
        assert invoke("sources", "create", "web", "--data-dir", str(data_dir)).exit_code == 0
        result = invoke(*command, "--data-dir", str(data_dir))
        code, stderr = result.exit_code, result.stderr
    assert code == 1
    [line] = stderr.splitlines()
    assert line.startswith(f"Error: {message}")
    assert line.endswith(f"; looked in {where}")
