"""Warehouses as declared in the workspace, plus the implicit default DuckDB warehouse."""

from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import msgspec

from trackway.storage.base import NotFound, StateStore
from trackway.workspace.diff import field_changes, with_changes
from trackway.workspace.sources import check_name

KIND = "warehouse"
"""The kind of the warehouses' objects in the state store."""

DEFAULT_NAME = "default"
DEFAULT_PATH = "warehouse.duckdb"
POSTGRES_MAX_COLUMNS = 1600  # PostgreSQL's own limit per table


class WarehouseNotFound(ValueError, NotFound):
    """No warehouse has that name."""


class WarehouseSpec(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A warehouse the loader fills: a DuckDB file or a PostgreSQL database.

    `path` (DuckDB) is relative to the data directory unless absolute; `url` (PostgreSQL)
    is a libpq URL such as `postgresql://user:password@host:5432/db`. A micro-batch is
    loaded when `batch_size` events wait or `interval_s` seconds after the last load.
    """

    name: str
    type: Literal["duckdb", "postgres"] = "duckdb"
    path: str | None = None
    url: str | None = None
    batch_size: int = 10_000
    interval_s: float = 5.0
    max_columns: int = 1000
    enabled: bool = True

    def duckdb_path(self, data_dir: Path) -> Path:
        """Where a DuckDB warehouse's file is."""
        return data_dir / (self.path or DEFAULT_PATH)

    def location(self, data_dir: Path) -> str:
        """The file or the URL (without its password), for people to read."""
        if self.type == "duckdb":
            return str(self.duckdb_path(data_dir))
        parts = urlsplit(self.url or "")
        if parts.password is None:
            return self.url or ""
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def validate(spec: WarehouseSpec) -> WarehouseSpec:
    """Raise ValueError (naming the warehouse) unless the spec makes sense."""
    where = f"warehouse '{spec.name}'"
    try:
        check_name(spec.name)
    except ValueError as exc:
        raise ValueError(str(exc).replace("source name", "warehouse name")) from None
    if spec.type == "postgres" and not spec.url:
        raise ValueError(f"{where}: type postgres needs a url")
    if spec.type == "postgres" and spec.path:
        raise ValueError(f"{where}: path is for duckdb; postgres takes a url")
    if spec.type == "duckdb" and spec.url:
        raise ValueError(f"{where}: url is for postgres; duckdb takes a path")
    if spec.batch_size < 1:
        raise ValueError(f"{where}: batch_size must be at least 1")
    if spec.interval_s <= 0:
        raise ValueError(f"{where}: interval_s must be more than 0")
    limit = POSTGRES_MAX_COLUMNS if spec.type == "postgres" else 100_000
    if not 20 <= spec.max_columns <= limit:
        raise ValueError(f"{where}: max_columns must be between 20 and {limit}")
    return spec


def default_spec() -> WarehouseSpec:
    """The embedded warehouse every data directory has unless a spec named `default`
    replaces it (`enabled: false` turns it off)."""
    return WarehouseSpec(name=DEFAULT_NAME, type="duckdb", path=DEFAULT_PATH)


def warehouses(store: StateStore) -> list[WarehouseSpec]:
    """Every configured warehouse (enabled or not), the default first."""
    declared = {
        name: validate(msgspec.convert(spec, WarehouseSpec))
        for name, spec in store.objects(KIND).items()
    }
    default = declared.pop(DEFAULT_NAME, None) or default_spec()
    return [default, *declared.values()]


def find(store: StateStore, name: str) -> WarehouseSpec:
    """The warehouse of that name; raises WarehouseNotFound listing the names there are."""
    specs = warehouses(store)
    for spec in specs:
        if spec.name == name:
            return spec
    names = ", ".join(s.name for s in specs)
    raise WarehouseNotFound(f"no warehouse named '{name}' (there are: {names})")


def apply(specs: list[WarehouseSpec], store: StateStore, dry_run: bool = False) -> list[str]:
    """Store the declared warehouses (for `trackway apply`); one line per change."""
    have = store.objects(KIND)
    changes = []
    for spec in specs:
        validate(spec)
        want: dict[str, Any] = msgspec.to_builtins(spec)
        old = have.get(spec.name)
        if old == want:
            continue
        line = f"{'create' if old is None else 'update'} warehouse '{spec.name}' ({spec.type})"
        changes.append(
            line if old is None else with_changes(line, field_changes(KIND, spec.name, old, want))
        )
        if not dry_run:
            store.put_object(KIND, spec.name, want)
    return changes
