"""The first start of `trackway serve`: the admin token it shows once is shown only by a
start that then serves."""

import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support import TRACKWAY, Server, start_server

SHOWN = "Admin token (shown once, keep it): "


def test_a_start_on_a_port_in_use_fails_before_creating_the_admin_token(
    tmp_path: Path, server: Server
) -> None:
    port = httpx.URL(server.url).port
    data_dir = tmp_path / "fresh"
    done = subprocess.run(
        [*TRACKWAY, "serve", "--port", str(port), "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        # without TRACKWAY_ADMIN_TOKEN, the first start creates a token
        env={k: v for k, v in os.environ.items() if not k.startswith("TRACKWAY_")},
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"Error: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]
    assert "Admin token" not in done.stdout
    assert not data_dir.exists()  # nothing stored at all

    started = start_server(data_dir, env={"TRACKWAY_ADMIN_TOKEN": ""})
    try:
        [line] = [line for line in started.banner if line.startswith(SHOWN)]
        # shown once the server can serve: after it listens, right before "Ready."
        assert started.banner.index(line) == started.banner.index("Ready.") - 1
        token = line.removeprefix(SHOWN)
        with started.client() as c:
            r = c.get("/api/v1/sources", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
    finally:
        started.stop()


# A start-up step that fails once the port is bound: uvicorn logs it and exits with its
# start-up failure status (3), never 0, and nothing is said to be ready.
FAILING_START = """
import sys
from trackway.cli import main
from trackway.warehouse.loader import Loaders

def start(self):
    raise OSError("the loader cannot start")

Loaders.start = start
sys.argv = ["trackway", *sys.argv[1:]]
main()
"""


def test_a_start_that_fails_after_binding_exits_with_an_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", FAILING_START, "serve", "--port", "0", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TRACKWAY_ADMIN_TOKEN": "t" * 24},
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert "OSError: the loader cannot start" in done.stderr
    assert done.stderr.strip().endswith("Application startup failed. Exiting.")
    assert "Ready." not in done.stdout
    assert "Trackway stopped" not in done.stdout
