"""Opening SQLite files with Trackway's pragmas and versioned migrations."""

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

Synchronous = Literal["full", "normal"]


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
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    if page_size is not None:
        conn.execute(f"PRAGMA page_size={int(page_size)}")
        conn.execute(f"PRAGMA wal_autocheckpoint={(16 << 20) // int(page_size)}")
    conn.execute("PRAGMA journal_mode=WAL")
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
            conn.execute("ROLLBACK")
            raise
    return conn


def schema_version(path: Path) -> int:
    """The migration a SQLite file is at (0 when it does not exist yet)."""
    if not path.exists():
        return 0
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()
