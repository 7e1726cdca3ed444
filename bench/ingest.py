"""Ingestion benchmark: how many events per second Trackway stores durably.

    .venv/bin/python bench/ingest.py [--duration 60] [--mode batch|single|both]
                                     [--connections N] [--database URL]
                                     [--api-processes N [--server-cpus LIST]]

For each mode it starts `trackway serve` on a fresh temporary data directory, pinned to
one CPU (`taskset -c 0`, durable `--synchronous full` unless told otherwise), and drives
it with `wrk` pinned to another CPU (`taskset -c 1`) using bench/ingest.lua, which sends
~500-byte Segment track events with a unique messageId each:

- batch:  POST /v1/batch with 100 events per request (target >= 150,000 events/s)
- single: POST /v1/track with one event per request  (target >= 3,000 requests/s)

It reports events/s and requests/s answered with HTTP 200 (other statuses and socket
errors separately), wrk's latency percentiles, the CPU time of the server and of wrk,
and the server's peak RSS (VmHWM, target <= 300 MB; VmRSS is also sampled). Afterwards
it stops the server and checks, in the log file itself, that every acknowledged event
was stored, none twice, and nothing was rejected. See bench/README.md.

With `--database postgresql://...` the server keeps its log and state in a fresh
database created next to the one named (dropped afterwards unless --keep-data);
PostgreSQL itself is not pinned, so it shares the cores with the server and wrk.

With `--api-processes N` (PostgreSQL only) it starts N `trackway serve --role api`
processes on the same database, each pinned to `--server-cpus` (default: the server
CPU), and runs one wrk per process with its share of the connections; the figures are
the sums (latency percentiles: the worst of the wrk runs; peak RSS: the largest process).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
LUA_SCRIPT = BENCH_DIR / "ingest.lua"

TARGET_BATCH_EVENTS_S = 150_000
TARGET_SINGLE_REQUESTS_S = 3_000
TARGET_PEAK_RSS_MB = 300

PATHS = {"batch": "/v1/batch", "single": "/v1/track"}


class BenchError(Exception):
    """A problem that stops the benchmark, with a message for the user."""


# -- the server --------------------------------------------------------------------------


class Server:
    """`trackway serve` in a subprocess, pinned to one CPU."""

    def __init__(
        self,
        data_dir: Path,
        cpus: str,
        synchronous: str,
        warehouse: bool,
        database: str | None,
        role: str | None = None,
        write_key: str | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.write_key = write_key or ""
        storage = ["--data-dir", str(data_dir)] + (["--database", database] if database else [])
        self.lines: list[str] = []
        trackway = Path(sys.executable).with_name("trackway")
        base = [str(trackway)] if trackway.exists() else [sys.executable, "-m", "trackway"]
        if not warehouse:
            # An ingest-only server: the built-in warehouse's loader would share the core.
            data_dir.mkdir(parents=True, exist_ok=True)
            workspace = data_dir / "ingest-only.yaml"
            workspace.write_text("warehouses:\n  - name: default\n    enabled: false\n")
            subprocess.run(
                [*base, "apply", str(workspace), *storage],
                check=True,
                capture_output=True,
            )
        command = [*base, "serve", "--port", "0", *storage]
        command += ["--synchronous", synchronous]
        if role is not None:
            command += ["--role", role]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("TRACKWAY_PORT", None)
        self.proc = subprocess.Popen(
            ["taskset", "-c", cpus, *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=ROOT,
        )
        self.pid = self.proc.pid  # taskset execs the server: same process
        watchdog = threading.Timer(60, self.proc.kill)  # a server that never says Ready.
        watchdog.start()
        try:
            self.url, self.write_key = self._wait_ready()
        finally:
            watchdog.cancel()
        self._drain = threading.Thread(target=self._read_rest, daemon=True)
        self._drain.start()

    def _wait_ready(self) -> tuple[str, str]:
        assert self.proc.stdout is not None
        url, key = None, self.write_key or None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if m := re.search(r"write key: (\S+)", line):
                key = m.group(1)
            if m := re.search(r"Listening on (http://\S+)", line):
                url = m.group(1)
            if line.strip() == "Ready.":
                break
        if url is None or key is None or not self.lines or self.lines[-1] != "Ready.":
            self.proc.kill()
            output = "\n".join(self.lines)
            raise BenchError(f"the server did not start; its output:\n{output}")
        return url, key

    def _read_rest(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def metrics(self) -> dict[str, float]:
        """The server's Prometheus metrics, name{labels} -> value."""
        try:
            with urllib.request.urlopen(self.url + "/metrics", timeout=30) as resp:
                text = resp.read().decode()
        except OSError as exc:
            output = "\n".join(self.lines[-20:])
            msg = f"cannot read the server's metrics ({exc}); its output:\n{output}"
            raise BenchError(msg) from exc
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def settle(self, timeout: float = 60) -> dict[str, float]:
        """Wait until nothing is pending and the accepted count stops moving."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            m = self.metrics()
            now = (m.get("trackway_log_pending_events", 0), accepted(m))
            if now[0] == 0 and now == last:
                return m
            if time.monotonic() > deadline:
                raise BenchError(f"the server did not settle within {timeout:.0f} s")
            last = now
            time.sleep(0.2)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, as a service manager would; the server commits what is queued first.

        Depending on the version the exit status after the graceful shutdown is 0 or
        -SIGTERM (uvicorn re-raises the signal); both count as a clean stop.
        """
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise BenchError("the server did not stop within 60 s of SIGTERM") from None
        self._drain.join(5)
        return self.proc.returncode


def accepted(metrics: dict[str, float]) -> int:
    return int(sum(v for k, v in metrics.items() if k.startswith("trackway_events_accepted_total")))


def deduplicated(metrics: dict[str, float]) -> int:
    prefix = "trackway_events_deduplicated_total"
    return int(sum(v for k, v in metrics.items() if k.startswith(prefix)))


# -- /proc -------------------------------------------------------------------------------

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_status_kb(pid: int, field_name: str) -> int:
    """A `kB` field of /proc/PID/status, such as VmRSS or VmHWM."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise BenchError(f"no {field_name} in /proc/{pid}/status")


def thread_cpu_s(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) used so far by each thread of a process."""
    out: dict[int, float] = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except FileNotFoundError:
            continue
        out[int(task)] = (int(fields[11]) + int(fields[12])) / _CLK_TCK
    return out


def cpu_ticks(cpu: int) -> dict[str, int]:
    """Busy, iowait, steal and total ticks of one CPU so far, from /proc/stat."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{cpu} "):
                user, nice, system, idle, iowait, irq, softirq, steal = map(int, line.split()[1:9])
                busy = user + nice + system + irq + softirq
                total = busy + idle + iowait + steal
                return {"busy": busy, "iowait": iowait, "steal": steal, "total": total}
    raise BenchError(f"no cpu{cpu} in /proc/stat")


def descendants(pid: int) -> list[int]:
    """The processes started by `pid`, and theirs (e.g. the warehouse's planning child)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rpartition(")")[2].split()[1])
            except (OSError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], list(parents.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo += parents.get(child, [])
    return found


class RssSampler(threading.Thread):
    """Samples a process's VmRSS every `interval` seconds, and that of the process with
    its children (`group_samples`: what the machine must have for the whole server)."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.samples: list[int] = []
        self.group_samples: list[int] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                own = proc_status_kb(self.pid, "VmRSS")
            except (OSError, BenchError):
                return
            children = 0
            for child in descendants(self.pid):
                # a child may end between the listing and the reading
                with contextlib.suppress(OSError, BenchError):
                    children += proc_status_kb(child, "VmRSS")
            self.samples.append(own)
            self.group_samples.append(own + children)
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def code_version() -> str:
    """The commit of the trackway package being measured, `+dirty` if changed."""
    import trackway

    src = Path(trackway.__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(src), "describe", "--always", "--dirty=+dirty", "--abbrev=10"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return f"unknown ({src})"
    return out.stdout.strip() or f"not a git checkout ({src})"


def fs_type(path: Path) -> str:
    try:
        out = subprocess.run(["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True)
    except OSError:
        return "unknown"
    return out.stdout.strip() or "unknown"


# -- wrk ---------------------------------------------------------------------------------


def find_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise BenchError(
            "wrk is not installed. Install it and run again:\n"
            "    sudo apt-get install -y wrk      (Debian/Ubuntu)\n"
            "    brew install wrk                 (macOS; no taskset there, though)\n"
            "or build it from https://github.com/wg/wrk"
        )
    if shutil.which("taskset") is None:
        raise BenchError("taskset is not installed (Debian/Ubuntu: apt-get install util-linux)")
    return wrk


@dataclass
class WrkRun:
    result: dict[str, Any]  # what ingest.lua's done() printed
    cpu_s: float  # wrk's user + system time


class Target(Protocol):
    """What wrk needs of a server: where it listens and the write key it accepts."""

    url: str
    write_key: str


def run_wrk(
    wrk: str,
    servers: Sequence[Target],
    mode: str,
    *,
    cpu: int,
    connections: int,
    threads: int,
    duration: int,
    batch_size: int,
    nonce: str,
    timeout_s: int,
) -> WrkRun:
    """One wrk per server, at once, with the connections shared out; the results summed."""
    procs = []
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for n, server in enumerate(servers):
        auth = base64.b64encode(f"{server.write_key}:".encode()).decode()
        share = connections // len(servers) + (n < connections % len(servers))
        command = [
            "taskset",
            "-c",
            str(cpu),
            wrk,
            "-t",
            str(threads),
            "-c",
            str(share),
            "-d",
            f"{duration}s",
            "--timeout",
            f"{timeout_s}s",
            "-H",
            f"Authorization: Basic {auth}",
            "-s",
            str(LUA_SCRIPT),
            server.url + PATHS[mode],
            "--",
            mode,
            str(batch_size),
            f"{nonce}{n}",
        ]
        procs.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    results = []
    for proc in procs:
        stdout, stderr = proc.communicate()
        for line in stdout.decode().splitlines():
            if line.startswith("BENCH_RESULT "):
                results.append(json.loads(line.removeprefix("BENCH_RESULT ")))
                break
        else:
            raise BenchError(
                f"wrk failed (exit {proc.returncode}):\n{stdout.decode()}\n{stderr.decode()}"
            )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return WrkRun(_merge_wrk(results), cpu_s)


def _merge_wrk(results: list[dict[str, Any]]) -> dict[str, Any]:
    if len(results) == 1:
        return results[0]
    statuses: dict[str, int] = {}
    errors: dict[str, int] = {}
    for r in results:
        for k, v in r["statuses"].items():
            statuses[str(k)] = statuses.get(str(k), 0) + int(v)
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + int(v)
    latencies = [r["latency_us"] for r in results]
    return {
        "duration_us": max(r["duration_us"] for r in results),
        "statuses": statuses,
        "errors": errors,
        "latency_us": {
            "mean": sum(lat["mean"] for lat in latencies) / len(latencies),
            "max": max(lat["max"] for lat in latencies),
            "percentiles": {
                p: max(lat["percentiles"][p] for lat in latencies)
                for p in latencies[0]["percentiles"]
            },
        },
    }


# -- profiling --------------------------------------------------------------------------


def start_profiler(pid: int, cpu: int, duration: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy, on the load CPU, sampling the server's Python stacks into a raw file."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        raise BenchError("--profile needs py-spy: .venv/bin/pip install py-spy")
    command = ["taskset", "-c", str(cpu), py_spy, "record", "--pid", str(pid)]
    command += ["--duration", str(duration), "--rate", "100", "--nonblocking"]
    command += ["--threads", "--format", "raw", "--output", str(out)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summarize_profile(path: Path, top: int = 25) -> str:
    """The functions with the most samples in a py-spy raw file: self and inclusive."""
    own: dict[str, int] = {}
    incl: dict[str, int] = {}
    threads: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread, frames = frames[0], frames[1:]
        names = [re.sub(r":\d+\)$", ")", f) for f in frames]  # per function, not per line
        total += count
        threads[thread] = threads.get(thread, 0) + count
        if names:
            own[names[-1]] = own.get(names[-1], 0) + count
        for name in set(names):
            incl[name] = incl.get(name, 0) + count
    if not total:
        return "no samples"
    lines = [f"{total} samples (100/s, CPU only, all threads)", "by thread:"]
    lines += [f"  {n / total:6.1%}  {t}" for t, n in sorted(threads.items(), key=lambda x: -x[1])]
    lines.append("self time:")
    lines += [f"  {n / total:6.1%}  {f}" for f, n in sorted(own.items(), key=lambda x: -x[1])[:top]]
    lines.append("inclusive time:")
    lines += [
        f"  {n / total:6.1%}  {f}" for f, n in sorted(incl.items(), key=lambda x: -x[1])[:top]
    ]
    return "\n".join(lines)


# -- one mode ----------------------------------------------------------------------------


@dataclass
class ModeResult:
    mode: str
    connections: int
    duration_s: float
    requests_ok: int
    events_ok: int
    non_200: dict[str, int]
    socket_errors: dict[str, int]
    latency_ms: dict[str, float]
    server_cpu_s: dict[str, float]
    core: dict[str, float]
    wrk_cpu_s: float
    peak_rss_mb: float
    max_sampled_rss_mb: float
    rss_start_end_mb: tuple[float, float]
    stored: int
    server: str = "trackway"  # what was measured: trackway, trackway+warehouse, reference
    group_peak_rss_mb: float = 0.0  # the largest sampled VmRSS of the server + its children
    # With the warehouse on: its lag when the load stopped, how long it took to catch up
    # afterwards, and the largest sampled VmRSS of the server + children while it did.
    warehouse_lag_events: int | None = None
    catch_up_s: float | None = None
    catch_up_peak_rss_mb: float | None = None
    verification: list[str] = field(default_factory=list)
    verified: bool = True

    @property
    def events_per_s(self) -> float:
        return self.events_ok / self.duration_s

    @property
    def requests_per_s(self) -> float:
        return self.requests_ok / self.duration_s


_COUNTS = {
    "events": "SELECT coalesce(sum(count), 0) FROM chunks",
    "chunks": "SELECT count(*) FROM chunks",
    "failures": "SELECT count(*) FROM failures",
    "duplicates": "SELECT count(*) FROM duplicates",
}


def count_log(data_dir: Path, database: str | None) -> dict[str, int]:
    """Counts read from the log itself (the server must be stopped)."""
    if database:
        import psycopg

        with psycopg.connect(database, options="-c search_path=trackway") as pg:
            return {k: int(pg.execute(sql).fetchone()[0]) for k, sql in _COUNTS.items()}  # type: ignore[index]
    conn = sqlite3.connect(f"file:{data_dir / 'log.db'}?mode=ro", uri=True)
    try:
        return {k: conn.execute(sql).fetchone()[0] for k, sql in _COUNTS.items()}
    finally:
        conn.close()


def create_database(url: str) -> str:
    """A new, empty database on the server of `url`; returns its URL."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    name = f"trackway_bench_{secrets.token_hex(4)}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    return make_conninfo(**{**conninfo_to_dict(url), "dbname": name})


def drop_database(url: str, database: str) -> None:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    name = conninfo_to_dict(database)["dbname"]
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def run_mode(mode: str, args: argparse.Namespace, wrk: str, warehouse: bool) -> ModeResult:
    batch_size = args.batch_size if mode == "batch" else 1
    connections = args.connections
    parent = Path(args.data_dir) if args.data_dir else Path(tempfile.gettempdir())
    kind = fs_type(parent)
    if kind in ("tmpfs", "ramfs"):
        print(f"  warning: {parent} is {kind}; fsync costs nothing there, so durable mode is")
        print("  not measured. Use --data-dir on a real disk.")
    tmp = Path(tempfile.mkdtemp(prefix=f"trackway-bench-{mode}-", dir=parent))
    data_dir = tmp / "data"
    servers: list[Server] = []
    database = create_database(args.database) if args.database else None
    role = "api" if args.api_processes else None
    cpus = args.server_cpus or str(args.server_cpu)
    try:
        for n in range(args.api_processes or 1):
            servers.append(
                Server(
                    data_dir if n == 0 else tmp / f"data{n + 1}",
                    cpus,
                    args.synchronous,
                    warehouse,
                    database,
                    role,
                    servers[0].write_key if servers else None,
                )
            )
        for server in servers:
            affinity = sorted(os.sched_getaffinity(server.pid))
            print(f"  server pid {server.pid} on CPU {affinity}, {server.url}, data in {data_dir}")
        server = servers[0]
        common = dict(
            cpu=args.load_cpu,
            connections=connections,
            threads=args.threads,
            batch_size=batch_size,
            timeout_s=args.timeout,
        )
        if args.warmup > 0:
            run_wrk(wrk, servers, mode, duration=args.warmup, nonce=secrets.token_hex(4), **common)
        before = _summed([s.settle() for s in servers])
        cpu_before = [thread_cpu_s(s.pid) for s in servers]
        ticks_before = cpu_ticks(args.server_cpu)
        samplers = [RssSampler(s.pid) for s in servers]
        for sampler in samplers:
            sampler.start()
        profiler = profile_out = None
        if args.profile:
            profile_out = Path(f"{args.profile}-{mode}.txt").resolve()
            profiler = start_profiler(server.pid, args.load_cpu, args.duration, profile_out)
        print(
            f"  wrk: {connections} connections, {args.threads} thread(s), {args.duration} s"
            + (f", over {len(servers)} API processes" if len(servers) > 1 else ""),
            flush=True,
        )
        run = run_wrk(
            wrk, servers, mode, duration=args.duration, nonce=secrets.token_hex(4), **common
        )
        for sampler in samplers:
            sampler.stop()
        cpu_after = [thread_cpu_s(s.pid) for s in servers]
        ticks_after = cpu_ticks(args.server_cpu)
        if profiler is not None and profile_out is not None:
            profiler.wait(60)
            print(f"  profile (py-spy raw, collapsed stacks): {profile_out}")
            print("    " + summarize_profile(profile_out).replace("\n", "\n    "))
        peak_kb = max(proc_status_kb(s.pid, "VmHWM") for s in servers)
        after = _summed([s.settle() for s in servers])
        catch_up = wait_for_warehouse(server) if warehouse else None
        for s in servers:
            code = s.stop()
            if code not in (0, -signal.SIGTERM):
                raise BenchError(f"the server exited with {code}:\n" + "\n".join(s.lines[-20:]))
        counts = count_log(data_dir, database)
    finally:
        for s in servers:
            if s.proc.poll() is None:
                s.proc.kill()
        if not args.keep_data:
            shutil.rmtree(tmp, ignore_errors=True)
            if database:
                drop_database(args.database, database)
        elif servers:
            print(f"  kept {data_dir}")

    result = measured(
        mode,
        run,
        batch_size,
        connections,
        [s.pid for s in servers],
        (cpu_before, cpu_after),
        (ticks_before, ticks_after),
        samplers,
        peak_kb,
        stored=counts["events"] - accepted(before),
        server="trackway+warehouse" if warehouse else "trackway",
    )
    if catch_up is not None:
        result.warehouse_lag_events, result.catch_up_s, result.catch_up_peak_rss_mb = catch_up
    verify(result, counts, before, after, batch_size)
    return result


def warehouse_lag(metrics: dict[str, float]) -> int:
    return int(sum(v for k, v in metrics.items() if k.startswith("trackway_warehouse_lag_events")))


def wait_for_warehouse(server: Server, timeout: float = 600) -> tuple[int, float, float]:
    """The warehouse's lag now, the seconds until it is 0, and the group's peak RSS then."""
    sampler = RssSampler(server.pid)
    sampler.start()
    start = time.monotonic()
    lag = first = warehouse_lag(server.metrics())
    while lag:
        if time.monotonic() - start > timeout:
            sampler.stop()
            raise BenchError(f"the warehouse did not catch up within {timeout:.0f} s ({lag} left)")
        time.sleep(0.5)
        lag = warehouse_lag(server.metrics())
    elapsed = time.monotonic() - start
    sampler.stop()
    return first, elapsed, max(sampler.group_samples, default=0) / 1024


def measured(
    mode: str,
    run: WrkRun,
    batch_size: int,
    connections: int,
    pids: list[int],
    cpu: tuple[list[dict[int, float]], list[dict[int, float]]],
    ticks: tuple[dict[str, int], dict[str, int]],
    samplers: list[RssSampler],
    peak_kb: int,
    stored: int,
    server: str,
) -> ModeResult:
    """One measured run's figures, from wrk's result and the /proc readings around it."""
    res = run.result
    statuses = {str(k): int(v) for k, v in res["statuses"].items()}
    ok = statuses.pop("200", 0)
    latency = res["latency_us"]
    loop_s = total_s = 0.0
    for pid, start, end in zip(pids, *cpu, strict=True):
        loop_s += end.get(pid, 0) - start.get(pid, 0)
        total_s += sum(end.values()) - sum(v for t, v in start.items() if t in end)
    samples = [sample for sampler in samplers for sample in sampler.samples]
    group = [sample for sampler in samplers for sample in sampler.group_samples]
    first = samplers[0].samples
    ticks_before, ticks_after = ticks
    return ModeResult(
        mode=mode,
        connections=connections,
        duration_s=res["duration_us"] / 1e6,
        requests_ok=ok,
        events_ok=ok * batch_size,
        non_200=statuses,
        socket_errors={k: v for k, v in res["errors"].items() if k != "status" and v},
        latency_ms={
            "mean": latency["mean"] / 1000,
            **{f"p{p}": v / 1000 for p, v in latency["percentiles"].items()},
            "max": latency["max"] / 1000,
        },
        server_cpu_s={"total": total_s, "event_loop": loop_s, "other_threads": total_s - loop_s},
        core={
            k: (ticks_after[k] - ticks_before[k]) / _CLK_TCK
            for k in ("busy", "iowait", "steal", "total")
        },
        wrk_cpu_s=run.cpu_s,
        peak_rss_mb=peak_kb / 1024,
        max_sampled_rss_mb=max(samples, default=0) / 1024,
        group_peak_rss_mb=max(group, default=0) / 1024,
        server=server,
        rss_start_end_mb=((first[0] / 1024, first[-1] / 1024) if first else (0, 0)),
        stored=stored,
    )


class ReferenceServer:
    """bench/reference_ingest.py on granian, pinned like the server (--against reference)."""

    def __init__(self, data_dir: Path, cpus: str) -> None:
        granian = Path(sys.executable).with_name("granian")
        if not granian.exists():
            raise BenchError(
                "--against reference needs granian: .venv/bin/pip install -e '.[bench]'"
            )
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log = data_dir / "reference.log"
        self.write_key = secrets.token_hex(8)
        with socket.socket() as probe:  # a free port: granian does not report port 0
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        command = [str(granian), "--interface", "rsgi", "--loop", "uvloop", "--workers", "1"]
        command += ["--port", str(port), "--working-dir", str(BENCH_DIR), "reference_ingest:app"]
        env = {**os.environ, "REFERENCE_LOG": str(self.log), "REFERENCE_WRITE_KEY": self.write_key}
        self.proc = subprocess.Popen(
            ["taskset", "-c", cpus, *command],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        self.supervisor = self.proc.pid
        deadline = time.monotonic() + 30
        while not self._answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise BenchError(
                    "the reference app did not start (try it by hand: see its docstring)"
                )
            time.sleep(0.1)
        [self.pid] = descendants(self.supervisor)  # granian's worker serves the requests

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/v1/batch", timeout=1):
                return True
        except urllib.error.HTTPError:
            return True  # 405 for a GET: it is serving
        except OSError:
            return False

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def stored_requests(self) -> int:
        with open(self.log, "rb") as f:
            return sum(1 for _ in f)


def run_reference(mode: str, args: argparse.Namespace, wrk: str) -> ModeResult:
    """The same load against the reference app, measured the same way."""
    batch_size = args.batch_size if mode == "batch" else 1
    parent = Path(args.data_dir) if args.data_dir else Path(tempfile.gettempdir())
    tmp = Path(tempfile.mkdtemp(prefix=f"trackway-bench-reference-{mode}-", dir=parent))
    server = ReferenceServer(tmp, args.server_cpus or str(args.server_cpu))
    try:
        print(f"  reference pid {server.pid} (granian worker), {server.url}, log in {server.log}")
        common: dict[str, Any] = dict(
            cpu=args.load_cpu,
            connections=args.connections,
            threads=args.threads,
            batch_size=batch_size,
            timeout_s=args.timeout,
        )
        targets = [server]  # run_wrk reads url and write_key only
        if args.warmup > 0:
            run_wrk(wrk, targets, mode, duration=args.warmup, nonce="w", **common)
        warm = server.stored_requests()
        cpu_before = thread_cpu_s(server.pid)
        ticks_before = cpu_ticks(args.server_cpu)
        sampler = RssSampler(server.supervisor)
        sampler.start()
        run = run_wrk(wrk, targets, mode, duration=args.duration, nonce="m", **common)
        sampler.stop()
        cpu_after = thread_cpu_s(server.pid)
        ticks_after = cpu_ticks(args.server_cpu)
        peak_kb = proc_status_kb(server.pid, "VmHWM")
        server.stop()
        stored = (server.stored_requests() - warm) * batch_size
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    result = measured(
        mode,
        run,
        batch_size,
        args.connections,
        [server.pid],
        ([cpu_before], [cpu_after]),
        (ticks_before, ticks_after),
        [sampler],
        peak_kb,
        stored=stored,
        server="reference",
    )
    missing = result.events_ok - stored
    result.verified = missing <= 0
    result.verification.append(
        f"FAIL: {missing} acknowledged events are missing from the reference's file"
        if missing > 0
        else f"OK: all {result.events_ok:,} acknowledged events are in the reference's file"
    )
    return result


def _summed(metrics: list[dict[str, float]]) -> dict[str, float]:
    """The metrics of several processes added up."""
    out: dict[str, float] = {}
    for m in metrics:
        for k, v in m.items():
            out[k] = out.get(k, 0) + v
    return out


def verify(
    r: ModeResult,
    counts: dict[str, int],
    before: dict[str, float],
    after: dict[str, float],
    batch_size: int,
) -> None:
    """Check the log against what was acknowledged; notes go to `r.verification`."""
    notes = r.verification
    stored, acked = r.stored, r.events_ok
    # wrk stops with one request in flight on each connection; the server still commits
    # those, so up to `connections` requests more than were acknowledged are stored.
    extra = stored - acked
    if counts["events"] != accepted(after):
        r.verified = False
        notes.append(
            f"FAIL: the log holds {counts['events']} events but the server counted "
            f"{accepted(after)} accepted"
        )
    if extra < 0:
        r.verified = False
        notes.append(f"FAIL: {-extra} acknowledged events are missing from the log")
    elif extra > r.connections * batch_size or extra % batch_size:
        r.verified = False
        notes.append(
            f"FAIL: the log holds {extra} events more than were acknowledged, which the"
            f" {r.connections} requests in flight when wrk stopped cannot explain"
        )
    else:
        notes.append(
            f"OK: all {acked:,} acknowledged events are in the log"
            + (
                f" (+{extra:,} from the {extra // batch_size} requests in flight when wrk stopped)"
                if extra
                else ""
            )
        )
    if counts["duplicates"] or deduplicated(after):
        r.verified = False
        notes.append(
            f"FAIL: {counts['duplicates']} events were deduplicated (messageIds not unique?)"
        )
    if counts["failures"]:
        r.verified = False
        notes.append(f"FAIL: {counts['failures']} failures (rejected events) in the log")
    if r.non_200 or r.socket_errors:
        notes.append(f"note: non-200 responses {r.non_200}, socket errors {r.socket_errors}")
    notes.append(
        f"log: {counts['events']:,} events in {counts['chunks']:,} chunks "
        f"(warm-up included: {accepted(before):,} events)"
    )


# -- reporting ---------------------------------------------------------------------------


def report(r: ModeResult) -> list[tuple[str, bool]]:
    cpu = r.server_cpu_s
    lat = r.latency_ms
    print(f"  duration            {r.duration_s:.1f} s")
    print(f"  requests/s (200)    {r.requests_per_s:,.0f}   ({r.requests_ok:,} requests)")
    print(f"  events/s (200)      {r.events_per_s:,.0f}   ({r.events_ok:,} events)")
    print(f"  non-200 responses   {sum(r.non_200.values())} {r.non_200 or ''}")
    print(f"  socket errors       {sum(r.socket_errors.values())} {r.socket_errors or ''}")
    print(
        "  latency ms          "
        + "  ".join(f"{k} {v:.1f}" for k, v in lat.items() if k in ("p50", "p90", "p99", "max"))
    )
    print(
        f"  server CPU          {cpu['total'] / r.duration_s:.0%} of one core"
        f" (event loop {cpu['event_loop'] / r.duration_s:.0%},"
        f" other threads {cpu['other_threads'] / r.duration_s:.0%})"
    )
    other = max(0.0, r.core["busy"] - cpu["total"])
    print(
        f"  server's core       busy {r.core['busy'] / r.core['total']:.0%}, of which"
        f" {other / r.core['total']:.0%} not the server (other processes, interrupts: noise);"
        f" iowait {r.core['iowait'] / r.core['total']:.0%},"
        f" steal {r.core['steal'] / r.core['total']:.0%}"
    )
    print(f"  wrk CPU             {r.wrk_cpu_s / r.duration_s:.0%} of one core")
    print(
        f"  server peak RSS     {r.peak_rss_mb:.0f} MB (VmHWM; max sampled VmRSS"
        f" {r.max_sampled_rss_mb:.0f} MB; VmRSS {r.rss_start_end_mb[0]:.0f} MB at the start"
        f" of the measured run, {r.rss_start_end_mb[1]:.0f} MB at its end)"
    )
    if r.group_peak_rss_mb:
        print(f"  server + children   peak sampled VmRSS {r.group_peak_rss_mb:.0f} MB")
    if r.catch_up_s is not None:
        print(
            f"  warehouse           {r.warehouse_lag_events:,} events behind when the load"
            f" stopped, caught up {r.catch_up_s:.1f} s later (server + children peak sampled"
            f" VmRSS meanwhile {r.catch_up_peak_rss_mb:.0f} MB)"
        )
    for note in r.verification:
        print(f"  {note}")
    if r.server == "reference":
        return [(f"{r.mode}: reference stored == acknowledged", r.verified)]
    checks = [
        (f"{r.mode}: peak RSS <= {TARGET_PEAK_RSS_MB} MB", r.peak_rss_mb <= TARGET_PEAK_RSS_MB)
    ]
    if r.mode == "batch":
        checks.insert(
            0,
            (
                f"batch: >= {TARGET_BATCH_EVENTS_S:,} events/s",
                r.events_per_s >= TARGET_BATCH_EVENTS_S,
            ),
        )
    else:
        checks.insert(
            0,
            (
                f"single: >= {TARGET_SINGLE_REQUESTS_S:,} requests/s",
                r.requests_per_s >= TARGET_SINGLE_REQUESTS_S,
            ),
        )
    checks.append((f"{r.mode}: stored == acknowledged", r.verified))
    return checks


# The targets of issue 16, as shares of the reference (or of the ingest-only server)
TARGET_SHARE = {"batch": 0.6, "single": 0.35}
TARGET_WAREHOUSE_SHARE = 0.8
TARGET_GROUP_RSS_MB = 250


def compare(runs: dict[str, ModeResult]) -> list[tuple[str, bool]]:
    """The ratios between one mode's runs (trackway, trackway+warehouse, reference)."""
    checks: list[tuple[str, bool]] = []
    mode = next(iter(runs.values())).mode
    rate = "events_per_s" if mode == "batch" else "requests_per_s"
    reference = runs.get("reference")
    api, full = runs.get("trackway"), runs.get("trackway+warehouse")
    for label, run in (("trackway", api), ("trackway+warehouse", full)):
        if reference is not None and run is not None:
            share = getattr(run, rate) / getattr(reference, rate)
            print(f"  {label} / reference: {share:.2f} ({rate.replace('_per_s', '/s')})")
            if label == "trackway":
                checks.append(
                    (
                        f"{mode}: trackway >= {TARGET_SHARE[mode]} x reference",
                        share >= TARGET_SHARE[mode],
                    )
                )
    if api is not None and full is not None:
        share = getattr(full, rate) / getattr(api, rate)
        print(f"  trackway+warehouse / trackway: {share:.2f}")
        checks.append(
            (
                f"{mode}: with the warehouse >= {TARGET_WAREHOUSE_SHARE} x without",
                share >= TARGET_WAREHOUSE_SHARE,
            )
        )
        checks.append(
            (
                f"{mode}: with the warehouse, peak RSS of server + children"
                f" <= {TARGET_GROUP_RSS_MB} MB",
                full.group_peak_rss_mb <= TARGET_GROUP_RSS_MB,
            )
        )
    return checks


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Trackway ingestion benchmark (server on one CPU, wrk on another).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--duration", type=int, default=60, help="seconds of measured load per mode")
    p.add_argument("--mode", choices=["batch", "single", "both"], default="both")
    p.add_argument(
        "--connections",
        type=int,
        default=64,
        help="concurrent wrk connections (keep-alive; one request in flight on each)",
    )
    p.add_argument("--threads", type=int, default=1, help="wrk threads (all on --load-cpu)")
    p.add_argument("--batch-size", type=int, default=100, help="events per batch request")
    p.add_argument("--warmup", type=int, default=3, help="seconds of unmeasured load first")
    p.add_argument(
        "--synchronous",
        choices=["full", "normal"],
        default="full",
        help="the server's durability mode",
    )
    p.add_argument("--server-cpu", type=int, default=0, help="CPU the server is pinned to")
    p.add_argument("--load-cpu", type=int, default=1, help="CPU wrk is pinned to")
    p.add_argument(
        "--api-processes",
        type=int,
        metavar="N",
        help="N `serve --role api` processes on one database (needs --database), one wrk"
        " each with its share of the connections",
    )
    p.add_argument(
        "--server-cpus",
        metavar="LIST",
        help="taskset CPU list for the server processes (default: --server-cpu)",
    )
    p.add_argument("--timeout", type=int, default=10, help="wrk's request timeout, seconds")
    p.add_argument(
        "--data-dir",
        default=None,
        help="where to create the temporary data directory (default: the system temp dir;"
        " it must be on the disk you want to measure, not tmpfs)",
    )
    p.add_argument(
        "--profile",
        metavar="PREFIX",
        help="record the server with py-spy during the measured run into PREFIX-MODE.txt"
        " (collapsed stacks) and print the top functions; sampling costs the server a little",
    )
    p.add_argument(
        "--warehouse",
        choices=["off", "on", "both"],
        default="off",
        help="off (default): measure ingestion alone; on: with the built-in warehouse's"
        " loader running too (on the same core); both: one run each, and their ratio",
    )
    p.add_argument(
        "--against",
        choices=["none", "reference"],
        default="none",
        help="reference: also run bench/reference_ingest.py (granian + msgspec + group"
        " fdatasync, the machine's limit) under the same load and report the ratios",
    )
    p.add_argument(
        "--database",
        metavar="URL",
        help="PostgreSQL for the server's log and state: a fresh database is created on"
        " that server for each mode (default: SQLite in the data directory)",
    )
    p.add_argument("--keep-data", action="store_true", help="keep the data directories")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.api_processes and not args.database:
        print("error: --api-processes needs --database (API processes share PostgreSQL)")
        return 2
    try:
        wrk = find_wrk()
        cpus = os.sched_getaffinity(0)
        for cpu in (args.server_cpu, args.load_cpu):
            if cpu not in cpus:
                raise BenchError(f"CPU {cpu} is not available (this process may use {cpus})")
        if args.server_cpu == args.load_cpu:
            print("warning: the server and wrk share a CPU; the numbers will be lower")
        # Keep this script's own sampling off the server's CPU.
        os.sched_setaffinity(0, {args.load_cpu})
        modes = ["batch", "single"] if args.mode == "both" else [args.mode]
        version = code_version()
        print(
            f"Trackway ingestion benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC,"
            f" trackway {version}, synchronous={args.synchronous}"
        )
        results: list[ModeResult] = []
        checks: list[tuple[str, bool]] = []
        warehouse = {"off": [False], "on": [True], "both": [False, True]}[args.warehouse]
        for mode in modes:
            runs: dict[str, ModeResult] = {}
            for on in warehouse:
                print(f"\n== {mode}: trackway{' with the warehouse' if on else ''} ==")
                runs["trackway+warehouse" if on else "trackway"] = run_mode(mode, args, wrk, on)
            if args.against == "reference":
                print(f"\n== {mode}: reference ==")
                runs["reference"] = run_reference(mode, args, wrk)
            for run in runs.values():
                print(f"\n-- {mode}: {run.server} --")
                checks += report(run)
            if len(runs) > 1:
                print(f"\n-- {mode}: ratios --")
                checks += compare(runs)
            results += runs.values()
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\n== targets ==")
    for name, passed in checks:
        failed = "FAIL" if name.endswith("stored == acknowledged") else "MISS"
        print(f"  {'PASS' if passed else failed}  {name}")
    if args.json:
        payload = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "trackway": version,
            "args": vars(args),
            "results": [
                {**r.__dict__, "events_per_s": r.events_per_s, "requests_per_s": r.requests_per_s}
                for r in results
            ],
            "checks": dict(checks),
        }
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
    return 0 if all(passed for _, passed in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
