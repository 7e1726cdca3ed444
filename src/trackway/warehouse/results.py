"""Query results as people and programs read them: a table, JSON or CSV."""

import csv
import io
import math
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from rich.table import Table

from trackway import codec, terminal
from trackway.warehouse.base import QueryResult

Format = Literal["table", "json", "csv"]


def jsonable(value: Any) -> Any:
    """A result value as JSON can hold it; timestamps as ISO 8601 in UTC with `Z`.

    DuckDB's TIMESTAMP columns hold UTC without a zone, PostgreSQL's timestamptz come
    back zoned: both print the same.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, UUID):
        return str(value)
    return str(value)


def as_json(result: QueryResult) -> dict[str, Any]:
    """`{"columns": [...], "rows": [[...]], "truncated": bool}`."""
    return {
        "columns": result.columns,
        "rows": [[jsonable(v) for v in row] for row in result.rows],
        "truncated": result.truncated,
    }


def render(result: QueryResult, fmt: Format) -> str:
    """The result as text: an aligned table, a JSON array of objects, or CSV."""
    rows = [[jsonable(v) for v in row] for row in result.rows]
    if fmt == "json":
        return codec.dumps_text([dict(zip(result.columns, row, strict=True)) for row in rows])
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows(["" if v is None else _text(v) for v in row] for row in rows)
        return out.getvalue().rstrip("\n")
    table = Table(*result.columns, show_lines=False)
    for row in rows:
        table.add_row(*("NULL" if v is None else _text(v) for v in row))
    console = terminal.console()
    console.print(table)
    footer = f"{len(rows)} row{'s' if len(rows) != 1 else ''}"
    if result.truncated:
        footer += f" (more rows exist; showing the first {len(rows)})"
    if terminal.too_wide(console, table):
        footer += " (fitted to the terminal: --format csv or json shows every value whole)"
    return terminal.text(console).rstrip("\n") + "\n" + footer


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return codec.dumps_text(value)
