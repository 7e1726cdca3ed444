"""Leases: which process works a piece of background work (a destination, a warehouse
loader, a sync schedule) when several worker processes share one storage.

A lease is a row (key, owner, expiry). A process takes the leases that are free,
expired or already its own, and renews them every third of their time to live; a
process that dies stops renewing, and another takes its work over once the leases
expire. `Leases` is the storage interface (SQLite: a table in the state file;
PostgreSQL: a table locked with `FOR UPDATE SKIP LOCKED`); `LeaseHolder` is what a
consumer uses.

Worker processes share the work: each `LeaseHolder` renews a heartbeat row
(`worker:<pool>:<owner>`, a lease of its own with the same time to live) in the same
table, counts the live heartbeats of its pool (the destinations, the warehouses, the
sync schedules) and holds at most its fair share, ceil(keys / live workers), of the
keys; above it, it hands the surplus over (the consumer stops that work, and the
leases are released at the next `hold()`). A killed worker's heartbeat expires with its
leases, and the survivors' shares grow to cover its work.
"""

import logging
import math
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from trackway.settings import env

logger = logging.getLogger("trackway.leases")

DEFAULT_TTL_S = 30.0
_MARGIN = 0.1
"""A lease not renewed is given up this fraction of its time to live before it expires,
so the work has stopped before another process may take it."""


class Leases(Protocol):
    """Expiring leases on named work, shared by every process of a deployment."""

    def acquire(
        self, owner: str, keys: Sequence[str], ttl_s: float, limit: int | None = None
    ) -> set[str]:
        """Take or renew the leases on `keys` that are free, expired or `owner`'s own,
        for `ttl_s` from now; returns the keys `owner` holds now. With `limit`, at most
        that many keys: `owner`'s own first, then free ones in key order."""
        ...

    def heartbeat(self, pool: str, owner: str, ttl_s: float) -> int:
        """Renew `owner`'s heartbeat in `pool` (the lease `worker:<pool>:<owner>`) for
        `ttl_s` from now; returns how many owners' heartbeats in `pool` are live, this
        one included. Heartbeats expired long ago are deleted."""
        ...

    def release(self, owner: str, keys: Sequence[str]) -> None:
        """Give up `owner`'s leases on `keys` (others may take them at once)."""
        ...

    def close(self) -> None: ...


def lease_ttl() -> float:
    """The time to live of leases: `TRACKWAY_LEASE_TTL` seconds, else 30."""
    return float(env("LEASE_TTL") or DEFAULT_TTL_S)


def heartbeat_key(pool: str, owner: str) -> str:
    """The lease that says `owner` is a live worker of `pool`."""
    return f"{HEARTBEAT_PREFIX}{pool}:{owner}"


HEARTBEAT_PREFIX = "worker:"
HEARTBEAT_PURGE_S = 3600.0
"""Heartbeats expired longer ago than this (workers killed, not stopped) are deleted."""


def fair_share(keys: int, workers: int) -> int:
    """The most leases of `keys` one of `workers` live workers holds."""
    return math.ceil(keys / max(1, workers))


def new_owner() -> str:
    """A name for this process's leases, unique across machines and restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class LeaseHolder:
    """The leases one consumer (the destinations, the warehouse loaders, the sync
    schedules) holds in this process.

    `hold(keys)` takes the leases it can, up to this worker's fair share of `keys`
    (ceil(keys / live workers of `pool`)), and gives up those no longer wanted; a
    thread renews the held ones and the worker's heartbeat every TTL/3. A lease that
    another process took, or that could not be renewed in time (storage unreachable),
    is dropped and `on_lost(key)` is called at once, before the lease expires. Without
    `leases` (one process, nothing shared) every key is held.

    Above its share, `hold()` leaves the surplus keys out of what it returns (and
    `holds()` turns false for them) but keeps renewing them: the consumer stops their
    work (finishing the window or batch in progress) before it calls `hold()` again,
    and that call releases them for another worker to take.
    """

    def __init__(
        self,
        leases: Leases | None,
        on_lost: Callable[[str], None],
        ttl_s: float | None = None,
        owner: str | None = None,
        pool: str | None = None,
    ) -> None:
        self.leases = leases
        self.on_lost = on_lost
        self.ttl_s = lease_ttl() if ttl_s is None else ttl_s
        self.owner = owner or new_owner()
        self.pool = pool
        """The workers sharing the same kind of work: fair shares are counted per pool.
        By default the kind of the keys held (`destination` for `destination:<name>`)."""
        self._deadlines: dict[str, float] = {}
        """Held keys → when (monotonic) to give them up unless renewed."""
        self._surplus: set[str] = set()
        """Held keys above the fair share, being handed over: released at the next
        `hold()` (their work has stopped by then)."""
        self._unclaimed: dict[str, float] = {}
        """Wanted keys not held here while at the fair share → since when (monotonic)
        without interruption (last reset when tried)."""
        self._extra: set[str] = set()
        self._workers_seen = 1
        """The live workers as `hold()` last counted them."""
        """Held keys above the fair share that no other worker took for a whole TTL
        (e.g. destinations the others cannot start): kept, not handed over until
        another worker joins."""
        self.workers = 1
        """The live workers of the pool, as last counted."""
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._renewer: threading.Thread | None = None

    def hold(self, wanted: Iterable[str]) -> set[str]:
        """Hold the leases on `wanted` that can be had, up to this worker's fair share,
        and only those; returns them. Keys left out since the previous call (no longer
        wanted, or handed over) must have had their work stopped by now: their leases
        are released."""
        wanted = set(wanted)
        if self.leases is None:
            return wanted
        with self._lock:
            unwanted = [k for k in self._deadlines if k not in wanted or k in self._surplus]
            for key in unwanted:
                del self._deadlines[key]
            self._surplus.clear()
            if self.pool is None and wanted:
                self.pool = min(wanted).partition(":")[0]
            try:
                if unwanted:
                    self.leases.release(self.owner, sorted(unwanted))
                self._beat(self.leases)
                if self.workers > self._workers_seen:  # one joined: it may want the extras
                    self._extra.clear()
                    self._unclaimed.clear()
                self._workers_seen = self.workers
                share = fair_share(len(wanted), self.workers)
                now = time.monotonic()
                held = sorted(k for k, deadline in self._deadlines.items() if deadline > now)
                missing = sorted(k for k in wanted if k not in held)
                self._extra.intersection_update(held)
                while self._extra and len(held) - len(self._extra) < share:
                    self._extra.remove(min(self._extra))  # within the share now
                regular = [k for k in held if k not in self._extra]
                if len(regular) > share:
                    self._surplus = set(regular[share:])
                    self._unclaimed.clear()
                    logger.info(
                        "%s: %d leases above the fair share (%d of %d for %d workers)"
                        " handed over: %s",
                        self.pool,
                        len(self._surplus),
                        share,
                        len(wanted),
                        self.workers,
                        ", ".join(sorted(self._surplus)),
                    )
                elif missing and len(held) < share:
                    self._grant(missing, self.leases, limit=share - len(held))
                    self._unclaimed.clear()
                else:
                    self._sweep(missing, self.leases)
            except Exception as exc:
                logger.warning("leases could not be taken: %s", exc)
            now = time.monotonic()
            held_now = {
                k
                for k, deadline in self._deadlines.items()
                if deadline > now and k not in self._surplus
            }
        if self._renewer is None:
            self._renewer = threading.Thread(
                target=self._renew_loop, name="trackway-leases", daemon=True
            )
            self._renewer.start()
        return held_now

    def holds(self, key: str) -> bool:
        """Whether the lease on `key` is held and not about to expire."""
        if self.leases is None:
            return True
        deadline = self._deadlines.get(key)
        return deadline is not None and time.monotonic() < deadline and key not in self._surplus

    def close(self) -> None:
        """Stop renewing and give every lease up."""
        self._stopped.set()
        if self._renewer is not None:
            self._renewer.join()
        if self.leases is None:
            return
        with self._lock:
            held = sorted(self._deadlines)
            self._deadlines.clear()
            self._surplus.clear()
            self._extra.clear()
        if self.pool is not None:  # the heartbeat too: the others' shares grow at once
            held.append(heartbeat_key(self.pool, self.owner))
        if not held:
            return
        try:
            self.leases.release(self.owner, held)
        except Exception as exc:  # they expire by themselves
            logger.warning("leases could not be released: %s", exc)

    def _grant(self, keys: list[str], leases: Leases, limit: int | None = None) -> set[str]:
        started = time.monotonic()
        granted = leases.acquire(self.owner, keys, self.ttl_s, limit)
        deadline = started + self.ttl_s * (1 - _MARGIN)
        for key in granted:
            self._deadlines[key] = deadline
        return granted

    def _sweep(self, missing: list[str], leases: Leases) -> None:
        """At the fair share: take the wanted keys that stayed free for a whole TTL
        (no worker under its share wants them) as extras, so that no work is left
        undone when the workers want different keys."""
        now = time.monotonic()
        self._unclaimed = {k: self._unclaimed.get(k, now) for k in missing}
        candidates = [k for k, since in self._unclaimed.items() if now - since >= self.ttl_s]
        if candidates:
            for key in candidates:  # held by another (most often): try again in a TTL
                self._unclaimed[key] = now
            taken = self._grant(candidates, leases)
            if taken:
                logger.info(
                    "%s: free for a TTL, taken above the fair share: %s",
                    self.pool,
                    ", ".join(sorted(taken)),
                )
            self._extra |= taken

    def _beat(self, leases: Leases) -> None:
        """Renew this worker's heartbeat; count the live workers of the pool."""
        if self.pool is not None:
            self.workers = leases.heartbeat(self.pool, self.owner, self.ttl_s)

    def _renew_loop(self) -> None:
        while not self._stopped.wait(self.ttl_s / 3):
            self._renew()

    def _renew(self) -> None:
        """Renew every held lease now; drop (and report) those lost."""
        assert self.leases is not None
        lost: list[str] = []
        with self._lock:
            held = sorted(self._deadlines)
            try:
                if held:
                    granted = self._grant(held, self.leases)
                    lost = [k for k in held if k not in granted]
                self._beat(self.leases)
            except Exception as exc:
                logger.warning("leases could not be renewed: %s", exc)
                now = time.monotonic()
                lost += [
                    k for k in held if k not in lost and self._deadlines[k] - self.ttl_s / 3 <= now
                ]
            for key in lost:
                del self._deadlines[key]
                self._surplus.discard(key)
        for key in lost:
            logger.warning("lease on %s lost: its work stops here", key)
            self.on_lost(key)
