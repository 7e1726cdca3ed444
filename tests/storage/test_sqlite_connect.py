"""Opening a SQLite file that another connection is creating at the same moment."""

import sqlite3
import threading
from pathlib import Path

from trackway.storage.sqlite.connect import connect

MIGRATIONS = ("CREATE TABLE things(id INTEGER PRIMARY KEY)",)


def test_a_file_being_created_by_another_connection_is_waited_for(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    creator = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    creator.execute("BEGIN")
    creator.execute("CREATE TABLE other(x)")  # the file's first write, not committed yet
    # SQLite answers "database is locked" at once (no busy wait) to a connection that
    # switches this file to WAL now; connect() waits for the creator instead.
    committed = threading.Timer(0.3, creator.execute, args=("COMMIT",))
    committed.start()
    try:
        conn = connect(path, MIGRATIONS)
    finally:
        committed.join()
        creator.close()
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert tables == {"other", "things"}
    finally:
        conn.close()
