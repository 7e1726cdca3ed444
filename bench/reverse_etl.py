"""Reverse-ETL benchmark: a 1,000,000-row model synced to Trackway's own ingest.

    .venv/bin/python bench/reverse_etl.py [--rows 1000000] [--data-dir DIR] [--keep-data]
                                          [--json PATH] [--database URL]

It creates a DuckDB file with a `users` table of `--rows` rows (id, userId, email,
plan, score, updated_at), starts `trackway serve` on a fresh data directory (pinned
to CPU 0 with `taskset` when there is one, durable `--synchronous full`) and declares
a track sync of the table (send_initial on, added/changed/removed events, three mapped
columns, the timestamp column). Then, each in a fresh process pinned to CPU 1:

1. the initial run: every row is sent as added (events/s to Trackway's own ingest);
2. after updating 1% of the rows (a mapped column), adding 0.5% and deleting 0.5%,
   the second run: its diff + plan (query, hash, stage, key checks, diff; until the
   first event could be sent) must take < 20 s and the process's peak RSS < 500 MB.

With `--database postgresql://...`, the sync state (snapshot, runs, the staged result
and the diff) lives in that PostgreSQL database instead of `reverse_etl/state.db`; the
server, its log and the workspace state stay in the data directory, so only the sync
state's backend differs between the two. The sync gets a name of its own
(`bench-<hex>`), and its state is deleted at the end.

Afterwards it checks in the server's log that every row's events arrived once:
initial rows + changes, no duplicates. Exit status 0 when the targets are met and the
checks pass, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

TARGET_DIFF_PLAN_S = 20.0
TARGET_PEAK_RSS_MB = 500.0
SYNC = "bench"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--data-dir", type=Path, help="where the temporary directory goes")
    parser.add_argument("--keep-data", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the numbers as JSON")
    parser.add_argument("--database", metavar="URL", help="the sync state in PostgreSQL")
    parser.add_argument(
        "--child", nargs=4, metavar=("DATA_DIR", "URL", "LABEL", "SYNC"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        return child(Path(args.child[0]), args.child[1], args.child[3], args.database)
    work = Path(tempfile.mkdtemp(prefix="trackway-retl-", dir=args.data_dir))
    try:
        return bench(work, args.rows, args.json, args.database)
    finally:
        if args.keep_data:
            print(f"data kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def bench(work: Path, rows: int, json_path: Path | None, database: str | None) -> int:
    import duckdb

    sync = f"{SYNC}-{os.urandom(4).hex()}" if database else SYNC

    source = work / "source.duckdb"
    data_dir = work / "data"
    started = time.perf_counter()
    conn = duckdb.connect(str(source))
    conn.execute(
        "CREATE TABLE users AS SELECT i AS id, 'user-' || i AS user_id,"
        " 'user' || i || '@example.com' AS email, ['free', 'pro', 'team'][i % 3 + 1] AS plan,"
        " i % 1000 AS score, TIMESTAMP '2024-01-01' + to_seconds(i) AS updated_at"
        f" FROM range({rows}) t(i)"
    )
    conn.close()
    print(f"model: {rows:,} rows in DuckDB ({time.perf_counter() - started:.1f} s to create)")

    server = _start_server(data_dir)
    try:
        _declare(data_dir, source, sync)
        first = _run_child(data_dir, server, "initial", sync, database)
        conn = duckdb.connect(str(source))
        changed, added, removed = rows // 100, rows // 200, rows // 200
        conn.execute("UPDATE users SET plan = 'enterprise' WHERE id % 100 = 7")
        conn.execute("DELETE FROM users WHERE id % 200 = 3")
        conn.execute(
            "INSERT INTO users SELECT i, 'user-' || i, 'new' || i || '@example.com', 'free', 0,"
            f" TIMESTAMP '2025-01-01' FROM range({rows}, {rows + added}) t(i)"
        )
        conn.close()
        second = _run_child(data_dir, server, "second", sync, database)
        state_mb = _state_mb(data_dir, database)
    finally:
        _stop(server["process"])
        if database:
            _forget(database, sync)

    expected = rows + changed + added + removed
    stored, unique = _stored_events(data_dir)
    results = {
        "rows": rows,
        "sync_state": "postgresql" if database else "sqlite",
        "initial": first,
        "second": second,
        "state_db_mb": round(state_mb, 1),
        "events_expected": expected,
        "events_stored": stored,
        "events_unique": unique,
    }
    ok = _report(results)
    if json_path:
        json_path.write_text(json.dumps(results, indent=2))
    return 0 if ok else 1


def _state_mb(data_dir: Path, database: str | None) -> float:
    """The size of the sync state: state.db, or the PostgreSQL tables."""
    if database is None:
        files = (data_dir / "reverse_etl").glob("state.db*")
        return sum(f.stat().st_size for f in files) / 1e6
    import psycopg

    with psycopg.connect(database) as conn:
        row = conn.execute(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class AS c"
            " JOIN pg_namespace AS n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'trackway' AND c.relname LIKE 'reverse_etl_%' AND c.relkind = 'r'"
        ).fetchone()
    return int(row[0] if row and row[0] else 0) / 1e6


def _forget(database: str, sync: str) -> None:
    """Delete the benchmark sync's state from the database."""
    import psycopg

    with psycopg.connect(database) as conn:
        conn.execute("SET search_path = trackway")
        row = conn.execute("SELECT id FROM reverse_etl_syncs WHERE name = %s", (sync,)).fetchone()
        if row is None:
            return
        conn.execute("DELETE FROM reverse_etl_snapshot WHERE sync_id = %s", row)
        conn.execute(
            "DELETE FROM reverse_etl_run_errors WHERE run_id IN"
            " (SELECT id FROM reverse_etl_runs WHERE sync_id = %s)",
            row,
        )
        conn.execute("DELETE FROM reverse_etl_runs WHERE sync_id = %s", row)
        conn.execute("DELETE FROM reverse_etl_syncs WHERE id = %s", row)


def _declare(data_dir: Path, source: Path, name: str) -> None:
    from trackway.reverse_etl.apply import apply_reverse_etl
    from trackway.reverse_etl.config import Connection, EventNames, ModelSpec, SyncSpec
    from trackway.storage.sqlite.state import SQLiteStateStore

    store = SQLiteStateStore(data_dir / "state.db")
    model = ModelSpec("users", Connection("duckdb", str(source)), "SELECT * FROM users", "id")
    sync = SyncSpec(
        name, "users", "track", {"email": "email", "plan": "plan", "score": "score"},
        user_id="user_id", timestamp="updated_at", send_initial=True,
        events=EventNames(added="User Added", changed="User Changed", removed="User Removed"),
    )  # fmt: skip
    apply_reverse_etl([model], [sync], store, data_dir=data_dir)
    store.close()


def child(data_dir: Path, url: str, sync: str, database: str | None) -> int:
    """One run of the sync in this process; prints its numbers as JSON."""
    import httpx

    from trackway.reverse_etl.runner import Runner
    from trackway.reverse_etl.state import open_sync_store
    from trackway.settings import Settings
    from trackway.storage.sqlite.state import SQLiteStateStore

    store = SQLiteStateStore(data_dir / "state.db")
    syncs = open_sync_store(Settings(data_dir=data_dir, database_url=database))
    marks: dict[str, float] = {}
    started = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if "planned" not in marks:
            marks["planned"] = time.perf_counter()
            marks["cpu_at_plan"] = sum(os.times()[:2])

    with httpx.Client() as client:
        run = Runner(data_dir, store, syncs, url, client).run(sync, progress=progress)
    ended = time.perf_counter()
    syncs.close()
    store.close()
    planned = marks.get("planned", ended)
    send_s = ended - planned
    out = {
        "status": run.status,
        "error": run.error,
        "counts": vars(run.counts),
        "diff_plan_s": round(planned - started, 2),
        "send_s": round(send_s, 2),
        "total_s": round(ended - started, 2),
        "events_per_s": round(run.counts.sent / send_s) if send_s > 0 else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "cpu_s": round(sum(os.times()[:2]), 2),
        "send_cpu_s": round(sum(os.times()[:2]) - marks.get("cpu_at_plan", 0), 2),
    }
    print(json.dumps(out))
    return 0


def _run_child(
    data_dir: Path, server: dict[str, Any], label: str, sync: str, database: str | None
) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", str(data_dir), server["url"], label, sync]
    command += ["--database", database] if database else []
    server_cpu = _cpu_s(server["process"].pid)
    done = subprocess.run(_pinned(1, command), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the {label} run failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["server_cpu_s"] = round(_cpu_s(server["process"].pid) - server_cpu, 2)
    print(f"{label} run: {result}")
    return result


def _start_server(data_dir: Path) -> dict[str, Any]:
    env = {**os.environ, "TRACKWAY_ADMIN_TOKEN": "bench"}
    command = [
        sys.executable,
        "-m",
        "trackway",
        "serve",
        "--port",
        "0",
        "--data-dir",
        str(data_dir),
    ]
    process = subprocess.Popen(
        _pinned(0, command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    url = None
    assert process.stdout is not None
    for line in process.stdout:
        if m := re.search(r"Listening on (http://\S+)", line):
            url = m.group(1)
        if line.startswith("Ready."):
            break
    if url is None:
        process.kill()
        raise SystemExit("the server did not start")
    # Keep draining its output so it never blocks on a full pipe.
    threading.Thread(target=lambda: [None for _ in process.stdout or ()], daemon=True).start()
    return {"process": process, "url": url}


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(60)


def _pinned(cpu: int, command: list[str]) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(cpu), *command]
    return command


def _stored_events(data_dir: Path) -> tuple[int, int]:
    """Events in the log, and distinct messageIds among them."""
    conn = sqlite3.connect(data_dir / "log.db")
    try:
        ids: set[str] = set()
        total = 0
        for (events,) in conn.execute("SELECT events FROM chunks"):
            for event in json.loads(events):
                ids.add(event["messageId"])
                total += 1
    finally:
        conn.close()
    return total, len(ids)


def _report(r: dict[str, Any]) -> bool:
    second = r["second"]
    checks = {
        f"diff + plan of the second run < {TARGET_DIFF_PLAN_S:.0f} s": second["diff_plan_s"]
        < TARGET_DIFF_PLAN_S,
        f"peak RSS of each run < {TARGET_PEAK_RSS_MB:.0f} MB": max(
            r["initial"]["peak_rss_mb"], second["peak_rss_mb"]
        )
        < TARGET_PEAK_RSS_MB,
        "both runs succeeded": r["initial"]["status"] == second["status"] == "succeeded",
        "every change stored once": r["events_stored"]
        == r["events_unique"]
        == r["events_expected"],
    }
    print()
    print(
        "| run | diff + plan | send | total | events/s sent | peak RSS | CPU: run (send) / server |"
    )
    print("|---|---|---|---|---|---|---|")
    for label in ("initial", "second"):
        x = r[label]
        print(
            f"| {label} ({x['counts']['sent']:,} events) | {x['diff_plan_s']} s | {x['send_s']} s"
            f" | {x['total_s']} s | {x['events_per_s']:,} | {x['peak_rss_mb']} MB"
            f" | {x['cpu_s']} s ({x['send_cpu_s']} s) / {x['server_cpu_s']} s |"
        )
    print(
        f"\nsync state ({r['sync_state']}): {r['state_db_mb']} MB;"
        f" events stored {r['events_stored']:,}"
        f" (unique {r['events_unique']:,}, expected {r['events_expected']:,})"
    )
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}: {name}")
    return all(checks.values())


if __name__ == "__main__":
    sys.exit(main())
