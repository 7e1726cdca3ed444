"""The `trackway` command: sources, keys, apply, the debugger, help."""

import subprocess
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support import TRACKWAY, Server, cli, cli_on_terminal, until
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


def _second_source(server: Server) -> str:
    """Create the source `web` on the server; returns its write key once it takes events."""
    created = codec.loads(cli("sources", "create", "web", "--json", data_dir=server.data_dir))
    key: str = created["write_key"]
    with server.client() as c:
        probe = {"writeKey": key, "userId": "w", "event": "Probe"}
        assert until(lambda: c.post("/v1/track", json=probe).status_code, 200) == 200
    return key


def test_events_list_and_tail_without_source_show_every_source(server: Server) -> None:
    web = _second_source(server)
    tail = subprocess.Popen(
        [*TRACKWAY, "events", "tail", "--json", "--data-dir", str(server.data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        seen: set[tuple[str, str]] = set()
        done = threading.Event()

        def read() -> None:
            assert tail.stdout is not None
            for line in tail.stdout:
                record = codec.loads(line)
                seen.add((record["source"], record.get("event", "")))
                if {("default", "Tail D"), ("web", "Tail W")} <= seen:
                    done.set()

        threading.Thread(target=read, daemon=True).start()
        with server.client() as c:
            # tail follows from when it started: send until it has printed both.
            for _ in range(100):
                for key, event in ((server.write_key, "Tail D"), (web, "Tail W")):
                    c.post("/v1/track", json={"writeKey": key, "userId": "t", "event": event})
                if done.wait(0.2):
                    break
        assert done.is_set(), f"tail printed only {seen}"
    finally:
        tail.terminate()
        tail.wait(10)
        for stream in (tail.stdout, tail.stderr):
            if stream:
                stream.close()
    listed = cli("events", "list", "--limit", "1000", "--json", data_dir=server.data_dir)
    records = codec.loads(listed)
    assert {r["source"] for r in records} == {"default", "web"}
    text = cli("events", "list", "--limit", "1000", data_dir=server.data_dir)
    assert {line.split()[1] for line in text.splitlines()} == {"default", "web"}
    only = codec.loads(cli("events", "list", "--source", "web", "--json", data_dir=server.data_dir))
    assert only and {r["source"] for r in only} == {"web"}


def test_event_lines_show_properties_cut_to_the_terminal(server: Server) -> None:
    long = {"plan": "pro", "note": "n" * 300}
    with server.client() as c:
        c.post("/v1/track", json={"writeKey": server.write_key, "userId": "p", "event": "Wide",
                                  "properties": long})  # fmt: skip
        c.post("/v1/identify", json={"writeKey": server.write_key, "userId": "p",
                                     "traits": {"email": "p@example.com"}})  # fmt: skip
    piped = cli("events", "list", data_dir=server.data_dir).splitlines()
    assert piped[0].endswith('  {"email":"p@example.com"}')  # identify: its traits
    assert piped[1].endswith("  " + codec.dumps_text(long))  # whole when not on a terminal
    assert len(piped[0]) < 150 < len(piped[1])
    shown = cli_on_terminal("events", "list", data_dir=server.data_dir, columns=150)
    assert shown.splitlines() == [piped[0], piped[1][:149] + "…"]


def test_tables_use_the_full_width_when_not_on_a_terminal(server: Server) -> None:
    wide = "w" * 150
    with server.client() as c:
        c.post("/v1/track", json={"writeKey": server.write_key, "userId": "s", "event": "Wide Row",
                                  "properties": {"wide": wide}})  # fmt: skip
    query = "SELECT event_text, wide FROM wide_row"

    def loaded() -> bool:
        done = subprocess.run(
            [*TRACKWAY, "sql", query, "--data-dir", str(server.data_dir)],
            capture_output=True,
            text=True,
        )
        return done.returncode == 0 and "1 row" in done.stdout

    assert until(loaded, True, 30) is True
    piped = cli("sql", query, data_dir=server.data_dir)
    assert wide in piped and "--format" not in piped
    shown = cli_on_terminal("sql", query, data_dir=server.data_dir, columns=80)
    assert wide not in shown and all(len(line) <= 80 for line in shown.splitlines())
    assert shown.rstrip().endswith(
        "1 row (fitted to the terminal: --format csv or json shows every value whole)"
    )
