"""Flag-serving benchmark: config downloads answered 304, and OFREP bulk evaluations.

    .venv/bin/python bench/flags.py [--mode download|bulk|both] [--duration 20]
                                    [--connections 64] [--warmup 3]

It applies one flag environment of 20 settings (bench/flags.py `settings_yaml`: rules on
text, SemVer, number and sensitive comparators, a segment, a prerequisite flag,
percentage options) to a fresh data directory, starts `trackway serve` pinned to one CPU
(`taskset -c 0`, as bench/ingest.py) and drives it with wrk pinned to another
(`taskset -c 1`) using bench/flags.lua:

- download: `GET /configuration-files/{sdkKey}/config_v6.json` with the current ETag in
  `If-None-Match`, as every polling SDK whose config did not change (target >= 20,000
  requests/s, all 304);
- bulk: `POST /ofrep/v1/evaluate/flags`, every request a new user with six attributes,
  all 20 flags evaluated (target >= 5,000 requests/s).

It reports requests/s, the answers' statuses, wrk's latency percentiles, the server's
CPU time per request and the load average before and after (the machine may be shared:
record it with the numbers; a calibration loop timed before each run says how slow the
CPUs are at that moment). The exit status is 0 when both targets are met, 1 when one
is missed, 2 when the benchmark could not run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from ingest import BenchError, Server, code_version, find_wrk  # noqa: E402

LUA_SCRIPT = BENCH_DIR / "flags.lua"
SDK_KEY = "configcat-sdk-1/TrackwayBenchFlags0000/benchmark0000000000001"
TARGETS = {"download": 20_000, "bulk": 5_000}
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def settings_yaml() -> str:
    """The benchmark's flag environment: 20 settings of the kinds real configs hold."""
    rules = [
        "[{attribute: Email, comparator: ends with any of, values: ['@staff.example']}]",
        "[{attribute: Country, comparator: is one of, values: [HU, DE, FR]}]",
        "[{attribute: AppVersion, comparator: 'semver >=', value: 2.3.0}]",
        "[{attribute: Orders, comparator: 'number >', value: 5}]",
        "[{attribute: Email, comparator: sensitive is one of, values: [user5@example.com]}]",
        "[{in_segment: Pro}]",
        "[{flag: flag0, equals: true}, {attribute: Country, comparator: is not one of,"
        " values: [US]}]",
    ]
    split = "[{percent: %d, value: true}, {percent: %d, value: false}]"
    lines = [
        "flags:",
        "  - environment: bench",
        f"    sdk_key: {SDK_KEY}",
        "    segments:",
        "      Pro:",
        "        - {attribute: Plan, comparator: equals, value: pro}",
        "    settings:",
    ]
    for n in range(20):
        lines += [f"      flag{n}:", "        type: bool", "        value: false", "        rules:"]
        lines += [f"          - when: {rules[n % len(rules)]}", "            serve: true"]
        if n % 2:
            lines += [
                f"          - when: {rules[(n + 3) % len(rules)]}",
                "            percentages: " + split % (40, 60),
            ]
        if n % 3 == 0:
            lines += ["        percentages: " + split % (25, 75)]
    return "\n".join(lines) + "\n"


def trackway_command() -> list[str]:
    trackway = Path(sys.executable).with_name("trackway")
    return [str(trackway)] if trackway.exists() else [sys.executable, "-m", "trackway"]


def calibration_ms() -> float:
    """Wall time of a fixed pure-Python loop (10^6 additions) in this process: a measure of
    how much CPU the moment gives; record it with the numbers and compare runs by it."""
    started = time.perf_counter()
    total = 0
    for n in range(1_000_000):
        total += n
    return (time.perf_counter() - started) * 1000


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def run_wrk(
    wrk: str, url: str, args: list[str], *, cpu: int, connections: int, duration: int
) -> dict[str, Any]:
    command = ["taskset", "-c", str(cpu), wrk, "-t", "1", "-c", str(connections)]
    command += ["-d", f"{duration}s", "--timeout", "10s", "-s", str(LUA_SCRIPT), url, "--", *args]
    done = subprocess.run(command, capture_output=True, text=True)
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            result: dict[str, Any] = json.loads(line.removeprefix("BENCH_RESULT "))
            return result
    raise BenchError(f"wrk failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")


def measure(
    wrk: str, server: Server, mode: str, args: argparse.Namespace, etag: str
) -> dict[str, Any]:
    lua_args = ["download", SDK_KEY, etag] if mode == "download" else ["bulk", SDK_KEY]
    common = {"cpu": args.load_cpu, "connections": args.connections}
    run_wrk(wrk, server.url, lua_args, duration=args.warmup, **common)
    load_before = os.getloadavg()[0]
    calibration = calibration_ms()
    cpu_before = cpu_s(server.pid)
    result = run_wrk(wrk, server.url, lua_args, duration=args.duration, **common)
    server_cpu = cpu_s(server.pid) - cpu_before
    seconds = result["duration_us"] / 1e6
    want = "304" if mode == "download" else "200"
    good = result["statuses"].get(want, 0)
    return {
        "mode": mode,
        "requests_per_s": good / seconds,
        "statuses": result["statuses"],
        "socket_errors": result["errors"],
        "latency_ms": {k: v / 1000 for k, v in result["latency_us"].items()},
        "server_cpu_share": server_cpu / seconds,
        "server_cpu_us_per_request": server_cpu / max(good, 1) * 1e6,
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "calibration_ms": round(calibration, 1),
        "target": TARGETS[mode],
        "met": good / seconds >= TARGETS[mode],
    }


def check_answers(server: Server) -> str:
    """The ETag of the config, after checking both endpoints answer as expected."""
    url = f"{server.url}/configuration-files/{SDK_KEY}/config_v6.json"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                etag = str(resp.headers["ETag"])
                break
        except OSError:
            if time.monotonic() > deadline:
                raise BenchError("the flag environment is not served") from None
            time.sleep(0.2)
    body = json.dumps({"context": {"targetingKey": "check", "Country": "HU"}}).encode()
    request = urllib.request.Request(
        f"{server.url}/ofrep/v1/evaluate/flags",
        data=body,
        headers={"Authorization": f"Bearer {SDK_KEY}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        flags = json.loads(resp.read())["flags"]
    if len(flags) != 20 or any("errorCode" in f for f in flags):
        raise BenchError(f"the bulk evaluation is not 20 good flags: {flags}")
    return etag


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--mode", choices=["download", "bulk", "both"], default="both")
    p.add_argument("--duration", type=int, default=20, help="seconds of measured load per mode")
    p.add_argument("--warmup", type=int, default=3, help="seconds of unmeasured load first")
    p.add_argument("--connections", type=int, default=64, help="wrk connections")
    p.add_argument("--server-cpu", type=int, default=0, help="CPU the server is pinned to")
    p.add_argument("--load-cpu", type=int, default=1, help="CPU wrk is pinned to")
    args = p.parse_args()
    modes = ["download", "bulk"] if args.mode == "both" else [args.mode]
    try:
        wrk = find_wrk()
        data_dir = Path(tempfile.mkdtemp(prefix="trackway-bench-flags-")) / "data"
        try:
            data_dir.mkdir(parents=True)
            workspace = data_dir / "flags.yaml"
            workspace.write_text(settings_yaml())
            subprocess.run(
                [*trackway_command(), "apply", str(workspace), "--data-dir", str(data_dir)],
                check=True,
                capture_output=True,
            )
            server = Server(data_dir, str(args.server_cpu), "full", False, None)
            try:
                etag = check_answers(server)
                results = [measure(wrk, server, mode, args, etag) for mode in modes]
            finally:
                server.stop()
        finally:
            shutil.rmtree(data_dir.parent, ignore_errors=True)
    except BenchError as exc:
        print(f"bench/flags.py: {exc}", file=sys.stderr)
        return 2
    print(f"trackway {code_version()}, {args.connections} connections, {args.duration} s")
    for r in results:
        lat = r["latency_ms"]
        print(
            f"{r['mode']:9} {r['requests_per_s']:>10,.0f} requests/s (target {r['target']:,}:"
            f" {'met' if r['met'] else 'MISSED'})  p50 {lat['p50']:.1f} ms  p99 {lat['p99']:.1f}"
            f" ms  server CPU {r['server_cpu_share']:.0%} of a core,"
            f" {r['server_cpu_us_per_request']:.0f} µs/request  statuses {r['statuses']}"
            f"  load average {r['load_average'][0]} -> {r['load_average'][1]}"
            f"  calibration loop {r['calibration_ms']} ms"
        )
    print("BENCH_JSON " + json.dumps(results))
    return 0 if all(r["met"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
