"""Admin token checks."""

import hmac

from trackway.storage.base import StateStore
from trackway.workspace.keys import token_hash


class AdminAuth:
    """Accepts tokens whose hash is stored, and `TRACKWAY_ADMIN_TOKEN` when set."""

    def __init__(self, store: StateStore, env_token: str | None) -> None:
        self._store = store
        self._env_token = env_token

    def check(self, authorization: str | None) -> bool:
        scheme, _, token = (authorization or "").partition(" ")
        return scheme.lower() == "bearer" and self.check_token(token.strip())

    def check_token(self, token: str) -> bool:
        """Whether `token` itself (as typed into the dashboard's sign-in) is an admin token."""
        if not token:
            return False
        if self._env_token and hmac.compare_digest(token.encode(), self._env_token.encode()):
            return True
        return self._store.has_admin_token(token_hash(token))
