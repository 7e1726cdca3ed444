"""The workspace state store on both backends."""

import pytest

from tests.storage.conftest import Backend
from trackway.storage.base import SourceNotFound


def test_objects_are_upserted_listed_and_deleted(backend: Backend) -> None:
    store = backend.state()
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


def test_write_objects_puts_and_deletes_in_one_transaction(backend: Backend) -> None:
    store, other = backend.state(), backend.state()
    try:
        store.put_object("flags", "old", {"v": 1})
        other.changed()
        store.write_objects(
            [("flags", "new", {"v": 2}), ("flags.changed", "1", {"e": 1})], [("flags", "old")]
        )
        assert other.changed() is True
        assert other.objects("flags") == {"new": {"v": 2}}
        assert other.objects("flags.changed") == {"1": {"e": 1}}
        with pytest.raises(TypeError):  # a spec that is not JSON: nothing is written
            store.write_objects([("flags", "x", {"v": 3}), ("flags", "y", {"v": object()})])
        assert other.objects("flags") == {"new": {"v": 2}}
    finally:
        store.close()
        other.close()


def test_changes_from_another_connection_are_noticed(backend: Backend) -> None:
    one = backend.state()
    two = backend.state()
    try:
        one.changed()
        assert one.changed() is False
        two.create_source("web", "segment")
        assert one.changed() is True
        assert one.changed() is False
        two.put_object("warehouse", "main", {"type": "duckdb"})
        assert one.changed() is True
    finally:
        one.close()
        two.close()


def test_the_connections_own_commits_are_noticed(backend: Backend) -> None:
    # The server's admin API writes through the connection its refresh loop watches: a
    # source it deletes must reach the key cache as well as one deleted by the CLI.
    store = backend.state()
    try:
        store.changed()
        assert store.changed() is False
        store.create_source("web", "segment")
        assert store.changed() is True
        assert store.changed() is False
        store.delete_source("web")
        assert store.changed() is True
        store.put_object("warehouse", "main", {"type": "duckdb"})
        assert store.changed() is True
        assert store.changed() is False
    finally:
        store.close()


def test_sources_keys_and_tokens(backend: Backend) -> None:
    store = backend.state()
    try:
        web = store.create_source("web", "segment", write_key="k1")
        assert (web.name, web.type, web.enabled) == ("web", "segment", True)
        with pytest.raises(ValueError, match="already exists"):
            store.create_source("web", "segment")
        with pytest.raises(ValueError, match="already in use"):
            store.create_source("app", "segment", write_key="k1")
        assert [s.name for s in store.list_sources()] == ["web"]
        assert store.set_enabled("web", False).enabled is False
        with pytest.raises(SourceNotFound):
            store.set_enabled("ghost", True)
        new = store.rotate_key("web", grace_s=60)
        keys = store.write_keys(web.id)
        assert [k.key for k in keys] == ["k1", new]
        assert keys[0].expires_at is not None and keys[1].expires_at is None
        store.add_admin_token("h1")
        store.add_admin_token("h1")
        assert store.has_admin_token("h1") and not store.has_admin_token("h2")
        assert store.admin_token_count() == 1
        store.ping()
    finally:
        store.close()


def test_a_deleted_source_loses_its_keys_and_its_id_is_never_reused(backend: Backend) -> None:
    store = backend.state()
    other = backend.state()
    try:
        store.create_source("web", "segment", "key-web-0123456789")
        last = store.create_source("flags", "configcat", "key-flags-012345678")
        store.rotate_key("flags", 3600)
        other.changed()
        deleted = store.delete_source("flags")
        assert deleted == last
        assert other.changed() is True  # the servers' key caches reload
        assert [s.name for s in store.list_sources()] == ["web"]
        assert all(k.source_id != last.id for k in store.write_keys())
        with pytest.raises(SourceNotFound):
            store.delete_source("flags")
        again = store.create_source("flags", "segment", "key-flags-012345678")
        assert again.id > last.id  # the log's events of the deleted one stay its own
    finally:
        store.close()
        other.close()
