"""Write key → source lookups on the request path, from an in-memory copy of the state."""

import time
from dataclasses import dataclass

from trackway.storage.base import StateStore
from trackway.storage.records import Source

_MISS_RELOAD_INTERVAL_S = 1.0


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A write key as the request path sees it."""

    source: Source
    expires_at: float | None


class SourceCache:
    """Maps write keys to sources; reloads when the state store changes.

    CLI commands change the state from other processes, so the server calls `reload`
    when the store reports a change (checked about once a second), and an
    unknown key triggers at most one reload per second.
    """

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._keys: dict[str, KeyInfo] = {}
        self._names: dict[str, Source] = {}
        self._last_miss_reload = 0.0
        self.reload()

    def reload(self) -> None:
        sources = {s.id: s for s in self._store.list_sources()}
        self._names = {s.name: s for s in sources.values()}
        self._keys = {
            k.key: KeyInfo(sources[k.source_id], k.expires_at) for k in self._store.write_keys()
        }

    def named(self, name: str) -> Source | None:
        """The source called `name`, for events Trackway makes. A name not seen reloads
        the sources (as an unknown key does): a flag environment applied together with its
        events' source can be served before the next refresh tick has read that source."""
        source = self._names.get(name)
        if source is None and self._reload_after_miss():
            source = self._names.get(name)
        return source

    def lookup(self, key: str) -> KeyInfo | None:
        """The key's source, or None for an unknown or expired key."""
        info = self._keys.get(key)
        if info is None and self._reload_after_miss():
            info = self._keys.get(key)
        if info is None or (info.expires_at is not None and info.expires_at <= time.time()):
            return None
        return info

    def _reload_after_miss(self) -> bool:
        """Reload unless a miss did in the last second; whether it reloaded."""
        now = time.monotonic()
        if now - self._last_miss_reload < _MISS_RELOAD_INTERVAL_S:
            return False
        self._last_miss_reload = now
        self.reload()
        return True
