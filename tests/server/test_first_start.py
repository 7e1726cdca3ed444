"""The first start of `trackway serve`: the admin token it shows once is shown only by a
start that then serves."""

import os
import subprocess
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
