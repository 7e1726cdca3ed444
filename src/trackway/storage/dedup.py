"""In-memory index of recent messageIds, for dedup without a unique index in the log.

A random-key unique index in the hot table costs 4-5x in throughput (see
docs/decisions/0002-dedup.md). Instead the single log writer keeps 64-bit hashes of
(source, messageId) in sorted numpy arrays, one per hour of arrival, and looks a
whole request up at once. Hours older than the window are dropped; the index is
rebuilt from the hashes stored beside each log chunk when the writer starts.
"""

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt
import xxhash

HOUR_MS = 3_600_000

Hashes = npt.NDArray[np.uint64]


def message_hash(source_id: int, message_id: str) -> int:
    """A stable 64-bit hash of a source's messageId (xxh64 seeded with the source id)."""
    return int(xxhash.xxh64_intdigest(message_id.encode(), seed=source_id))


def message_hashes(source_id: int, message_ids: list[str]) -> list[int]:
    """`message_hash` of each messageId (one comprehension: the request path's loop)."""
    digest = xxhash.xxh64_intdigest
    return [digest(m.encode(), source_id) for m in message_ids]


FILTER_BITS = 1 << 28
"""A one-hash Bloom filter in front of the sorted arrays (32 MB)."""

_FILTER_SHIFT = np.uint64(64 - 28)
_WORD_SHIFT = np.uint64(6)
_BIT_MASK = np.uint64(63)
_ONE = np.uint64(1)


class RecentIds:
    """Hashes seen within the dedup window, bucketed by hour of arrival.

    New hashes go to a small set first and are merged into their hour's sorted array
    in bulk, so that a merge (a copy of the array) happens once per `merge_every`
    hashes rather than once per request. A bitmap indexed by each hash's top 28 bits
    answers "certainly new" with one memory access for almost every id; only the rest
    are searched in the arrays (a binary search in a large array is ~20 cache misses).
    """

    def __init__(self, window_ms: int, merge_every: int = 1 << 16) -> None:
        self.window_ms = window_ms
        self.merge_every = merge_every
        self._hours: dict[int, Hashes] = {}
        self._fresh: set[int] = set()
        self._fresh_hours: dict[int, list[int]] = {}
        self._filter = np.zeros(FILTER_BITS // 64, dtype=np.uint64)

    def __len__(self) -> int:
        return sum(len(a) for a in self._hours.values()) + len(self._fresh)

    def seen(self, hashes: list[int]) -> list[bool]:
        """For each hash, whether it is already in the index."""
        query = np.array(hashes, dtype=np.uint64)
        found = self._maybe(query)
        if found.any():
            candidates = np.flatnonzero(found)
            found[candidates] = self._in_arrays(query[candidates])
        fresh = self._fresh
        if not fresh.isdisjoint(hashes):
            found |= np.fromiter((h in fresh for h in hashes), np.bool_, len(hashes))
        result: list[bool] = found.tolist()
        return result

    def _maybe(self, query: Hashes) -> npt.NDArray[np.bool_]:
        """False where a hash is certainly not in the arrays."""
        slot = query >> _FILTER_SHIFT
        words = self._filter[slot >> _WORD_SHIFT]
        hit: npt.NDArray[np.bool_] = ((words >> (slot & _BIT_MASK)) & _ONE).astype(np.bool_)
        return hit

    def _in_arrays(self, query: Hashes) -> npt.NDArray[np.bool_]:
        # Sorted keys walk each array in one direction: fewer cache misses.
        order = np.argsort(query)
        sorted_query = query[order]
        sorted_found = np.zeros(len(query), dtype=np.bool_)
        for arr in self._hours.values():
            idx = np.searchsorted(arr, sorted_query)
            np.minimum(idx, len(arr) - 1, out=idx)
            sorted_found |= arr[idx] == sorted_query
        found = np.empty_like(sorted_found)
        found[order] = sorted_found
        return found

    def _mark(self, hashes: Hashes) -> None:
        slot = hashes >> _FILTER_SHIFT
        np.bitwise_or.at(self._filter, slot >> _WORD_SHIFT, _ONE << (slot & _BIT_MASK))

    def add(self, hashes: list[int], at_ms: int) -> None:
        """Record hashes that arrived at `at_ms`."""
        self._fresh.update(hashes)
        self._fresh_hours.setdefault(at_ms // HOUR_MS, []).extend(hashes)
        if len(self._fresh) >= self.merge_every:
            self._merge()

    def expire(self, now_ms: int) -> None:
        """Drop the hours that lie wholly outside the window."""
        self._merge()
        oldest = (now_ms - self.window_ms) // HOUR_MS
        expired = [h for h in self._hours if h < oldest]
        for hour in expired:
            del self._hours[hour]
        if expired:
            self._filter[:] = 0
            for arr in self._hours.values():
                self._mark(arr)

    def rebuild(self, chunks: Iterable[tuple[int, bytes]]) -> None:
        """Load `(received_at_ms, hashes as uint64 bytes)` pairs read back from the log."""
        parts: dict[int, list[Hashes]] = {}
        for at_ms, blob in chunks:
            parts.setdefault(at_ms // HOUR_MS, []).append(np.frombuffer(blob, dtype=np.uint64))
        self._hours = {hour: np.sort(np.concatenate(arrs)) for hour, arrs in parts.items()}
        self._fresh.clear()
        self._fresh_hours.clear()
        self._filter[:] = 0
        for arr in self._hours.values():
            self._mark(arr)

    def _merge(self) -> None:
        for hour, fresh in self._fresh_hours.items():
            new = np.sort(np.array(fresh, dtype=np.uint64))
            self._mark(new)
            arr = self._hours.get(hour)
            self._hours[hour] = (
                new if arr is None else np.insert(arr, np.searchsorted(arr, new), new)
            )
        self._fresh.clear()
        self._fresh_hours.clear()
