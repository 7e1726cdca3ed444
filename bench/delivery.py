"""Delivery benchmark: events/s delivered to a batching webhook, and ingest → delivered
latency under steady load.

    .venv/bin/python bench/delivery.py [--mode throughput|latency|both] [--events N]
                                       [--rate EVENTS_S] [--duration S] [--json PATH]

It starts `trackway serve --port 0` on a fresh temporary data directory, pinned to one
CPU (`taskset -c 0`, durable `--synchronous full`, the built-in warehouse disabled as in
bench/ingest.py), and a webhook sink: a small HTTP/1.1 server in its own process
(pinned to the other CPU, with this script and the load) that answers 200 at once and
records, per request, its arrival time and the messageIds in its JSON array body. The
destination is declared with `trackway apply`:

    destinations:
      - name: sink
        type: webhook
        settings: {url: "http://127.0.0.1:PORT/hook"}
        subscriptions: [{name: all, action: send, if: all}]
        delivery: {allow_private_addresses: true, batch_size: 1000, concurrency: 4}

- throughput: N track events (default 200,000) are ingested through /v1/batch first,
  then the destination is declared (it starts at the end of the log), then
  `trackway destinations replay sink --since 1h` moves it back; events/s = N / the time
  from the cursor's move until the sink has seen all N distinct messageIds
  (target >= 20,000 events/s).
- latency: with the destination live, a separate process sends `--rate` events/s
  (100-event batches, paced on a monotonic schedule) for `--duration` s. Each event
  carries its scheduled send time (properties.sent_ns, wall clock); the sink computes
  arrival - sent for each messageId's first arrival (target p99 < 1 s at 5,000 events/s).

Both report duplicates and missing messageIds, the server's CPU and peak RSS, the
sink's own CPU per event and its capacity. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import http.client
import json
import os
import queue
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from ingest import (  # noqa: E402
    BenchError,
    RssSampler,
    Server,
    accepted,
    code_version,
    cpu_ticks,
    fs_type,
    proc_status_kb,
    summarize_profile,
    thread_cpu_s,
)

TARGET_EVENTS_S = 20_000
TARGET_P99_S = 1.0
TARGET_RATE = 5_000  # the latency target holds at this rate

DESTINATION = "sink"
_CLK_TCK = os.sysconf("SC_CLK_TCK")

EVENTS = [
    ("Product Viewed", "sku-48213", "Trail Running Shoe", "Footwear", 89.99),
    ("Product Added", "sku-10577", "Merino Wool Socks", "Apparel", 14.50),
    ("Checkout Started", "sku-88120", "Insulated Bottle", "Outdoor", 24.00),
    ("Order Completed", "sku-30451", "Rain Jacket", "Apparel", 129.00),
    ("Product Clicked", "sku-72004", "Headlamp 400lm", "Outdoor", 39.95),
    ("Cart Viewed", "sku-55290", "Running Shorts", "Apparel", 34.00),
    ("Coupon Applied", "sku-19933", "Hiking Poles", "Outdoor", 59.00),
    ("Product Reviewed", "sku-61478", "Camp Stove", "Outdoor", 74.25),
]


def make_event(message_id: str, i: int, sent_ns: int, now: str) -> dict[str, Any]:
    """A ~500-byte track event in the shape analytics-python sends (as bench/ingest.lua)."""
    name, sku, product, category, price = EVENTS[i % len(EVENTS)]
    return {
        "type": "track",
        "messageId": message_id,
        "anonymousId": f"{0x3C9F2A11 + i % 64:08x}-5e1f-4c2b-9a7d-{0x51E2D3C4B5A6 + i % 64:012x}",
        "userId": f"user-{i * 7919 % 100000:06d}",
        "event": name,
        "properties": {
            "product_id": sku,
            "name": product,
            "category": category,
            "price": price,
            "currency": "USD",
            "quantity": 1,
            "sent_ns": sent_ns,
        },
        "context": {
            "library": {"name": "analytics-python", "version": "2.3.3"},
            "ip": f"203.0.113.{i % 250 + 1}",
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0",
        },
        "timestamp": now,
        "integrations": {},
    }


def iso_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def batch_body(nonce: str, request: int, size: int, sent_ns: int) -> bytes:
    """Request `request`'s /v1/batch body: `size` events, messageIds NONCE-REQUEST-INDEX."""
    now = iso_now()
    events = [
        make_event(f"{nonce}-{request:07d}-{j:03d}", request * size + j, sent_ns, now)
        for j in range(size)
    ]
    return msgspec.json.encode({"batch": events, "sentAt": now})


def percentiles(values: list[float], points: tuple[float, ...] = (50, 95, 99)) -> dict[str, float]:
    """Nearest-rank percentiles and the maximum; {} when there are no values."""
    if not values:
        return {}
    ordered = sorted(values)
    out = {f"p{p:g}": ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] for p in points}
    out["max"] = ordered[-1]
    return out


# -- the sink (its own process) ----------------------------------------------------------


class _Props(msgspec.Struct, gc=False):
    sent_ns: int = 0


class _Event(msgspec.Struct, gc=False):
    messageId: str = ""
    properties: _Props | None = None


_DECODER = msgspec.json.Decoder(list[_Event])
_OK = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"


class SinkState:
    """What the sink has seen since the last reset."""

    def __init__(self) -> None:
        self.connections = 0  # open now, that deliveries came on
        self.reset()

    def reset(self) -> None:
        self.seen: dict[str, int] = {}  # messageId -> deliveries
        self.requests = 0
        self.events = 0
        self.bytes = 0
        self.duplicates = 0
        self.bad_bodies = 0
        self.max_batch = 0
        self.first_ns = 0  # arrival of the first delivery request
        self.last_ns = 0  # arrival of the last one
        self.last_new_ns = 0  # arrival of the last request with a messageId not seen before
        self.latencies_us: list[int] = []  # arrival - properties.sent_ns, first arrivals
        self.in_flight = 0  # deliveries not answered yet (with a delay)
        self.max_in_flight = 0
        self.max_connections = 0

    def record(self, body: bytes, arrival_ns: int) -> None:
        try:
            events = _DECODER.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError):
            self.bad_bodies += 1
            return
        self.requests += 1
        self.events += len(events)
        self.bytes += len(body)
        self.max_batch = max(self.max_batch, len(events))
        self.first_ns = self.first_ns or arrival_ns
        self.last_ns = arrival_ns
        seen = self.seen
        latencies = self.latencies_us
        new = False
        for event in events:
            mid = event.messageId
            if mid in seen:
                seen[mid] += 1
                self.duplicates += 1
                continue
            seen[mid] = 1
            new = True
            props = event.properties
            if props is not None and props.sent_ns:
                latencies.append((arrival_ns - props.sent_ns) // 1000)
        if new:
            self.last_new_ns = arrival_ns

    def stats(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "events": self.events,
            "distinct": len(self.seen),
            "duplicates": self.duplicates,
            "bad_bodies": self.bad_bodies,
            "bytes": self.bytes,
            "max_batch": self.max_batch,
            "first_ns": self.first_ns,
            "last_ns": self.last_ns,
            "last_new_ns": self.last_new_ns,
            "max_in_flight": self.max_in_flight,
            "max_connections": self.max_connections,
        }


class _SinkProtocol(asyncio.Protocol):
    """HTTP/1.1 with keep-alive and Content-Length bodies (what httpcore sends)."""

    def __init__(self, state: SinkState, delay_s: float = 0.0) -> None:
        self.state = state
        self.delay_s = delay_s
        self.buf = bytearray()
        self.head: tuple[str, str, bool] | None = None
        self.need = 0
        self.transport: Any = None
        self.delivering = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.delivering:
            self.state.connections -= 1

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        while self.transport is not None:
            if self.head is None:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(buf) > 65_536:
                        self.transport.close()
                    return
                lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
                del buf[: end + 4]
                method, path, _version = lines[0].split(" ", 2)
                length, close = 0, False
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    name = name.strip().lower()
                    if name == "content-length":
                        length = int(value)
                    elif name == "connection":
                        close = value.strip().lower() == "close"
                    elif name == "transfer-encoding":
                        self._reply(501, b"chunked bodies are not supported", close=True)
                        return
                self.head, self.need = (method, path, close), length
            if len(buf) < self.need:
                return
            body = bytes(buf[: self.need])
            del buf[: self.need]
            method, path, close = self.head
            self.head = None
            self._handle(method, path, body, close)

    def _handle(self, method: str, path: str, body: bytes, close: bool) -> None:
        state = self.state
        if method == "POST" and path == "/hook":
            arrival = time.time_ns()
            if not self.delivering:  # count the connections deliveries come on
                self.delivering = True
                state.connections += 1
                state.max_connections = max(state.max_connections, state.connections)
            if self.delay_s:  # playing a distant endpoint: answer later
                state.in_flight += 1
                state.max_in_flight = max(state.max_in_flight, state.in_flight)
                asyncio.get_running_loop().call_later(self.delay_s, self._ok, close, True)
            else:
                self._ok(close)  # answer at once, then look at the body
            state.record(body, arrival)
        elif path == "/stats":
            self._reply(200, json.dumps(state.stats()).encode(), close)
        elif path == "/latencies":
            self._reply(200, msgspec.json.encode(state.latencies_us), close)
        elif method == "POST" and path == "/reset":
            state.reset()
            self._reply(200, b"{}", close)
        else:
            self._reply(404, b"not found", close)

    def _ok(self, close: bool, delayed: bool = False) -> None:
        if delayed:
            self.state.in_flight -= 1
        if self.transport is not None:
            self.transport.write(_OK)
            if close:
                self.transport.close()

    def _reply(self, status: int, body: bytes, close: bool) -> None:
        reason = {200: "OK", 404: "Not Found", 501: "Not Implemented"}[status]
        head = f"HTTP/1.1 {status} {reason}\r\ncontent-length: {len(body)}\r\n"
        head += "content-type: application/json\r\n" if status == 200 else ""
        head += "connection: close\r\n\r\n" if close else "\r\n"
        self.transport.write(head.encode() + body)
        if close:
            self.transport.close()


def sink_main(argv: list[str]) -> int:
    """`delivery.py _sink [DELAY_MS]`: serve until SIGTERM (answering deliveries after
    DELAY_MS, default 0); prints `SINK_PORT n` when listening."""
    import gc

    gc.disable()  # the sink creates no cycles; its ids dict would make collections slow
    state = SinkState()
    delay_s = float(argv[0]) / 1000 if argv else 0.0

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: _SinkProtocol(state, delay_s),
            "127.0.0.1",
            0,
            backlog=1024,
        )
        port = server.sockets[0].getsockname()[1]
        print(f"SINK_PORT {port}", flush=True)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        await stop.wait()
        server.close()

    try:
        import uvloop  # uvicorn[standard] brings it
    except ImportError:
        asyncio.run(serve())
    else:
        uvloop.run(serve())
    return 0


class Sink:
    """The sink process, pinned to one CPU, and its control endpoints."""

    def __init__(self, cpu: int, delay_ms: float = 0.0) -> None:
        command = ["taskset", "-c", str(cpu), sys.executable, __file__, "_sink", str(delay_ms)]
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=BENCH_DIR)
        self.pid = self.proc.pid
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("SINK_PORT "):
            self.proc.kill()
            raise BenchError(f"the sink did not start: {line!r}")
        self.port = int(line.split()[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def _call(self, method: str, path: str) -> bytes:
        req = urllib.request.Request(self.url + path, method=method, data=b"" if method else None)
        with urllib.request.urlopen(req, timeout=30) as resp:
            body: bytes = resp.read()
        return body

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self._call("GET", "/stats"))
        return result

    def latencies_us(self) -> list[int]:
        result: list[int] = json.loads(self._call("GET", "/latencies"))
        return result

    def reset(self) -> None:
        self._call("POST", "/reset")

    def cpu_s(self) -> float:
        return sum(thread_cpu_s(self.pid).values())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def delivered_shape_body(nonce: str, request: int, size: int) -> bytes:
    """A webhook batch as the sink gets it: a JSON array of stored (normalized) events."""
    now = iso_now()
    events = []
    for j in range(size):
        event = make_event(f"{nonce}-{request:07d}-{j:03d}", request * size + j, 0, now)
        del event["properties"]["sent_ns"]
        event.update(
            originalTimestamp=now,
            sentAt=now,
            receivedAt=now,
            context={**event["context"], "library": {"name": "analytics-python"}},
        )
        events.append(event)
    return msgspec.json.encode(events)


def sink_capacity(sink: Sink, seconds: float, connections: int = 4) -> dict[str, Any]:
    """Drive the sink alone with 1,000-event batches from this process (same CPU as the
    sink, so a lower bound): events/s it takes in and its CPU per event."""
    if seconds <= 0:
        return {}
    bodies = []
    for r in range(16):  # 16,000 distinct ids: later rounds are counted as duplicates
        body = delivered_shape_body("capacity", r, 1000)
        head = "POST /hook HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        head += f"content-length: {len(body)}\r\n\r\n"
        bodies.append(head.encode() + body)
    sink.reset()
    stop = threading.Event()
    sent = [0] * connections

    def drive(k: int) -> None:
        with socket.create_connection(("127.0.0.1", sink.port)) as sock:
            i = k
            while not stop.is_set():
                sock.sendall(bodies[i % len(bodies)])
                answer = b""
                while not answer.endswith(b"\r\n\r\n"):
                    chunk = sock.recv(4096)
                    if not chunk:
                        return
                    answer += chunk
                sent[k] += 1
                i += connections

    cpu0 = sink.cpu_s()
    started = time.perf_counter()
    threads = [threading.Thread(target=drive, args=(k,)) for k in range(connections)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    stats = sink.stats()
    cpu = sink.cpu_s() - cpu0
    sink.reset()
    return {
        "events_per_s": stats["events"] / elapsed,
        "requests": stats["requests"],
        "bytes_per_event": stats["bytes"] / max(1, stats["events"]),
        "cpu_us_per_event": cpu * 1e6 / max(1, stats["events"]),
        "sink_cpu_share": cpu / elapsed,
    }


# -- sending events (the load) -----------------------------------------------------------


class Poster:
    """One keep-alive connection posting /v1/batch bodies with the write key."""

    def __init__(self, url: str, write_key: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        auth = base64.b64encode(f"{write_key}:".encode()).decode()
        self.headers = {"Authorization": f"Basic {auth}", "Content-Type": "application/json"}
        self.conn: http.client.HTTPConnection | None = None

    def post(self, body: bytes) -> int:
        """The status, or 0 on a connection error (the connection is opened again)."""
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            self.conn.request("POST", "/v1/batch", body, self.headers)
            resp = self.conn.getresponse()
            resp.read()
            return resp.status
        except (OSError, http.client.HTTPException):
            if self.conn is not None:
                self.conn.close()
            self.conn = None
            return 0


def ingest_events(
    url: str, write_key: str, n: int, batch: int, nonce: str, connections: int = 8
) -> float:
    """Post `n` events (closed loop, `connections` at once); every request must get a
    200 (429/5xx and connection errors are tried again). Returns the seconds taken."""
    requests = (n + batch - 1) // batch
    todo: queue.SimpleQueue[int | None] = queue.SimpleQueue()
    for r in range(requests):
        todo.put(r)
    for _ in range(connections):
        todo.put(None)
    failed: list[str] = []

    def work() -> None:
        poster = Poster(url, write_key)
        while (r := todo.get()) is not None:
            size = min(batch, n - r * batch)
            body = batch_body(nonce, r, size, time.time_ns())
            for attempt in range(20):
                status = poster.post(body)
                if status == 200:
                    break
                if status and status != 429 and status < 500:
                    failed.append(f"request {r}: HTTP {status}")
                    return
                time.sleep(0.1 * (attempt + 1))
            else:
                failed.append(f"request {r}: no 200 after 20 attempts (last: {status})")
                return

    started = time.perf_counter()
    threads = [threading.Thread(target=work) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failed:
        raise BenchError("ingesting failed: " + "; ".join(failed[:5]))
    return time.perf_counter() - started


def sender_main(argv: list[str]) -> int:
    """`delivery.py _sender URL KEY RATE DURATION BATCH NONCE CONNECTIONS`: open-loop load.

    Request i is due at start + i * BATCH / RATE on the monotonic clock; a dispatcher
    hands it to the first free connection at that time. Its events carry the scheduled
    time (wall clock) as properties.sent_ns, so a request that waits for a connection
    (the server answering slowly) counts that wait in the latency (no coordinated
    omission). Prints one line `SENDER_RESULT {json}`.
    """
    url, key, rate_s, duration_s, batch_s, nonce, connections_s = argv
    rate, duration, batch = float(rate_s), float(duration_s), int(batch_s)
    connections = int(connections_s)
    interval_ns = int(batch / rate * 1e9)
    count = int(duration * rate / batch)
    todo: queue.SimpleQueue[tuple[int, int] | None] = queue.SimpleQueue()
    lock = threading.Lock()
    statuses: dict[str, int] = {}
    response_ms: list[float] = []  # from the scheduled time to the answer
    service_ms: list[float] = []  # from the actual send to the answer
    start_delay_ms: list[float] = []  # how late a request started (waiting for a connection)

    def work() -> None:
        poster = Poster(url, key)
        while (item := todo.get()) is not None:
            r, scheduled_wall = item
            started_wall = time.time_ns()
            body = batch_body(nonce, r, batch, scheduled_wall)
            sent = time.perf_counter()
            status = poster.post(body)
            done = time.perf_counter()
            with lock:
                statuses[str(status)] = statuses.get(str(status), 0) + 1
                service_ms.append((done - sent) * 1000)
                response_ms.append((started_wall - scheduled_wall) / 1e6 + (done - sent) * 1000)
                start_delay_ms.append((started_wall - scheduled_wall) / 1e6)

    threads = [threading.Thread(target=work) for _ in range(connections)]
    for t in threads:
        t.start()
    mono0 = time.monotonic_ns() + 100_000_000
    wall0 = time.time_ns() + (mono0 - time.monotonic_ns())
    for r in range(count):
        delay = (mono0 + r * interval_ns - time.monotonic_ns()) / 1e9
        if delay > 0:
            time.sleep(delay)
        todo.put((r, wall0 + r * interval_ns))
    for _ in threads:
        todo.put(None)
    for t in threads:
        t.join()
    result = {
        "requests": count,
        "events": count * batch,
        "statuses": statuses,
        "events_ok": statuses.get("200", 0) * batch,
        "duration_s": (time.monotonic_ns() - mono0) / 1e9,
        "ingest_response_ms": percentiles(response_ms),
        "ingest_service_ms": percentiles(service_ms),
        "start_delay_ms": percentiles(start_delay_ms),
    }
    print("SENDER_RESULT " + json.dumps(result), flush=True)
    return 0


# -- the server side ---------------------------------------------------------------------


def trackway_command() -> list[str]:
    trackway = Path(sys.executable).with_name("trackway")
    return [str(trackway)] if trackway.exists() else [sys.executable, "-m", "trackway"]


def declare_destination(data_dir: Path, sink: Sink, batch_size: int, concurrency: int) -> None:
    workspace = data_dir.parent / "delivery-bench.yaml"
    workspace.write_text(
        "destinations:\n"
        f"  - name: {DESTINATION}\n"
        "    type: webhook\n"
        f'    settings: {{url: "{sink.url}/hook"}}\n'
        "    subscriptions: [{name: all, action: send, if: all}]\n"
        "    delivery: {allow_private_addresses: true,"
        f" batch_size: {batch_size}, concurrency: {concurrency}}}\n"
    )
    out = subprocess.run(
        [*trackway_command(), "apply", str(workspace), "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise BenchError(f"trackway apply failed:\n{out.stdout}{out.stderr}")


def wait_for_worker(data_dir: Path, timeout: float = 30) -> None:
    """Until the server's worker for the destination has started (its cursor exists)."""
    deadline = time.monotonic() + timeout
    path = data_dir / "destinations.db"
    while time.monotonic() < deadline:
        if path.exists():
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
            try:
                row = conn.execute(
                    "SELECT position FROM cursors WHERE destination = ?", (DESTINATION,)
                ).fetchone()
            except sqlite3.OperationalError:
                row = None
            finally:
                conn.close()
            if row is not None:
                return
        time.sleep(0.05)
    raise BenchError(f"the server did not start the destination within {timeout:.0f} s")


def replay(data_dir: Path) -> tuple[int, float, str]:
    """`trackway destinations replay sink --since 1h`: the wall-clock ns at which it
    said the cursor moved (its output line), the command's own time, and that line."""
    started = time.perf_counter()
    command = [*trackway_command(), "destinations", "replay", DESTINATION, "--since", "1h"]
    proc = subprocess.Popen(
        [*command, "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    moved_ns = 0
    said = ""
    for line in proc.stdout:
        if line.startswith("Replaying") and not moved_ns:
            moved_ns = time.time_ns()
            said = line.strip()
    proc.wait()
    if proc.returncode != 0 or not moved_ns:
        raise BenchError(f"trackway destinations replay failed:\n{said}")
    return moved_ns, time.perf_counter() - started, said


def delivery_report(data_dir: Path) -> dict[str, Any]:
    """The server's own view (`trackway destinations delivery sink --json`)."""
    command = [*trackway_command(), "destinations", "delivery", DESTINATION, "--window", "1h"]
    out = subprocess.run(
        [*command, "--errors", "3", "--data-dir", str(data_dir), "--json"],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        return {"error": (out.stdout + out.stderr).strip()}
    report: dict[str, Any] = json.loads(out.stdout)
    return report


class Profiler:
    """py-spy on the server (on the load CPU) until stopped; raw collapsed stacks."""

    def __init__(self, pid: int, cpu: int, out: Path) -> None:
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if not Path(py_spy).exists():
            raise BenchError("--profile needs py-spy: .venv/bin/pip install py-spy")
        self.out = out
        command = ["taskset", "-c", str(cpu), py_spy, "record", "--pid", str(pid)]
        command += ["--rate", "100", "--nonblocking", "--threads", "--format", "raw"]
        command += ["--output", str(out)]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return "py-spy did not stop"
        if not self.out.exists():
            return "py-spy wrote no profile"
        return f"profile (py-spy raw, collapsed stacks): {self.out}\n" + summarize_profile(self.out)


@dataclass
class Usage:
    """Server and sink CPU and the server core's busy time over a measured phase."""

    server_pid: int
    server_cpu: int
    sink: Sink
    started: float = 0.0
    _threads: dict[int, float] = field(default_factory=dict)
    _ticks: dict[str, int] = field(default_factory=dict)
    _sink_cpu: float = 0.0

    def start(self) -> None:
        self.started = time.perf_counter()
        self._threads = thread_cpu_s(self.server_pid)
        self._ticks = cpu_ticks(self.server_cpu)
        self._sink_cpu = self.sink.cpu_s()

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self.started
        after = thread_cpu_s(self.server_pid)
        ticks = cpu_ticks(self.server_cpu)
        server = sum(after.values()) - sum(v for t, v in self._threads.items() if t in after)
        loop = after.get(self.server_pid, 0) - self._threads.get(self.server_pid, 0)
        total_ticks = max(1, ticks["total"] - self._ticks["total"])
        busy = (ticks["busy"] - self._ticks["busy"]) / _CLK_TCK
        return {
            "wall_s": wall,
            "server_cpu_s": server,
            "server_event_loop_s": loop,
            "server_other_threads_s": server - loop,
            "server_core_busy": (ticks["busy"] - self._ticks["busy"]) / total_ticks,
            "server_core_not_server": max(0.0, busy - server) * _CLK_TCK / total_ticks,
            "sink_cpu_s": self.sink.cpu_s() - self._sink_cpu,
        }


@dataclass
class ModeResult:
    mode: str
    numbers: dict[str, Any]
    checks: list[tuple[str, bool]]
    notes: list[str]


def start_server(args: argparse.Namespace, mode: str) -> tuple[Server, Path, Path]:
    parent = Path(args.data_dir) if args.data_dir else Path(tempfile.gettempdir())
    kind = fs_type(parent)
    if kind in ("tmpfs", "ramfs"):
        print(f"  warning: {parent} is {kind}; fsync costs nothing there (use --data-dir)")
    tmp = Path(tempfile.mkdtemp(prefix=f"trackway-bench-delivery-{mode}-", dir=parent))
    data_dir = tmp / "data"
    try:
        server = Server(
            data_dir, str(args.server_cpu), args.synchronous, warehouse=False, database=None
        )
    except BaseException:
        if not args.keep_data:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(
        f"  server pid {server.pid} on CPU {sorted(os.sched_getaffinity(server.pid))},"
        f" {server.url}, data in {data_dir}",
        flush=True,
    )
    return server, tmp, data_dir


def finish_server(server: Server, tmp: Path, data_dir: Path, keep: bool) -> None:
    try:
        if server.proc.poll() is None:
            code = server.stop()
            if code not in (0, -signal.SIGTERM):
                print(f"  warning: the server exited with {code}")
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
        if keep:
            print(f"  kept {data_dir}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def wait_for_sink(
    sink: Sink, expected: int, stall_s: float, poll_s: float = 0.02
) -> tuple[dict[str, Any], bool]:
    """Poll the sink until it has seen `expected` distinct messageIds, or nothing new
    arrived for `stall_s` seconds. Returns its stats and whether all arrived."""
    last_distinct, last_change = -1, time.monotonic()
    while True:
        stats = sink.stats()
        if stats["distinct"] >= expected:
            return stats, True
        if stats["distinct"] != last_distinct:
            last_distinct, last_change = stats["distinct"], time.monotonic()
        elif time.monotonic() - last_change > stall_s:
            return stats, False
        time.sleep(poll_s)


def run_throughput(args: argparse.Namespace, sink: Sink) -> ModeResult:
    n = args.events
    server, tmp, data_dir = start_server(args, "throughput")
    notes: list[str] = []
    try:
        nonce = os.urandom(4).hex()
        print(f"  ingesting {n:,} events in {args.batch_size}-event batches ...", flush=True)
        ingest_s = ingest_events(server.url, server.write_key, n, args.batch_size, nonce)
        metrics = server.settle()
        stored = accepted(metrics)
        print(f"  ingested in {ingest_s:.1f} s ({n / ingest_s:,.0f} events/s); stored {stored:,}")
        if stored != n:
            raise BenchError(f"the server stored {stored} events, not {n}")
        declare_destination(data_dir, sink, args.dest_batch_size, args.concurrency)
        wait_for_worker(data_dir)
        time.sleep(0.5)  # the new worker reads the end of the log once and goes idle
        if sink.stats()["events"]:
            raise BenchError("the destination delivered events before the replay")
        sink.reset()
        sampler = RssSampler(server.pid)
        usage = Usage(server.pid, args.server_cpu, sink)
        profiler = None
        if args.profile:
            out = Path(f"{args.profile}-throughput.txt").resolve()
            profiler = Profiler(server.pid, args.load_cpu, out)
            time.sleep(0.5)
        sampler.start()
        usage.start()
        moved_ns, replay_s, said = replay(data_dir)
        print(f"  {said} (the command took {replay_s:.2f} s)", flush=True)
        stats, complete = wait_for_sink(sink, n, args.stall)
        used = usage.stop()
        sampler.stop()
        profile_text = profiler.stop() if profiler is not None else ""
        time.sleep(1.0)  # late duplicates (a retried batch) would arrive now
        stats = sink.stats()
        report = delivery_report(data_dir)
        peak_kb = proc_status_kb(server.pid, "VmHWM")
    finally:
        finish_server(server, tmp, data_dir, args.keep_data)

    elapsed = (stats["last_new_ns"] - moved_ns) / 1e9
    steady = (stats["last_new_ns"] - stats["first_ns"]) / 1e9
    numbers = {
        "events": n,
        "ingest_s": ingest_s,
        "replay_command_s": replay_s,
        "complete": complete,
        "seconds": elapsed,
        "events_per_s": stats["distinct"] / elapsed if elapsed > 0 else 0.0,
        "first_arrival_after_s": (stats["first_ns"] - moved_ns) / 1e9,
        "events_per_s_first_to_last": stats["distinct"] / steady if steady > 0 else 0.0,
        "sink": stats,
        "events_per_request": stats["events"] / max(1, stats["requests"]),
        "usage": used,
        "server_cpu_us_per_event": used["server_cpu_s"] * 1e6 / max(1, stats["distinct"]),
        "sink_cpu_us_per_event": used["sink_cpu_s"] * 1e6 / max(1, stats["events"]),
        "peak_rss_mb": peak_kb / 1024,
        "max_sampled_rss_mb_during_delivery": max(sampler.samples, default=0) / 1024,
        "server_report_total": report.get("total"),
        "server_report_errors": [e.get("message") for e in report.get("errors", [])],
    }
    missing = n - stats["distinct"]
    if not complete:
        notes.append(f"FAIL: {missing:,} of {n:,} messageIds never arrived (stalled)")
    else:
        notes.append(f"OK: all {n:,} messageIds arrived")
    notes.append(f"duplicates: {stats['duplicates']:,} (deliveries of an id already seen)")
    if stats["bad_bodies"]:
        notes.append(f"FAIL: {stats['bad_bodies']} request bodies were not a JSON array")
    print_throughput(numbers, profile_text)
    checks = [
        (
            f"throughput: >= {TARGET_EVENTS_S:,} events/s delivered",
            complete and numbers["events_per_s"] >= TARGET_EVENTS_S,
        ),
        ("throughput: every event delivered", complete and not stats["bad_bodies"]),
    ]
    numbers["profile"] = profile_text
    return ModeResult("throughput", numbers, checks, notes)


def print_throughput(r: dict[str, Any], profile_text: str) -> None:
    used, stats = r["usage"], r["sink"]
    print(
        f"  delivered           {stats['distinct']:,} distinct in {r['seconds']:.2f} s"
        f" from the cursor's move: {r['events_per_s']:,.0f} events/s"
    )
    print(
        f"  first arrival       {r['first_arrival_after_s'] * 1000:.0f} ms after the move;"
        f" first → last arrival: {r['events_per_s_first_to_last']:,.0f} events/s"
    )
    print(
        f"  requests            {stats['requests']:,} ({r['events_per_request']:.0f} events"
        f" each, max {stats['max_batch']}), {stats['bytes'] / max(1, stats['events']):.0f}"
        f" bytes/event; at most {stats['max_connections']} connections open"
        + (f", {stats['max_in_flight']} requests in flight" if stats["max_in_flight"] else "")
    )
    print_usage(used, r["server_cpu_us_per_event"], r["sink_cpu_us_per_event"])
    print(
        f"  server peak RSS     {r['peak_rss_mb']:.0f} MB (VmHWM, ingestion included; max"
        f" sampled while delivering {r['max_sampled_rss_mb_during_delivery']:.0f} MB)"
    )
    print_server_report(r, profile_text)


def print_server_report(r: dict[str, Any], profile_text: str) -> None:
    """The server's own delivery report and errors, then the profile (if taken)."""
    if r["server_report_total"]:
        print(f"  server's report     {r['server_report_total']}")
    for message in r["server_report_errors"]:
        print(f"  server's error      {message}")
    if profile_text:
        print("  " + profile_text.replace("\n", "\n    "))


def print_usage(used: dict[str, float], server_us: float, sink_us: float) -> None:
    wall = used["wall_s"]
    print(
        f"  server CPU          {used['server_cpu_s'] / wall:.0%} of one core"
        f" (event loop {used['server_event_loop_s'] / wall:.0%},"
        f" other threads {used['server_other_threads_s'] / wall:.0%});"
        f" {server_us:.1f} µs per event"
    )
    print(
        f"  server's core       busy {used['server_core_busy']:.0%}, of which"
        f" {used['server_core_not_server']:.0%} not the server (noise)"
    )
    print(
        f"  sink CPU            {used['sink_cpu_s'] / wall:.0%} of one core;"
        f" {sink_us:.2f} µs per event received"
    )


def run_latency(args: argparse.Namespace, sink: Sink) -> ModeResult:
    server, tmp, data_dir = start_server(args, "latency")
    notes: list[str] = []
    try:
        declare_destination(data_dir, sink, args.dest_batch_size, args.concurrency)
        wait_for_worker(data_dir)
        sink.reset()
        sampler = RssSampler(server.pid)
        usage = Usage(server.pid, args.server_cpu, sink)
        profiler = None
        if args.profile:
            out = Path(f"{args.profile}-latency.txt").resolve()
            profiler = Profiler(server.pid, args.load_cpu, out)
            time.sleep(0.5)
        nonce = os.urandom(4).hex()
        print(
            f"  sending {args.rate:,} events/s in {args.batch_size}-event batches for"
            f" {args.duration} s ...",
            flush=True,
        )
        sampler.start()
        usage.start()
        command = ["taskset", "-c", str(args.load_cpu), sys.executable, __file__, "_sender"]
        command += [server.url, server.write_key, str(args.rate), str(args.duration)]
        command += [str(args.batch_size), nonce, str(args.sender_connections)]
        sender = subprocess.run(
            command,
            capture_output=True,
            text=True,
        )
        lines = [x for x in sender.stdout.splitlines() if x.startswith("SENDER_RESULT ")]
        if not lines:
            raise BenchError(f"the sender failed:\n{sender.stdout}{sender.stderr}")
        sent = json.loads(lines[0].removeprefix("SENDER_RESULT "))
        stats, complete = wait_for_sink(sink, sent["events_ok"], args.stall)
        used = usage.stop()
        sampler.stop()
        profile_text = profiler.stop() if profiler is not None else ""
        time.sleep(1.0)
        stats = sink.stats()
        latencies_ms = [v / 1000 for v in sink.latencies_us()]
        report = delivery_report(data_dir)
        peak_kb = proc_status_kb(server.pid, "VmHWM")
    finally:
        finish_server(server, tmp, data_dir, args.keep_data)

    lat = percentiles(latencies_ms, (50, 95, 99, 99.9))
    numbers = {
        "rate": args.rate,
        "duration_s": args.duration,
        "sender": sent,
        "sent_events": sent["events"],
        "acknowledged_events": sent["events_ok"],
        "delivered_distinct": stats["distinct"],
        "complete": complete,
        "latency_ms": lat,
        "sink": stats,
        "events_per_request": stats["events"] / max(1, stats["requests"]),
        "usage": used,
        "server_cpu_us_per_event": used["server_cpu_s"] * 1e6 / max(1, stats["distinct"]),
        "sink_cpu_us_per_event": used["sink_cpu_s"] * 1e6 / max(1, stats["events"]),
        "peak_rss_mb": peak_kb / 1024,
        "max_sampled_rss_mb": max(sampler.samples, default=0) / 1024,
        "server_report_total": report.get("total"),
        "server_report_errors": [e.get("message") for e in report.get("errors", [])],
    }
    ok = sent["events_ok"]
    if sent["events_ok"] != sent["events"]:
        notes.append(
            f"note: {sent['events'] - ok:,} events were not acknowledged by ingest:"
            f" statuses {sent['statuses']}"
        )
    if complete:
        notes.append(f"OK: all {ok:,} acknowledged events arrived")
    else:
        notes.append(f"FAIL: {ok - stats['distinct']:,} of {ok:,} acknowledged events missing")
    notes.append(f"duplicates: {stats['duplicates']:,} (deliveries of an id already seen)")
    print_latency(numbers, profile_text)
    p99 = lat.get("p99", float("inf")) / 1000
    checks = [
        (
            f"latency: p99 ingest → delivered < {TARGET_P99_S:g} s at {args.rate:,} events/s",
            complete and p99 < TARGET_P99_S,
        ),
        ("latency: every acknowledged event delivered", complete),
    ]
    if args.rate < TARGET_RATE:
        notes.append(f"note: the target is stated at {TARGET_RATE:,} events/s")
    numbers["profile"] = profile_text
    return ModeResult("latency", numbers, checks, notes)


def print_latency(r: dict[str, Any], profile_text: str) -> None:
    sent, stats, lat = r["sender"], r["sink"], r["latency_ms"]
    print(
        f"  sent                {sent['events']:,} events in {sent['requests']:,} requests over"
        f" {sent['duration_s']:.1f} s; acknowledged {sent['events_ok']:,} ({sent['statuses']})"
    )
    print(
        f"  delivered           {stats['distinct']:,} distinct; {stats['requests']:,} requests"
        f" ({r['events_per_request']:.0f} events each, max {stats['max_batch']})"
    )
    print(
        "  ingest → delivered  "
        + "  ".join(f"{k} {v:,.0f} ms" for k, v in lat.items())
        + "  (scheduled send → arrival at the sink)"
    )
    resp, service = sent["ingest_response_ms"], sent["ingest_service_ms"]
    print(
        "  ingest answer       "
        + "  ".join(f"{k} {v:,.1f}" for k, v in resp.items())
        + " ms from the scheduled time; service "
        + "  ".join(f"{k} {v:,.1f}" for k, v in service.items())
        + " ms"
    )
    print_usage(r["usage"], r["server_cpu_us_per_event"], r["sink_cpu_us_per_event"])
    print(
        f"  server peak RSS     {r['peak_rss_mb']:.0f} MB (VmHWM; max sampled"
        f" {r['max_sampled_rss_mb']:.0f} MB)"
    )
    print_server_report(r, profile_text)


# -- main --------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu_model": model, "loadavg": os.getloadavg()}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Trackway delivery benchmark: a batching webhook sink, throughput and"
        " ingest → delivered latency (server on one CPU, sink and load on another).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--mode", choices=["throughput", "latency", "both"], default="both")
    p.add_argument("--events", type=int, default=200_000, help="throughput: events replayed")
    p.add_argument("--rate", type=int, default=5_000, help="latency: events/s sent")
    p.add_argument("--duration", type=int, default=60, help="latency: seconds of load")
    p.add_argument("--batch-size", type=int, default=100, help="events per ingest request")
    p.add_argument(
        "--dest-batch-size", type=int, default=1000, help="the destination's delivery.batch_size"
    )
    p.add_argument(
        "--concurrency", type=int, default=4, help="the destination's delivery.concurrency"
    )
    p.add_argument(
        "--sender-connections",
        type=int,
        default=8,
        help="latency: connections the paced sender may use at once",
    )
    p.add_argument(
        "--sink-test",
        type=float,
        default=3.0,
        help="seconds of the sink's own capacity test (0: skip)",
    )
    p.add_argument(
        "--sink-delay-ms",
        type=float,
        default=0.0,
        help="the sink answers each delivery this late (a distant endpoint; the sink"
        " capacity test is then skipped)",
    )
    p.add_argument(
        "--stall",
        type=float,
        default=60.0,
        help="give up when nothing new reached the sink for this many seconds",
    )
    p.add_argument(
        "--synchronous", choices=["full", "normal"], default="full", help="server durability"
    )
    p.add_argument("--server-cpu", type=int, default=0, help="CPU the server is pinned to")
    p.add_argument("--load-cpu", type=int, default=1, help="CPU of the sink, load and script")
    p.add_argument("--data-dir", default=None, help="where to create the temporary data dirs")
    p.add_argument("--keep-data", action="store_true", help="keep the data directories")
    p.add_argument(
        "--profile",
        metavar="PREFIX",
        help="record the server with py-spy while delivering into PREFIX-MODE.txt",
    )
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sink = None
    results: list[ModeResult] = []
    capacity: dict[str, Any] = {}
    try:
        if shutil.which("taskset") is None:
            raise BenchError("taskset is not installed (Debian/Ubuntu: apt-get install util-linux)")
        cpus = os.sched_getaffinity(0)
        for cpu in (args.server_cpu, args.load_cpu):
            if cpu not in cpus:
                raise BenchError(f"CPU {cpu} is not available (this process may use {cpus})")
        if args.server_cpu == args.load_cpu:
            print("warning: the server and the sink share a CPU; the numbers will be lower")
        os.sched_setaffinity(0, {args.load_cpu})
        version = code_version()
        host = machine()
        print(
            f"Trackway delivery benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC,"
            f" trackway {version}, synchronous={args.synchronous}\n"
            f"machine: {host['nproc']} CPUs, {host['cpu_model']}, load average"
            f" {' '.join(f'{x:.2f}' for x in host['loadavg'])}"
        )
        sink = Sink(args.load_cpu, args.sink_delay_ms)
        if args.sink_delay_ms:
            print(f"the sink answers each delivery after {args.sink_delay_ms:g} ms")
        capacity = sink_capacity(sink, 0 if args.sink_delay_ms else args.sink_test)
        if capacity:
            print(
                f"sink capacity: {capacity['events_per_s']:,.0f} events/s in 1,000-event batches"
                f" ({capacity['bytes_per_event']:.0f} bytes/event, client on the same CPU),"
                f" {capacity['cpu_us_per_event']:.2f} µs of sink CPU per event"
            )
        modes = ["throughput", "latency"] if args.mode == "both" else [args.mode]
        for mode in modes:
            print(f"\n== {mode} ==", flush=True)
            run = run_throughput if mode == "throughput" else run_latency
            result = run(args, sink)
            for note in result.notes:
                print(f"  {note}")
            results.append(result)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if sink is not None:
            sink.stop()
    end_load = os.getloadavg()
    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in end_load)}")
    checks = [c for r in results for c in r.checks]
    print("\n== targets ==")
    for name, passed in checks:
        failed = "FAIL" if "every" in name else "MISS"
        print(f"  {'PASS' if passed else failed}  {name}")
    if args.json:
        payload = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "trackway": version,
            "machine": {**host, "loadavg_end": end_load},
            "args": vars(args),
            "sink_capacity": capacity,
            "results": {r.mode: {**r.numbers, "notes": r.notes} for r in results},
            "checks": dict(checks),
        }
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
    return 0 if all(passed for _, passed in checks) else 1


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_sink":
        sys.exit(sink_main(sys.argv[2:]))
    if len(sys.argv) > 1 and sys.argv[1] == "_sender":
        sys.exit(sender_main(sys.argv[2:]))
    sys.exit(main())
