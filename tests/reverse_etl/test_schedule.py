"""Cron expressions, which syncs are due, and the worker thread that runs them."""

from datetime import UTC, datetime

import pytest

from tests.reverse_etl.conftest import Env, model, track
from tests.reverse_etl.engines import Engine
from tests.support import until
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
