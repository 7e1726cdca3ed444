"""Every change of a flag environment (apply, apply --prune, flags import) becomes one
"Feature Flag Changed" event per changed environment, in the shape of the ConfigCat
webhook source's events, queued in the state store with the change and appended by the
running server to the `flags` source (or the one the environment names), then loaded
into the warehouse like any event. On both state backends."""

import getpass
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import Server, cli, start_server, until
from tests.warehouse.conftest import new_pg_database
from trackway.flags.changes import QUEUE_KIND
from trackway.flags.environments import KIND
from trackway.storage.base import StateStore
from trackway.storage.postgres.state import PostgresStateStore
from trackway.storage.sqlite.state import SQLiteStateStore

ADA = "Ada Lovelace (ada@example.com)"


def sdk_key(name: str) -> str:
    return f"configcat-sdk-1/TrackwayChangeTest0000/{name:0<22}"


def environment(name: str, settings: str, extra: str = "") -> str:
    return (
        f"  - environment: {name}\n    sdk_key: {sdk_key(name)}\n{extra}    settings:\n{settings}"
    )


def write(tmp_path: Path, *environments: str, head: str = "") -> Path:
    path = tmp_path / "workspace.yaml"
    path.write_text(head + "flags:\n" + "".join(environments))
    return path


def run(server: Server, *args: str) -> str:
    """A `trackway` command on the server's storage (a subprocess: the in-process CLI
    leaves PostgreSQL connections open)."""
    return cli(*args, data_dir=server.data_dir, env=server.env)


def changed(server: Server, source: str, env: str | None = None) -> list[dict[str, Any]]:
    """The Feature Flag Changed events of `source` (of environment `env`), oldest first."""
    args = [
        "events",
        "list",
        "--source",
        source,
        "--status",
        "accepted",
        "--limit",
        "500",
        "--json",
    ]
    out = cli(*args, data_dir=server.data_dir, env=server.env, check=False)
    if not out:  # the source is not there yet
        return []
    events: list[dict[str, Any]] = json.loads(out)
    return [
        e
        for e in reversed(events)
        if e.get("event") == "Feature Flag Changed"
        and env in (None, e["properties"]["environment_name"])
    ]


def served(server: Server, env: str) -> dict[str, Any]:
    """The settings of `env` as its config_v6 serves them."""
    flags: dict[str, Any] = json.loads(run(server, "flags", "export", "--sdk-key", env))["f"]
    return flags


def loaded(server: Server, query: str) -> Any:
    """The rows of a `trackway sql` query on the DuckDB warehouse (None while it fails)."""
    out = cli(
        "sql", query, "--format", "json", data_dir=server.data_dir, env=server.env, check=False
    )
    return json.loads(out) if out else None


def wait_changed(server: Server, source: str, env: str, count: int) -> list[dict[str, Any]]:
    got = until(lambda: len(changed(server, source, env)), count)
    assert got == count
    return changed(server, source, env)


DARK = "      dark: {type: bool, value: false}\n"
DARK_ON = "      dark: {type: bool, value: true}\n"
BANNER = "      banner: {type: string, value: plain, variation_id: v-plain}\n"


def test_apply_queues_one_event_per_change_in_the_webhook_shape(
    flag_server: Server, tmp_path: Path
) -> None:
    file = write(
        tmp_path,
        environment("shape", DARK),
        head="warehouses:\n  - name: default\n    interval_s: 0.2\n",
    )
    run(flag_server, "apply", str(file), "--actor", ADA)
    [created] = wait_changed(flag_server, "flags", "shape", 1)
    served_dark = served(flag_server, "shape")["dark"]
    assert served_dark["v"] == {"b": False}
    assert created["userId"] == "ada@example.com"
    assert created["context"]["integration"] == {"name": "trackway-flags"}
    props = created["properties"]
    assert props["changes"] == [
        {
            "setting_key": "dark",
            "event": "created",
            "details": "dark: created (bool, false)",
            "before": None,
            "after": served_dark,
        }
    ]
    assert props["details"] == "dark: created (bool, false)"
    assert props["environment_id"] == props["environment_name"] == "shape"
    assert props["url"] == file.resolve().as_uri()
    assert props["user_email"] == "ada@example.com"
    assert props["user_full_name"] == "Ada Lovelace"
    assert props["change_notes"] == "trackway apply workspace.yaml: environment created"
    assert created["timestamp"] == props["timestamp"]
    [flags] = [
        s for s in json.loads(run(flag_server, "sources", "list", "--json")) if s["name"] == "flags"
    ]
    assert flags["type"] == "configcat"

    # A value change and a new setting: one event for the environment, both changes in it.
    write(tmp_path, environment("shape", DARK_ON + BANNER))
    run(flag_server, "apply", str(file), "--actor", ADA)
    _, updated = wait_changed(flag_server, "flags", "shape", 2)
    assert [
        (c["setting_key"], c["event"], c["details"]) for c in updated["properties"]["changes"]
    ] == [
        ("dark", "changed", "dark: false ➔ true"),
        ("banner", "created", "banner: created (string, plain)"),
    ]
    dark = updated["properties"]["changes"][0]
    assert (dark["before"], dark["after"]) == (served_dark, served(flag_server, "shape")["dark"])
    assert updated["properties"]["details"] == "dark: false ➔ true; banner: created (string, plain)"

    # The same file again changes nothing: no event.
    run(flag_server, "apply", str(file), "--actor", ADA)
    query = (
        "SELECT environment_name, details, user_email FROM flags.feature_flag_changed"
        " WHERE environment_name = 'shape' ORDER BY timestamp, details"
    )
    want = [
        {"environment_name": "shape", "details": d, "user_email": "ada@example.com"}
        for d in (
            "dark: created (bool, false)",
            "dark: false ➔ true; banner: created (string, plain)",
        )
    ]
    assert until(lambda: loaded(flag_server, query), want, seconds=20) == want
    assert len(changed(flag_server, "flags", "shape")) == 2


def test_each_changed_environment_sends_to_its_source(flag_server: Server, tmp_path: Path) -> None:
    audit = "    changed_events: {source: audit}\n"
    file = write(tmp_path, environment("one", DARK, audit), environment("two", DARK))
    run(flag_server, "apply", str(file))
    wait_changed(flag_server, "audit", "one", 1)
    [two] = wait_changed(flag_server, "flags", "two", 1)
    assert two["userId"] == getpass.getuser()  # the OS user without --actor
    assert changed(flag_server, "flags", "one") == []

    write(tmp_path, environment("one", DARK, audit), environment("two", DARK_ON))
    run(flag_server, "apply", str(file))
    wait_changed(flag_server, "flags", "two", 2)
    assert len(changed(flag_server, "audit", "one")) == 1  # "one" did not change


def test_import_sends_an_event_and_an_identical_import_none(
    flag_server: Server, tmp_path: Path
) -> None:
    config = {"p": {"s": "salt"}, "f": {"color": {"t": 1, "v": {"s": "red"}, "i": "v-red"}}}
    path = tmp_path / "imported.json"
    path.write_text(json.dumps(config))
    args = ("flags", "import", str(path), "--sdk-key", sdk_key("imported"), "--actor", ADA)
    run(flag_server, *args)
    [event] = wait_changed(flag_server, "flags", "imported", 1)
    assert event["properties"]["changes"][0]["after"] == config["f"]["color"]
    assert event["properties"]["change_notes"] == (
        "trackway flags import imported.json: environment created"
    )
    config["f"]["color"]["v"] = {"s": "blue"}
    path.write_text(json.dumps(config))
    run(flag_server, *args)
    run(flag_server, *args)
    _, event = wait_changed(flag_server, "flags", "imported", 2)
    assert event["properties"]["details"] == "color: red ➔ blue"
    assert len(changed(flag_server, "flags", "imported")) == 2


@pytest.fixture(params=["sqlite", "postgres"])
def stopped(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, list[str]]]:
    """A data directory (and, for postgres, the `--database` arguments) with no server."""
    if request.param == "sqlite":
        yield tmp_path / "data", []
        return
    with new_pg_database() as url:
        yield tmp_path / "data", ["--database", url]


def open_store(data_dir: Path, extra: list[str]) -> StateStore:
    if extra:
        return PostgresStateStore(extra[1])
    return SQLiteStateStore(data_dir / "state.db")


def test_queued_with_the_change_ingested_once_then_pruned(
    stopped: tuple[Path, list[str]], tmp_path: Path
) -> None:
    data_dir, extra = stopped
    head = "sources:\n  - name: default\n"
    file = write(tmp_path, environment("queued", DARK), head=head)
    # First start creates the storage; then the change is made while no server runs.
    start_server(data_dir, *extra).stop()
    cli("apply", str(file), "--actor", ADA, *extra, data_dir=data_dir)
    store = open_store(data_dir, extra)
    try:
        [queued] = store.objects(QUEUE_KIND).values()
        assert "queued" in store.objects(KIND)
        assert queued["source"] == "flags" and queued["body"]["changedBy"] == ADA
    finally:
        store.close()

    server = start_server(data_dir, *extra)
    try:
        wait_changed(server, "flags", "queued", 1)
        store = open_store(data_dir, extra)
        try:
            assert until(lambda: store.objects(QUEUE_KIND), {}) == {}
            # As if the server stopped between the append and the removal from the queue:
            # queued again, it is stored once (its messageId comes from the queued id).
            store.put_object(QUEUE_KIND, "0-again", queued)
            assert until(lambda: store.objects(QUEUE_KIND), {}) == {}
        finally:
            store.close()
        assert len(changed(server, "flags", "queued")) == 1
        duplicates = cli("events", "list", "--source", "flags", "--status", "duplicate",
                         "--json", data_dir=data_dir, env=server.env)  # fmt: skip
        assert len(json.loads(duplicates)) == 1

        # --prune deletes the undeclared environment, with its event.
        before = served(server, "queued")["dark"]
        pruned = tmp_path / "pruned.yaml"
        pruned.write_text(head + "  - name: flags\n    type: configcat\n")
        out = run(server, "apply", str(pruned), "--prune", "--yes", "--actor", ADA)
        assert "deleted flag environment 'queued'" in out
        _, deleted = wait_changed(server, "flags", "queued", 2)
        assert deleted["properties"]["changes"] == [
            {
                "setting_key": "dark",
                "event": "deleted",
                "details": "dark: deleted (was false)",
                "before": before,
                "after": None,
            }
        ]
        assert deleted["properties"]["change_notes"] == (
            "trackway apply pruned.yaml: environment deleted"
        )
        with server.client() as http:
            url = f"/configuration-files/{sdk_key('queued')}/config_v6.json"
            assert until(lambda: http.get(url).status_code, 404) == 404
    finally:
        server.stop()
