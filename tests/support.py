"""Test support: a real `trackway serve` process on 127.0.0.1 with its own data directory."""

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from trackway import codec
from trackway.storage.postgres.log import PostgresEventLog
from trackway.storage.postgres.state import PostgresStateStore
from trackway.storage.sqlite.log import SQLiteEventLog
from trackway.storage.sqlite.state import SQLiteStateStore

TRACKWAY = [sys.executable, "-m", "trackway"]


@dataclass
class Server:
    """A running `trackway serve` and what a test needs to talk to it."""

    data_dir: Path
    process: subprocess.Popen[str]
    url: str
    write_key: str
    admin_token: str
    banner: list[str] = field(default_factory=list)
    _drain: threading.Thread = field(default_factory=threading.Thread)
    database: str | None = None
    """The PostgreSQL URL it was started with (`--database`), if any."""

    @property
    def env(self) -> dict[str, str]:
        """The environment for `cli(...)` to work on this server's storage."""
        return {"TRACKWAY_DATABASE_URL": self.database} if self.database else {}

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)

    def log(self) -> SQLiteEventLog | PostgresEventLog:
        if self.database:
            return PostgresEventLog(self.database)
        return SQLiteEventLog(self.data_dir / "log.db")

    def events(self, limit: int = 100_000) -> list[dict[str, Any]]:
        """Every accepted event in log order."""
        log = self.log()
        try:
            return [e.body for e in log.read(0, limit)]
        finally:
            log.close()

    def records(self, source: str = "default", limit: int = 1000) -> list[dict[str, Any]]:
        """What `trackway events list --json` prints for the source."""
        out = cli(
            "events",
            "list",
            "--source",
            source,
            "--limit",
            str(limit),
            "--json",
            data_dir=self.data_dir,
            env=self.env,
        )
        result: list[dict[str, Any]] = codec.loads(out)
        return result

    def sql(self, query: str) -> list[list[Any]] | None:
        """The rows of a query on the warehouse `default` (admin API); None while it
        cannot answer (nothing loaded yet, the file busy)."""
        r = httpx.post(
            f"{self.url}/api/v1/sql",
            headers={"authorization": f"Bearer {self.admin_token}"},
            json={"sql": query},
            timeout=30,
        )
        rows: list[list[Any]] | None = r.json()["rows"] if r.status_code == 200 else None
        return rows

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout=60)
        self._drain.join(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return code


def cli(*args: str, data_dir: Path, check: bool = True, env: dict[str, str] | None = None) -> str:
    """Run the `trackway` command; returns stdout (raises with stderr on failure)."""
    done = subprocess.run(
        [*TRACKWAY, *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"trackway {' '.join(args)} failed: {done.stderr}")
    return done.stdout


def start_server(data_dir: Path, *extra: str, env: dict[str, str] | None = None) -> Server:
    """Start `trackway serve` on a free port (port 0) and wait for its "Ready." line."""
    admin_token = (env or {}).get("TRACKWAY_ADMIN_TOKEN") or secrets.token_urlsafe(16)
    process = subprocess.Popen(
        [*TRACKWAY, "serve", "--port", "0", "--data-dir", str(data_dir), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "TRACKWAY_ADMIN_TOKEN": admin_token, **(env or {})},
    )
    banner: list[str] = []
    ready = threading.Event()

    def drain() -> None:
        # Keep reading so the server never blocks on a full pipe.
        assert process.stdout is not None
        for line in process.stdout:
            banner.append(line.rstrip())
            if line.startswith("Ready."):
                ready.set()
        ready.set()

    drainer = threading.Thread(target=drain, daemon=True)
    drainer.start()
    if not ready.wait(60) or process.poll() is not None:
        process.kill()
        raise AssertionError("server did not start:\n" + "\n".join(banner))
    url = next(line.split()[-1] for line in banner if line.startswith("Listening on "))
    database = extra[extra.index("--database") + 1] if "--database" in extra else None
    store = PostgresStateStore(database) if database else SQLiteStateStore(data_dir / "state.db")
    source = store.get_source("default")
    write_key = next(k.key for k in store.write_keys(source.id) if k.expires_at is None)
    store.close()
    return Server(data_dir, process, url, write_key, admin_token, banner, drainer, database)


def until(fn: Callable[[], Any], want: Any, seconds: float = 10) -> Any:
    """Call `fn` until it returns `want` or the deadline passes; returns the last value.

    For changes the server picks up asynchronously (it reloads the state file about once
    a second after a CLI command changed it).
    """
    deadline = time.monotonic() + seconds
    got = fn()
    while got != want and time.monotonic() < deadline:
        time.sleep(0.05)
        got = fn()
    return got


def on_terminal(
    *args: str, data_dir: Path, columns: int, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    """Start the `trackway` command with its stdout on a pseudo-terminal `columns` wide;
    returns the process and the terminal's other end, to read what it prints (EIO once
    the command has ended and closed it; close it after)."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    environ = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    try:
        process = subprocess.Popen(
            [*TRACKWAY, *args, "--data-dir", str(data_dir)],
            stdin=subprocess.DEVNULL,
            stdout=follower,
            stderr=subprocess.PIPE,
            env={**environ, **(env or {})},
        )
    finally:
        os.close(follower)
    return process, leader


def cli_on_terminal(*args: str, data_dir: Path, columns: int) -> str:
    """Run the `trackway` command with its stdout on a terminal (a pseudo-terminal
    `columns` wide); returns what it printed there (raises on failure)."""
    done, leader = on_terminal(*args, data_dir=data_dir, columns=columns)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the command ended and closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(leader)
    assert done.stderr is not None
    stderr = done.stderr.read().decode()
    done.stderr.close()
    if done.wait(60) != 0:
        raise AssertionError(f"trackway {' '.join(args)} failed: {stderr}")
    return out.decode().replace("\r\n", "\n")


@contextlib.contextmanager
def small_disk(mount: Path, size: str = "16m") -> Iterator[Path]:
    """A tmpfs of `size` mounted at `mount` (the tests run as root), unmounted after."""
    mount.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(path: Path) -> None:
    """Write zeros to `path` until the file system is full."""
    with path.open("wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
