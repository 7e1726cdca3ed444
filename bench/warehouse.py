"""Warehouse loading benchmark: Trackway's loader and dlt, side by side, same events.

    .venv/bin/python bench/warehouse.py [--events 200000] [--batch 10000]
                                        [--lag-seconds 30] [--lag-rate 5000]

1. Writes `--events` generated track events (20 event names, properties that appear
   and change type as the run goes on, nested objects) into a real Trackway event log.
2. Trackway: the warehouse loader reads that log and loads it into a fresh DuckDB file
   (`tracks` plus one table per event), micro-batches of `--batch` events, in its own
   process (its peak RSS is that process's; its CPU time and its planning process's are
   reported too: on two cores both are CPU-bound, so they say where the time goes).
3. dlt (the version installed), destination duckdb, parquet loader files, the same
   micro-batches of the same events read from the same log, into `tracks` and one
   table per event (write disposition `append`, dlt's fastest), in its own process.
4. End-to-end lag: a real `trackway serve` receives `--lag-rate` events/s for
   `--lag-seconds`; a loader thread (default settings: a micro-batch every 5 s or
   10,000 events) loads them; lag = commit time of the micro-batch minus the event's
   receivedAt, for the oldest event of each micro-batch.

Targets: >= 25,000 events/s into DuckDB, >= 7x dlt, peak RSS <= 400 MB, lag <= 10 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from trackway import codec  # noqa: E402
from trackway.storage.dedup import message_hash  # noqa: E402
from trackway.storage.records import AcceptedEvent, IngestBatch  # noqa: E402
from trackway.storage.sqlite.log import SQLiteEventLog  # noqa: E402

TARGET_EVENTS_S = 25_000
TARGET_RATIO = 7.0
TARGET_RSS_MB = 400
TARGET_LAG_S = 10.0
EVENT_NAMES = [
    "Order Completed",
    "Product Viewed",
    "Product Added",
    "Cart Viewed",
    "Checkout Started",
    "Payment Info Entered",
    "Coupon Applied",
    "Signed Up",
    "Logged In",
    "Page Scrolled",
    "Video Played",
    "Video Paused",
    "Search Performed",
    "Filter Applied",
    "Item Shared",
    "Review Submitted",
    "Subscription Started",
    "Subscription Cancelled",
    "Notification Opened",
    "Feature Used",
]


# -- the events ---------------------------------------------------------------------------


def generate(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """Track events as the log stores them; each event name gains properties as the
    run goes on (new columns), and a few change type (widening, rejected values)."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        name = EVENT_NAMES[i % len(EVENT_NAMES)]
        stage = i * 5 // count  # 0..4: five generations of the schema
        props: dict[str, Any] = {
            "productId": f"p-{rng.randrange(5000)}",
            "price": round(rng.uniform(1, 500), 2),
            "quantity": rng.randrange(1, 10),
            "currency": "EUR",
            "inStock": rng.random() < 0.8,
            "product": {"category": f"c-{rng.randrange(40)}", "brand": f"b-{rng.randrange(90)}"},
        }
        for extra in range(stage * 2):
            props[f"attr{extra}"] = f"v{rng.randrange(100)}"
        if stage >= 2:
            props["discount"] = rng.randrange(0, 50) if stage == 2 else rng.uniform(0, 50)
        if stage >= 3:
            props["shippedAt"] = f"2026-11-22T10:{i % 60:02d}:00Z"
        sent = f"2026-11-22T10:00:00.{i % 1_000_000:06d}Z"
        out.append(
            {
                "messageId": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "type": "track",
                "userId": f"user-{rng.randrange(20_000)}",
                "anonymousId": f"anon-{rng.randrange(50_000)}",
                "event": name,
                "properties": props,
                "context": {
                    "library": {"name": "analytics-python", "version": "2.3.4"},
                    "ip": f"10.0.{rng.randrange(256)}.{rng.randrange(256)}",
                    "locale": "de-DE",
                    "page": {"path": f"/p/{i % 300}", "title": "Shop"},
                },
                "timestamp": sent,
                "originalTimestamp": sent,
                "sentAt": sent,
                "receivedAt": sent,
            }
        )
    return out


def write_log(path: Path, bodies: list[dict[str, Any]]) -> None:
    log = SQLiteEventLog(path, synchronous="normal")
    log.start()

    async def append() -> None:
        for i in range(0, len(bodies), 1000):
            chunk = bodies[i : i + 1000]
            events = [AcceptedEvent(b["messageId"], message_hash(1, b["messageId"])) for b in chunk]
            await log.append(IngestBatch(1, int(time.time() * 1000), events, codec.dumps(chunk)))

    try:
        asyncio.run(append())
    finally:
        log.close()


# -- the two loaders, each in its own process ------------------------------------------------


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM; ru_maxrss would count the parent's image from
    before exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    # The kernel's list of each thread's children is cheap to read; scanning /proc (its
    # fallback) cost ~4 ms per sample here, ~1 s of the loader's CPU in a run.
    tasks = list(Path(f"/proc/{pid}/task").glob("*/children"))
    if tasks:
        found = []
        for task in tasks:
            try:
                found += [int(c) for c in task.read_text().split()]
            except OSError:  # the thread ended meanwhile
                continue
        return found
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


class TotalRss:
    """Samples the RSS of this process plus its children (the loader plans in a child
    process) every 50 ms; `peak_mb` is the highest sum seen."""

    def __init__(self) -> None:
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TotalRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.wait(0.05):
            total = _rss_kb(me) + sum(_rss_kb(child) for child in _children(me))
            self.peak_kb = max(self.peak_kb, total)

    @property
    def peak_mb(self) -> float:
        return self.peak_kb / 1024


def run_trackway(work: Path, batch: int) -> dict[str, Any]:
    from trackway.warehouse.config import WarehouseSpec
    from trackway.warehouse.duckdb import DuckDBWarehouse
    from trackway.warehouse.loader import LoadResult, WarehouseLoader

    log = SQLiteEventLog(work / "log.db")
    warehouse = DuckDBWarehouse(work / "trackway.duckdb")
    spec = WarehouseSpec(name="bench", batch_size=batch)
    loader = WarehouseLoader(spec, warehouse, log, lambda: [(1, "default")])
    totals = {"events": 0, "rows": 0, "rejected": 0}

    def count(result: LoadResult) -> None:
        totals["events"] += result.events
        totals["rows"] += result.rows
        totals["rejected"] += result.rejected

    start, cpu_start = time.perf_counter(), time.process_time()
    with TotalRss() as total_rss:
        loader.catch_up(on_batch=count)  # what a loader does with a backlog
    seconds = time.perf_counter() - start
    cpu_s = time.process_time() - cpu_start
    child = resource.getrusage(resource.RUSAGE_CHILDREN)  # the planning process, ended
    log.close()
    tables = warehouse.query(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'default_'", 1, 60, []
    ).rows[0][0]
    tracks = warehouse.query("SELECT count(*) FROM default_.tracks", 1, 60, []).rows[0][0]
    return {
        "events": totals["events"],
        "rows": totals["rows"],
        "rejected_values": totals["rejected"],
        "tables": tables,
        "tracks_rows": tracks,
        "seconds": seconds,
        "peak_rss_mb": peak_rss_mb(),
        "peak_total_rss_mb": total_rss.peak_mb,
        "cpu_s": cpu_s,
        "planning_cpu_s": child.ru_utime + child.ru_stime,
    }


def run_dlt(work: Path, batch: int) -> dict[str, Any]:
    import dlt

    from trackway.warehouse.naming import event_table

    log = SQLiteEventLog(work / "log.db")
    pipeline = dlt.pipeline(
        pipeline_name="bench",
        destination=dlt.destinations.duckdb(str(work / "dlt.duckdb")),
        dataset_name="default_",
        pipelines_dir=str(work / "dlt-pipelines"),
    )
    events = 0
    after = 0
    start = time.perf_counter()
    while batch_events := log.read(after, batch):
        after = batch_events[-1].position
        tracks = []
        per_event: dict[str, list[dict[str, Any]]] = {}
        for e in batch_events:
            b = e.body
            common = {
                "id": b["messageId"],
                "anonymous_id": b.get("anonymousId"),
                "user_id": b.get("userId"),
                "received_at": b["receivedAt"],
                "sent_at": b.get("sentAt"),
                "timestamp": b["timestamp"],
                "original_timestamp": b.get("originalTimestamp"),
                "event": event_table(b["event"]),
                "event_text": b["event"],
                "context": b["context"],
            }
            tracks.append(common)
            per_event.setdefault(common["event"], []).append({**common, **b["properties"]})
        resources = [dlt.resource(tracks, name="tracks", write_disposition="append")]
        resources += [
            dlt.resource(rows, name=name, write_disposition="append")
            for name, rows in per_event.items()
        ]
        pipeline.run(resources, loader_file_format="parquet")
        events += len(batch_events)
    seconds = time.perf_counter() - start
    log.close()
    return {"events": events, "seconds": seconds, "peak_rss_mb": peak_rss_mb()}


# -- end-to-end lag ------------------------------------------------------------------------


def run_lag(work: Path, rate: int, duration: float) -> dict[str, Any]:
    import httpx

    from trackway.storage.sqlite.state import SQLiteStateStore
    from trackway.warehouse.config import default_spec
    from trackway.warehouse.engines import open_warehouse, sources
    from trackway.warehouse.loader import LoaderThread, LoadResult, WarehouseLoader

    data = work / "lag"
    server = subprocess.Popen(
        [sys.executable, "-m", "trackway", "serve", "--port", "0", "--data-dir", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )
    assert server.stdout is not None
    url = ""
    for line in server.stdout:
        if line.startswith("Listening on "):
            url = line.split()[-1]
        if line.startswith("Ready."):
            break
    threading.Thread(target=server.stdout.read, daemon=True).start()  # keep the pipe drained
    store = SQLiteStateStore(data / "state.db")
    source = store.get_source("default")
    key = next(k.key for k in store.write_keys(source.id) if k.expires_at is None)
    log = SQLiteEventLog(data / "log.db")
    spec = default_spec()
    lags: list[float] = []
    loaded = [0]

    def on_load(result: LoadResult) -> None:
        lags.append((result.committed_ms - result.oldest_received_ms) / 1000)
        loaded[0] += result.events

    warehouse = open_warehouse(spec, data)
    loader = WarehouseLoader(spec, warehouse, log, lambda: sources(store))

    def in_warehouse() -> int:
        """Events loaded by any loader: the server's own loader fills the same
        warehouse (whichever takes a micro-batch first loads it); lag is measured on
        this process's loads only."""
        try:
            stats = warehouse.stats()
        except Exception:  # the file is busy: ask again
            return 0
        return stats.events if stats is not None else 0

    thread = LoaderThread(loader, on_load=on_load)
    thread.start()
    sent = 0
    per_request = 100
    interval = per_request / rate
    bodies = generate(int(rate * duration), seed=11)
    try:
        with httpx.Client(base_url=url, auth=(key, ""), timeout=30) as http:
            started = time.monotonic()
            for i in range(0, len(bodies), per_request):
                chunk = [
                    {k: v for k, v in b.items() if k not in ("receivedAt", "sentAt")}
                    for b in bodies[i : i + per_request]
                ]
                answer = http.post("/v1/batch", json={"batch": chunk})
                answer.raise_for_status()
                sent += len(chunk)
                pause = started + (i + per_request) * interval / per_request - time.monotonic()
                if pause > 0:
                    time.sleep(pause)  # pace the sender at the target rate
            send_seconds = time.monotonic() - started
        deadline = time.monotonic() + 60
        while in_warehouse() < sent and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        thread.stop()
        total = in_warehouse()
        log.close()
        store.close()
        server.send_signal(signal.SIGTERM)
        server.wait(60)
        if server.stdout is not None:
            server.stdout.close()
    return {
        "sent": sent,
        "loaded": total,
        "loaded_here": loaded[0],
        "achieved_rate": sent / send_seconds,
        "loads": len(lags),
        "lag_max_s": max(lags, default=float("nan")),
        "lag_median_s": statistics.median(lags) if lags else float("nan"),
    }


# -- driver --------------------------------------------------------------------------------


def phase(name: str, work: Path, batch: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--phase", name, "--work", str(work), "--batch", str(batch)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--lag-seconds", type=float, default=30.0)
    parser.add_argument("--lag-rate", type=int, default=5_000)
    parser.add_argument("--skip-dlt", action="store_true")
    parser.add_argument("--skip-lag", action="store_true")
    parser.add_argument("--phase", choices=["trackway", "dlt"], help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        run = run_trackway if args.phase == "trackway" else run_dlt
        print(json.dumps(run(args.work, args.batch)))
        return

    work = Path(tempfile.mkdtemp(prefix="trackway-bench-warehouse-"))
    try:
        print(f"generating {args.events:,} events into a Trackway log ...", flush=True)
        write_log(work / "log.db", generate(args.events))
        print("trackway loader → DuckDB ...", flush=True)
        ours = phase("trackway", work, args.batch)
        ours["events_s"] = ours["events"] / ours["seconds"]
        print(json.dumps(ours), flush=True)
        peer: dict[str, Any] | None = None
        if not args.skip_dlt:
            print("dlt → DuckDB (parquet) ...", flush=True)
            peer = phase("dlt", work, args.batch)
            peer["events_s"] = peer["events"] / peer["seconds"]
            print(json.dumps(peer), flush=True)
        lag = None
        if not args.skip_lag:
            print(f"end-to-end lag at {args.lag_rate:,} events/s ...", flush=True)
            lag = run_lag(work, args.lag_rate, args.lag_seconds)
            print(json.dumps(lag), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print()
    print("| what | result | target |")
    print("|---|---|---|")
    print(
        f"| Trackway → DuckDB | {ours['events_s']:,.0f} events/s ({ours['events']:,} events,"
        f" {ours['rows']:,} rows, {ours['tables']} tables, {ours['seconds']:.1f} s) |"
        f" >= {TARGET_EVENTS_S:,} | "
    )
    print(
        f"| CPU time: Trackway loader / its planning process | {ours['cpu_s']:.1f} s /"
        f" {ours['planning_cpu_s']:.1f} s | |"
    )
    if peer is not None:
        ratio = ours["events_s"] / peer["events_s"]
        print(
            f"| dlt → DuckDB (parquet, append) | {peer['events_s']:,.0f} events/s"
            f" ({peer['seconds']:.1f} s) | |"
        )
        print(f"| Trackway / dlt | {ratio:.1f}x | >= {TARGET_RATIO:g}x |")
        print(f"| peak RSS, dlt | {peer['peak_rss_mb']:.0f} MB | |")
    print(
        f"| peak RSS, Trackway loader + its planning process (sampled sum) |"
        f" {ours['peak_total_rss_mb']:.0f} MB (loader alone: {ours['peak_rss_mb']:.0f} MB)"
        f" | <= {TARGET_RSS_MB} MB |"
    )
    if lag is not None:
        print(
            f"| end-to-end lag at {lag['achieved_rate']:,.0f} events/s | max"
            f" {lag['lag_max_s']:.1f} s, median {lag['lag_median_s']:.1f} s over"
            f" {lag['loads']} loads of this process ({lag['loaded']:,}/{lag['sent']:,} events"
            f" loaded, {lag['loaded_here']:,} by this process) |"
            f" <= {TARGET_LAG_S:g} s |"
        )


if __name__ == "__main__":
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
    main()
