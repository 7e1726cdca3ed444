"""`trackway models ...` and `trackway syncs ...` (invoked in-process with click's runner)."""

from typing import Any

import click
from click.testing import CliRunner, Result

from tests.reverse_etl.conftest import Env, model, track
from tests.reverse_etl.engines import Engine
from tests.reverse_etl.fake_segment import fake_segment
from trackway import __version__, codec
from trackway.reverse_etl.commands import models, syncs
from trackway.reverse_etl.config import Schedule, Target


def invoke(env: Env, group: click.Group, *args: str, input: str | None = None) -> Result:
    extra = env.storage_args
    if args[0] == "run":
        extra += ["--data-plane", env.server.url]
    return CliRunner().invoke(group, [*args, *extra], input=input)


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return codec.loads(result.stdout)


def test_models_list_and_preview(env: Env, duck: Engine) -> None:
    env.users(duck, (1, "free", "a"), (2, "pro", "b"))
    env.apply([model(duck, "users", "SELECT * FROM users -- every user")], [])
    listed = invoke(env, models, "list")
    assert listed.output.split()[:4] == ["users", "duckdb", "key", "id"]
    preview = as_json(invoke(env, models, "preview", "users", "--limit", "1", "--json"))
    assert preview["columns"] == ["id", "uid", "anon", "plan", "note", "seen"]
    assert preview["rows"] == [
        {"id": 1, "uid": f"{env.tag}-1", "anon": None, "plan": "free", "note": "a", "seen": None}
    ]
    table = invoke(env, models, "preview", "users")
    assert table.exit_code == 0
    assert "id (key)" in table.output and f"{env.tag}-2" in table.output
    assert "Columns: id, uid, anon, plan, note, seen" in table.output
    missing = invoke(env, models, "preview", "nope")
    assert missing.exit_code == 1
    assert "no model named 'nope'" in missing.output


def test_syncs_run_runs_show_and_list(env: Env, duck: Engine) -> None:
    env.users(duck, (1, "free", ""))
    schedule = Schedule(cron="*/5 * * * *")
    env.apply([model(duck, "users")], [track("cli", "users", schedule=schedule)])
    ran = invoke(env, syncs, "run", "cli")
    assert ran.exit_code == 0, ran.output
    assert ran.output.startswith("run 1 (manual) succeeded ")
    assert "added 1, changed 0, removed 0; sent 1, failed 0, rejected 0" in ran.output
    again = as_json(invoke(env, syncs, "run", "cli", "--full-resync", "--json"))
    assert (again["id"], again["full_resync"], again["sent"], again["status"]) == (
        2,
        True,
        1,
        "succeeded",
    )
    history = as_json(invoke(env, syncs, "runs", "cli", "--json"))
    assert [r["id"] for r in history] == [2, 1]
    assert set(history[0]) == {
        "id", "sync", "trigger", "full_resync", "status", "started_at", "ended_at",
        "added", "changed", "removed", "sent", "failed", "rejected", "error",
    }  # fmt: skip
    assert invoke(env, syncs, "runs", "cli").output.startswith("run 2 (manual, full resync)")
    shown = as_json(invoke(env, syncs, "show", "cli", "--json"))
    assert shown["snapshot_rows"] == 1 and shown["last_run"]["id"] == 2
    assert shown["next_run"].endswith(("0:00Z", "5:00Z"))
    text = invoke(env, syncs, "show", "cli").output
    assert "Schedule: cron */5 * * * * (UTC), next run " in text
    [listed] = as_json(invoke(env, syncs, "list", "--json"))
    assert (listed["name"], listed["last_run"]["status"]) == ("cli", "succeeded")


def test_syncs_run_exit_status_says_how_it_went(env: Env, duck: Engine) -> None:
    env.users(duck, (1, "free", ""), (1, "pro", ""))
    env.apply([model(duck, "users")], [track("exits", "users")])
    failed = invoke(env, syncs, "run", "exits")
    assert failed.exit_code == 1
    assert "run 1 of sync 'exits' failed: model 'users': 1 primary key value(s)" in failed.output
    duck.execute("DELETE FROM users WHERE plan = 'pro'", "INSERT INTO users(id) VALUES (2)")
    partial = invoke(env, syncs, "run", "exits")
    assert partial.exit_code == 3, partial.output
    assert "Some rows were not delivered: trackway syncs show exits" in partial.output
    shown = invoke(env, syncs, "show", "exits").output
    assert "rejected added row 2: no userId (column 'uid')" in shown
    unknown = invoke(env, syncs, "run", "ghost")
    assert unknown.exit_code == 1 and "no sync named 'ghost'" in unknown.output


def test_syncs_reset_asks_first(env: Env, duck: Engine) -> None:
    env.users(duck, (1, "free", ""), (2, "free", ""))
    env.apply([model(duck, "users")], [track("again", "users")])
    invoke(env, syncs, "run", "again")
    no = invoke(env, syncs, "reset", "again", input="n\n")
    assert no.exit_code == 1 and "Forget the 2 row(s) sync 'again' has sent?" in no.output
    assert env.syncs.snapshot_size("again") == 2
    yes = invoke(env, syncs, "reset", "again", input="y\n")
    assert yes.exit_code == 0 and "Sync 'again' is reset (2 row(s) forgotten)." in yes.output
    assert invoke(env, syncs, "reset", "again", "--yes").exit_code == 0
    assert as_json(invoke(env, syncs, "run", "again", "--json"))["sent"] == 2


def test_runs_are_numbered_per_sync(env: Env, duck: Engine) -> None:
    env.users(duck, (1, "free", ""))
    env.apply([model(duck, "users")], [track("one", "users"), track("two", "users")])
    for name in ("one", "two", "one", "two", "one"):
        assert invoke(env, syncs, "run", name).exit_code == 0
    assert [r["id"] for r in as_json(invoke(env, syncs, "runs", "one", "--json"))] == [3, 2, 1]
    assert [r["id"] for r in as_json(invoke(env, syncs, "runs", "two", "--json"))] == [2, 1]
    assert invoke(env, syncs, "runs", "two").output.startswith("run 2 (manual) succeeded ")
    last = {r["name"]: r["last_run"]["id"] for r in as_json(invoke(env, syncs, "list", "--json"))}
    assert last == {"one": 3, "two": 2}
    assert "Last run: run 3 (manual)" in invoke(env, syncs, "show", "one").output


def test_syncs_run_names_trackway_as_the_user_agent(env: Env, duck: Engine) -> None:
    env.users(duck, (1, "free", ""))
    with fake_segment() as segment:
        target = Target("segment", write_key="wk-ua", data_plane=segment.url)
        env.apply([model(duck, "users")], [track("ua", "users", target=target)])
        ran = invoke(env, syncs, "run", "ua")
        assert ran.exit_code == 0, ran.output
        [request] = segment.requests
    assert request.headers["user-agent"] == f"Trackway/{__version__}"
