"""The in-memory index of recent messageIds."""

from trackway.storage.dedup import HOUR_MS, RecentIds, message_hash


def test_hash_is_stable_and_per_source() -> None:
    assert message_hash(1, "abc") == message_hash(1, "abc")
    assert message_hash(1, "abc") != message_hash(2, "abc")
    assert message_hash(1, "abc") != message_hash(1, "abd")


def test_seen_after_add_before_and_after_merge() -> None:
    ids = RecentIds(window_ms=24 * HOUR_MS, merge_every=4)
    ids.add([1, 2, 3], at_ms=0)
    assert ids.seen([1, 4, 3]) == [True, False, True]
    ids.add([10, 2**63 + 5], at_ms=HOUR_MS)  # crosses merge_every: both hours become sorted arrays
    assert ids.seen([2**63 + 5, 1, 10, 11, 2**62]) == [True, True, True, False, False]
    ids.add([4], at_ms=0)
    assert ids.seen([4, 2]) == [True, True]
    assert len(ids) == 6


def test_hours_outside_the_window_expire() -> None:
    ids = RecentIds(window_ms=2 * HOUR_MS)
    ids.add([1], at_ms=0)
    ids.add([2], at_ms=3 * HOUR_MS)
    ids.expire(now_ms=3 * HOUR_MS + 1)
    assert ids.seen([1, 2]) == [False, True]


def test_rebuild_from_stored_hashes() -> None:
    import numpy as np

    ids = RecentIds(window_ms=24 * HOUR_MS)
    ids.rebuild(
        [
            (0, np.array([5, 3], dtype=np.uint64).tobytes()),
            (HOUR_MS, np.array([9], dtype=np.uint64).tobytes()),
        ]
    )
    assert ids.seen([3, 5, 9, 7]) == [True, True, True, False]
