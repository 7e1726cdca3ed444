"""Turning a micro-batch of log events into what one warehouse transaction writes.

The planner sees the warehouse's tables as they are (the catalog) and decides, per
table, the rows to upsert, the tables and columns to create, the columns to widen,
and the values to reject. Engines only execute the plan.
"""

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from trackway import codec
from trackway.storage.records import LogEvent
from trackway.warehouse import naming
from trackway.warehouse.schema import (
    COMMON_FIELDS,
    DECLARED,
    EXTRA,
    MISFIT,
    PAYLOAD,
    TABLES,
    USERS,
    ColumnType,
    fit,
    fixed_columns,
    flatten,
    kind,
    payload_column,
    widens,
)

Catalog = dict[tuple[str, str], dict[str, ColumnType]]
"""The warehouse's tables: (schema, table) → columns and their types, in order."""

# Why a value is in `_rejected_values`.
TYPE_MISMATCH = "type_mismatch"
COLUMN_LIMIT = "column_limit"
DUPLICATE_COLUMN = "duplicate_column"

# Column types whose values are stored as they come, by the Python type they take.
_SAME: dict[ColumnType, type] = {"varchar": str, "float": float, "boolean": bool}
_CONTEXT = "context_"
# The declared columns of each table: objects in them are stored whole, as JSON text.
_WHOLE = {table: frozenset(columns) for table, columns in DECLARED.items()}
_NONE: frozenset[str] = frozenset()


class RejectedValue(NamedTuple):
    """A value kept aside because it could not go into its column."""

    schema: str
    table: str
    column: str
    id: str
    raw_value: str
    reason: str
    received_at: str


@dataclass(slots=True)
class TableLoad:
    """What one load does to one table: create or evolve it, then upsert its rows."""

    schema: str
    name: str
    fixed: dict[str, ColumnType]
    columns: dict[str, ColumnType]
    """Every column after the load, in table order."""
    created: bool
    merge: bool = False
    """`users`: a new row's missing values keep the stored ones (traits merge)."""
    event_table: bool = False
    """A track event's own table: its ids are a subset of `tracks`' ids."""
    payload: str = "properties"
    """Where the rows' own columns come from: `properties` or `traits`."""
    added: list[str] = field(default_factory=list)
    widened: list[str] = field(default_factory=list)
    """Integer columns that become float columns."""
    altered: list[str] = field(default_factory=list)
    """Columns that become varchar columns (of `DECLARED`, in a table made before)."""
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Rows by `id`: a second event with the same id in one batch replaces (or, for
    `users`, merges into) the first."""
    rows_file: str | None = None
    """A file holding the rows as a JSON array, when an engine prepared the plan in
    another process (`rows` then keeps only the ids, with empty rows); loading the
    plan deletes it."""
    select: str | None = None
    """Set when DuckDB reads the rows from the events' JSON itself (direct.py): the
    INSERT's column list and query, `(columns) SELECT ...`; `rows` keeps the ids."""
    as_is: dict[str, type] = field(default_factory=dict)
    """While planning: the columns that take a payload value of the given Python type
    as it is (fixed and `context_` columns never do)."""
    context_as_is: dict[str, type] = field(default_factory=dict)
    """While planning: the same for the `context_` columns."""

    def column_values(self) -> tuple[list[str], list[list[Any]]]:
        """The columns the rows have values for, and one list of values per column."""
        present: set[str] = set()
        for row in self.rows.values():
            present.update(row)
        names = [c for c in self.columns if c in present]
        rows = self.rows.values()
        values = []
        for name in names:
            column = [row.get(name) for row in rows]
            if self.columns[name] == "float":  # integers of a column widened in this batch
                column = [None if v is None else float(v) for v in column]
            values.append(column)
        return names, values


@dataclass(slots=True)
class LoadPlan:
    """One micro-batch: every table change, row and rejected value, and the new cursor."""

    first_position: int
    position: int
    events: int
    oldest_received_ms: int
    loaded_at: str
    tables: list[TableLoad]
    rejected: list[RejectedValue]
    files: list[str] = field(default_factory=list)
    """Files the tables' `select`s read (direct loading); loading the plan deletes them."""

    @property
    def rows(self) -> int:
        return sum(len(t.rows) for t in self.tables)


class Planner:
    """Plans loads against a catalog, which it updates as tables and columns appear."""

    def __init__(self, catalog: Catalog, max_columns: int) -> None:
        self.catalog = catalog
        self.max_columns = max_columns
        self._event_tables: dict[str, str] = {}

    def plan(self, events: list[LogEvent], schemas: dict[int, str], loaded_at: str) -> LoadPlan:
        """The plan for `events` (in log order, not empty) of sources named by `schemas`."""
        self.begin(loaded_at)
        self.add(events, schemas)
        return self.end()

    def begin(self, loaded_at: str) -> None:
        """Start a plan; `add` events to it (in log order), then `end` it.

        Adding a micro-batch in parts lets the caller drop each part's decoded events
        before reading the next (less memory, cheaper garbage collections).
        """
        self._loaded_at = loaded_at
        self._tables: dict[tuple[str, str], TableLoad] = {}
        self._rejected: dict[tuple[str, str, str, str], RejectedValue] = {}
        self._first_position = self._position = self._events = 0
        self._oldest_received_ms: int | None = None

    def add(self, events: list[LogEvent], schemas: dict[int, str]) -> None:
        """Plan `events` (in log order, after those added before) into the current plan."""
        if not events:
            return
        loaded_at = self._loaded_at
        for event in events:
            self._event(event.body, schemas[event.source_id], loaded_at)
        if not self._events:
            self._first_position = events[0].position
        self._position = events[-1].position
        self._events += len(events)
        oldest = min(e.received_at_ms for e in events)
        if self._oldest_received_ms is None or oldest < self._oldest_received_ms:
            self._oldest_received_ms = oldest

    def end(self) -> LoadPlan:
        """The plan of the events added since `begin` (at least one)."""
        assert self._oldest_received_ms is not None, "a plan needs events"
        for table in self._tables.values():
            # The catalog's entry goes on changing with the next plan, maybe before
            # this one is loaded: the plan keeps the columns as they are now.
            table.columns = dict(table.columns)
            table.as_is, table.context_as_is = {}, {}
        plan = LoadPlan(
            first_position=self._first_position,
            position=self._position,
            events=self._events,
            oldest_received_ms=self._oldest_received_ms,
            loaded_at=self._loaded_at,
            tables=list(self._tables.values()),
            rejected=list(self._rejected.values()),
        )
        self._tables = {}
        self._rejected = {}
        return plan

    def _event(self, body: dict[str, Any], schema: str, loaded_at: str) -> None:
        call = body["type"]
        base = {column: body[key] for key, column in COMMON_FIELDS if key in body}
        base["uuid_ts"] = loaded_at
        for column, key, _type in EXTRA[call]:
            if key in body:
                base[column] = body[key]
        context = flatten(body.get("context") or {}, "context")
        payload_key = PAYLOAD.get(call)
        if call == "track":
            table = self._event_tables.get(base["event"])
            if table is None:
                table = self._event_tables[base["event"]] = naming.event_table(base["event"])
            base["event"] = table
            payload = flatten(body.get("properties") or {}, "", _WHOLE.get(table, _NONE))
            self._row(schema, "tracks", call, base, context, [])
            self._row(schema, table, call, base, context, payload)
            return
        payload = flatten(body.get(payload_key) or {}) if payload_key else []
        self._row(schema, TABLES[call], call, base, context, payload)
        if call == "identify" and "user_id" in base:
            user = {"id": base["user_id"], "received_at": base["received_at"], "uuid_ts": loaded_at}
            self._row(schema, "users", "users", user, [], payload)

    def _table(self, schema: str, name: str, call: str) -> TableLoad:
        load = self._tables.get((schema, name))
        if load is None:
            fixed = dict(USERS) if call == "users" else fixed_columns(call)
            event_table = call == "track" and name != "tracks"
            declared = DECLARED.get(name, {}) if event_table else {}
            columns = self.catalog.get((schema, name))
            created = columns is None
            if columns is None:
                columns = self.catalog[schema, name] = {**fixed, **declared}
            load = TableLoad(schema, name, fixed, columns, created)
            load.merge = call == "users"
            load.event_table = event_table
            load.payload = PAYLOAD.get(call, "")  # aliases have none
            for column, type_ in declared.items():
                _declare(load, column, type_)
            for column, type_ in columns.items():
                if column not in fixed:
                    _take_as_is(load, column, type_)
            self._tables[schema, name] = load
        return load

    def _row(
        self,
        schema: str,
        name: str,
        call: str,
        base: dict[str, Any],
        context: list[tuple[str, Any]],
        payload: list[tuple[str, Any]],
    ) -> None:
        table = self._table(schema, name, call)
        row = base.copy()
        received_at = row["received_at"]
        # The common case inline: a known column and a value of its type.
        as_is = table.context_as_is
        for column, value in context:
            if as_is.get(column) is type(value) and column not in row:
                row[column] = value
            else:
                self._set(table, row, column, value, received_at)
        as_is = table.as_is
        fixed = table.fixed
        for column, value in payload:
            if as_is.get(column) is type(value) and column not in row:
                row[column] = value
            else:
                # A name the loader owns (`userId`, `timestamp`, `context.ip`...) is
                # renamed: Segment drops such values, Trackway loads them.
                column = payload_column(column, table.payload, fixed)
                self._set(table, row, column, value, received_at)
        stored = table.rows.get(row["id"])
        if stored is not None and table.merge:
            stored.update(row)
        else:
            table.rows[row["id"]] = row

    def _set(
        self, table: TableLoad, row: dict[str, Any], column: str, value: Any, received_at: str
    ) -> None:
        if column in row:
            self._reject(table, row, column, value, DUPLICATE_COLUMN, received_at)
            return
        type_ = table.columns.get(column)
        if type_ is None:
            if len(table.columns) >= self.max_columns:
                self._reject(table, row, column, value, COLUMN_LIMIT, received_at)
                return
            type_ = table.columns[column] = kind(value)
            table.added.append(column)
            _take_as_is(table, column, type_)
        elif widens(value, type_):
            type_ = table.columns[column] = "float"
            if column not in table.added:
                table.widened.append(column)
            _take_as_is(table, column, type_)
        stored = fit(value, type_)
        if stored is MISFIT:
            self._reject(table, row, column, value, TYPE_MISMATCH, received_at)
        else:
            row[column] = stored

    def _reject(
        self,
        table: TableLoad,
        row: dict[str, Any],
        column: str,
        value: Any,
        reason: str,
        received_at: str,
    ) -> None:
        key = (table.schema, table.name, column, row["id"])
        self._rejected[key] = RejectedValue(
            table.schema,
            table.name,
            column,
            row["id"],
            codec.dumps_text(value),
            reason,
            received_at,
        )


def _declare(table: TableLoad, column: str, type_: ColumnType) -> None:
    """Give an existing table a declared column it lacks, or the declared type (only
    ever varchar, which takes any stored value) it does not have yet."""
    stored = table.columns.get(column)
    if stored == type_:
        return
    table.columns[column] = type_
    (table.added if stored is None else table.altered).append(column)


def _take_as_is(table: TableLoad, column: str, type_: ColumnType) -> None:
    """Note a column (not a fixed one) that takes values of one Python type as they are."""
    python_type = _SAME.get(type_)
    if python_type is not None:
        as_is = table.context_as_is if column.startswith(_CONTEXT) else table.as_is
        as_is[column] = python_type
