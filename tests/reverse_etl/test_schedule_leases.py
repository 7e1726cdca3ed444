"""A sync's schedule is run only by the worker holding its lease."""

import time

from tests.reverse_etl.conftest import Env, model, track
from tests.reverse_etl.engines import Engine
from tests.support import until
from trackway.reverse_etl.config import Schedule
from trackway.reverse_etl.schedule import SchedulerThread
from trackway.storage.sqlite.leases import SQLiteLeases


def test_a_schedule_held_by_another_worker_is_left_to_it(env: Env, duck: Engine) -> None:
    env.users(duck, (1, "free", ""))
    env.apply([model(duck, "users")], [track("auto", "users", schedule=Schedule(interval="1h"))])
    other = SQLiteLeases(env.data_dir / "leases.db")
    leases = SQLiteLeases(env.data_dir / "leases.db")
    assert other.acquire("elsewhere", ["sync:auto"], 60) == {"sync:auto"}
    worker = SchedulerThread(env.data_dir, env.store, env.server.url, poll_s=0.05, leases=leases)
    worker.start()
    try:
        time.sleep(0.5)
        assert env.syncs.runs("auto", 5) == []  # the other worker's to run
        other.release("elsewhere", ["sync:auto"])
        runs = until(lambda: [(r.trigger, r.status) for r in env.syncs.runs("auto", 5)],
                     [("schedule", "succeeded")])  # fmt: skip
        assert runs == [("schedule", "succeeded")]
        assert other.acquire("elsewhere", ["sync:auto"], 60) == set()  # held by the worker
    finally:
        worker.stop()
        other.close()
        leases.close()
