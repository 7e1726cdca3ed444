"""Deleting sources, destinations, models and syncs (the `delete` commands, the admin
API's DELETE routes, `apply --prune`) on both storage backends, with a running server."""

import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.destinations.fake_server import FakeServer, Reply
from tests.support import TRACKWAY, Server, cli, start_server, until
from trackway import codec


@pytest.fixture(params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    extra = ("--database", request.getfixturevalue("pg_url")) if request.param == "postgres" else ()
    srv = start_server(tmp_path / "data", *extra)
    try:
        yield srv
    finally:
        srv.stop()


def run(server: Server, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TRACKWAY, *args, "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        input=stdin,
        env={**os.environ, **server.env},
        timeout=60,
    )


def admin(server: Server) -> httpx.Client:
    headers = {"authorization": f"Bearer {server.admin_token}"}
    return httpx.Client(base_url=server.url, headers=headers, timeout=10)


def status(server: Server, write_key: str, message_id: str) -> int:
    with httpx.Client(base_url=server.url, auth=(write_key, "")) as api:
        body = {"userId": "u", "event": "E", "messageId": message_id}
        return api.post("/v1/track", json=body).status_code


HOOK = """
destinations:
  - name: hook
    type: webhook
    sources: [{sources}]
    settings: {{url: "{url}"}}
    delivery: {{allow_private_addresses: true, retry_for: 1h}}
"""


def test_deleting_a_destination_keeps_its_dead_letters_until_purged(
    server: Server, tmp_path: Path
) -> None:
    with FakeServer() as sink:
        sink.reply(Reply(422, body=b"no"))
        file = tmp_path / "w.yaml"
        file.write_text(HOOK.format(sources="default", url=sink.url))
        cli("apply", str(file), data_dir=server.data_dir, env=server.env)
        assert status(server, server.write_key, "dl-1") == 200
        with admin(server) as api:
            letters = "/api/v1/destinations/hook/dead-letters"
            assert until(lambda: api.get(letters).json()["total"], 1) == 1

            kept = run(server, "destinations", "delete", "hook", stdin="n\n")
            assert kept.returncode == 1 and "Aborted" in kept.stderr
            assert api.get("/api/v1/destinations/hook").status_code == 200

            deleted = api.delete("/api/v1/destinations/hook")
            assert deleted.status_code == 200, deleted.text
            assert deleted.json()["message"] == (
                "deleted destination 'hook' (1 dead letter(s) kept until purged)"
            )
            assert api.get("/api/v1/destinations/hook").status_code == 404
            assert api.delete("/api/v1/destinations/hook").status_code == 404
            assert api.get("/api/v1/destinations").json() == []
            # still readable, by the admin API and the CLI
            assert api.get(letters).json()["dead_letters"][0]["event"]["messageId"] == "dl-1"
            out = codec.loads(
                cli(
                    "destinations",
                    "dead-letters",
                    "hook",
                    "--json",
                    data_dir=server.data_dir,
                    env=server.env,
                )
            )
            assert [d["event"]["messageId"] for d in out] == ["dl-1"]
            purged = cli(
                "destinations", "purge", "hook", "--yes", data_dir=server.data_dir, env=server.env
            )
            assert purged.strip() == "1 dead letter(s) of 'hook' deleted."
            assert api.get(letters).status_code == 404
            assert api.delete(letters).status_code == 404
        gone = run(server, "destinations", "dead-letters", "hook")
        assert gone.returncode == 1
        assert gone.stderr.startswith(
            "Error: no destination named 'hook' (there are: none); looked in "
        )


def test_deleting_a_source_revokes_its_keys_and_keeps_its_events(
    server: Server, tmp_path: Path
) -> None:
    key = codec.loads(
        cli("sources", "create", "flags", "--json", data_dir=server.data_dir, env=server.env)
    )["write_key"]
    assert status(server, key, "flag-1") == 200
    file = tmp_path / "w.yaml"
    file.write_text(HOOK.format(sources="flags", url="http://127.0.0.1:9/"))
    cli("apply", str(file), data_dir=server.data_dir, env=server.env)

    used = run(server, "sources", "delete", "flags", "--yes")
    assert used.returncode == 1
    assert used.stderr.strip() == (
        "Error: source 'flags' is used by destination 'hook': change or delete them first"
    )
    with admin(server) as api:
        refused = api.delete("/api/v1/sources/flags")
        assert refused.status_code == 409 and refused.json()["code"] == "in_use"
        cli("destinations", "delete", "hook", "--yes", data_dir=server.data_dir, env=server.env)
        deleted = api.delete("/api/v1/sources/flags")
        assert deleted.status_code == 200, deleted.text
        assert api.delete("/api/v1/sources/flags").status_code == 404
        assert [s["name"] for s in api.get("/api/v1/sources").json()] == ["default"]
    # the running server refuses the key within its refresh interval
    attempts = iter(range(1_000))
    assert until(lambda: status(server, key, f"late-{next(attempts)}"), 401) == 401
    assert status(server, key, "refused") == 401
    ids = [e["messageId"] for e in server.events()]
    assert ids[0] == "flag-1" and "refused" not in ids  # its events stay until retention
    assert status(server, server.write_key, "web-1") == 200


def test_models_syncs_and_apply_prune(server: Server, tmp_path: Path) -> None:
    db = tmp_path / "crm.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE users(id INTEGER PRIMARY KEY, plan TEXT)")
    full = tmp_path / "full.yaml"
    full.write_text(
        f"""
sources:
  - name: default
  - name: web
models:
  - name: users
    connection: {{type: sqlite, path: {db}}}
    query: SELECT id, plan FROM users
    primary_key: id
syncs:
  - name: plans
    model: users
    type: identify
    user_id: id
    mapping: {{plan: plan}}
"""
    )
    cli("apply", str(full), data_dir=server.data_dir, env=server.env)

    used = run(server, "models", "delete", "users", "--yes")
    assert used.returncode == 1
    assert used.stderr.strip() == (
        "Error: model 'users' is used by sync 'plans': delete or change them first"
    )
    with admin(server) as api:
        paths = api.get("/api/v1/openapi.json").json()["paths"]
        for path in ("sources", "destinations", "destinations/{name}/dead-letters", "models"):
            route = f"/api/v1/{path}" + ("" if path.endswith("letters") else "/{name}")
            assert set(paths[route]["delete"]["responses"]) >= {"200", "401", "404"}, route
        assert "409" in paths["/api/v1/syncs/{name}"]["delete"]["responses"]
        assert "get" in paths["/api/v1/destinations/{name}"]  # kept beside the delete
        assert api.delete("/api/v1/models/users").status_code == 409
        assert api.delete("/api/v1/models/nope").json()["code"] == "not_found"
        assert api.delete("/api/v1/syncs/plans").json()["message"] == "deleted sync 'plans'"
        out = cli("models", "delete", "users", "--yes", data_dir=server.data_dir, env=server.env)
        assert out.strip() == "deleted model 'users'."

    cli("apply", str(full), data_dir=server.data_dir, env=server.env)
    only_default = tmp_path / "default.yaml"
    only_default.write_text("sources:\n  - name: default\n")
    dry = cli(
        "apply", str(only_default), "--prune", "--dry-run", data_dir=server.data_dir, env=server.env
    )
    assert dry.splitlines() == [
        "would delete sync 'plans'",
        "would delete model 'users'",
        "would delete source 'web'",
    ]
    asked = run(server, "apply", str(only_default), "--prune", stdin="n\n")
    assert asked.returncode == 1 and "delete source 'web'" in asked.stdout
    assert "users" in cli("models", "list", data_dir=server.data_dir, env=server.env)

    keeps_user = tmp_path / "keeps.yaml"
    keeps_user.write_text(
        "sources:\n  - name: default\n" + HOOK.format(sources="web", url="http://127.0.0.1:9/")
    )
    refused = run(server, "apply", str(keeps_user), "--prune", "--yes")
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "Error: destination 'hook' uses source 'web', which the file does not declare:"
        " --prune would delete it"
    )

    pruned = cli(
        "apply", str(only_default), "--prune", "--yes", data_dir=server.data_dir, env=server.env
    )
    assert pruned.splitlines() == [
        "deleted sync 'plans'",
        "deleted model 'users'",
        "deleted source 'web' (its write keys no longer work; its events stay in the log)",
    ]
    assert cli(
        "apply", str(only_default), "--prune", data_dir=server.data_dir, env=server.env
    ).strip() == ("Nothing to change.")
