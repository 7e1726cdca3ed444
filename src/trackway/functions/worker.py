"""The worker process that runs insert functions, outside the server.

The pool starts it as `python -m trackway.functions.worker TIME_LIMIT_S MEMORY_LIMIT_MB
sandbox HIDDEN_DIR...` (or `off` instead of `sandbox ...`), with none of the server's
environment; it enters the sandbox (`sandbox.enter`) before reading any code, and speaks
`protocol` over its stdin and stdout; it exits when its stdin closes (the pool closed
it, or the server is gone). Its address space is capped with RLIMIT_AS,
and an interval timer interrupts a function that runs longer than the time limit. A
function's `print()` goes to stderr, which the pool keeps the tail of.
"""

import faulthandler
import hashlib
import os
import resource
import signal
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, BinaryIO

from trackway.functions import protocol, sandbox
from trackway.functions.check import ENTRY, FILENAME, FunctionError, compile_code
from trackway.functions.errors import FUNCTION_GLOBALS, DropEvent, RetryError
from trackway.functions.outcome import Failure, Outcome

Transform = Callable[[Any, Any], Any]
_CACHE_SIZE = 16
_MAX_TEXT = 1000  # of an exception's message


class _TimeLimit(BaseException):
    """Raised by the timer's signal; not an Exception, so `except Exception` in a
    function does not swallow it."""


class Runner:
    """Loads functions (cached by the hash of their code) and runs them on events."""

    def __init__(self, time_limit_s: float, memory_limit_mb: int) -> None:
        self._time_limit_s = time_limit_s
        self._memory_limit_mb = memory_limit_mb
        self._loaded: dict[bytes, Transform] = {}

    def load(self, code: str) -> Transform | Failure:
        """The code's transform, or why every event fails: the code does not compile,
        or its module raised or overran while it ran."""
        key = hashlib.sha256(code.encode()).digest()
        if (cached := self._loaded.get(key)) is not None:
            return cached
        try:
            compiled = compile_code(code)
        except FunctionError as exc:
            return Failure("exception", str(exc))
        namespace: dict[str, Any] = {"__name__": "function", **FUNCTION_GLOBALS}
        try:
            self._limited(exec, compiled, namespace)
        except BaseException as exc:
            return self._failure(exc)
        transform: Transform | None = namespace.get(ENTRY)
        if not callable(transform):
            return Failure("exception", f"the module's {ENTRY} is not a function")
        if len(self._loaded) >= _CACHE_SIZE:
            del self._loaded[next(iter(self._loaded))]
        self._loaded[key] = transform
        return transform

    def run(self, transform: Transform, event: dict[str, Any], settings: dict[str, Any]) -> Outcome:
        try:
            result = self._limited(transform, event, settings)
        except DropEvent:
            return Outcome()
        except BaseException as exc:
            return Outcome(failure=self._failure(exc))
        return _as_outcome(result)

    def reply(self, outcome: Outcome) -> bytes:
        """The outcome as a frame; an outcome that cannot be sent becomes a failure."""
        try:
            return protocol.frame(outcome)
        except MemoryError as exc:
            failure = self._failure(exc)
        except Exception as exc:
            failure = Failure(
                "invalid_result", f"transform returned a value that is not JSON: {exc}"
            )
        return protocol.frame(Outcome(failure=failure))

    def _limited(self, fn: Callable[..., Any], *args: Any) -> Any:
        signal.setitimer(signal.ITIMER_REAL, self._time_limit_s)
        try:
            return fn(*args)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)

    def _failure(self, exc: BaseException) -> Failure:
        where = _where(exc)
        if isinstance(exc, _TimeLimit):
            message = f"the function ran longer than its limit of {self._time_limit_s:g} s"
            return Failure("timeout", message + where, retry=True)
        if isinstance(exc, MemoryError):
            message = f"MemoryError: the function needed more than {self._memory_limit_mb} MB"
            return Failure("memory", message + where)
        try:
            text = str(exc)[:_MAX_TEXT]
        except Exception:
            text = "(its message could not be read)"
        message = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        return Failure("exception", message + where, retry=isinstance(exc, RetryError))


def _as_outcome(result: Any) -> Outcome:
    if result is None:
        return Outcome()
    if isinstance(result, dict):
        return Outcome(events=[result])
    if isinstance(result, list):
        for index, item in enumerate(result):
            if not isinstance(item, dict):
                message = (
                    f"item {index} of the list transform returned is {type(item).__name__},"
                    " not an event (dict)"
                )
                return Outcome(failure=Failure("invalid_result", message))
        return Outcome(events=result)
    message = (
        "transform must return an event (dict), a list of events or None,"
        f" not {type(result).__name__}"
    )
    return Outcome(failure=Failure("invalid_result", message))


def _where(exc: BaseException) -> str:
    """` (line N in NAME)`: the innermost frame of the function's own code."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == FILENAME]
    return f" (line {frames[-1].lineno} in {frames[-1].name})" if frames else ""


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise _TimeLimit


def _limit_memory(memory_limit_mb: int) -> None:
    limit = memory_limit_mb * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _take_stdio() -> tuple[BinaryIO, int]:
    """The pipes from and to the pool, moved off fds 0 and 1 so that a function's
    `print()` goes to stderr and `input()` reads nothing."""
    channel_in, channel_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(channel_in, "rb"), channel_out


def _receive(channel: BinaryIO) -> protocol.Call | None:
    header = channel.read(protocol.HEADER.size)
    if len(header) < protocol.HEADER.size:
        return None
    (size,) = protocol.HEADER.unpack(header)
    payload = channel.read(size)
    if len(payload) < size:
        return None
    return protocol.call_decoder.decode(payload)


def _send(channel: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(channel, view) :]


def main(argv: list[str]) -> int:
    time_limit_s, memory_limit_mb = float(argv[0]), int(argv[1])
    channel_in, channel_out = _take_stdio()
    if argv[2] == "sandbox":
        try:
            sandbox.enter([Path(p) for p in argv[3:]])
        except sandbox.SandboxUnavailable as exc:
            print(f"the function sandbox is not available: {exc}", file=sys.stderr)
            return 1
    # The server decides when workers stop: a Ctrl-C in its terminal is not for them.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGALRM, _on_alarm)
    faulthandler.enable()  # a segfault leaves the function's traceback in the crash message
    _limit_memory(memory_limit_mb)
    runner = Runner(time_limit_s, memory_limit_mb)
    _send(channel_out, protocol.frame(protocol.Hello()))
    while (call := _receive(channel_in)) is not None:
        loaded = runner.load(call.code)
        if isinstance(loaded, Failure):
            _send(channel_out, protocol.frame(protocol.Loaded(failure=loaded)))
            continue
        _send(channel_out, protocol.frame(protocol.Loaded()))
        for event in call.events:
            _send(channel_out, runner.reply(runner.run(loaded, event, call.settings)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
