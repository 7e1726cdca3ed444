"""Functions that overrun, exhaust memory or kill their worker: a failed outcome each,
and the pool (and the calling process) go on."""

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.functions.conftest import TIME_LIMIT_S, function, worker_processes
from tests.support import until
from trackway.functions import Failure, FunctionPool, Outcome

WHO = "import uuid\nWORKER = uuid.uuid4().hex\n" + function('return {"worker": WORKER}')
"""A function that tells which worker ran it (inside the sandbox every worker is pid 2)."""


def worker_pid(pool: FunctionPool) -> str:
    worker: str = pool.run(WHO, [{}], {})[0].events[0]["worker"]
    return worker


def failure(outcome: Outcome) -> Failure:
    assert outcome.failure is not None, outcome
    return outcome.failure


def test_an_endless_loop_is_interrupted_and_the_worker_kept(single: FunctionPool) -> None:
    pid = worker_pid(single)
    code = function("""
        while event["loop"]:
            pass
        return event
    """)
    looped, done = single.run(code, [{"loop": True}, {"loop": False}], {})
    assert failure(looped) == Failure(
        "timeout",
        f"the function ran longer than its limit of {TIME_LIMIT_S:g} s (line 4 in transform)",
        retry=True,
    )
    assert done.events == [{"loop": False}]
    assert worker_pid(single) == pid


def test_an_endless_loop_when_loading_fails_every_event(single: FunctionPool) -> None:
    code = "while True:\n    pass\n\ndef transform(event, settings):\n    return event\n"
    outcomes = single.run(code, [{}, {}], {})
    assert [failure(o).kind for o in outcomes] == ["timeout", "timeout"]
    assert failure(outcomes[0]).message.startswith(
        f"the function ran longer than its limit of {TIME_LIMIT_S:g} s (line 1 in <module>)"
    )
    assert single.run(function("return event"), [{"a": 1}], {}) == [Outcome(events=[{"a": 1}])]


def test_a_function_that_cannot_be_interrupted_is_killed(single: FunctionPool) -> None:
    pid = worker_pid(single)
    # sum() over a range runs in C and holds the interpreter: the timer cannot stop it.
    code = function("""
        if event["stuck"]:
            sum(range(10**15))
        return event
    """)
    stuck, after = single.run(code, [{"stuck": True}, {"stuck": False}], {})
    assert failure(stuck) == Failure(
        "timeout",
        f"running the function took longer than the limit of {TIME_LIMIT_S:g} s and could"
        " not be interrupted: the worker process was killed",
        retry=True,
    )
    assert after.events == [{"stuck": False}]
    assert worker_pid(single) != pid


def test_running_out_of_memory_fails_the_event_only(single: FunctionPool) -> None:
    code = function("""
        if event["big"]:
            data = bytearray(1024**3)
        return event
    """)
    big, small = single.run(code, [{"big": True}, {"big": False}], {})
    assert failure(big) == Failure(
        "memory", "MemoryError: the function needed more than 256 MB (line 5 in transform)"
    )
    assert small.events == [{"big": False}]


def test_a_worker_that_exits_is_replaced(single: FunctionPool) -> None:
    pid = worker_pid(single)
    code = function("""
        if event["exit"]:
            print("about to exit")
            os._exit(3)
        return event
    """)
    before, died, after = single.run(code, [{"exit": False}, {"exit": True}, {"exit": False}], {})
    assert before.events == [{"exit": False}]
    assert failure(died) == Failure(
        "crash",
        "the worker process died while running the function (exit status 3);"
        " its last output:\nabout to exit",
        retry=True,
    )
    assert after.events == [{"exit": False}]
    assert worker_pid(single) != pid


def test_a_worker_that_kills_itself_is_replaced(pool: FunctionPool) -> None:
    [outcome] = pool.run(function("os.kill(os.getpid(), 9)"), [{}], {})
    assert failure(outcome) == Failure(
        "crash",
        "the worker process died while running the function (killed by SIGKILL)",
        retry=True,
    )
    assert pool.run(function("return event"), [{"a": 1}], {}) == [Outcome(events=[{"a": 1}])]


def test_a_segfault_shows_the_functions_line(pool: FunctionPool) -> None:
    code = "import ctypes\n\ndef transform(event, settings):\n    return ctypes.string_at(0)\n"
    [outcome] = pool.run(code, [{}], {})
    crash = failure(outcome)
    assert crash.kind == "crash"
    assert "(killed by SIGSEGV)" in crash.message
    assert 'File "<function>", line 4 in transform' in crash.message


def test_code_that_kills_its_worker_when_loading_fails_every_event(pool: FunctionPool) -> None:
    code = "import os\nos._exit(1)\n\ndef transform(event, settings):\n    return event\n"
    outcomes = pool.run(code, [{}, {}, {}], {})
    assert {failure(o).message for o in outcomes} == {
        "the worker process died while loading the code (exit status 1)"
    }


def test_a_worker_killed_while_idle_is_replaced(single: FunctionPool) -> None:
    worker = worker_pid(single)
    (pid,) = worker_processes(os.getpid())
    # Inside the sandbox the worker dies with its PID namespace's first process, which
    # dies with the process killed here: wait for that chain to end.
    (first,) = map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split())
    os.kill(pid, 9)
    assert not until(lambda: alive(first), False)
    assert worker_pid(single) != worker


def test_workers_exit_when_the_server_dies(tmp_path: Path) -> None:
    script = f"""
import os, sys
from tests.support import until
from tests.functions.conftest import worker_processes
from trackway.functions import FunctionPool
pool = FunctionPool(workers=1)
pool.run({WHO!r}, [{{}}], {{}})
print(*worker_processes(os.getpid()), flush=True)
os.kill(os.getpid(), 9)
"""
    server = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False
    )
    assert server.returncode == -9, server.stderr
    (pid,) = map(int, server.stdout.split())
    deadline = time.monotonic() + 10
    while alive(pid):
        assert time.monotonic() < deadline, f"worker {pid} outlived its server"
        time.sleep(0.02)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"
