"""Reading and planning micro-batches, in the loading thread or in a child process.

`read_plan` turns the log's next events into one `LoadPlan`. A backlog
(`WarehouseLoader.catch_up`) is planned in a child process (`PlanningProcess`) while the
parent's thread writes the previous micro-batch: the planning is pure Python and the
engines' bindings take the GIL back many times per statement, so in one process the
two barely overlap; in two they use two cores (bench/RESULTS.md, "Warehouse"). The
child also encodes rows the way the engine loads them (`prepare`; for DuckDB, into files
in a spool directory the parent removes), so the parent does little more than run the
engine's statements. Into DuckDB, the track events it can are not planned but loaded
directly, from their own JSON (direct.py; `plan_backlog`).

The child speaks pickle frames over its stdin/stdout (it is this same code, started by
this process, given the spool directory as its argument): a `Job`, then plans, with a
question back when it meets a source it has no schema for. It then waits for the parent
to stop it, so that a parent killed at any point still has the spool removed.
"""

import gc
import os
import pickle
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from trackway.storage.base import EventLog
from trackway.storage.chunk_reads import ChunkReads
from trackway.storage.records import LogEvent
from trackway.warehouse.plan import Catalog, LoadPlan, Planner
from trackway.warehouse.schema import utc_text

if TYPE_CHECKING:
    # Imported where used: it imports DuckDB, which must not be loaded before
    # `trackway serve` freezes what is alive at its start (nanobind reports DuckDB's
    # frozen objects as leaks at exit).
    from trackway.warehouse.direct import DirectPlanner

READ_EVENTS = 1_000
"""Events read from the log at a time while planning a micro-batch: each part's decoded
events are dropped before the next is read (less memory, cheaper garbage collections)."""
_PLAN_EVENTS = 32
"""Events planned between two yields of the GIL (in the loading thread)."""
_WAITING_FRAMES = 2
"""Plans the planning process keeps ready while the parent is busy with an earlier one:
planning and loading times vary from one micro-batch to the next (new tables, new
columns), and neither side should wait for the other's slow one."""

Schemas = Callable[[list[int]], dict[int, str]]
"""Gives the warehouse schema of every source id asked for (and of the others known)."""


class PlanningError(Exception):
    """The planning process failed; the message holds its error."""


def read_plan(
    log: EventLog,
    planner: Planner,
    after: int,
    limit: int,
    schemas: dict[int, str],
    lookup: Schemas,
    yield_gil: bool = True,
    planned: Callable[[list[LogEvent], dict[int, str]], None] | None = None,
) -> LoadPlan | None:
    """The plan of up to `limit` events after position `after`; None when none waits.

    `schemas` is updated (through `lookup`) when events of an unknown source appear;
    `planned` is called with each part of the events once planned.
    """
    planner.begin(_now())
    count = 0
    while count < limit:
        wanted = min(READ_EVENTS, limit - count)
        events = log.read(after, wanted)
        if not events:
            break
        unknown = sorted({e.source_id for e in events if e.source_id not in schemas})
        if unknown:
            schemas.update(lookup(unknown))
            for source_id in unknown:  # unknown even now: keep its events all the same
                schemas.setdefault(source_id, f"source_{source_id}")
        if yield_gil:
            for start in range(0, len(events), _PLAN_EVENTS):
                planner.add(events[start : start + _PLAN_EVENTS], schemas)
                # A thread that keeps the GIL for its whole switch interval (5 ms) slows
                # a thread writing with DuckDB down several times over.
                time.sleep(0)
        else:
            planner.add(events, schemas)
        if planned is not None:
            planned(events, schemas)
        after = events[-1].position
        count += len(events)
        if len(events) < wanted:  # the end of the log
            break
        del events
    return planner.end() if count else None


@dataclass(frozen=True, slots=True)
class Job:
    """What the planning process plans: positions `after` < p <= `end` of the log."""

    log: tuple[str, str]
    """("sqlite", path) or ("postgresql", url)."""
    catalog: Catalog
    max_columns: int
    schemas: dict[int, str]
    after: int
    end: int
    batch_size: int
    engine: str
    """The warehouse's engine type: its `prepare` runs on each plan."""
    planned_after: int | None = None
    """Positions `planned_after` < p <= `after` were planned by the caller: direct
    loading learns their keys first (direct.py)."""


def log_location(log: EventLog) -> tuple[str, str] | None:
    """How another process opens this log (None: it cannot)."""
    from trackway.storage.postgres.log import PostgresEventLog
    from trackway.storage.sqlite.log import SQLiteEventLog

    if isinstance(log, SQLiteEventLog):
        return ("sqlite", str(log.path))
    if isinstance(log, PostgresEventLog):
        return ("postgresql", log.url)
    return None


def prepare(engine: str, plan: LoadPlan, spool: str) -> LoadPlan:
    """Encode a plan's rows as its engine loads them (DuckDB: files of JSON arrays, in
    the directory `spool`)."""
    if engine == "duckdb":
        from trackway.warehouse.duckdb import write_rows

        write_rows(plan, spool)
    return plan


class PlanningProcess:
    """A child process planning a backlog: `start` it with a job, then iterate over it
    for the plans, in order.

    The process starts (imports) at once: its caller plans the first micro-batch
    meanwhile, and starts the job after it.
    """

    def __init__(self, lookup: Schemas) -> None:
        self._lookup = lookup
        self._spool = tempfile.mkdtemp(prefix="trackway-plans-")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "trackway.warehouse.planning", self._spool],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self._process.stdin is not None and self._process.stdout is not None
        self._to, self._from = self._process.stdin, self._process.stdout

    def start(self, job: Job) -> None:
        """Hand the process its job: it plans from then on."""
        _write(self._to, job)

    def __iter__(self) -> Iterator[LoadPlan]:
        while True:
            kind, value = _read(self._from)
            if kind == "plan":
                yield value
            elif kind == "sources":
                _write(self._to, self._lookup(value))
            elif kind == "done":
                return
            else:
                raise PlanningError(str(value))

    def close(self) -> None:
        """Stop the process (at once, if it is still planning)."""
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        for pipe in (self._to, self._from, self._process.stderr):
            if pipe is not None:
                pipe.close()
        shutil.rmtree(self._spool, ignore_errors=True)  # the files of plans not loaded


def _write(stream: IO[bytes], value: Any) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(len(data).to_bytes(8, "big") + data)
    stream.flush()


def _read(stream: IO[bytes]) -> Any:
    header = stream.read(8)
    if len(header) < 8:
        raise PlanningError("the planning process ended unexpectedly")
    return pickle.loads(stream.read(int.from_bytes(header, "big")))


class _Frames:
    """Frames to the parent, written by a thread so that planning goes on while the
    parent is still loading (up to `_WAITING_FRAMES` wait, in order).

    Once a write fails the parent is gone (killed, say): `parent_gone` is set and
    frames are dropped from then on, so that the planner never waits for it.
    """

    _END = object()

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._queue: queue.Queue[Any] = queue.Queue(_WAITING_FRAMES)
        self.parent_gone = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def put(self, value: Any) -> None:
        if not self.parent_gone:
            self._queue.put(value)

    def close(self) -> None:
        """Write what waits, then stop."""
        self._queue.put(self._END)
        self._thread.join()

    def _run(self) -> None:
        while (value := self._queue.get()) is not self._END:
            if self.parent_gone:
                continue  # taken, so that a planner waiting in put() goes on
            try:
                _write(self._stream, value)
            except OSError:
                self.parent_gone = True


def plan_backlog(
    log: EventLog,
    planner: Planner,
    direct: "DirectPlanner | None",
    after: int,
    end: int,
    batch_size: int,
    schemas: dict[int, str],
    lookup: Schemas,
) -> Iterator[LoadPlan]:
    """The plans of positions `after` < p <= `end`, in order, of up to `batch_size` events.

    With `direct`, each plan is direct loading's when it can take the next events (see
    `DirectPlanner.plan`); else the planner takes them, in parts that grow while direct
    loading still cannot take what follows (it learns from each part).
    """
    first_part = batch_size if direct is None else min(direct.min_events, batch_size)
    planned_part = first_part
    position = after
    while position < end:
        limit = min(batch_size, end - position)
        plan = None if direct is None else direct.plan(position, limit, schemas, _now())
        if plan is not None:
            planned_part = first_part
        else:
            learn = None if direct is None else direct.learn
            part = min(limit, planned_part)
            plan = read_plan(
                log, planner, position, part, schemas, lookup, yield_gil=False, planned=learn
            )
            if plan is None:
                return
            planned_part = min(2 * planned_part, batch_size)
        position = plan.position
        yield plan


def _parts(log: EventLog, after: int, end: int) -> Iterator[list[LogEvent]]:
    """The events after `after` up to position `end`, `READ_EVENTS` at a time."""
    while after < end and (events := log.read(after, min(READ_EVENTS, end - after))):
        yield events
        after = events[-1].position


def _direct_planner(
    job: Job, log: EventLog, planner: Planner, spool: str
) -> "DirectPlanner | None":
    """The direct planner of a DuckDB warehouse (None for other engines): it plans the
    micro-batches it can take, the planner the others (direct.py)."""
    from trackway.warehouse.direct import DirectPlanner

    if job.engine != "duckdb" or not isinstance(log, ChunkReads):
        return None
    return DirectPlanner(log, planner, spool)


def _now() -> str:
    return utc_text(datetime.now(UTC))


def _open_log(location: tuple[str, str]) -> EventLog:
    kind, where = location
    if kind == "postgresql":
        from trackway.storage.postgres.log import PostgresEventLog

        return PostgresEventLog(where)
    from trackway.storage.sqlite.log import SQLiteEventLog

    return SQLiteEventLog(Path(where))


def main() -> None:
    """The planning process: read a Job on stdin, write plans on stdout, into the spool
    directory named by its argument."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write into the frames
    spool = sys.argv[1]
    try:
        _plan(stdin, stdout, spool)
    finally:
        # The parent stops this process once it has loaded what it needs (and removes
        # the spool itself). Until then wait: if the parent dies first (kill -9), at any
        # point, even after the last plan was written, stdin ends here and the files of
        # the plans it never loaded go with the directory.
        while stdin.read(65536):
            pass
        shutil.rmtree(spool, ignore_errors=True)


def _plan(stdin: IO[bytes], stdout: IO[bytes], spool: str) -> None:
    job: Job = _read(stdin)
    log = _open_log(job.log)
    # Planning allocates millions of short-lived dicts and strings that reference
    # counting frees; the collector's passes over them cost about a third of the
    # decoding time (0009). It runs once per micro-batch instead, over what the
    # micro-batch left (what is alive now, modules mostly, is frozen out of it).
    gc.disable()
    gc.freeze()
    frames = _Frames(stdout)

    def lookup(source_ids: list[int]) -> dict[int, str]:
        frames.put(("sources", source_ids))
        found: dict[int, str] = _read(stdin)
        return found

    direct: DirectPlanner | None = None
    try:
        planner = Planner(job.catalog, job.max_columns)
        direct = _direct_planner(job, log, planner, spool)
        schemas = dict(job.schemas)
        if direct is not None and job.planned_after is not None:
            for events in _parts(log, job.planned_after, job.after):
                direct.learn(events, schemas)
        backlog = plan_backlog(
            log, planner, direct, job.after, job.end, job.batch_size, schemas, lookup
        )
        for plan in backlog:
            if frames.parent_gone:
                break
            frames.put(("plan", prepare(job.engine, plan, spool)))
            del plan
            gc.collect()
        frames.put(("done", None))
    except Exception as exc:  # reported to the parent, which raises it
        frames.put(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        if direct is not None:
            direct.close()
        frames.close()
        log.close()
        os.close(stdout.fileno())


if __name__ == "__main__":
    main()
