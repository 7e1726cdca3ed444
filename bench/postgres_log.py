"""How fast the PostgreSQL event log appends, storage alone (no HTTP): 100-event batches.

    .venv/bin/python bench/postgres_log.py --database postgresql://postgres@127.0.0.1/postgres
        [--seconds 10] [--appenders 64] [--variant shipped|events-pglz|events-uncompressed]

Creates a scratch database next to the one named (dropped afterwards), appends batches of
100 ~500-byte track events with unique messageIds from `--appenders` concurrent tasks (the
server's requests in flight) and prints events/s of committed appends. The variants
change how the scratch database stores the chunks' JSON (docs/decisions/0006-postgres-log.md).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from trackway import codec
from trackway.storage.dedup import message_hash
from trackway.storage.postgres.connect import connect
from trackway.storage.postgres.log import PostgresEventLog
from trackway.storage.records import AcceptedEvent, IngestBatch

VARIANTS = ("shipped", "events-pglz", "events-uncompressed")
_SCHEMA_CHANGES = {
    "events-pglz": "ALTER TABLE chunks ALTER COLUMN events SET COMPRESSION pglz",
    "events-uncompressed": "ALTER TABLE chunks ALTER COLUMN events SET STORAGE EXTERNAL",
}


def make_batch(nonce: str, n: int) -> IngestBatch:
    ids = [f"{nonce}-{n}-{i}" for i in range(100)]
    events = [
        {
            "type": "track",
            "event": "Order Completed",
            "userId": f"user-{n % 1000}",
            "messageId": mid,
            "timestamp": "2026-11-22T10:00:00.000Z",
            "receivedAt": "2026-11-22T10:00:00.123Z",
            "properties": {"order_id": mid, "revenue": 42.5, "currency": "EUR", "items": 3},
            "context": {
                "library": {"name": "analytics-python", "version": "2.3.3"},
                "ip": "127.0.0.1",
                "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36",
            },
        }
        for mid in ids
    ]
    return IngestBatch(
        1,
        int(time.time() * 1000),
        [AcceptedEvent(mid, message_hash(1, mid)) for mid in ids],
        codec.dumps(events),
    )


async def drive(log: PostgresEventLog, seconds: float, appenders: int) -> int:
    nonce = secrets.token_hex(4)
    deadline = time.monotonic() + seconds
    done = 0

    async def appender(k: int) -> None:
        nonlocal done
        n = 0
        while time.monotonic() < deadline:
            result = await log.append(make_batch(f"{nonce}-{k}", n))
            done += result.accepted
            n += 1

    await asyncio.gather(*(appender(k) for k in range(appenders)))
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", required=True, help="URL of an existing database")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--appenders", type=int, default=64)
    parser.add_argument("--variant", choices=VARIANTS, default="shipped")
    args = parser.parse_args()
    name = f"trackway_bench_{secrets.token_hex(4)}"
    admin = psycopg.connect(args.database, autocommit=True)
    admin.execute(f"CREATE DATABASE {name}")
    url = make_conninfo(**{**conninfo_to_dict(args.database), "dbname": name})
    try:
        log = PostgresEventLog(url)
        if args.variant in _SCHEMA_CHANGES:
            with connect(url) as conn:
                conn.execute(_SCHEMA_CHANGES[args.variant])
        log.start()
        try:
            asyncio.run(drive(log, 2, args.appenders))  # warm-up
            started = time.perf_counter()
            events = asyncio.run(drive(log, args.seconds, args.appenders))
            elapsed = time.perf_counter() - started
        finally:
            log.close()
        with connect(url) as conn:
            row: Any = conn.execute(
                "SELECT count(*), sum(count), pg_size_pretty(pg_database_size(current_database()))"
                " FROM chunks"
            ).fetchone()
        print(
            f"{args.variant}: {events / elapsed:,.0f} events/s"
            f" ({events:,} events in {elapsed:.1f} s; {row[0]:,} chunks; database {row[2]})"
        )
    finally:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        admin.close()


if __name__ == "__main__":
    main()
