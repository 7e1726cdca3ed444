"""Leases on both backends: one holder at a time, renewal, expiry, release, and the
`LeaseHolder` that consumers use."""

import threading
import time

from tests.storage.conftest import Backend
from tests.warehouse.proxy import TcpProxy
from trackway.storage.leases import LeaseHolder
from trackway.storage.postgres.leases import PostgresLeases


def test_a_lease_has_one_holder_until_it_expires_or_is_released(backend: Backend) -> None:
    a, b = backend.leases(), backend.leases()
    try:
        assert a.acquire("A", ["destination:x", "destination:y"], 0.5) == {
            "destination:x",
            "destination:y",
        }
        assert b.acquire("B", ["destination:x", "destination:z"], 30) == {"destination:z"}
        assert a.acquire("A", ["destination:x"], 0.5) == {"destination:x"}  # renewed
        time.sleep(0.3)
        assert b.acquire("B", ["destination:x"], 0.5) == set()  # the renewal counts
        time.sleep(0.4)
        assert b.acquire("B", ["destination:x"], 0.5) == {"destination:x"}  # expired
        assert a.acquire("A", ["destination:x"], 0.5) == set()
        b.release("B", ["destination:x"])
        a.release("A", ["destination:z"])  # not A's: nothing happens
        assert a.acquire("A", ["destination:x", "destination:z"], 0.5) == {"destination:x"}
    finally:
        a.close()
        b.close()


def test_two_processes_racing_for_many_leases_split_them(backend: Backend) -> None:
    keys = [f"destination:{n}" for n in range(20)]
    got: dict[str, set[str]] = {}

    def take(owner: str) -> None:
        leases = backend.leases()
        try:
            held: set[str] = set()
            for key in keys:
                held |= leases.acquire(owner, [key], 30)
            got[owner] = held
        finally:
            leases.close()

    threads = [threading.Thread(target=take, args=(owner,)) for owner in ("A", "B")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert got["A"].isdisjoint(got["B"])
    assert got["A"] | got["B"] == set(keys)


def test_the_holder_renews_and_reports_a_lease_taken_by_another(backend: Backend) -> None:
    leases, other = backend.leases(), backend.leases()
    lost: list[str] = []
    holder = LeaseHolder(leases, lost.append, ttl_s=0.6, owner="A")
    try:
        assert holder.hold(["warehouse:w", "sync:s"]) == {"warehouse:w", "sync:s"}
        time.sleep(1.0)  # longer than the TTL: renewed meanwhile
        assert holder.holds("warehouse:w")
        assert other.acquire("B", ["warehouse:w"], 5) == set()
        assert holder.hold(["warehouse:w"]) == {"warehouse:w"}  # sync:s released
        assert other.acquire("B", ["sync:s"], 5) == {"sync:s"}
        # B takes warehouse:w by force (as after an expiry): A notices at its next renewal
        # (A's renewal thread may renew between the two: then again)
        for _ in range(20):
            other.release("A", ["warehouse:w"])
            if other.acquire("B", ["warehouse:w"], 5) == {"warehouse:w"}:
                break
        assert other.acquire("B", ["warehouse:w"], 5) == {"warehouse:w"}
        deadline = time.monotonic() + 2
        while not lost and time.monotonic() < deadline:
            time.sleep(0.02)
        assert lost == ["warehouse:w"]
        assert not holder.holds("warehouse:w")
    finally:
        holder.close()
        leases.close()
        other.close()


def test_without_shared_leases_everything_is_held() -> None:
    holder = LeaseHolder(None, lambda key: None)
    assert holder.hold(["destination:x"]) == {"destination:x"}
    assert holder.holds("anything")
    holder.close()


def test_a_lease_that_cannot_be_renewed_is_given_up_before_it_expires(pg_url: str) -> None:
    proxy = TcpProxy(("127.0.0.1", 5432))
    proxy.up()
    leases = PostgresLeases(proxy.route(pg_url))
    lost: list[float] = []
    holder = LeaseHolder(leases, lambda key: lost.append(time.monotonic()), ttl_s=1.5)
    try:
        taken = time.monotonic()
        assert holder.hold(["destination:x"]) == {"destination:x"}
        proxy.down()  # PostgreSQL unreachable: renewals fail
        deadline = time.monotonic() + 5
        while not lost and time.monotonic() < deadline:
            time.sleep(0.02)
        assert lost, "the lease was not given up"
        assert lost[0] - taken < 1.5  # before the database lets another worker take it
        assert not holder.holds("destination:x")
    finally:
        holder.close()
        leases.close()
        proxy.down()


def _holders(backend: Backend, owners: str, lost: list[str], ttl_s: float) -> list[LeaseHolder]:
    return [
        LeaseHolder(backend.leases(), lost.append, ttl_s=ttl_s, owner=owner) for owner in owners
    ]


def _settle(holders: list[LeaseHolder], keys: list[str], rounds: int = 6) -> list[set[str]]:
    """A few refresh cycles of every holder, in turn; what each holds at the end."""
    held: list[set[str]] = [set() for _ in holders]
    for _ in range(rounds):
        held = [holder.hold(keys) for holder in holders]
    return held


def _close(holders: list[LeaseHolder]) -> None:
    for holder in holders:
        holder.close()
        if holder.leases is not None:
            holder.leases.close()


def test_workers_share_the_leases_fairly(backend: Backend) -> None:
    keys = [f"destination:{n}" for n in range(7)]
    lost: list[str] = []
    a, b, c = holders = _holders(backend, "ABC", lost, ttl_s=30)
    try:
        assert a.hold(keys) == set(keys)  # alone: everything
        held = _settle(holders, keys)
        assert [h.workers for h in holders] == [3, 3, 3]
        assert sorted(len(h) for h in held) in ([2, 2, 3], [1, 3, 3])
        assert all(len(h) <= 3 for h in held)  # ceil(7 / 3)
        assert set().union(*held) == set(keys)
        assert sum(len(h) for h in held) == len(keys)  # one holder per key
        for holder, mine in zip(holders, held, strict=True):
            assert all(holder.holds(k) for k in mine)
            assert not any(holder.holds(k) for k in set(keys) - mine)
        assert lost == []  # handed over, never lost

        # C leaves cleanly: A and B take its keys over, 4 and 3
        c.close()
        held = _settle([a, b], keys)
        assert sorted(len(h) for h in held) == [3, 4]
        assert held[0] | held[1] == set(keys) and held[0].isdisjoint(held[1])
    finally:
        _close(holders)


def test_a_killed_workers_share_is_taken_over_when_its_heartbeat_expires(
    backend: Backend,
) -> None:
    keys = [f"warehouse:{n}" for n in range(7)]
    lost: list[str] = []
    holders = _holders(backend, "AB", lost, ttl_s=30)
    dying = LeaseHolder(backend.leases(), lost.append, ttl_s=0.6, owner="C")
    try:
        held = _settle([*holders, dying], keys)
        assert sorted(len(h) for h in held) in ([2, 2, 3], [1, 3, 3])
        assert dying.workers == 3
        mine = held[2]
        # C is killed: it renews nothing more (its thread stopped, nothing released)
        dying._stopped.set()
        assert dying._renewer is not None
        dying._renewer.join()
        held = _settle(holders, keys, rounds=2)
        assert not (held[0] | held[1]) & mine  # its leases are still live
        time.sleep(0.7)  # its heartbeat and leases expire
        held = _settle(holders, keys)
        assert [h.workers for h in holders] == [2, 2]
        assert sorted(len(h) for h in held) == [3, 4]
        assert held[0] | held[1] == set(keys) and held[0].isdisjoint(held[1])
    finally:
        _close([*holders, dying])


def test_fewer_keys_than_workers_and_pools_counted_apart(backend: Backend) -> None:
    lost: list[str] = []
    a, b = holders = _holders(backend, "AB", lost, ttl_s=30)
    syncs = LeaseHolder(backend.leases(), lost.append, ttl_s=30, owner="S")
    try:
        held = _settle(holders, ["destination:only"])
        assert sorted(len(h) for h in held) == [0, 1]
        # another pool: its workers do not shrink the destinations' shares
        assert syncs.hold(["sync:x", "sync:y"]) == {"sync:x", "sync:y"}
        assert syncs.workers == 1
        held = _settle(holders, ["destination:1", "destination:2"])
        assert [len(h) for h in held] == [1, 1]
        assert a.workers == b.workers == 2
    finally:
        _close([*holders, syncs])


def test_a_key_no_other_worker_takes_is_taken_above_the_share(backend: Backend) -> None:
    """B cannot work destination:2 (e.g. it cannot decrypt its secrets) and leaves it
    out: A, at its share with destination:1, takes it too once it stayed free a TTL."""
    lost: list[str] = []
    a, b = holders = _holders(backend, "AB", lost, ttl_s=0.6)
    both = ["destination:1", "destination:2"]
    try:
        assert a.hold(both) == set(both)
        assert b.hold(["destination:1"]) == set()
        assert a.hold(both) == {"destination:1"}  # destination:2 handed over
        assert b.hold(["destination:1"]) == set()
        deadline = time.monotonic() + 3
        while a.hold(both) != set(both) and time.monotonic() < deadline:
            b.hold(["destination:1"])
            time.sleep(0.05)
        assert a.hold(both) == set(both)  # above its share, and kept:
        for _ in range(5):
            assert b.hold(["destination:1"]) == set()
            assert a.hold(both) == set(both)
            time.sleep(0.1)
        # with a third worker wanting both, A gives one up again
        c = LeaseHolder(backend.leases(), lost.append, ttl_s=0.6, owner="C")
        holders.append(c)
        c.hold(both)
        a.hold(both)
        deadline = time.monotonic() + 3
        while c.hold(both) == set() and time.monotonic() < deadline:
            a.hold(both)
            time.sleep(0.05)
        assert c.hold(both) != set()
        assert lost == []
    finally:
        _close(holders)
