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
        other.release("A", ["warehouse:w"])
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
    leases = PostgresLeases(pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}"))
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
