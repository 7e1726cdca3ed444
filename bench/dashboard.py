"""Dashboard benchmark: every page's HTML time with 1M events in the log and 50
destinations, and what an open debugger stream costs ingestion at 5,000 events/s.

    .venv/bin/python bench/dashboard.py [--events N] [--destinations N] [--rate EVENTS_S]
                                        [--duration S] [--requests N]

- pages: the log is filled with N events (default 1,000,000, 100 per request, received
  over the last two hours) before the first start, 50 webhook destinations are declared
  (disabled: their workers would deliver to nowhere), the built-in warehouse is
  disabled as in bench/ingest.py; `trackway serve` runs pinned to CPU 0. Each page of
  the navigation and the debugger is fetched `--requests` times by a signed-in client
  (on CPU 1); target: every page's p95 < 200 ms.
- stream: `--rate` events/s (default 5,000, as 100-event /v1/batch requests paced on a
  monotonic schedule) for `--duration` s, once without and once with a signed-in
  debugger stream reading; compared: the server's CPU seconds per 1,000 events and the
  request latency. Target: the stream adds at most 5 %. The stream's own count (records
  shown + left out by sampling) must cover every event sent.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from ingest import BenchError, Server, code_version  # noqa: E402
from trackway import codec  # noqa: E402
from trackway.storage.dedup import message_hash  # noqa: E402
from trackway.storage.records import AcceptedEvent, IngestBatch  # noqa: E402
from trackway.storage.sqlite.log import SQLiteEventLog  # noqa: E402

TARGET_PAGE_S = 0.200
TARGET_SLOWDOWN = 0.05
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def fill_log(data_dir: Path, events: int) -> None:
    """`events` events of source 1 (the default source the first start creates), in
    100-event requests received evenly over the last two hours."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log = SQLiteEventLog(data_dir / "log.db", retention_s=7 * 86400)
    log.start()
    now_ms = int(time.time() * 1000)
    batches = events // 100

    def batch(i: int) -> IngestBatch:
        ids = [f"{i}-{j}" for j in range(100)]
        body = [
            {"messageId": m, "type": "track", "event": "Viewed", "userId": f"u{i % 1000}"}
            for m in ids
        ]
        at = now_ms - 7_200_000 + i * 7_200_000 // batches
        accepted = [AcceptedEvent(m, message_hash(1, m)) for m in ids]
        return IngestBatch(1, at, accepted, codec.dumps(body))

    async def run() -> None:
        for start in range(0, batches, 500):
            await asyncio.gather(*(log.append(batch(i)) for i in range(start, start + 500)))

    try:
        asyncio.run(run())
    finally:
        log.close()


def workspace(destinations: int) -> str:
    hooks = "".join(
        f"  - name: hook-{n}\n    type: webhook\n    enabled: false\n"
        f"    settings: {{url: 'http://127.0.0.1:9/in'}}\n"
        "    delivery: {allow_private_addresses: true}\n"
        for n in range(destinations)
    )
    return f"destinations:\n{hooks}"


def signed_in(url: str, token: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=30)
    form = client.get("/signin").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    if csrf is None:
        raise BenchError("no sign-in form at /signin")
    r = client.post("/signin", data={"csrf": csrf.group(1), "token": token})
    if r.status_code != 303:
        raise BenchError(f"sign-in failed: {r.status_code}")
    return client


def time_pages(client: httpx.Client, paths: list[str], requests: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path in paths:
        client.get(path)  # warm
        times = []
        for _ in range(requests):
            start = time.perf_counter()
            r = client.get(path)
            times.append(time.perf_counter() - start)
            if r.status_code != 200:
                raise BenchError(f"GET {path}: {r.status_code}")
        times.sort()
        out[path] = {
            "p50_ms": round(statistics.median(times) * 1000, 1),
            "p95_ms": round(times[int(len(times) * 0.95) - 1] * 1000, 1),
            "max_ms": round(times[-1] * 1000, 1),
        }
    return out


def process_cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def send_at_rate(url: str, write_key: str, rate: int, duration: float) -> list[float]:
    """Sends `rate` events/s in 100-event batches; returns each request's latency."""
    per_s = rate / 100
    latencies: list[float] = []

    async def run() -> None:
        async with httpx.AsyncClient(base_url=url, auth=(write_key, ""), timeout=30) as c:
            start = time.monotonic()
            tasks = []

            async def one(i: int) -> None:
                body = {
                    "batch": [
                        {"type": "track", "event": "Load", "userId": "u", "messageId": f"{i}-{j}"}
                        for j in range(100)
                    ]
                }
                sent = time.perf_counter()
                r = await c.post("/v1/batch", content=codec.dumps(body))
                latencies.append(time.perf_counter() - sent)
                if r.status_code != 200:
                    raise BenchError(f"/v1/batch: {r.status_code} {r.text}")

            for i in range(int(per_s * duration)):
                delay = start + i / per_s - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(i + int(time.time() * 1000) * 1000)))
            await asyncio.gather(*tasks)

    asyncio.run(run())
    return latencies


class StreamReader(threading.Thread):
    """A signed-in debugger stream, counting the records it shows and those it says
    it left out."""

    def __init__(self, url: str, token: str, source: str) -> None:
        super().__init__(daemon=True)
        self.client = signed_in(url, token)
        self.source = source
        self.shown = 0
        self.left_out = 0
        self.connected = threading.Event()
        self._halt = threading.Event()

    def run(self) -> None:
        try:
            self._read()
        except httpx.HTTPError:
            if not self._halt.is_set():  # else: closed by stop()
                raise

    def _read(self) -> None:
        with self.client.stream("GET", f"/sources/{self.source}/stream") as r:
            event = ""
            for line in r.iter_lines():
                self.connected.set()
                if self._halt.is_set():
                    return
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    if event in ("sampled", "overflow"):
                        data = codec.loads(line[6:])
                        self.left_out += data.get("skipped", 0) + data.get("dropped", 0)
                    else:
                        self.shown += 1

    def stop(self) -> None:
        self._halt.set()
        self.client.close()


def measure_ingest(server: Server, args: argparse.Namespace, stream: bool) -> dict[str, Any]:
    reader = None
    if stream:
        reader = StreamReader(server.url, os.environ["TRACKWAY_ADMIN_TOKEN"], "default")
        reader.start()
        if not reader.connected.wait(10):
            raise BenchError("the debugger stream did not connect")
    server.settle()
    cpu_before = process_cpu_s(server.pid)
    latencies = send_at_rate(server.url, server.write_key, args.rate, args.duration)
    server.settle()
    cpu = process_cpu_s(server.pid) - cpu_before
    sent = len(latencies) * 100
    latencies.sort()
    out: dict[str, Any] = {
        "events": sent,
        "server_cpu_s_per_1000": round(cpu / sent * 1000, 4),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1),
    }
    if reader is not None:
        time.sleep(1)  # the stream's last records are on their way after the settle
        out.update(stream_shown=reader.shown, stream_left_out=reader.left_out)
        reader.stop()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--destinations", type=int, default=50)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--rate", type=int, default=5_000)
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args()
    os.environ["TRACKWAY_ADMIN_TOKEN"] = "tw_" + secrets.token_urlsafe(24)
    print(f"trackway {code_version()}; cpus {os.cpu_count()}")
    with tempfile.TemporaryDirectory(prefix="trackway-bench-dashboard-") as tmp:
        data_dir = Path(tmp) / "data"
        start = time.monotonic()
        fill_log(data_dir, args.events)
        print(f"filled the log with {args.events:,} events in {time.monotonic() - start:.1f} s")
        ws = Path(tmp) / f"hooks-{uuid.uuid4().hex[:6]}.yaml"
        ws.write_text(workspace(args.destinations))
        server = Server(data_dir, "0", "full", warehouse=False, database=None)
        try:
            os.sched_setaffinity(0, {1})
            trackway = Path(sys.executable).with_name("trackway")
            subprocess.run(
                [str(trackway), "apply", str(ws), "--data-dir", str(data_dir)],
                check=True,
                capture_output=True,
            )
            time.sleep(2)  # the server picks up the destinations within about a second
            client = signed_in(server.url, os.environ["TRACKWAY_ADMIN_TOKEN"])
            try:
                pages = time_pages(client, ["/", "/sources", "/sources/default"], args.requests)
            finally:
                client.close()
            for path, t in pages.items():
                print(
                    f"GET {path:<18} p50 {t['p50_ms']:>6} ms  p95 {t['p95_ms']:>6} ms"
                    f"  max {t['max_ms']:>6} ms"
                )
            without = measure_ingest(server, args, stream=False)
            with_stream = measure_ingest(server, args, stream=True)
        finally:
            server.stop()
    print(f"ingest at {args.rate:,} events/s without the stream: {without}")
    print(f"ingest at {args.rate:,} events/s with the stream:    {with_stream}")
    slowdown = with_stream["server_cpu_s_per_1000"] / without["server_cpu_s_per_1000"] - 1
    print(f"server CPU per event with the stream: {slowdown:+.1%}")
    covered = with_stream["stream_shown"] + with_stream["stream_left_out"]
    ok = all(t["p95_ms"] < TARGET_PAGE_S * 1000 for t in pages.values())
    ok = ok and slowdown <= TARGET_SLOWDOWN and covered >= with_stream["events"]
    print(f"stream covered {covered:,} of {with_stream['events']:,} events")
    print("all targets met" if ok else "a target was missed")
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
