"""Finding a place in the event log by time (for reloads and replays)."""

from trackway.storage.base import EventLog


def position_at(log: EventLog, since_ms: int) -> int:
    """The position just before the first event received at or after `since_ms`.

    Arrival times grow along the log, so a binary search over positions finds it.
    """
    low, high = 0, log.last_seqs()["accepted"]
    while low < high:
        middle = (low + high) // 2
        events = log.read(middle, 1)
        if not events or events[0].received_at_ms >= since_ms:
            high = middle
        else:
            low = events[0].position
    return low
