"""The SQLite state store."""

from pathlib import Path

from trackway.storage.sqlite.state import SQLiteStateStore


def test_objects_are_upserted_listed_and_deleted(tmp_path: Path) -> None:
    store = SQLiteStateStore(tmp_path / "state.db")
    try:
        store.put_object("warehouse", "main", {"type": "duckdb"})
        store.put_object("warehouse", "pg", {"type": "postgres", "url": "postgresql://x"})
        store.put_object("warehouse", "main", {"type": "duckdb", "path": "w.duckdb"})
        store.put_object("destination", "hook", {"type": "webhook"})
        assert store.objects("warehouse") == {
            "main": {"type": "duckdb", "path": "w.duckdb"},
            "pg": {"type": "postgres", "url": "postgresql://x"},
        }
        assert store.delete_object("warehouse", "pg") is True
        assert store.delete_object("warehouse", "pg") is False
        assert list(store.objects("warehouse")) == ["main"]
        assert list(store.objects("destination")) == ["hook"]
    finally:
        store.close()


def test_changes_from_another_connection_are_noticed(tmp_path: Path) -> None:
    one = SQLiteStateStore(tmp_path / "state.db")
    two = SQLiteStateStore(tmp_path / "state.db")
    try:
        one.changed()
        assert one.changed() is False
        two.create_source("web", "segment")
        assert one.changed() is True
        assert one.changed() is False
    finally:
        one.close()
        two.close()
