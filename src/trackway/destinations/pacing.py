"""Pacing what a destination creates: Kameleoon makes a goal for every event name it has
not seen, at most 50 per 10 s and 1,000 per 60 min. An event whose name is new waits
(in the retry schedule) until there is room; names already known pass at once.

The known names are kept in the delivery state (`Outcome.names`), with when each was
learnt, so a restart neither forgets them nor the limit windows they fill.
"""

from collections import deque
from collections.abc import Callable, Mapping

Limit = tuple[int, float]
"""At most this many new names per this many seconds."""


class NamePacer:
    """Admits new names under every limit; one per destination worker (one thread)."""

    def __init__(
        self,
        limits: tuple[Limit, ...],
        known: Mapping[str, int],
        clock: Callable[[], float],
    ) -> None:
        self._limits = limits
        self._clock = clock
        self._horizon = max(seconds for _, seconds in limits)
        self._known = set(known)
        self._admitted: set[str] = set()
        """New names sent, not yet accepted: they already took their place."""
        now = clock()
        self._created: deque[float] = deque(
            sorted(ms / 1000 for ms in known.values() if ms / 1000 > now - self._horizon)
        )

    def admit(self, name: str) -> float:
        """0 when a request with `name` may go now (taking a place if it is new), else
        the seconds until there is room for it."""
        if name in self._known or name in self._admitted:
            return 0.0
        now = self._clock()
        while self._created and self._created[0] <= now - self._horizon:
            self._created.popleft()
        wait = 0.0
        for count, seconds in self._limits:
            recent = [t for t in self._created if t > now - seconds]
            if len(recent) >= count:
                wait = max(wait, recent[-count] + seconds - now)
        if wait > 0:
            return wait
        self._created.append(now)
        self._admitted.add(name)
        return 0.0

    def learnt(self, name: str) -> bool:
        """Record that the destination accepted `name`; True when it was new."""
        self._admitted.discard(name)
        if name in self._known:
            return False
        self._known.add(name)
        return True
