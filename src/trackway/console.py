"""Lines for the server console about what background work did, rate-limited.

A destination that is down fails every window and a busy sync runs often: one line per
event would drown the console. `ConsoleLines` prints at most one line per key (a
destination, a sync) per interval and says, on the next line it prints for that key,
how many it held back meanwhile.
"""

import logging
import threading
import time
from collections.abc import Callable

EVERY_S = 10.0


def show_on_console() -> None:
    """Print Trackway's log records of level INFO and above on stderr, one line each
    (`trackway serve`; without it only warnings would show, unformatted)."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    trackway = logging.getLogger("trackway")
    trackway.addHandler(handler)
    trackway.setLevel(logging.INFO)


class ConsoleLines:
    """Logs at most one line per key every `every_s` seconds; safe across threads."""

    def __init__(
        self,
        logger: logging.Logger,
        every_s: float = EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._every_s = every_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def line(self, key: str, text: str, level: int = logging.WARNING) -> bool:
        """Log `text` unless a line for `key` was logged less than `every_s` ago (then
        it is counted, and the next line logged says so); returns whether it was."""
        now = self._clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._every_s:
                self._held[key] = self._held.get(key, 0) + 1
                return False
            self._last[key] = now
            held = self._held.pop(key, 0)
        if held:
            text += f" ({held} similar line(s) suppressed since the last one)"
        self._logger.log(level, "%s", text)
        return True
