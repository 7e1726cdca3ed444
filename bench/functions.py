"""Insert-function benchmark: events/s through FunctionPool.run() for a trivial function.

    .venv/bin/python bench/functions.py [--duration 10] [--batch 100] [--threads 1 2]
                                        [--workers 2]

Each caller thread calls `run()` with batches of `--batch` ~500-byte track events, one
call after the other, for `--duration` seconds (after a one-second warm-up that also
starts the workers). The function sets one property and returns the event. Reported
per thread count: events/s over all callers and the mean time of one call.
"""

from __future__ import annotations

import argparse
import threading
import time
from typing import Any

from trackway.functions import FunctionPool

CODE = """
def transform(event, settings):
    event["properties"]["seen_by"] = settings["name"]
    return event
"""


def track(n: int) -> dict[str, Any]:
    return {
        "type": "track",
        "messageId": f"bench-{n:012d}-0123456789abcdef",
        "anonymousId": "4d5bb6a1-2c1e-4c2b-9d6f-1f0ab5c1d2e3",
        "userId": f"user-{n % 1000}",
        "event": "Order Completed",
        "properties": {
            "order_id": f"o-{n}",
            "total": 30.5,
            "currency": "EUR",
            "sku": "A-100",
            "quantity": 2,
            "coupon": None,
        },
        "context": {
            "library": {"name": "analytics-python", "version": "2.3.2"},
            "ip": "203.0.113.9",
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64)",
        },
        "timestamp": "2026-11-22T10:00:00.000Z",
        "integrations": {},
    }


def measure(pool: FunctionPool, threads: int, batch: int, duration: float) -> tuple[float, float]:
    """Events/s over all callers, and the mean seconds per call."""
    events = [track(n) for n in range(batch)]
    settings = {"name": "bench"}
    calls = [0] * threads
    stop = time.monotonic() + duration

    def caller(index: int) -> None:
        while time.monotonic() < stop:
            outcomes = pool.run(CODE, events, settings)
            assert all(o.ok for o in outcomes), outcomes[0]
            calls[index] += 1

    started = time.monotonic()
    workers = [threading.Thread(target=caller, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - started
    total = sum(calls)
    return total * batch / elapsed, elapsed * threads / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with FunctionPool(workers=args.workers) as pool:
        measure(pool, max(args.threads), args.batch, 1.0)
        for threads in args.threads:
            rate, per_call = measure(pool, threads, args.batch, args.duration)
            print(
                f"{threads} caller thread(s), {args.workers} workers, batches of {args.batch}:"
                f" {rate:,.0f} events/s, {per_call * 1000:.2f} ms per call"
            )


if __name__ == "__main__":
    main()
