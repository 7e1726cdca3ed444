"""Opening SQLite files with Trackway's pragmas and versioned migrations."""

import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

Synchronous = Literal["full", "normal"]

_TIMEOUT_S = 30.0
_LOCKED_POLL_S = 0.01


def connect(
    path: Path,
    migrations: Sequence[str],
    synchronous: Synchronous = "full",
    page_size: int | None = None,
) -> sqlite3.Connection:
    """Open `path` in WAL mode and bring its schema to the newest migration.

    Migration N (1-based) runs once, when `PRAGMA user_version` is below N.
    `page_size` applies to a new file only (with it, the WAL is checkpointed every
    16 MB instead of every 1,000 pages).
    """
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=_TIMEOUT_S)
    if page_size is not None:
        conn.execute(f"PRAGMA page_size={int(page_size)}")
        conn.execute(f"PRAGMA wal_autocheckpoint={(16 << 20) // int(page_size)}")
    _switch_to_wal(conn)
    conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
    conn.execute("PRAGMA foreign_keys=ON")
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version < len(migrations):
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(migrations[version:], start=version + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version={number}")
            conn.execute("COMMIT")
        except BaseException:
            rollback(conn)
            raise
    return conn


def rollback(conn: sqlite3.Connection) -> None:
    """End the failed transaction on `conn`, unless SQLite already has.

    After "database or disk is full" (or an I/O error) SQLite may roll the transaction
    back itself: a ROLLBACK then fails with "no transaction is active", hiding the
    error that matters. When it has not, the transaction must be ended here, or every
    later BEGIN on the connection fails and it stays stuck after space returns.
    """
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def _switch_to_wal(conn: sqlite3.Connection) -> None:
    """`PRAGMA journal_mode=WAL`, waiting while another connection writes the file.

    While another process creates the same new file (its first write transaction,
    still in rollback-journal mode), SQLite answers "database is locked" at once,
    without its busy handler (waiting could deadlock): two processes starting on a new
    data directory met this. The switch is tried again until the timeout.
    """
    deadline = time.monotonic() + _TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(_LOCKED_POLL_S)


def schema_version(path: Path) -> int:
    """The migration a SQLite file is at (0 when it does not exist yet)."""
    if not path.exists():
        return 0
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()
