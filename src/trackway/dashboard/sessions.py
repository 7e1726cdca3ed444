"""Dashboard sessions and the sign-in rate limit, both kept in the serving process.

A session is a random id (the HttpOnly cookie) with its CSRF token and an absolute
expiry; signing out forgets it at once. Being in memory, sessions end when the server
restarts, and several API processes behind one address need sticky sessions.
"""

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

SESSION_TTL_S = 12 * 3600.0
MAX_FAILURES = 5
"""Wrong admin tokens a client may try per FAILURE_WINDOW_S before it is refused (429)."""
FAILURE_WINDOW_S = 60.0

Clock = Callable[[], float]


@dataclass(frozen=True)
class Session:
    """A signed-in browser: its cookie value, the CSRF token its forms carry, and when
    it ends (on `Clock`'s scale)."""

    id: str
    csrf: str
    expires_at: float


class Sessions:
    """The live sessions by id."""

    def __init__(self, ttl_s: float = SESSION_TTL_S, clock: Clock = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._live: dict[str, Session] = {}

    def create(self) -> Session:
        now = self._clock()
        # Expired sessions are dropped here, so the table stays as small as its users.
        self._live = {k: s for k, s in self._live.items() if s.expires_at > now}
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), now + self.ttl_s)
        self._live[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The session of that cookie value, unless there is none or it expired."""
        session = self._live.get(session_id or "")
        if session is None or session.expires_at <= self._clock():
            return None
        return session

    def end(self, session_id: str | None) -> None:
        self._live.pop(session_id or "", None)


class SignInLimiter:
    """Counts a client's wrong tokens; past MAX_FAILURES in FAILURE_WINDOW_S it must wait."""

    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        window_s: float = FAILURE_WINDOW_S,
        clock: Clock = time.monotonic,
    ) -> None:
        self._max = max_failures
        self._window_s = window_s
        self._clock = clock
        self._failures: dict[str, list[float]] = {}

    def retry_after(self, client: str) -> float | None:
        """Seconds until `client` may try again, or None if it may now."""
        now = self._clock()
        recent = [t for t in self._failures.get(client, []) if t > now - self._window_s]
        if recent:
            self._failures[client] = recent
        else:
            self._failures.pop(client, None)
        if len(recent) < self._max:
            return None
        return recent[0] + self._window_s - now

    def failed(self, client: str) -> None:
        self._failures.setdefault(client, []).append(self._clock())

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)
