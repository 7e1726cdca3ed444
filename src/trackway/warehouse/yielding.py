"""How a warehouse loader in the API's process gives way to ingestion.

On one core, loading an event costs several times what accepting it costs (bench/
RESULTS.md), so a loader that runs whenever events wait halves the ingestion of a busy
server. Ingestion comes first: while the CPUs the server may run on are full and the
thread serving the tracking API is working, the loader pauses after each micro-batch
long enough to use at most `LOADER_SHARE` of the time; once there is CPU to spare again
it loads at full speed and catches up.
"""

import os
import threading
import time
from collections.abc import Callable, Iterable

FULL = 0.9
"""The CPUs are full when they were busy more than this share of the time."""

WORKING = 0.25
"""The API's thread is working when it used more than this share of a core."""

LOADER_SHARE = 0.2
"""The share of the time a loader may use while ingestion needs the CPU."""

MAX_PAUSE_S = 5.0
"""No single pause is longer, so a stop or a quieter API is noticed soon."""


def needs_cpu(cpus_busy: float, thread_share: float) -> bool:
    """Whether ingestion needs the CPU the loader would take: the CPUs were `cpus_busy`
    (0-1) busy and the API's thread used `thread_share` of a core."""
    return cpus_busy > FULL and thread_share > WORKING


def pause_after(worked_s: float, share: float = LOADER_SHARE) -> float:
    """How long to pause after `worked_s` seconds of loading so that loading takes
    `share` of the time."""
    return min(worked_s * (1 - share) / share, MAX_PAUSE_S)


def _cpu_ticks(cpus: Iterable[int]) -> tuple[int, int]:
    """Busy and total ticks of these CPUs so far, from /proc/stat."""
    wanted = {f"cpu{n}" for n in cpus}
    busy = total = 0
    with open("/proc/stat") as f:
        for line in f:
            name, *fields = line.split()
            if name in wanted:
                user, nice, system, idle, iowait, irq, softirq, steal = map(int, fields[:8])
                busy += user + nice + system + irq + softirq
                total += user + nice + system + idle + iowait + irq + softirq + steal
    return busy, total


class IngestPressure:
    """Whether ingestion needed the CPU since the previous look: `busy()`.

    `thread` is the one serving the tracking API (the event loop). Where /proc/stat
    cannot be read (not Linux) it never says busy: the loader runs as it always did.
    """

    def __init__(self, thread: threading.Thread) -> None:
        if thread.ident is None:
            raise ValueError("the thread has not started")
        self._clock = time.pthread_getcpuclockid(thread.ident)
        self._cpus = sorted(os.sched_getaffinity(0))
        self._last = self._read()

    def _read(self) -> tuple[float, float, int, int] | None:
        try:
            busy, total = _cpu_ticks(self._cpus)
        except OSError:
            return None
        return time.monotonic(), time.clock_gettime(self._clock), busy, total

    def busy(self) -> bool:
        now = self._read()
        last, self._last = self._last, now
        if now is None or last is None or now[3] <= last[3] or now[0] <= last[0]:
            return False
        thread_share = (now[1] - last[1]) / (now[0] - last[0])
        return needs_cpu((now[2] - last[2]) / (now[3] - last[3]), thread_share)


class Yielder:
    """Told after each micro-batch how long it took; pauses the loader while `busy()`."""

    def __init__(self, busy: Callable[[], bool], stop: threading.Event) -> None:
        self._busy = busy
        self._stop = stop
        self.paused_s = 0.0
        """Seconds paused so far."""

    def after(self, worked_s: float) -> None:
        """The loader has just loaded for `worked_s` seconds."""
        if self._busy():
            pause = pause_after(worked_s)
            self.paused_s += pause
            self._stop.wait(pause)
