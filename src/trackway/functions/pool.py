"""The pool of worker processes that runs insert functions for the server's threads."""

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from trackway.functions import protocol, sandbox
from trackway.functions.outcome import Failure, Outcome
from trackway.functions.process import WorkerLost, WorkerProcess


class FunctionPool:
    """Runs insert functions in worker processes, each event under a time limit and each
    worker under a memory limit. Whatever a function does, even killing its worker, ends
    as a failed `Outcome`, never as an exception in the caller. Workers start on first
    use and are kept; one that dies is replaced. Safe to call from many threads: each
    call takes an idle worker, or waits for one."""

    def __init__(
        self,
        workers: int = 2,
        time_limit_s: float = 5.0,
        memory_limit_mb: int = 256,
        hidden: Sequence[Path] = (),
    ) -> None:
        """`hidden`: directories the functions must not see (the data directory), besides
        those the sandbox always hides; no sandbox when TRACKWAY_FUNCTION_SANDBOX=off."""
        if workers < 1 or time_limit_s <= 0 or memory_limit_mb < 1:
            raise ValueError("workers, time_limit_s and memory_limit_mb must be positive")
        self._hidden = [p.resolve() for p in hidden] if sandbox.enabled() else None
        self._time_limit_s = time_limit_s
        self._memory_limit_mb = memory_limit_mb
        # A worker whose function does not stop when interrupted is killed this late.
        self._deadline_s = time_limit_s + max(1.0, time_limit_s)
        self._lock = threading.Condition()
        self._idle: list[WorkerProcess | None] = [None] * workers  # None: not started
        self._live: set[WorkerProcess] = set()
        self._closed = False

    def run(
        self, code: str, events: list[dict[str, Any]], settings: dict[str, Any]
    ) -> list[Outcome]:
        """Run the function's `transform` on each event: one outcome per event, in order.

        Whatever the function does ends as an outcome. Raises RuntimeError after
        `close()`, and TypeError when the events or settings are not JSON."""
        outcomes: list[Outcome] = []
        if not events:
            return outcomes
        worker = self._acquire()
        try:
            while len(outcomes) < len(events):
                worker, done = self._serve(worker, code, settings, events[len(outcomes) :])
                outcomes += done
        finally:
            self._release(worker)
        return outcomes

    def close(self) -> None:
        """Stop every worker. Calls still running end with failed outcomes."""
        with self._lock:
            self._closed = True
            idle = [worker for worker in self._idle if worker is not None]
            self._idle.clear()
            busy = self._live.difference(idle)
            self._live.clear()
            self._lock.notify_all()
        for worker in busy:
            worker.kill()
        for worker in idle:
            worker.stop()

    def __enter__(self) -> "FunctionPool":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _acquire(self) -> WorkerProcess | None:
        with self._lock:
            while not self._idle and not self._closed:
                self._lock.wait()
            if self._closed:
                raise RuntimeError("the function pool is closed")
            return self._idle.pop()

    def _release(self, worker: WorkerProcess | None) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(worker)
                self._lock.notify()
                return
        if worker is not None:
            worker.stop()

    def _serve(
        self,
        worker: WorkerProcess | None,
        code: str,
        settings: dict[str, Any],
        events: list[dict[str, Any]],
    ) -> tuple[WorkerProcess | None, list[Outcome]]:
        """Run the events on the worker (a new one if None) until they are done or it is
        lost: the worker if it is still usable, and the outcomes decided, in order."""
        if worker is None:
            try:
                worker = self._start()
            except WorkerLost as lost:
                return None, self._fail(
                    len(events), "crash", _with_output(lost.detail, lost.output)
                )
        outcomes: list[Outcome] = []
        loaded = False
        try:
            worker.send(protocol.frame(protocol.Call(code, settings, events)))
            reply = worker.receive(protocol.loaded_decoder, self._deadline_s)
            loaded = True
            if reply.failure is not None:
                outcomes = [Outcome(failure=reply.failure) for _ in events]
            else:
                for _ in events:
                    outcomes.append(worker.receive(protocol.outcome_decoder, self._deadline_s))
            worker.served += 1
            return worker, outcomes
        except WorkerLost as lost:
            self._dispose(worker)
            rest = len(events) - len(outcomes)
            if self._closed:
                return None, outcomes + self._fail(rest, "crash", "the function pool was closed")
            if loaded:
                # The event it was running is the one that killed it; the others go to a
                # new worker.
                message = self._explain(lost, "running the function")
                return None, outcomes + self._fail(1, lost.kind, message)
            if worker.served == 0:
                return None, self._fail(rest, lost.kind, self._explain(lost, "loading the code"))
            # A worker that was kept died, perhaps before this call: once more on a new one.
            return None, []

    def _start(self) -> WorkerProcess:
        worker = WorkerProcess(self._time_limit_s, self._memory_limit_mb, self._hidden)
        with self._lock:
            if not self._closed:
                self._live.add(worker)
                return worker
        worker.stop()
        raise WorkerLost("crash", "the function pool was closed")

    def _dispose(self, worker: WorkerProcess) -> None:
        worker.stop()
        with self._lock:
            self._live.discard(worker)

    def _explain(self, lost: WorkerLost, doing: str) -> str:
        if lost.kind == "timeout":
            return (
                f"{doing} took longer than the limit of {self._time_limit_s:g} s and could not"
                " be interrupted: the worker process was killed"
            )
        message = f"the worker process died while {doing} ({lost.detail})"
        return _with_output(message, lost.output)

    @staticmethod
    def _fail(count: int, kind: Literal["crash", "timeout"], message: str) -> list[Outcome]:
        failure = Failure(kind, message, retry=True)
        return [Outcome(failure=failure) for _ in range(count)]


def _with_output(message: str, output: str) -> str:
    return f"{message}; its last output:\n{output}" if output else message
