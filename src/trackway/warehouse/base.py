"""The warehouse engine interface: the loader and the SQL commands depend only on this."""

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from trackway.warehouse.plan import Catalog, LoadPlan

LOADS_TABLE = "_trackway_loads"
REJECTED_TABLE = "_rejected_values"

# Columns of the two tables every warehouse has (in its default schema).
LOADS_COLUMNS = (
    "first_position",
    "position",
    "events",
    "rows",
    "rejected",
    "oldest_received_at",
    "loaded_at",
)
REJECTED_COLUMNS = (
    "schema_name",
    "table_name",
    "column_name",
    "id",
    "raw_value",
    "reason",
    "received_at",
    "uuid_ts",
)
REJECTED_KEY = ("schema_name", "table_name", "column_name", "id")


class WarehouseUnavailable(Exception):
    """The warehouse cannot be reached or written; the loader retries later."""


class NothingLoaded(WarehouseUnavailable):
    """The built-in warehouse has no file yet: nothing has been loaded into it."""


class QueryError(ValueError):
    """A SQL query was refused (not read-only, more than one statement) or failed."""


class Session(Protocol):
    """A connection to a warehouse, for one micro-batch."""

    def position(self) -> int:
        """The log position of the last event loaded (0 when none)."""
        ...

    def catalog(self) -> Catalog:
        """The tables and columns there are now."""
        ...

    def load(self, plan: LoadPlan) -> None:
        """Apply the plan and record it in `_trackway_loads`, in one transaction."""
        ...


@dataclass(frozen=True, slots=True)
class TableStats:
    """A table of a warehouse with its column count and (estimated) row count."""

    schema: str
    name: str
    columns: int
    rows: int


@dataclass(slots=True)
class Stats:
    """What `trackway warehouse status` shows about one warehouse."""

    position: int = 0
    loads: int = 0
    events: int = 0
    rows: int = 0
    last_loaded_at: str | None = None
    last_events: int = 0
    tables: list[TableStats] = field(default_factory=list)
    rejected: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class QueryResult:
    """The answer to a read-only query (at most the requested number of rows)."""

    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool


class Warehouse(Protocol):
    """One configured warehouse on its engine."""

    engine: str
    """The engine's name (`duckdb`, `postgres`): plans are prepared for it
    (planning.prepare)."""

    def session(self) -> AbstractContextManager[Session]:
        """A connection for loading; raises `WarehouseUnavailable`."""
        ...

    def stats(self) -> Stats | None:
        """Load history, tables and rejected values; None when nothing was loaded yet."""
        ...

    def query(
        self, sql: str, max_rows: int, timeout_s: float, search_path: list[str]
    ) -> QueryResult:
        """Run one read-only statement; unqualified names resolve in `search_path`
        (the source schemas) first. Raises `QueryError` or `WarehouseUnavailable`."""
        ...

    def close(self) -> None: ...
