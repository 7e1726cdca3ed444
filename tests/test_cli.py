"""The `trackway` command: sources, keys, apply, the debugger, help."""

import subprocess
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support import TRACKWAY, Server, cli, until
from trackway import codec


def sources(data_dir: Path) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = codec.loads(cli("sources", "list", "--json", data_dir=data_dir))
    return result


def test_sources_create_and_list_json(tmp_path: Path) -> None:
    created = codec.loads(cli("sources", "create", "web", "--json", data_dir=tmp_path))
    assert set(created) == {"id", "name", "write_key"}
    assert created["name"] == "web"
    assert created["id"].startswith("src_")
    assert len(created["write_key"]) == 32
    [listed] = sources(tmp_path)
    assert listed["write_key"] == created["write_key"]
    assert listed["enabled"] is True


def test_sources_create_rejects_duplicates_and_bad_names(tmp_path: Path) -> None:
    cli("sources", "create", "web", data_dir=tmp_path)
    done = subprocess.run(
        [*TRACKWAY, "sources", "create", "web", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert "already exists" in done.stderr
    done = subprocess.run(
        [*TRACKWAY, "sources", "create", "no spaces", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert "invalid source name" in done.stderr


def test_rotated_key_keeps_working_during_the_grace_period(server: Server) -> None:
    old = server.write_key
    rotated = codec.loads(
        cli("sources", "rotate-key", "default", "--json", data_dir=server.data_dir)
    )
    new = rotated["write_key"]
    assert new != old and rotated["grace_seconds"] == 86400
    [row] = sources(server.data_dir)
    assert row["write_key"] == new
    assert row["previous_write_keys"][0]["write_key"] == old
    with server.client() as c:
        for key in (old, new):
            r = c.post("/v1/track", json={"writeKey": key, "userId": "u", "event": "E"})
            assert r.status_code == 200, r.text


def test_rotation_with_zero_grace_retires_the_old_key(server: Server) -> None:
    old = server.write_key
    cli("sources", "rotate-key", "default", "--grace", "0s", data_dir=server.data_dir)
    body = {"writeKey": old, "userId": "u", "event": "E"}
    with server.client() as c:
        assert until(lambda: c.post("/v1/track", json=body).status_code, 401) == 401


def test_events_list_and_tail(server: Server) -> None:
    tail = subprocess.Popen(
        [
            *TRACKWAY,
            "events",
            "tail",
            "--source",
            "default",
            "--json",
            "--data-dir",
            str(server.data_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines: list[str] = []
        got = threading.Event()

        def read() -> None:
            assert tail.stdout is not None
            for line in tail.stdout:
                lines.append(line)
                got.set()

        threading.Thread(target=read, daemon=True).start()
        m = str(uuid.uuid4())
        with server.client() as c:
            # tail starts following "from now"; keep sending until it has printed one.
            for _ in range(100):
                c.post(
                    "/v1/track",
                    json={
                        "writeKey": server.write_key,
                        "userId": "t",
                        "event": "Tailed",
                        "messageId": m,
                    },
                )
                if got.wait(0.2):
                    break
        assert got.is_set(), "tail printed nothing"
        first = codec.loads(lines[0])
        assert first["messageId"] == m and first["status"] in ("accepted", "duplicate")
    finally:
        tail.terminate()
        tail.wait(10)
        for stream in (tail.stdout, tail.stderr):
            if stream:
                stream.close()
    records = server.records()
    assert records[-1]["messageId"] == m and records[-1]["status"] == "accepted"
    text = cli("events", "list", "--source", "default", data_dir=server.data_dir)
    assert "Tailed" in text and m in text


def test_events_list_shows_status_of_each(server: Server) -> None:
    with server.client() as c:
        c.post(
            "/v1/batch",
            json={
                "writeKey": server.write_key,
                "batch": [
                    {"type": "track", "userId": "u", "event": "Good", "messageId": "m-1"},
                    {"type": "track", "userId": "u"},
                    {"type": "track", "userId": "u", "event": "Good", "messageId": "m-1"},
                ],
            },
        )
    records = server.records()
    assert sorted(r["status"] for r in records) == ["accepted", "duplicate", "rejected"]
    only = codec.loads(
        cli(
            "events",
            "list",
            "--source",
            "default",
            "--status",
            "rejected",
            "--json",
            data_dir=server.data_dir,
        )
    )
    assert [r["status"] for r in only] == ["rejected"]
    assert only[0]["error"]["code"] == "missing_field"


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["serve"],
        ["sources"],
        ["sources", "create"],
        ["sources", "list"],
        ["sources", "rotate-key"],
        ["sources", "disable"],
        ["sources", "enable"],
        ["sources", "configure"],
        ["apply"],
        ["events"],
        ["events", "list"],
        ["events", "tail"],
        ["admin-token"],
        ["send"],
        ["check"],
        ["sql"],
        ["warehouse"],
        ["warehouse", "status"],
        ["warehouse", "reload"],
        ["models"],
        ["models", "list"],
        ["models", "preview"],
        ["syncs"],
        ["syncs", "list"],
        ["syncs", "show"],
        ["syncs", "run"],
        ["syncs", "runs"],
        ["syncs", "reset"],
    ],
)
def test_every_command_has_help(command: list[str]) -> None:
    done = subprocess.run([*TRACKWAY, *command, "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    assert "Usage: " in done.stdout
    doc = done.stdout.split("\n\n", 2)[1].strip()
    assert len(doc) > 10, f"no description for {command}"


def test_admin_token_command_creates_a_working_token(server: Server) -> None:
    token = cli("admin-token", data_dir=server.data_dir).strip()
    with server.client() as c:
        r = c.get("/api/v1/sources", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200


def test_every_option_is_documented() -> None:
    import click

    from trackway.cli import main

    docs = (Path(__file__).parent.parent / "docs" / "cli.md").read_text()

    def walk(cmd: click.Command, path: list[str]) -> list[tuple[str, click.Command]]:
        if isinstance(cmd, click.Group):
            return [x for name, sub in cmd.commands.items() for x in walk(sub, [*path, name])]
        return [(" ".join(path), cmd)]

    for name, command in walk(main, []):
        assert f"`{name.split()[0]}" in docs or f"trackway {name}" in docs, name
        for param in command.params:
            for opt in param.opts:
                if opt.startswith("--"):
                    assert f"`{opt}" in docs or f"{opt} " in docs, f"{name} {opt}"
