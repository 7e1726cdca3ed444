"""Cron expressions, which syncs are due, and the worker thread that runs them."""

import contextlib
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.reverse_etl.conftest import Env, model, track
from tests.reverse_etl.engines import Engine
from tests.support import cli, start_server, until
from trackway.reverse_etl.config import Schedule
from trackway.reverse_etl.cron import parse_cron
from trackway.reverse_etl.schedule import Scheduler, SchedulerThread, next_run


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("cron", "after", "expected"),
    [
        ("*/15 * * * *", "2026-01-01 10:07:30", "2026-01-01 10:15"),
        ("0 * * * *", "2026-01-01 10:00:00", "2026-01-01 11:00"),
        ("30 2 * * *", "2026-01-01 03:00", "2026-01-02 02:30"),
        ("0 9 * * mon-fri", "2026-01-02 10:00", "2026-01-05 09:00"),  # Fri -> Mon
        ("0 0 1 jan,jul *", "2026-02-01 00:00", "2026-07-01 00:00"),
        ("0 0 29 2 *", "2026-03-01 00:00", "2028-02-29 00:00"),
        ("0 12 13 * 5", "2026-01-01 00:00", "2026-01-02 12:00"),  # the 13th OR a Friday
        ("0 0 * * 7", "2026-01-01 00:00", "2026-01-04 00:00"),  # 7 is Sunday too
        ("@hourly", "2026-01-01 10:59", "2026-01-01 11:00"),
        ("5-10/5 1 * * *", "2026-01-01 01:05", "2026-01-01 01:10"),
    ],
)
def test_cron_next_firing(cron: str, after: str, expected: str) -> None:
    assert parse_cron(cron).next_after(at(after)) == at(expected)


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("* * * *", "must have 5 fields"),
        ("60 * * * *", "the minute field '60' is outside 0-59"),
        ("* * * foo *", "cannot read the month field 'foo'"),
        ("*/0 * * * *", "outside 0-59"),
        ("0 0 31 2 *", "never fires"),
    ],
)
def test_bad_cron_expressions_are_refused(cron: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_cron(cron)


def test_due_syncs_follow_their_interval_or_cron(env: Env, duck: Engine) -> None:
    env.users(duck, (1, "free", ""))
    env.apply(
        [model(duck, "users")],
        [
            track("every", "users", schedule=Schedule(interval="10m")),
            track("hourly", "users", schedule=Schedule(cron="0 * * * *")),
            track("manual", "users"),
        ],
    )
    started = at("2026-01-01 10:30").timestamp()
    scheduler = Scheduler(env.store, env.syncs, started)
    # Never run: an interval sync is due at once, a cron sync at its next firing.
    assert scheduler.due(started) == ["every"]
    assert scheduler.due(at("2026-01-01 11:00").timestamp()) == ["every", "hourly"]
    run = env.run("every")
    ran_at = datetime.fromisoformat(run.started_at).timestamp()
    assert "every" not in scheduler.due(ran_at + 599)
    assert "every" in scheduler.due(ran_at + 600)
    assert next_run(track("x", "users", schedule=Schedule(interval="10m")), run, 0) == (
        datetime.fromtimestamp(ran_at + 600, UTC).isoformat().replace("+00:00", "Z")
    )
    assert next_run(track("x", "users"), run, 0) is None


def test_the_worker_runs_due_syncs_and_stops(env: Env, duck: Engine) -> None:
    env.users(duck, (1, "free", ""))
    env.apply([model(duck, "users")], [track("auto", "users", schedule=Schedule(interval="1h"))])
    worker = SchedulerThread(env.data_dir, env.store, env.server.url, poll_s=0.05)
    worker.start()
    try:
        runs = until(lambda: [(r.trigger, r.status) for r in env.syncs.runs("auto", 5)],
                     [("schedule", "succeeded")])  # fmt: skip
        assert runs == [("schedule", "succeeded")]
    finally:
        worker.stop()
    assert not worker.is_alive()
    assert [e["userId"] for e in env.events()] == [f"{env.tag}-1"]


def test_the_servers_scheduled_runs_are_on_metrics(tmp_path: Path) -> None:
    crm = tmp_path / "crm.sqlite"
    with contextlib.closing(sqlite3.connect(crm)) as db, db:
        db.execute("CREATE TABLE users(id INTEGER, uid TEXT, plan TEXT)")
        db.execute("INSERT INTO users VALUES (1, 'm-1', 'free'), (2, 'm-2', 'pro')")
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        "models:\n"
        "  - {name: users, connection: {type: sqlite, path: crm.sqlite},"
        " query: SELECT * FROM users, primary_key: id}\n"
        "syncs:\n"
        "  - name: metered\n"
        "    model: users\n"
        "    type: track\n"
        "    events: {added: Added, changed: Changed, removed: Removed}\n"
        "    user_id: uid\n"
        "    mapping: {plan: plan}\n"
        "    send_initial: true\n"
        "    schedule: {interval: 1s}\n"
    )
    server = start_server(tmp_path / "data")
    try:
        cli("apply", str(workspace), data_dir=server.data_dir)
        with server.client() as http:

            def series() -> dict[str, float]:
                return {
                    line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
                    for line in http.get("/metrics").text.splitlines()
                    if line.startswith("trackway_reverse_etl_") and 'sync="metered"' in line
                }

            added = 'trackway_reverse_etl_rows_total{kind="added",sync="metered"}'
            assert until(lambda: series().get(added), 2.0) == 2.0
            with contextlib.closing(sqlite3.connect(crm)) as db, db:
                db.execute("UPDATE users SET plan = 'team' WHERE id = 1")
                db.execute("DELETE FROM users WHERE id = 2")
            changed = 'trackway_reverse_etl_rows_total{kind="changed",sync="metered"}'
            assert until(lambda: series().get(changed), 1.0) == 1.0
            got = series()
    finally:
        server.stop()
    assert got['trackway_reverse_etl_rows_total{kind="removed",sync="metered"}'] == 1.0
    assert got[added] == 2.0
    succeeded = got['trackway_reverse_etl_runs_total{status="succeeded",sync="metered"}']
    assert succeeded >= 2  # the runs since, with no change, count too
    assert set(got) == {
        added,
        changed,
        'trackway_reverse_etl_rows_total{kind="removed",sync="metered"}',
        'trackway_reverse_etl_runs_total{status="succeeded",sync="metered"}',
        'trackway_reverse_etl_last_run_timestamp_seconds{sync="metered"}',
    }
    last = got['trackway_reverse_etl_last_run_timestamp_seconds{sync="metered"}']
    assert time.time() - 60 < last <= time.time()
