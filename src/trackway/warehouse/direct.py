"""Direct loading: DuckDB reads a micro-batch of track events from the log's own JSON.

In a backlog the planner's decisions (plan.py) mostly repeat: the same keys land in the
same columns, with values of the same types. `DirectPlanner` learns those keys from the
events the planner has planned (`learn`), and builds from them and the catalog, per
source, a msgspec decoder that accepts only track events each of whose `context` and
`properties` values its tables take as it is: a known column, a value of its type (an
integer within 64 bits; a timestamp already in the form the loader writes), no two keys
naming one column. A micro-batch whose events all pass is loaded by DuckDB straight
from their stored JSON (`plan`), with no Python work per value; any other goes through
the planner, which decides (new tables and columns, widening, rejected values) and
teaches the next decoder. Measurements: docs/decisions/0010-warehouse-loader-limits.md.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union

import duckdb
import msgspec

from trackway import codec
from trackway.storage.chunk_reads import ChunkReads
from trackway.storage.records import LogEvent
from trackway.warehouse import naming
from trackway.warehouse.duckdb import SQL_TYPES, spool_file, sql_text
from trackway.warehouse.naming import quote
from trackway.warehouse.plan import LoadPlan, Planner, TableLoad
from trackway.warehouse.schema import (
    COMMON_FIELDS,
    DECLARED,
    ColumnType,
    fixed_columns,
    payload_column,
    timestamp,
)

MIN_EVENTS = 1_000
"""The default `DirectPlanner.min_events`."""
_MAX_DEPTH = 8
"""Objects nested deeper than this are left to the planner."""
_CONTEXT = "context_"
_TRACK_COLUMNS = fixed_columns("track")
_INT64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
# The values a column of each type takes as they are (a timestamp's form is checked
# after decoding: `_Event.timestamps`).
_ACCEPTS: dict[ColumnType, Any] = {
    "varchar": str,
    "float": float,  # integers too: the planner stores them as floats
    "integer": _INT64,
    "boolean": bool,
    "timestamp": str,
}
_NO_ROW: dict[str, Any] = {}
_UNNAMEABLE = re.compile(r'[\\"\x00-\x1f]')
"""Characters msgspec does not take in a field's name: such keys are left to the planner."""


class _Object:
    """The keys an object (an event's context or properties, or an object in them) was
    seen with: key → the column of its values, the keys of its nested object, or None
    when it came as both."""

    __slots__ = ("keys", "payload", "prefix", "whole")

    def __init__(
        self, prefix: str, payload: str | None = None, whole: frozenset[str] = frozenset()
    ) -> None:
        self.prefix = prefix
        self.payload = payload
        """`properties` in an event's properties: names the loader owns are renamed."""
        self.whole = whole
        """Columns of keys whose objects the planner stores whole (`DECLARED`)."""
        self.keys: dict[str, _Object | str | None] = {}
        """Key → column, nested object, `_NULL` (only nulls so far) or None (both a value
        and an object)."""

    def learn(self, obj: dict[str, Any], depth: int = 0) -> None:
        keys = self.keys
        for key, value in obj.items():
            known = keys.get(key, _NEW)
            if value is None:
                if known is _NEW:
                    keys[key] = _NULL
                continue
            if known is _NULL:
                known = _NEW
            if type(value) is dict and not (
                self.whole and naming.join(self.prefix, key) in self.whole
            ):
                if known is _NEW:
                    known = keys[key] = _Object(naming.join(self.prefix, key), self.payload)
                if isinstance(known, _Object) and depth < _MAX_DEPTH:
                    known.learn(value, depth + 1)
                else:
                    keys[key] = None
            elif known is _NEW:
                column = naming.join(self.prefix, key)
                if self.payload is not None:
                    column = payload_column(column, self.payload, _TRACK_COLUMNS)
                keys[key] = column
            elif isinstance(known, _Object):
                keys[key] = None


_NEW: Any = object()
_NULL = "\0null"
"""A key seen only with null values (no column: the planner skips nulls)."""


@dataclass
class _Fields:
    """What one object's accepted keys give: msgspec fields, a DuckDB STRUCT's fields,
    and per leaf its column, SQL path and (for timestamps) attribute path."""

    msgspec: list[tuple[str, Any, None]] = field(default_factory=list)
    rename: dict[str, str] = field(default_factory=dict)
    duckdb: list[str] = field(default_factory=list)
    """The STRUCT's fields, `"key" TYPE`."""
    columns: list[tuple[str, str]] = field(default_factory=list)
    """(column, SQL expression) of each leaf."""
    timestamps: list[tuple[str, ...]] = field(default_factory=list)


@dataclass(frozen=True)
class _Event:
    """How one event name of one source loads directly."""

    name: str
    table: str
    spec: str
    """read_json's `columns` for its events."""
    tracks_spec: str
    """The same without `properties` (for `tracks`)."""
    context: list[tuple[str, str]]
    properties: list[tuple[str, str]]
    timestamps: list[tuple[str, ...]]
    """Attribute paths (in the decoded struct) of values for timestamp columns."""


class DirectPlanner:
    """Plans micro-batches of track events for direct loading into DuckDB (see the
    module's docstring); `plan` returns None for a micro-batch it cannot take."""

    def __init__(
        self, log: ChunkReads, planner: Planner, spool: str, min_events: int = MIN_EVENTS
    ) -> None:
        self.log = log
        self.min_events = min_events
        """Fewer events than this before one that needs the planner are left to it too
        (each plan is a transaction of its own)."""
        self.planner = planner
        self.catalog = planner.catalog
        """The planner's catalog (the same object: it sees every column decided)."""
        self.spool = spool
        self._conn: duckdb.DuckDBPyConnection | None = None
        self._context: dict[str, _Object] = {}
        self._properties: dict[tuple[str, str], _Object] = {}
        self._decoders: dict[str, tuple[msgspec.json.Decoder[Any], dict[type, _Event]] | None] = {}

    def learn(self, events: list[LogEvent], schemas: dict[int, str]) -> None:
        """Note the keys of events the planner has just planned."""
        self._decoders.clear()  # the keys or the catalog may have changed
        for event in events:
            body = event.body
            name = body.get("event")
            if body.get("type") != "track" or type(name) is not str:
                continue
            schema = schemas.get(event.source_id)
            if schema is None:
                continue
            context = body.get("context")
            if type(context) is dict:
                node = self._context.get(schema)
                if node is None:
                    node = self._context[schema] = _Object("context")
                node.learn(context)
            node = self._properties.get((schema, name))
            if node is None:
                whole = frozenset(DECLARED.get(naming.event_table(name), ()))
                node = self._properties[schema, name] = _Object("", "properties", whole)
            properties = body.get("properties")
            if type(properties) is dict:
                node.learn(properties)

    def plan(
        self, after: int, limit: int, schemas: dict[int, str], loaded_at: str
    ) -> LoadPlan | None:
        """The plan of up to `limit` events after position `after`: track events loaded
        directly, other calls planned by the planner. It ends before the first track
        event that needs the planner; None when fewer than `min_events` come before it
        (or none waits)."""
        chunks = self.log.read_chunks(after, limit)
        end = after + limit
        first = position = events = 0
        oldest: int | None = None
        files: dict[tuple[str, str], tuple[list[bytes], list[str]]] = {}
        ids: dict[str, set[str]] = {}
        others: list[LogEvent] = []
        complete = True
        for start, source_id, received_at_ms, blob in chunks:
            schema = schemas.get(source_id)
            decoder = None if schema is None else self._decoder(schema)
            if schema is None or decoder is None:
                complete = False
                break
            decode, shapes = decoder
            raws: list[msgspec.Raw] = _RAW.decode(blob)
            lo, hi = max(after + 1 - start, 0), min(end + 1 - start, len(raws))
            seen = ids.setdefault(schema, set())
            for offset, raw in enumerate(raws[lo:hi], start + lo):
                try:
                    event = decode.decode(raw)
                except msgspec.ValidationError:
                    if _call(raw) in (None, "track"):
                        complete = False
                        break
                    others.append(LogEvent(offset, source_id, received_at_ms, codec.loads(raw)))
                else:
                    shape = shapes[type(event)]
                    if shape.timestamps and not _normal(event, shape.timestamps):
                        complete = False
                        break
                    if event.messageId in seen:  # the planner keeps the last one
                        complete = False
                        break
                    seen.add(event.messageId)
                    raws_ids = files.get((schema, shape.name))
                    if raws_ids is None:
                        raws_ids = files[schema, shape.name] = ([], [])
                    raws_ids[0].append(raw)
                    raws_ids[1].append(event.messageId)
                first = first or offset
                position = offset
                events += 1
                oldest = received_at_ms if oldest is None or received_at_ms < oldest else oldest
            if not complete:
                break
        if oldest is None or (not complete and events < self.min_events):
            return None
        plan = self._plan(files, ids, first, position, events, oldest, loaded_at)
        if others:  # their tables are not those of track events
            self.planner.begin(loaded_at)
            self.planner.add(others, schemas)
            planned = self.planner.end()
            plan.tables += planned.tables
            plan.rejected += planned.rejected
        return plan

    def _plan(
        self,
        files: dict[tuple[str, str], tuple[list[bytes], list[str]]],
        ids: dict[str, set[str]],
        first: int,
        position: int,
        events: int,
        oldest: int,
        loaded_at: str,
    ) -> LoadPlan:
        """The plan of the events taken: per source, `tracks` and each event's table.

        The loader's DuckDB reads each event table's rows from a file of its events' JSON;
        `tracks`' rows, from all of them, are written by this process's DuckDB into a
        parquet file, which costs the loader, the slower of the two processes, little to
        insert (0010).
        """
        plan = LoadPlan(first, position, events, oldest, loaded_at, [], [])
        fixed = [*_COMMON_VALUES, f"CAST({sql_text(loaded_at)} AS TIMESTAMP)"]
        for schema in sorted(s for s, schema_ids in ids.items() if schema_ids):
            decoder = self._decoders[schema]
            assert decoder is not None
            shapes = {shape.name: shape for shape in decoder[1].values()}
            sources: list[tuple[str, _Event]] = []  # each event name's JSON file
            tables: list[TableLoad] = []
            for (file_schema, name), (raws, event_ids) in files.items():
                if file_schema == schema:
                    shape = shapes[name]
                    sources.append((spool_file(b"[" + b",".join(raws) + b"]", self.spool), shape))
                    table = self._table(schema, shape.table, event_ids)
                    leaves = shape.context + shape.properties
                    values = [*fixed, sql_text(shape.table), '"event"', *(v for _, v in leaves)]
                    columns = ", ".join(map(quote, [*_TRACK_COLUMNS, *(c for c, _ in leaves)]))
                    table.select = f"({columns}) {_query(values, sources[-1][0], shape.spec)}"
                    tables.append(table)
            context = list(dict.fromkeys(c for _, shape in sources for c, _ in shape.context))
            queries = []
            for path, shape in sources:
                own = dict(shape.context)
                values = [*fixed, sql_text(shape.table), '"event"']
                values += [own.get(c, "NULL") for c in context]
                queries.append(_query(values, path, shape.tracks_spec))
            tracks = self._table(schema, "tracks", ids[schema])
            tracks.select = self._rows(plan, [*_TRACK_COLUMNS, *context], queries)
            plan.tables += [tracks, *tables]
            plan.files += [path for path, _shape in sources]
        return plan

    def _rows(self, plan: LoadPlan, columns: list[str], queries: list[str]) -> str:
        """Write the rows of `queries` (their values in `columns` order) into a parquet
        file of the plan's; returns the `(columns) SELECT` that reads them back."""
        path = spool_file(b"", self.spool, ".parquet")  # DuckDB writes it
        plan.files.append(path)
        self._duckdb().execute(
            f"COPY ({' UNION ALL '.join(queries)}) TO {sql_text(path)}"
            " (FORMAT parquet, COMPRESSION uncompressed)"
        )
        return f"({', '.join(map(quote, columns))}) SELECT * FROM read_parquet({sql_text(path)})"

    def close(self) -> None:
        """Close the in-memory DuckDB that writes `tracks`' rows (see `_plan`)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _duckdb(self) -> duckdb.DuckDBPyConnection:
        if self._conn is None:
            self._conn = duckdb.connect(config={"threads": 1, "memory_limit": "128MB"})
        return self._conn

    def _table(self, schema: str, name: str, ids: Iterable[str]) -> TableLoad:
        columns = self.catalog[schema, name]
        table = TableLoad(schema, name, dict(_TRACK_COLUMNS), dict(columns), created=False)
        table.event_table = name != "tracks"
        table.rows = dict.fromkeys(ids, _NO_ROW)
        return table

    def _decoder(self, schema: str) -> tuple[msgspec.json.Decoder[Any], dict[type, _Event]] | None:
        if schema in self._decoders:
            return self._decoders[schema]
        structs: dict[type, _Event] = {}
        tracks = self.catalog.get((schema, "tracks"))
        context = self._context.get(schema, _Object("context"))
        for (node_schema, name), properties in self._properties.items():
            table = naming.event_table(name)
            columns = self.catalog.get((schema, table))
            if node_schema != schema or tracks is None or columns is None:
                continue
            struct, event = _event_struct(name, table, context, properties, tracks, columns)
            structs[struct] = event
        decoder = None
        if structs:
            union = Union[tuple(structs)]  # type: ignore[valid-type]  # noqa: UP007
            decoder = (msgspec.json.Decoder(union), structs)
        self._decoders[schema] = decoder
        return decoder


_RAW = msgspec.json.Decoder(list[msgspec.Raw])
_COMMON_VALUES = [quote(key) for key, _column in COMMON_FIELDS]
_TOP_SPEC = [(key, SQL_TYPES[_TRACK_COLUMNS[c]]) for key, c in COMMON_FIELDS]


def _event_struct(
    name: str,
    table: str,
    context: _Object,
    properties: _Object,
    tracks: dict[str, ColumnType],
    columns: dict[str, ColumnType],
) -> tuple[type, _Event]:
    """The msgspec struct that accepts the events of one name loadable directly, and
    how they load."""
    # A context column goes into `tracks` and the event's table: both must take it.
    both = {c: t for c, t in columns.items() if tracks.get(c) == t and c.startswith(_CONTEXT)}
    own = {
        c: t for c, t in columns.items() if c not in _TRACK_COLUMNS and not c.startswith(_CONTEXT)
    }
    ctx = _fields(context, both, ("context",), '"context"')
    props = _fields(properties, own, ("properties",), '"properties"')
    top: list[tuple[str, Any, Any]] = [("type", Literal["track"], msgspec.NODEFAULT)]
    top.append(("messageId", str, msgspec.NODEFAULT))
    spec = [*_TOP_SPEC, ("event", "VARCHAR")]
    for key, fields in (("context", ctx), ("properties", props)):
        top.append((key, _struct(f"{table}_{key}", fields) | None, None))
        if fields.duckdb:
            spec.append((key, f"STRUCT({', '.join(fields.duckdb)})"))
    struct = msgspec.defstruct(
        f"Track_{table}", top, tag_field="event", tag=name, kw_only=True, frozen=True
    )
    event = _Event(
        name,
        table,
        _columns(spec),
        _columns(spec[:-1] if props.duckdb else spec),
        ctx.columns,
        props.columns,
        ctx.timestamps + props.timestamps,
    )
    return struct, event


def _columns(spec: list[tuple[str, str]]) -> str:
    """read_json's `columns` argument: keys and their DuckDB types."""
    return ", ".join(f"{sql_text(key)}: {sql_text(sql_type)}" for key, sql_type in spec)


def _fields(
    node: _Object, columns: dict[str, ColumnType], attributes: tuple[str, ...], sql: str
) -> _Fields:
    """The accepted keys of an object: those whose column takes their values as they
    are, alone (no other key names the column) and distinct from their siblings for
    DuckDB (whose struct fields ignore case)."""
    counts: dict[str, int] = {}
    _count(node, counts)
    return _build(node, columns, counts, attributes, sql)


def _count(node: _Object, counts: dict[str, int]) -> None:
    for value in node.keys.values():
        if isinstance(value, _Object):
            _count(value, counts)
        elif value is not None and value is not _NULL:
            counts[value] = counts.get(value, 0) + 1


def _build(
    node: _Object,
    columns: dict[str, ColumnType],
    counts: dict[str, int],
    attributes: tuple[str, ...],
    sql: str,
) -> _Fields:
    out = _Fields()
    lower: dict[str, int] = {}
    for key in node.keys:
        lower[key.lower()] = lower.get(key.lower(), 0) + 1
    for key, value in node.keys.items():
        if value is None or lower[key.lower()] > 1 or _UNNAMEABLE.search(key):
            continue
        attribute = f"f{len(out.msgspec)}"
        path = f"{sql}.{quote(key)}"
        if value is _NULL:
            out.msgspec.append((attribute, None, None))
        elif isinstance(value, _Object):
            inner = _build(value, columns, counts, (*attributes, attribute), path)
            struct = _struct(f"{value.prefix}", inner)
            out.msgspec.append((attribute, struct | None, None))
            if inner.duckdb:
                out.duckdb.append(f"{quote(key)} STRUCT({', '.join(inner.duckdb)})")
            out.columns += inner.columns
            out.timestamps += inner.timestamps
        else:
            column_type = columns.get(value)
            if column_type is None or counts[value] > 1:
                continue
            accepts = _ACCEPTS[column_type]
            out.msgspec.append((attribute, accepts | None, None))
            out.duckdb.append(f"{quote(key)} {SQL_TYPES[column_type]}")
            out.columns.append((value, path))
            if column_type == "timestamp":
                out.timestamps.append((*attributes, attribute))
        out.rename[attribute] = key
    return out


def _struct(name: str, fields: _Fields) -> type:
    return msgspec.defstruct(
        f"Object_{name}",
        fields.msgspec,
        rename=fields.rename,
        forbid_unknown_fields=True,
        frozen=True,
    )


class _Call(msgspec.Struct):
    type: str


_CALL = msgspec.json.Decoder(_Call)


def _call(raw: bytes) -> str | None:
    """An event's call type (None: it has none)."""
    try:
        return _CALL.decode(raw).type
    except msgspec.ValidationError:
        return None


def _normal(event: Any, paths: list[tuple[str, ...]]) -> bool:
    """Whether every timestamp value is a timestamp already in the loader's form."""
    for path in paths:
        value = event
        for attribute in path:
            value = getattr(value, attribute)
            if value is None:
                break
        else:
            if timestamp(value) != value:
                return False
    return True


def _query(values: list[str], path: str, spec: str) -> str:
    # The values are named by position: two leaves may end in the same key, and the rows
    # are read back by position.
    named = ", ".join(f'{value} AS "{i}"' for i, value in enumerate(values))
    return (
        f"SELECT {named} FROM read_json({sql_text(path)}, format = 'array', columns = {{{spec}}})"
    )
