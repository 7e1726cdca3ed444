"""Each attack a hostile insert function could try, for real, against the sandbox: the
data directory and the secret key, the server's environment and /proc, sockets, a fork
bomb (bounded by RLIMIT_NPROC under uid nobody, and by its own loop and time limit),
signals to the server, writes; and the clear error without user namespaces."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.functions.conftest import function, worker_processes
from tests.functions.test_isolation import alive
from tests.support import until
from trackway.functions import FunctionPool, Outcome
from trackway.functions.sandbox import NOBODY, PROCESS_LIMIT, SETTING

SECRET = "sandbox-test-secret-" + os.urandom(4).hex()
ATTEMPT = """
try:
    result = attack(event, settings)
except BaseException as exc:
    return {"refused": type(exc).__name__, "message": str(exc)}
return {"allowed": result}
"""


def attack(body: str) -> str:
    """A function that runs `attack(event, settings)` (defined by `body`) and returns
    what it got, or the exception that stopped it."""
    return "import os, socket, signal, time\n\n" + body.strip() + "\n\n" + function(ATTEMPT)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """Outside /tmp (the sandbox hides all of /tmp): only `hidden` hides this one."""
    directory = Path(tempfile.mkdtemp(prefix=".sandbox-test-", dir=Path(__file__).parents[2]))
    (directory / "secret.key").write_text(SECRET)
    (directory / "log.db").write_text("events")
    try:
        yield directory
    finally:
        shutil.rmtree(directory)


@pytest.fixture
def sandboxed(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FunctionPool]:
    """A pool hiding `data_dir`, started by a server whose environment holds secrets."""
    monkeypatch.setenv("TRACKWAY_SECRET_KEY", SECRET)
    monkeypatch.setenv("TRACKWAY_ADMIN_TOKEN", SECRET)
    monkeypatch.delenv(SETTING, raising=False)
    with FunctionPool(workers=1, time_limit_s=5, hidden=[data_dir]) as pool:
        yield pool


def run(pool: FunctionPool, code: str, **settings: Any) -> dict[str, Any]:
    [outcome] = pool.run(code, [{}], settings)
    assert outcome.failure is None, outcome.failure
    (result,) = outcome.events
    return result


READ = attack("""
def attack(event, settings):
    with open(settings["path"]) as f:
        return f.read()
""")


def test_the_data_directory_and_the_key_cannot_be_read(
    sandboxed: FunctionPool, data_dir: Path
) -> None:
    for name in ("secret.key", "log.db"):
        got = run(sandboxed, READ, path=str(data_dir / name))
        assert got["refused"] == "FileNotFoundError", got
    listing = attack("def attack(event, settings):\n    return os.listdir(settings['path'])")
    assert run(sandboxed, listing, path=str(data_dir)) == {"allowed": []}


def test_the_servers_environment_and_proc_are_out_of_sight(sandboxed: FunctionPool) -> None:
    environment = attack("def attack(event, settings):\n    return dict(os.environ)")
    seen = run(sandboxed, environment)["allowed"]
    assert SECRET not in str(seen)
    assert not any(name.startswith("TRACKWAY_") for name in seen)
    # The server's /proc entry (its environment, its root) does not exist in there.
    got = run(sandboxed, READ, path=f"/proc/{os.getpid()}/environ")
    assert got["refused"] == "FileNotFoundError", got
    processes = attack(
        "def attack(event, settings):\n"
        "    return sorted(int(p) for p in os.listdir('/proc') if p.isdigit())"
    )
    assert run(sandboxed, processes) == {"allowed": [1, 2]}  # its namespace's two
    identity = attack("def attack(event, settings):\n    return [os.getuid(), os.getgid()]")
    assert run(sandboxed, identity) == {"allowed": [NOBODY, NOBODY]}


def test_nothing_can_be_written(sandboxed: FunctionPool, tmp_path: Path) -> None:
    write = attack("""
def attack(event, settings):
    with open(settings["path"], "w") as f:
        f.write("planted")
""")
    for path in (Path(sys.executable).parent / "planted", Path("/var/lib/planted")):
        got = run(sandboxed, write, path=str(path))
        assert got["refused"] in ("OSError", "PermissionError"), got
        assert not path.exists()


def test_no_tcp_connection_reaches_the_host(sandboxed: FunctionPool) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(1.0)
        connect = attack("""
def attack(event, settings):
    with socket.create_connection(("127.0.0.1", settings["port"]), timeout=2):
        return "connected"
""")
        got = run(sandboxed, connect, port=listener.getsockname()[1])
        assert got["refused"] == "OSError" and "unreachable" in got["message"], got
        with pytest.raises(TimeoutError):
            listener.accept()


def test_no_unix_socket_reaches_the_host(sandboxed: FunctionPool, tmp_path: Path) -> None:
    path = tmp_path / "open.sock"
    with (
        socket.socket(socket.AF_UNIX) as on_file,
        socket.socket(socket.AF_UNIX) as abstract,
    ):
        on_file.bind(str(path))
        path.chmod(0o777)  # anyone may connect: only the sandbox stands in the way
        abstract.bind(f"\0trackway-sandbox-test-{os.getpid()}")
        for listener in (on_file, abstract):
            listener.listen()
            listener.settimeout(1.0)
        connect = attack("""
def attack(event, settings):
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(settings["address"])
        return "connected"
""")
        for address in (str(path), f"\0trackway-sandbox-test-{os.getpid()}"):
            got = run(sandboxed, connect, address=address)
            assert got["refused"] in ("FileNotFoundError", "ConnectionRefusedError"), got
        for listener in (on_file, abstract):
            with pytest.raises(TimeoutError):
                listener.accept()
    postgres = "/var/run/postgresql/.s.PGSQL.5432"
    if Path(postgres).exists():  # PostgreSQL's socket (trust authentication here)
        got = run(sandboxed, connect, address=postgres)
        assert got["refused"] == "FileNotFoundError", got


def test_a_fork_bomb_is_capped(sandboxed: FunctionPool) -> None:
    # Bounded three times over: at most 200 forks, each child exits after 3 s, and the
    # worker's processes all die with its PID namespace; the sandbox must stop it first.
    bomb = attack("""
def attack(event, settings):
    assert os.getuid() != 0
    started = 0
    try:
        for _ in range(200):
            if os.fork() == 0:
                time.sleep(3)
                os._exit(0)
            started += 1
    except OSError as exc:
        return [started, type(exc).__name__]
    return [started, None]
""")
    started, stopped_by = run(sandboxed, bomb)["allowed"]
    assert stopped_by == "BlockingIOError"
    assert started == PROCESS_LIMIT - 1  # the worker itself is the 32nd


def test_the_server_cannot_be_signalled(sandboxed: FunctionPool) -> None:
    received: list[int] = []
    previous = signal.signal(signal.SIGUSR1, lambda number, _frame: received.append(number))
    try:
        kill = attack("""
def attack(event, settings):
    os.kill(settings["pid"], signal.SIGUSR1)
    return "sent"
""")
        got = run(sandboxed, kill, pid=os.getpid())
        assert got["refused"] == "ProcessLookupError", got
        parent = attack("def attack(event, settings):\n    return os.getppid()")
        assert run(sandboxed, parent) == {"allowed": 1}  # the namespace's first process
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert received == []


def test_functions_keep_working_in_the_sandbox(sandboxed: FunctionPool) -> None:
    code = function('return {**event, "n": event["n"] * 2}')
    outcomes = sandboxed.run(code, [{"n": i} for i in range(50)], {})
    assert outcomes == [Outcome(events=[{"n": i * 2}]) for i in range(50)]


NO_USER_NAMESPACES = """
import sys
import tempfile
from trackway.functions import FunctionPool
with FunctionPool(workers=1) as pool:
    [outcome] = pool.run("def transform(event, settings):\\n    return event\\n", [{}], {})
print(outcome.failure.message if outcome.failure else "ran", flush=True)
"""


def without_user_namespaces(*env: str) -> str:
    """Run a pool in a user namespace that may not create more (max_user_namespaces 0,
    as on a system that disables them); returns what its one call came to."""
    done = subprocess.run(
        [
            "unshare",
            "--user",
            "--map-root-user",
            "sh",
            "-c",
            'echo 0 > /proc/sys/user/max_user_namespaces && exec env "$@"',
            "sh",
            *env,
            sys.executable,
            "-c",
            NO_USER_NAMESPACES,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parents[2],
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_without_user_namespaces_functions_fail_clearly_unless_turned_off() -> None:
    message = without_user_namespaces()
    assert message.startswith(
        "the worker process did not start (exit status 1); its last output:\n"
        "the function sandbox is not available: "
    ), message
    assert f"set {SETTING}=off to run them without the sandbox" in message
    assert without_user_namespaces(f"{SETTING}=off") == "ran"


def test_the_setting_off_runs_functions_without_the_sandbox(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SETTING, "off")
    with FunctionPool(workers=1, hidden=[data_dir]) as pool:
        got = run(pool, READ, path=str(data_dir / "secret.key"))
    assert got == {"allowed": SECRET}


def test_a_closed_pool_leaves_no_process_behind(data_dir: Path) -> None:
    # The function's children sleep in the worker's namespace: closing the pool kills
    # the worker, and with it every process of the namespace.
    sleepers = "import time\n" + function("""
        for _ in range(5):
            if os.fork() == 0:
                time.sleep(60)
                os._exit(0)
        return {}
    """)
    others = set(worker_processes(os.getpid()))
    pool = FunctionPool(workers=1, hidden=[data_dir])
    assert pool.run(sleepers, [{}], {})[0].failure is None
    (worker,) = set(worker_processes(os.getpid())) - others
    tree = descendants(worker)
    assert len(tree) == 1 + 1 + 5  # the namespace's first process, the worker, children
    pool.close()
    assert until(lambda: {pid for pid in tree if alive(pid)}, set()) == set()


def descendants(pid: int) -> set[int]:
    children = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        children |= {int(c) for c in (task / "children").read_text().split()}
    return children.union(*(descendants(c) for c in children))
