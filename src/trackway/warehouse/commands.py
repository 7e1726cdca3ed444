"""The warehouse commands: `trackway sql` and `trackway warehouse status|reload`."""

from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from trackway import codec
from trackway.cli_options import (
    data_dir_option,
    friendly,
    json_option,
    parse_since,
    storage_settings,
)
from trackway.server.run import open_log, open_state
from trackway.settings import parse_duration
from trackway.storage.positions import position_at
from trackway.warehouse import engines, results
from trackway.warehouse import status as warehouse_status
from trackway.warehouse.base import QueryError, WarehouseUnavailable
from trackway.warehouse.config import DEFAULT_NAME, find, warehouses
from trackway.warehouse.loader import LoadResult, WarehouseLoader

DEFAULT_MAX_ROWS = 10_000
DEFAULT_TIMEOUT = "60s"


_friendly = friendly(ValueError, WarehouseUnavailable)


@click.command(name="sql")
@click.argument("query")
@click.option(
    "--warehouse",
    "name",
    default=DEFAULT_NAME,
    show_default=True,
    help="Which warehouse to query.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="Output format.",
)
@click.option(
    "--max-rows",
    default=DEFAULT_MAX_ROWS,
    type=click.IntRange(1, 1_000_000),
    show_default=True,
    help="Print at most this many rows.",
)
@click.option(
    "--timeout",
    default=DEFAULT_TIMEOUT,
    show_default=True,
    help="Stop a query that runs longer than this.",
)
@data_dir_option
@_friendly
def sql_command(
    query: str, name: str, fmt: results.Format, max_rows: int, timeout: str, data_dir: Path
) -> None:
    """Run one read-only SQL statement on a warehouse and print the rows.

    Table names without a schema resolve in the sources' schemas (oldest source
    first), so `SELECT count(*) FROM tracks` works with one source.
    """
    store = open_state(storage_settings(data_dir))
    spec = find(store, name)
    try:
        result = engines.query(spec, data_dir, store, query, max_rows, parse_duration(timeout))
    except QueryError as exc:
        raise click.ClickException(f"query failed: {exc}") from exc
    click.echo(results.render(result, fmt))


@click.group(name="warehouse")
def warehouse_group() -> None:
    """The warehouses the loader fills: their status, and reloads from the log."""


@warehouse_group.command(name="status")
@data_dir_option
@json_option
@_friendly
def status_command(data_dir: Path, as_json: bool) -> None:
    """Per warehouse: last load, rows loaded, lag behind the log, tables, rejected values."""
    settings = storage_settings(data_dir)
    store = open_state(settings)
    log = open_log(settings)
    try:
        statuses = [warehouse_status.status(s, data_dir, log) for s in warehouses(store)]
    finally:
        log.close()
    if as_json:
        click.echo(codec.dumps_text(statuses))
    else:
        click.echo(warehouse_status.render(statuses))


@warehouse_group.command(name="reload")
@click.argument("name")
@click.option(
    "--since",
    required=True,
    help="Reload events received since this time (ISO 8601 with an offset) or this long"
    " ago (e.g. 24h).",
)
@data_dir_option
@_friendly
def reload_command(name: str, since: str, data_dir: Path) -> None:
    """Load the events since a time again (rows are replaced, never doubled).

    Safe while the server runs; the warehouse's cursor never moves back.
    """
    since_ms = parse_since(since)
    settings = storage_settings(data_dir)
    store = open_state(settings)
    spec = find(store, name)
    log = open_log(settings)
    warehouse = engines.open_warehouse(spec, data_dir)
    loader = WarehouseLoader(spec, warehouse, log, lambda: engines.sources(store))
    try:
        start = position_at(log, since_ms)
        end = log.last_seqs()["accepted"]
        columns = (
            TextColumn("reloading"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("events"),
            TimeRemainingColumn(),
        )
        with Progress(*columns, transient=False) as progress:
            task = progress.add_task("reload", total=max(end - start, 0))
            totals = {"events": 0, "rows": 0, "rejected": 0}

            def advance(result: LoadResult) -> None:
                totals["events"] += result.events
                totals["rows"] += result.rows
                totals["rejected"] += result.rejected
                progress.update(task, completed=result.position - start)

            loader.catch_up(after=start, end=end, on_batch=advance)
    finally:
        warehouse.close()
        log.close()
    click.echo(
        f"Reloaded {totals['events']:,} events ({totals['rows']:,} rows,"
        f" {totals['rejected']:,} rejected values) into warehouse '{name}'."
    )
