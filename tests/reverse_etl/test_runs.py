"""Runs of syncs from real DuckDB, SQLite and PostgreSQL models into a real Trackway."""

import pytest

from tests.reverse_etl.conftest import Env, model, track
from tests.reverse_etl.engines import Engine
from trackway.reverse_etl.config import EventNames, SyncSpec, Target
from trackway.reverse_etl.errors import ModelError
from trackway.reverse_etl.state.sqlite import SQLiteSyncStore


def test_track_sync_sends_added_changed_and_removed_rows(env: Env, engine: Engine) -> None:
    env.users(engine, (1, "free", "a"), (2, "free", "b"), (3, "pro", "c"))
    env.apply([model(engine, "users")], [track("plans", "users")])

    first = env.run("plans")
    assert (first.status, first.counts.added, first.counts.sent) == ("succeeded", 3, 3)
    added = env.events()
    assert sorted((e["event"], e["userId"], e["properties"]["plan"]) for e in added) == [
        ("User Added", f"{env.tag}-1", "free"),
        ("User Added", f"{env.tag}-2", "free"),
        ("User Added", f"{env.tag}-3", "pro"),
    ]
    assert all(e["context"]["library"]["name"] == "trackway-reverse-etl" for e in added)

    env.insert(engine, (4, "pro", "d"))
    engine.execute(
        "UPDATE users SET plan = 'pro' WHERE id = 1",
        "UPDATE users SET note = 'only an unmapped column' WHERE id = 2",
        "DELETE FROM users WHERE id = 3",
    )
    second = env.run("plans")
    counts = second.counts
    assert (counts.added, counts.changed, counts.removed, counts.sent) == (1, 1, 1, 3)
    new = env.events()[3:]
    assert sorted((e["event"], e["userId"], e["properties"]["plan"]) for e in new) == [
        ("Plan Changed", f"{env.tag}-1", "pro"),
        ("User Added", f"{env.tag}-4", "pro"),
        # A removed row is sent with what was last sent for it.
        ("User Removed", f"{env.tag}-3", "pro"),
    ]

    third = env.run("plans")
    assert (third.status, third.counts.sent) == ("succeeded", 0)
    assert len(env.events()) == 6
    assert env.syncs.snapshot_size("plans") == 3


def test_first_run_only_records_without_send_initial(env: Env, duck: Engine) -> None:
    env.users(duck, (1, "free", ""), (2, "free", ""))
    env.apply([model(duck, "users")], [track("quiet", "users", send_initial=False)])

    first = env.run("quiet")
    assert (first.status, first.counts.added, first.counts.sent) == ("succeeded", 2, 0)
    assert env.events() == []

    duck.execute("UPDATE users SET plan = 'pro' WHERE id = 2")
    second = env.run("quiet")
    assert (second.counts.changed, second.counts.sent) == (1, 1)
    [event] = env.events()
    assert (event["event"], event["userId"]) == ("Plan Changed", f"{env.tag}-2")


def test_kinds_without_an_event_name_are_recorded_not_sent(env: Env, duck: Engine) -> None:
    env.users(duck, (1, "free", ""))
    only_removed = track("leavers", "users", events=EventNames(removed="User Left"))
    env.apply([model(duck, "users")], [only_removed])
    assert env.run("leavers").counts.sent == 0
    duck.execute("UPDATE users SET plan = 'pro'", "INSERT INTO users(id) VALUES (2)")
    run = env.run("leavers")
    assert (run.counts.added, run.counts.changed, run.counts.sent) == (1, 1, 0)
    duck.execute("DELETE FROM users WHERE id = 1")
    assert env.run("leavers").counts.sent == 1
    [event] = env.events()
    assert (event["event"], event["properties"]) == ("User Left", {"plan": "pro"})


def test_segment_entered_and_exited(env: Env, duck: Engine) -> None:
    env.users(duck, (1, "pro", ""), (2, "pro", ""))
    default = SyncSpec("vip", "users", "segment", {"plan": "plan"}, "uid", send_initial=True)
    renamed = SyncSpec(
        "vip2",
        "users",
        "segment",
        user_id="uid",
        events=EventNames(entered="Became VIP", exited="Left VIP"),
    )
    env.apply([model(duck, "users")], [default, renamed])
    env.run("vip")
    env.run("vip2")  # send_initial is off: only recorded
    duck.execute("DELETE FROM users WHERE id = 1", "UPDATE users SET plan = 'x' WHERE id = 2")
    env.insert(duck, (3, "pro", ""))
    env.run("vip")
    env.run("vip2")
    got = sorted((e["event"], e["userId"]) for e in env.events())
    assert got == [
        ("Became VIP", f"{env.tag}-3"),
        ("Left VIP", f"{env.tag}-1"),
        ("Segment Entered", f"{env.tag}-1"),
        ("Segment Entered", f"{env.tag}-2"),
        ("Segment Entered", f"{env.tag}-3"),
        ("Segment Exited", f"{env.tag}-1"),
    ]


def test_identify_sends_traits_and_always_the_initial_set(env: Env, engine: Engine) -> None:
    env.users(engine, (1, "free", "n1"), (2, "pro", "n2"))
    sync = SyncSpec("traits", "users", "identify", {"plan": "plan", "note": "notes"}, "uid", "anon")
    env.apply([model(engine, "users")], [sync])
    assert env.run("traits").counts.sent == 2
    engine.execute("UPDATE users SET note = 'n3' WHERE id = 1", "DELETE FROM users WHERE id = 2")
    run = env.run("traits")
    assert (run.counts.changed, run.counts.removed, run.counts.sent) == (1, 1, 1)
    events = env.events()
    assert [e["type"] for e in events] == ["identify"] * 3
    assert events[-1]["traits"] == {"plan": "free", "notes": "n3"}
    assert "anonymousId" not in events[-1]  # the anon column is null


def test_timestamp_column_backfills_and_bad_values_are_rejected(env: Env, engine: Engine) -> None:
    env.users(engine)
    engine.execute(
        f"INSERT INTO users(id, uid, plan, seen) VALUES (1, '{env.tag}-1', 'a',"
        " '2021-03-04 05:06:07')",
        f"INSERT INTO users(id, uid, plan, seen) VALUES (2, '{env.tag}-2', 'b', NULL)",
    )
    if engine.name == "sqlite":  # text columns: offsets are honoured, garbage is refused
        engine.execute(
            f"INSERT INTO users(id, uid, plan, seen) VALUES (3, '{env.tag}-3', 'c',"
            " '2021-03-04T07:06:07+02:00')",
            f"INSERT INTO users(id, uid, plan, seen) VALUES (4, '{env.tag}-4', 'd', 'soon')",
        )
    env.apply([model(engine, "users")], [track("history", "users", timestamp="seen")])
    run = env.run("history")
    assert run.status == "partial"
    bad = 2 if engine.name == "sqlite" else 1
    assert (run.counts.sent, run.counts.rejected) == (run.counts.added - bad, bad)
    for event in env.events():
        assert event["originalTimestamp"] == "2021-03-04T05:06:07Z"
    errors = {e.pk: e.error for e in env.syncs.row_errors(run.sync, run.id)}
    assert errors[2] == "timestamp column 'seen' holds None, not a timestamp (a timestamp" + (
        " type or an ISO 8601 string)"
    )
    if engine.name == "sqlite":
        assert "holds 'soon'" in errors[4]

    engine.execute("UPDATE users SET seen = '2022-01-01 00:00:00' WHERE id = 2")
    again = env.run("history")
    assert (again.counts.added, again.counts.sent) == (bad, 1)  # rejected rows are retried


def test_a_row_without_any_id_is_rejected_with_the_reason(env: Env, duck: Engine) -> None:
    env.users(duck, (1, "free", ""))
    duck.execute("INSERT INTO users(id, plan) VALUES (2, 'free')")
    env.apply([model(duck, "users")], [track("ids", "users", anonymous_id="anon")])
    run = env.run("ids")
    assert (run.status, run.counts.sent, run.counts.rejected) == ("partial", 1, 1)
    [error] = env.syncs.row_errors(run.sync, run.id)
    assert (error.pk, error.status, error.kind) == (2, "rejected", "added")
    assert error.error == (
        "no userId (column 'uid') or anonymousId (column 'anon'): every event needs a"
        " userId or an anonymousId"
    )
    duck.execute(f"UPDATE users SET anon = '{env.tag}-anon' WHERE id = 2")
    assert env.run("ids").counts.sent == 1
    assert env.events()[-1]["anonymousId"] == f"{env.tag}-anon"


def test_duplicate_and_null_keys_fail_the_run_before_sending(env: Env, engine: Engine) -> None:
    env.users(engine, (1, "a", ""), (1, "b", ""), (2, "c", ""), (2, "d", ""), (3, "e", ""))
    env.apply([model(engine, "users")], [track("dups", "users")])
    run = env.run("dups")
    assert run.status == "failed"
    assert run.error == (
        "model 'users': 2 primary key value(s) of 'id' occur more than once: 1, 2; nothing was sent"
    )
    engine.execute("DELETE FROM users WHERE id IN (1, 2)", "INSERT INTO users(id) VALUES (NULL)")
    run = env.run("dups")
    assert run.error == "model 'users': 1 row(s) have a null primary key ('id'); nothing was sent"
    assert env.events() == []
    engine.execute("DELETE FROM users WHERE id IS NULL")
    assert env.run("dups").counts.sent == 1


def test_a_query_error_is_shown_verbatim_with_the_model_name(env: Env, engine: Engine) -> None:
    env.users(engine, (1, "a", ""))
    env.apply([model(engine, "users")], [track("broken", "users")])
    engine.execute("DROP TABLE users")
    run = env.run("broken")
    assert run.status == "failed"
    assert run.error is not None
    assert run.error.startswith(f"model 'users' ({engine.name}): ")
    assert "users" in run.error.split(": ", 1)[1]  # the engine's own words name the table
    with pytest.raises(ModelError, match=f"model 'gone' \\({engine.name}\\): "):
        env.apply([model(engine, "gone")], [])


def test_full_resync_resends_everything_and_keeps_detecting_removals(
    env: Env, duck: Engine
) -> None:
    env.users(duck, (1, "a", ""), (2, "b", ""))
    env.apply([model(duck, "users")], [track("again", "users")])
    env.run("again")
    duck.execute("DELETE FROM users WHERE id = 2")
    run = env.run("again", full_resync=True)
    assert run.full_resync
    assert (run.counts.added, run.counts.removed, run.counts.sent) == (1, 1, 2)
    events = env.events()
    assert [e["event"] for e in events] == ["User Added"] * 3 + ["User Removed"]
    # The row sent again has a new messageId, so the receiver does not drop it as a copy.
    assert len({e["messageId"] for e in events}) == 4
    assert env.run("again").counts.sent == 0


def test_reset_sends_every_row_again_as_added(env: Env, duck: Engine) -> None:
    env.users(duck, (1, "a", ""), (2, "b", ""))
    env.apply([model(duck, "users")], [track("fresh", "users")])
    env.run("fresh")
    with env.syncs.lock("fresh"):
        assert env.syncs.reset("fresh") == 2
    assert env.syncs.snapshot_size("fresh") == 0
    run = env.run("fresh")
    assert (run.counts.added, run.counts.sent) == (2, 2)
    events = env.events()
    assert len(events) == 4 and len({e["messageId"] for e in events}) == 4


def test_a_disabled_or_missing_source_fails_the_run(env: Env, duck: Engine) -> None:
    env.users(duck, (1, "a", ""))
    env.apply([model(duck, "users")], [track("nowhere", "users", target=Target(source="ghost"))])
    run = env.run("nowhere")
    assert (run.status, run.error) == ("failed", "sync 'nowhere': no source named 'ghost'")


def test_message_ids_are_deterministic_and_new_for_each_change(env: Env, duck: Engine) -> None:
    env.users(duck, (1, "a", ""))
    env.apply([model(duck, "users")], [track("ids", "users")])
    env.run("ids")
    # The same sync over the same data in another data directory derives the same id,
    # so a row sent twice is one event for the receiver.
    twin_syncs = SQLiteSyncStore.in_data_dir(env.data_dir.parent / "twin")
    try:
        twin = Env(env.server, env.data_dir, env.store, twin_syncs, env.client, env.tag)
        assert twin.run("ids").counts.sent == 1
    finally:
        twin_syncs.close()
    assert len(env.events()) == 1

    for plan in ("b", "a", "b"):  # back and forth: each change is a new event
        duck.execute(f"UPDATE users SET plan = '{plan}'")
        env.run("ids")
    events = env.events()
    assert [e["properties"]["plan"] for e in events] == ["a", "b", "a", "b"]
    assert len({e["messageId"] for e in events}) == 4


def test_a_message_id_column_is_sent_as_the_message_id(env: Env, duck: Engine) -> None:
    # Tagged: the shared server drops a messageId it has seen (the other backend's run).
    env.users(duck, (1, "a", f"{env.tag}-evt-1"), (2, "b", f"{env.tag}-evt-2"))
    env.apply([model(duck, "users")], [track("own-ids", "users", message_id="note")])
    env.run("own-ids")
    duck.execute("DELETE FROM users WHERE id = 2")
    env.run("own-ids")
    ids = [e["messageId"] for e in env.events()]
    assert sorted(ids[:2]) == [f"{env.tag}-evt-1", f"{env.tag}-evt-2"]
    assert ids[2].startswith("rtl-")  # a removed row is gone from the result: derived id


def test_progress_is_reported_and_a_stop_cancels_the_run(env: Env, duck: Engine) -> None:
    duck.execute(
        f"CREATE TABLE users AS SELECT i AS id, '{env.tag}-' || i AS uid, 'free' AS plan"
        " FROM range(6000) t(i)"
    )
    env.apply([model(duck, "users")], [track("long", "users")])
    seen: list[tuple[int, int]] = []
    runner = env.runner()

    def progress(done: int, total: int) -> None:
        seen.append((done, total))
        if done:
            runner.stop.set()  # as the server's shutdown does, mid-run

    run = runner.run("long", progress=progress)
    assert seen[0] == (0, 6000) and 0 < seen[-1][0] < 6000
    assert run.status == "cancelled" and 0 < run.counts.sent < 6000
    assert run.error == "stopped before it finished; the next run goes on"
    rest = env.run("long")
    left = 6000 - run.counts.sent
    assert (rest.status, rest.counts.added, rest.counts.sent) == ("succeeded", left, left)
    assert len(env.events()) == 6000
