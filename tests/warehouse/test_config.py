"""Warehouse specs: the implicit default, declared warehouses, validation, `apply`."""

from pathlib import Path

import pytest

from trackway.storage.sqlite.state import SQLiteStateStore
from trackway.warehouse.config import (
    KIND,
    WarehouseSpec,
    apply,
    find,
    validate,
    warehouses,
)


def test_the_default_duckdb_warehouse_exists_until_a_spec_replaces_it(tmp_path: Path) -> None:
    store = SQLiteStateStore(tmp_path / "state.db")
    try:
        (default,) = warehouses(store)
        assert (default.name, default.type, default.enabled) == ("default", "duckdb", True)
        assert default.duckdb_path(tmp_path) == tmp_path / "warehouse.duckdb"
        specs = [
            WarehouseSpec(name="default", enabled=False),
            WarehouseSpec(name="pg", type="postgres", url="postgresql://u:secret@h:5432/db"),
        ]
        assert apply(specs, store, dry_run=True) == [
            "create warehouse 'default' (duckdb)",
            "create warehouse 'pg' (postgres)",
        ]
        assert warehouses(store)[0].enabled is True  # a dry run changes nothing
        apply(specs, store)
        assert apply(specs, store) == []
        assert [(s.name, s.enabled) for s in warehouses(store)] == [
            ("default", False),
            ("pg", True),
        ]
        assert find(store, "pg").location(tmp_path) == "postgresql://u:***@h:5432/db"
        with pytest.raises(ValueError, match="no warehouse named 'x'"):
            find(store, "x")
        changed = [WarehouseSpec(name="pg", type="postgres", url="postgresql://h/db", batch_size=5)]
        assert apply(changed, store) == [
            "update warehouse 'pg' (postgres)"
            "\n  ~ warehouse 'pg': batch_size: (default) -> 5"
            "\n  ~ warehouse 'pg': url: 'postgresql://u:********@h:5432/db' -> 'postgresql://h/db'"
        ]
        assert store.objects(KIND)["pg"]["batch_size"] == 5
    finally:
        store.close()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (WarehouseSpec(name="bad name"), "invalid warehouse name"),
        (WarehouseSpec(name="pg", type="postgres"), "needs a url"),
        (WarehouseSpec(name="d", url="postgresql://h/db"), "url is for postgres"),
        (WarehouseSpec(name="d", batch_size=0), "batch_size"),
        (WarehouseSpec(name="d", interval_s=0), "interval_s"),
        (WarehouseSpec(name="pg", type="postgres", url="u", max_columns=2000), "max_columns"),
    ],
)
def test_invalid_specs_are_refused(spec: WarehouseSpec, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate(spec)
