"""Segment's warehouse schema: which tables an event lands in, flattening, column types.

Types are chosen from a column's first non-null value: `boolean`, `integer` (64-bit),
`float`, `timestamp` (a string in ISO 8601 with a time and an offset or `Z`) or
`varchar` (any other string; arrays as JSON text). An `integer` column widens to
`float` when a fractional number (or an integer beyond 64 bits) arrives. A `varchar`
column takes any value (numbers and booleans as their JSON text). Any other value that
does not fit its column is rejected: the caller keeps it in `_rejected_values`.
"""

import re
from datetime import UTC, datetime
from typing import Any, Final, Literal

from trackway import codec
from trackway.warehouse import naming

ColumnType = Literal["timestamp", "integer", "float", "boolean", "varchar"]

MISFIT: Final = object()
"""What `fit` returns for a value that does not fit the column's type."""

_INT64 = range(-(2**63), 2**63)
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:?\d\d)")
# Already the form `utc_text` writes (microseconds, when present, not all zero): only
# its validity needs checking.
_UTC_TEXT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.(?!000000)\d{6})?Z")


def utc_text(value: datetime) -> str:
    """A timestamp as the loader writes it: ISO 8601 in UTC with a `Z`."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def timestamp(text: str) -> str | None:
    """The UTC form of a timestamp string, or None when it is not one."""
    if _UTC_TEXT.fullmatch(text):
        try:
            datetime.fromisoformat(text)
        except ValueError:
            return None
        return text
    if not _TIMESTAMP.fullmatch(text):
        return None
    try:
        return utc_text(datetime.fromisoformat(text))
    except (ValueError, OverflowError):  # OverflowError: outside years 1-9999 in UTC
        return None


def kind(value: Any) -> ColumnType:
    """The type a non-null value asks for (used for a new column)."""
    t = type(value)
    if t is str:
        return "timestamp" if timestamp(value) is not None else "varchar"
    if t is bool:
        return "boolean"
    if t is int:
        return "integer" if value in _INT64 else "float"
    if t is float:
        return "float"
    return "varchar"  # a list, stored as JSON text


def fit(value: Any, column: ColumnType) -> Any:
    """The value as stored in a column of that type, or `MISFIT`.

    An `integer` column does not take a float: the caller widens the column first.
    """
    t = type(value)
    if column == "varchar":
        if t is str:
            return value
        if t is bool:
            return "true" if value else "false"
        return codec.dumps_text(value)
    if column == "timestamp":
        return (timestamp(value) if t is str else None) or MISFIT
    if column == "boolean":
        return value if t is bool else MISFIT
    if column == "integer":
        return value if t is int and value in _INT64 else MISFIT
    if t is int or t is float:  # float column
        return float(value)
    return MISFIT


def widens(value: Any, column: ColumnType) -> bool:
    """Whether a value makes an `integer` column a `float` column."""
    return column == "integer" and kind(value) == "float"


# -- tables ---------------------------------------------------------------------------

COMMON: tuple[tuple[str, ColumnType], ...] = (
    ("id", "varchar"),
    ("anonymous_id", "varchar"),
    ("user_id", "varchar"),
    ("received_at", "timestamp"),
    ("sent_at", "timestamp"),
    ("timestamp", "timestamp"),
    ("original_timestamp", "timestamp"),
    ("uuid_ts", "timestamp"),
)
"""Columns every event table has (`uuid_ts` is when the row was loaded)."""

# Body fields → common columns (besides `uuid_ts`, which the loader sets).
COMMON_FIELDS = (
    ("messageId", "id"),
    ("anonymousId", "anonymous_id"),
    ("userId", "user_id"),
    ("receivedAt", "received_at"),
    ("sentAt", "sent_at"),
    ("timestamp", "timestamp"),
    ("originalTimestamp", "original_timestamp"),
)

# Columns besides COMMON per call type, and the body field each comes from.
EXTRA: dict[str, tuple[tuple[str, str, ColumnType], ...]] = {
    "track": (("event", "event", "varchar"), ("event_text", "event", "varchar")),
    "identify": (),
    "page": (("name", "name", "varchar"), ("category", "category", "varchar")),
    "screen": (("name", "name", "varchar"), ("category", "category", "varchar")),
    "group": (("group_id", "groupId", "varchar"),),
    "alias": (("previous_id", "previousId", "varchar"),),
}

TABLES = {
    "track": "tracks",
    "identify": "identifies",
    "page": "pages",
    "screen": "screens",
    "group": "groups",
    "alias": "aliases",
}

USERS: tuple[tuple[str, ColumnType], ...] = (
    ("id", "varchar"),
    ("received_at", "timestamp"),
    ("uuid_ts", "timestamp"),
)
"""The fixed columns of `users`: one row per user_id, traits merged in (newest wins)."""

# Where a call type's own data (unprefixed columns) comes from (`users`: identify's).
PAYLOAD = {"track": "properties", "page": "properties", "screen": "properties"}
PAYLOAD.update(identify="traits", group="traits", users="traits")

_CONTEXT = "context_"

DECLARED: dict[str, dict[str, ColumnType]] = {
    # Flags of every type share the event's table, so the first flag's value must not
    # type the column: as text it takes them all (numbers and booleans as their JSON
    # text, like any varchar column). The variation id is null for flags without
    # variation ids: the column exists anyway, so queries on it never fail.
    # (`Feature Flag Evaluated` and `featureFlagEvaluated` both name this table.)
    "feature_flag_evaluated": {"value": "varchar", "variation_id": "varchar"},
}
"""Columns an event's table is created with (or given) whatever its events bring, by
table name. Unlike fixed columns they are filled from the properties, and an object
value in one is stored as JSON text instead of being flattened."""


def fixed_columns(call: str) -> dict[str, ColumnType]:
    """The columns of a table of this call type that the loader fills itself."""
    columns = dict(COMMON)
    columns.update((name, type_) for name, _field, type_ in EXTRA[call])
    return columns


def payload_column(column: str, payload: str, fixed: dict[str, ColumnType]) -> str:
    """The column of a property or trait whose flattened name is `column`.

    A name the loader owns (a fixed column of the table, or any `context_*`) gets the
    payload's own name in front, as if the payload were flattened like `context`:
    `properties.timestamp` → `properties_timestamp`, `traits.id` → `traits_id`.
    """
    if column in fixed or column.startswith(_CONTEXT):
        return naming.join(payload, column)
    return column


# -- flattening -------------------------------------------------------------------------

_names: dict[str, dict[str, str]] = {}
_NAMES_CACHED = 65_536


def _names_of(prefix: str) -> dict[str, str]:
    """The cache of `naming.join(prefix, key)` by key."""
    names = _names.get(prefix)
    if names is None:
        if len(_names) >= _NAMES_CACHED:
            _names.clear()
        names = _names[prefix] = {}
    return names


def _name(prefix: str, key: str, names: dict[str, str]) -> str:
    """`naming.join(prefix, key)`, kept in `names` (the prefix's cache): the same keys
    come again in every event."""
    if len(names) >= _NAMES_CACHED:
        names.clear()
    name = names[key] = naming.join(prefix, key)
    return name


def flatten(
    obj: dict[str, Any], prefix: str = "", whole: frozenset[str] = frozenset()
) -> list[tuple[str, Any]]:
    """Leaf values of a JSON object as (column, value), nested objects joined with `_`.

    Nulls and empty objects give no column; lists stay values (stored as JSON text).
    An object directly in `obj` whose column is in `whole` stays a value (JSON text).
    """
    out: list[tuple[str, Any]] = []
    if whole:
        kept = {}
        for key, value in obj.items():
            if type(value) is dict and (column := naming.join(prefix, key)) in whole:
                kept[key] = column
                out.append((column, value))
        if kept:
            obj = {key: value for key, value in obj.items() if key not in kept}
    # Iterative, so that the deepest object ingest accepts cannot overflow the stack;
    # each level looks its names up in its prefix's cache, fetched once per object.
    stack = [(prefix, _names_of(prefix), iter(obj.items()))]
    while stack:
        pre, names, items = stack[-1]
        for key, value in items:
            if type(value) is dict:
                if value:
                    nested = names.get(key) or _name(pre, key, names)
                    stack.append((nested, _names_of(nested), iter(value.items())))
                    break
            elif value is not None:
                out.append((names.get(key) or _name(pre, key, names), value))
        else:
            stack.pop()
    return out
