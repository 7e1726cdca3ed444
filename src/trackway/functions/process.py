"""One worker process seen from the pool: frames out and in, each reply awaited with a
deadline, and the tail of the worker's stderr for the message when it dies."""

import contextlib
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, TypeVar

import msgspec

from trackway.functions import protocol

T = TypeVar("T")

START_TIMEOUT_S = 30.0
_TAIL_BYTES = 2000
_INHERITED = ("PATH", "PYTHONPATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ")


class WorkerLost(Exception):
    """The worker died, or overran a deadline and was killed: `detail` says how, and
    `output` is the end of what it wrote to stderr."""

    def __init__(self, kind: Literal["crash", "timeout"], detail: str, output: str = "") -> None:
        super().__init__(detail)
        self.kind: Literal["crash", "timeout"] = kind
        self.detail = detail
        self.output = output


def _worker_environment() -> dict[str, str]:
    """What a worker may see of the server's environment: enough to start Python, none
    of its secrets (TRACKWAY_SECRET_KEY, TRACKWAY_ADMIN_TOKEN, database URLs, ...)."""
    return {name: os.environ[name] for name in _INHERITED if name in os.environ}


class WorkerProcess:
    """A running worker. One thread at a time talks to it; `kill` works from any."""

    def __init__(
        self, time_limit_s: float, memory_limit_mb: int, hidden: Sequence[Path] | None
    ) -> None:
        """Start a worker and wait for its hello; raises WorkerLost if it cannot start.

        With `hidden` (the directories to hide besides the sandbox's own), the worker
        runs in the sandbox; with None, without it."""
        sandbox = ["sandbox", *map(str, hidden)] if hidden is not None else ["off"]
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "trackway.functions.worker",
                str(time_limit_s),
                str(memory_limit_mb),
                *sandbox,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
            env=_worker_environment(),
        )
        assert self._proc.stdin and self._proc.stdout and self._proc.stderr
        self._stdin = self._proc.stdin
        self._stdout = self._proc.stdout
        self._poll = select.poll()
        self._poll.register(self._stdout, select.POLLIN)
        self._buffer = bytearray()
        self._tail = bytearray()
        self._drain = threading.Thread(
            target=self._keep_tail, name=f"function-worker-{self.pid}-stderr", daemon=True
        )
        self._drain.start()
        self.served = 0
        try:
            self.receive(protocol.hello_decoder, START_TIMEOUT_S)
        except WorkerLost as lost:
            detail = f"the worker process did not start ({lost.detail})"
            raise WorkerLost(lost.kind, detail, lost.output) from None

    @property
    def pid(self) -> int:
        return self._proc.pid

    def send(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[self._stdin.write(view) or 0 :]
        except OSError:
            raise self._died() from None

    def receive(self, decoder: msgspec.json.Decoder[T], timeout_s: float) -> T:
        """The next message; raises WorkerLost when the worker dies or does not answer
        within `timeout_s` (it is killed then)."""
        deadline = time.monotonic() + timeout_s
        header = protocol.HEADER.size
        while True:
            if len(self._buffer) >= header:
                (size,) = protocol.HEADER.unpack_from(self._buffer)
                if size > protocol.MAX_FRAME:
                    raise self._garbled()
                if len(self._buffer) >= header + size:
                    payload = bytes(self._buffer[header : header + size])
                    del self._buffer[: header + size]
                    try:
                        return decoder.decode(payload)
                    except msgspec.DecodeError:
                        raise self._garbled() from None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.stop()
                raise WorkerLost("timeout", "killed: no answer in time")
            if not self._poll.poll(remaining * 1000):
                continue
            chunk = os.read(self._stdout.fileno(), 1 << 16)
            if not chunk:
                raise self._died()
            self._buffer += chunk

    def kill(self) -> None:
        """Kill the process (from any thread); the thread talking to it sees it die."""
        self._proc.kill()

    def stop(self) -> None:
        """Kill the process and release its pipes; only by the thread talking to it."""
        self._proc.kill()
        self._proc.wait()
        self._stdin.close()
        self._stdout.close()
        self._drain.join(timeout=1.0)

    def _died(self) -> WorkerLost:
        with contextlib.suppress(subprocess.TimeoutExpired):  # closed its stdout, lives on
            self._proc.wait(timeout=1.0)
        self.stop()
        code = self._proc.returncode
        if code < 0:
            try:
                status = f"killed by {signal.Signals(-code).name}"
            except ValueError:
                status = f"killed by signal {-code}"
        else:
            status = f"exit status {code}"
        return WorkerLost("crash", status, self._tail.decode(errors="replace").strip())

    def _garbled(self) -> WorkerLost:
        self.stop()
        return WorkerLost("crash", "it sent a malformed reply and was killed")

    def _keep_tail(self) -> None:
        stderr = self._proc.stderr
        assert stderr is not None
        with stderr:
            while chunk := stderr.read(1 << 16):
                self._tail += chunk
                del self._tail[:-_TAIL_BYTES]
