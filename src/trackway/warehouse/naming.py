"""The identifier rule: how event names, property keys and source names become SQL names.

One rule serves every name the loader creates (schemas, tables, columns), so that it
is the same in DuckDB and PostgreSQL and can be written in a query without quotes:

1. camelCase becomes snake_case (`userId` → `user_id`, `HTTPStatus` → `http_status`);
   accents are dropped (`é` → `e`);
2. lower case; every run of characters other than `a-z`, `0-9` becomes one `_`;
   leading and trailing `_` are removed;
3. nested keys are joined with `_` (`context.app.version` → `context_app_version`);
4. a name that is empty after that is `_` and 8 hex digits of a hash of the original;
   a name starting with a digit gets a leading `_`;
5. a name longer than 63 characters (PostgreSQL's limit) is cut to 54 and gets `_` and
   8 hex digits of a hash of the whole name;
6. a name that is an SQL keyword of DuckDB or PostgreSQL, or is taken (Segment's own
   table names, for event tables; system schemas, for source schemas), gets a `_`
   appended (`order` → `order_`, an event named "Pages" → table `pages_`).
"""

import hashlib
import re
import unicodedata

MAX_LENGTH = 63

# Words that cannot name a column unquoted in DuckDB or PostgreSQL (an error, or they
# mean something else: `user` is the current user): their reserved keywords, checked
# against both engines by tests/warehouse/test_naming.py.
_KEYWORDS = """
    all analyse analyze and anti any array as asc asof asymmetric at authorization
    binary both by case cast check collate collation column concurrently constraint
    create cross current_catalog current_date current_role current_schema current_time
    current_timestamp current_user default deferrable desc describe distinct do else end
    except false fetch for foreign freeze from full glob grant group having ilike in
    initially inner intersect into is isnull join lambda lateral leading left like limit
    localtime localtimestamp natural not notnull null offset on only or order outer
    overlaps pivot pivot_longer pivot_wider placing positional primary qualify
    references returning right select semi session_user show similar some summarize
    symmetric table tablesample then to trailing true union unique unpack unpivot user
    using variadic verbose when where window with
"""
KEYWORDS = frozenset(_KEYWORDS.split())

# Segment's tables: an event whose slug is one of these gets its own `<slug>_` table.
SEGMENT_TABLES = frozenset(
    ("tracks", "identifies", "users", "pages", "screens", "groups", "aliases")
)

# Schemas an engine keeps for itself (PostgreSQL also refuses any name starting `pg_`).
SYSTEM_SCHEMAS = frozenset(("information_schema", "main", "public", "temp", "system"))

_CAMEL_1 = re.compile(r"([A-Z]+)([A-Z][a-z])")
_CAMEL_2 = re.compile(r"([a-z0-9])([A-Z])")
_NOT_WORD = re.compile(r"[^a-z0-9]+")


def snake_case(name: str) -> str:
    """Steps 1 and 2 of the rule: `orderID` → `order_id`, `Order Completed` → `order_completed`."""
    if not name.isascii():
        name = unicodedata.normalize("NFKD", name)
        name = "".join(c for c in name if not unicodedata.combining(c))
    name = _CAMEL_2.sub(r"\1_\2", _CAMEL_1.sub(r"\1_\2", name))
    return _NOT_WORD.sub("_", name.lower()).strip("_")


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=4).hexdigest()


def finish(snake: str, original: str, taken: frozenset[str] = frozenset()) -> str:
    """Steps 4 to 6 of the rule, on a name already in snake_case."""
    if not snake:
        return "_" + _digest(original)
    if snake[0].isdigit():
        snake = "_" + snake
    if len(snake) > MAX_LENGTH:
        snake = snake[: MAX_LENGTH - 9] + "_" + _digest(snake)
    if snake in KEYWORDS or snake in taken:
        snake = snake[: MAX_LENGTH - 1] + "_"
    return snake


def identifier(name: str) -> str:
    """A column (or any) name for a key, by the whole rule."""
    return finish(snake_case(name), name)


def join(prefix: str, key: str) -> str:
    """The column of `key` nested in the object whose column prefix is `prefix`."""
    if not prefix:
        return identifier(key)
    # The prefix was already finished; strip a keyword's `_` so `order.id` → `order_id`.
    return finish(f"{prefix.rstrip('_')}_{snake_case(key)}".strip("_"), f"{prefix}.{key}")


def event_table(event: str) -> str:
    """The table of a track event (also the value of the `event` column)."""
    return finish(snake_case(event), event, SEGMENT_TABLES)


def source_schema(source: str) -> str:
    """The schema of a source's tables (before disambiguation, see `source_schemas`)."""
    schema = finish(snake_case(source), source, SYSTEM_SCHEMAS)
    return schema + "_" if schema.startswith("pg_") else schema


def source_schemas(sources: list[tuple[int, str]]) -> dict[int, str]:
    """Schema per source id; when two names give one schema, the later source (higher
    id) gets its id appended (`my-app` and `my_app` → `my_app` and `my_app_7`)."""
    out: dict[int, str] = {}
    used: set[str] = set()
    for source_id, name in sorted(sources):
        schema = source_schema(name)
        if schema in used:
            schema = f"{schema[: MAX_LENGTH - 12]}_{source_id}"
        used.add(schema)
        out[source_id] = schema
    return out


def quote(name: str) -> str:
    """A name quoted for SQL (generated SQL quotes every name, whatever it is)."""
    return '"' + name.replace('"', '""') + '"'
