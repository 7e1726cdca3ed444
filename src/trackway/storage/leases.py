"""Leases: which process works a piece of background work (a destination, a warehouse
loader, a sync schedule) when several worker processes share one storage.

A lease is a row (key, owner, expiry). A process takes the leases that are free,
expired or already its own, and renews them every third of their time to live; a
process that dies stops renewing, and another takes its work over once the leases
expire. `Leases` is the storage interface (SQLite: a table in the state file;
PostgreSQL: a table locked with `FOR UPDATE SKIP LOCKED`); `LeaseHolder` is what a
consumer uses.
"""

import logging
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

    def acquire(self, owner: str, keys: Sequence[str], ttl_s: float) -> set[str]:
        """Take or renew the leases on `keys` that are free, expired or `owner`'s own,
        for `ttl_s` from now; returns the keys `owner` holds now."""
        ...

    def release(self, owner: str, keys: Sequence[str]) -> None:
        """Give up `owner`'s leases on `keys` (others may take them at once)."""
        ...

    def close(self) -> None: ...


def lease_ttl() -> float:
    """The time to live of leases: `TRACKWAY_LEASE_TTL` seconds, else 30."""
    return float(env("LEASE_TTL") or DEFAULT_TTL_S)


def new_owner() -> str:
    """A name for this process's leases, unique across machines and restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class LeaseHolder:
    """The leases one consumer (the destinations, the warehouse loaders, the sync
    schedules) holds in this process.

    `hold(keys)` takes the leases it can and gives up those no longer wanted; a thread
    renews the held ones every TTL/3. A lease that another process took, or that could
    not be renewed in time (storage unreachable), is dropped and `on_lost(key)` is
    called at once, before the lease expires. Without `leases` (one process, nothing
    shared) every key is held.
    """

    def __init__(
        self,
        leases: Leases | None,
        on_lost: Callable[[str], None],
        ttl_s: float | None = None,
        owner: str | None = None,
    ) -> None:
        self.leases = leases
        self.on_lost = on_lost
        self.ttl_s = lease_ttl() if ttl_s is None else ttl_s
        self.owner = owner or new_owner()
        self._deadlines: dict[str, float] = {}
        """Held keys → when (monotonic) to give them up unless renewed."""
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._renewer: threading.Thread | None = None

    def hold(self, wanted: Iterable[str]) -> set[str]:
        """Hold the leases on `wanted` that can be had, and only those; returns them."""
        wanted = set(wanted)
        if self.leases is None:
            return wanted
        with self._lock:
            unwanted = [k for k in self._deadlines if k not in wanted]
            for key in unwanted:
                del self._deadlines[key]
            now = time.monotonic()
            missing = sorted(k for k in wanted if self._deadlines.get(k, now) <= now)
            try:
                if unwanted:
                    self.leases.release(self.owner, unwanted)
                if missing:
                    self._grant(missing, self.leases)
            except Exception as exc:
                logger.warning("leases could not be taken: %s", exc)
            now = time.monotonic()
            held = {k for k, deadline in self._deadlines.items() if deadline > now}
        if held and self._renewer is None:
            self._renewer = threading.Thread(
                target=self._renew_loop, name="trackway-leases", daemon=True
            )
            self._renewer.start()
        return held

    def holds(self, key: str) -> bool:
        """Whether the lease on `key` is held and not about to expire."""
        if self.leases is None:
            return True
        deadline = self._deadlines.get(key)
        return deadline is not None and time.monotonic() < deadline

    def close(self) -> None:
        """Stop renewing and give every lease up."""
        self._stopped.set()
        if self._renewer is not None:
            self._renewer.join()
        if self.leases is None:
            return
        with self._lock:
            held = list(self._deadlines)
            self._deadlines.clear()
        if held:
            try:
                self.leases.release(self.owner, held)
            except Exception as exc:  # they expire by themselves
                logger.warning("leases could not be released: %s", exc)

    def _grant(self, keys: list[str], leases: Leases) -> set[str]:
        started = time.monotonic()
        granted = leases.acquire(self.owner, keys, self.ttl_s)
        deadline = started + self.ttl_s * (1 - _MARGIN)
        for key in granted:
            self._deadlines[key] = deadline
        return granted

    def _renew_loop(self) -> None:
        while not self._stopped.wait(self.ttl_s / 3):
            self._renew()

    def _renew(self) -> None:
        """Renew every held lease now; drop (and report) those lost."""
        assert self.leases is not None
        lost: list[str] = []
        with self._lock:
            held = sorted(self._deadlines)
            if not held:
                return
            try:
                granted = self._grant(held, self.leases)
                lost = [k for k in held if k not in granted]
            except Exception as exc:
                logger.warning("leases could not be renewed: %s", exc)
                now = time.monotonic()
                lost = [k for k in held if self._deadlines[k] - self.ttl_s / 3 <= now]
            for key in lost:
                del self._deadlines[key]
        for key in lost:
            logger.warning("lease on %s lost: its work stops here", key)
            self.on_lost(key)
