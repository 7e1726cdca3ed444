"""`trackway models ...` and `trackway syncs ...`: preview models, run and inspect syncs."""

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click
import msgspec
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from trackway import codec, terminal
from trackway.cli_options import data_dir_option, friendly, json_option, storage_settings
from trackway.client.send import DEFAULT_DATA_PLANE
from trackway.outbound import outbound_client
from trackway.reverse_etl import config
from trackway.reverse_etl.connections import run_query
from trackway.reverse_etl.errors import ReverseEtlError
from trackway.reverse_etl.runner import Runner
from trackway.reverse_etl.schedule import next_run
from trackway.reverse_etl.state import Run, SyncStore, describe_run, open_sync_store
from trackway.server.run import open_state
from trackway.storage.base import SourceNotFound, StateStore
from trackway.workspace import delete

EXIT_PARTIAL = 3
"""`syncs run` exit status when the run finished but some rows were not delivered."""


_friendly = friendly(ReverseEtlError, SourceNotFound, delete.InUse)


def _store(data_dir: Path) -> StateStore:
    """The workspace state, closed when the command ends (a PostgreSQL connection too)."""
    store = open_state(storage_settings(data_dir))
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.call_on_close(store.close)
    return store


@contextmanager
def _sync_store(data_dir: Path) -> Iterator[SyncStore]:
    syncs = open_sync_store(storage_settings(data_dir))
    try:
        yield syncs
    finally:
        syncs.close()


@click.group()
def models() -> None:
    """Reverse-ETL models: SQL queries on DuckDB, PostgreSQL or SQLite."""


@models.command(name="list")
@data_dir_option
@json_option
@_friendly
def models_list(data_dir: Path, as_json: bool) -> None:
    """List models with their connection and primary key."""
    found = config.models(_store(data_dir))
    if as_json:
        click.echo(codec.dumps_text([msgspec.to_builtins(m) for m in found.values()]))
        return
    if not found:
        click.echo("No models yet: declare them under `models:` and run trackway apply.")
    for model in found.values():
        where = model.connection.path or model.connection.url or config.OWN_WAREHOUSE
        click.echo(
            f"{model.name:<24} {model.connection.type:<8} key {model.primary_key:<16} {where}"
        )


@models.command(name="preview")
@click.argument("name")
@click.option("--limit", default=10, type=click.IntRange(1, 1000), show_default=True)
@data_dir_option
@json_option
@_friendly
def models_preview(name: str, limit: int, data_dir: Path, as_json: bool) -> None:
    """Run a model's query and show its columns and first rows."""
    store = _store(data_dir)
    model = config.get_model(store, name)
    with run_query(model, data_dir, store, limit=limit) as result:
        rows = next(result.chunks(limit), [])
        columns = result.columns
    if as_json:
        out = {"columns": columns, "rows": [dict(zip(columns, r, strict=True)) for r in rows]}
        click.echo(codec.dumps(out).decode())
        return
    table = Table(title=f"model '{name}': first {len(rows)} row(s)", title_justify="left")
    for column in columns:
        table.add_column(column + (" (key)" if column == model.primary_key else ""))
    for row in rows:
        table.add_row(*("∅" if v is None else str(v) for v in row))
    console = terminal.console()
    console.print(table)
    click.echo(terminal.text(console), nl=False)
    click.echo(f"Columns: {', '.join(columns)}")


@click.group()
def syncs() -> None:
    """Reverse-ETL syncs: send a model's added, changed and removed rows as events."""


@syncs.command(name="list")
@data_dir_option
@json_option
@_friendly
def syncs_list(data_dir: Path, as_json: bool) -> None:
    """List syncs with their schedule and last run."""
    found = config.syncs(_store(data_dir))
    with _sync_store(data_dir) as state:
        last = state.last_runs()
    if as_json:
        out = [
            {**msgspec.to_builtins(s), "last_run": _run_json(last[n]) if n in last else None}
            for n, s in found.items()
        ]
        click.echo(codec.dumps_text(out))
        return
    if not found:
        click.echo("No syncs yet: declare them under `syncs:` and run trackway apply.")
    for name, sync in found.items():
        run = last.get(name)
        when = f"last run {run.status} at {run.started_at}" if run else "never run"
        click.echo(
            f"{name:<24} {sync.type:<9} model {sync.model:<20} {_schedule_text(sync):<18} {when}"
        )


@syncs.command(name="show")
@click.argument("name")
@data_dir_option
@json_option
@_friendly
def syncs_show(name: str, data_dir: Path, as_json: bool) -> None:
    """Show a sync: its declaration, snapshot size, last run and that run's row errors."""
    sync = config.get_sync(_store(data_dir), name)
    with _sync_store(data_dir) as state:
        size = state.snapshot_size(name)
        runs = state.runs(name, 1)
        errors = state.row_errors(name, runs[0].id) if runs else []
    upcoming = next_run(sync, runs[0] if runs else None, time.time())
    if as_json:
        out = {
            "sync": msgspec.to_builtins(sync),
            "snapshot_rows": size,
            "next_run": upcoming,
            "last_run": _run_json(runs[0]) if runs else None,
            "row_errors": [asdict(e) for e in errors],
        }
        click.echo(codec.dumps_text(out))
        return
    click.echo(f"Sync '{name}': {sync.type} from model '{sync.model}' to {_target_text(sync)}")
    click.echo(f"Schedule: {_schedule_text(sync)}" + (f", next run {upcoming}" if upcoming else ""))
    click.echo(f"Snapshot: {size} row(s) sent and acknowledged")
    click.echo("Last run: " + (describe_run(runs[0]) if runs else "none"))
    for e in errors:
        click.echo(f"  {e.status} {e.kind} row {e.pk!r}: {e.error}")


@syncs.command(name="run")
@click.argument("name")
@click.option(
    "--full-resync",
    is_flag=True,
    help="Send every row again as added (removed rows as removed); the snapshot stays exact.",
)
@click.option(
    "--data-plane",
    envvar="TRACKWAY_DATA_PLANE",
    default=DEFAULT_DATA_PLANE,
    show_default=True,
    show_envvar=True,
    help="Where Trackway's own ingest listens, for syncs to it that name no data_plane.",
)
@data_dir_option
@json_option
@_friendly
def syncs_run(name: str, full_resync: bool, data_plane: str, data_dir: Path, as_json: bool) -> None:
    """Run a sync now and print the run's counts.

    Exit status: 0 every change delivered, 1 the run failed, 3 it finished but some
    rows failed to send or were rejected (see `trackway syncs show NAME`).
    """
    console = Console(stderr=True)
    store = _store(data_dir)  # first: a missing data directory is not created
    with (
        _sync_store(data_dir) as state,
        outbound_client() as client,
        Progress(
            TextColumn(f"sync '{name}'"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        ) as bar,
    ):
        task = bar.add_task("send", total=None)
        runner = Runner(data_dir, store, state, data_plane, client)
        run = runner.run(
            name,
            full_resync=full_resync,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    click.echo(codec.dumps_text(_run_json(run)) if as_json else describe_run(run))
    if run.status in ("failed", "cancelled"):
        if as_json:
            sys.exit(1)
        raise click.ClickException(f"run {run.id} of sync '{name}' {run.status}: {run.error}")
    if run.status == "partial":
        if not as_json:
            click.echo(f"Some rows were not delivered: trackway syncs show {name}", err=True)
        sys.exit(EXIT_PARTIAL)


@syncs.command(name="runs")
@click.argument("name")
@click.option("--limit", default=20, type=click.IntRange(1, 10_000), show_default=True)
@data_dir_option
@json_option
@_friendly
def syncs_runs(name: str, limit: int, data_dir: Path, as_json: bool) -> None:
    """A sync's run history, newest first."""
    config.get_sync(_store(data_dir), name)
    with _sync_store(data_dir) as state:
        runs = state.runs(name, limit)
    if as_json:
        click.echo(codec.dumps_text([_run_json(r) for r in runs]))
        return
    if not runs:
        click.echo(f"Sync '{name}' has not run yet: trackway syncs run {name}")
    for run in runs:
        click.echo(describe_run(run))


@syncs.command(name="reset")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@data_dir_option
@_friendly
def syncs_reset(name: str, yes: bool, data_dir: Path) -> None:
    """Forget what a sync sent: its next run sends every row as added."""
    config.get_sync(_store(data_dir), name)
    with _sync_store(data_dir) as state:
        size = state.snapshot_size(name)
        if not yes:
            click.confirm(
                f"Forget the {size} row(s) sync '{name}' has sent? Its next run sends every"
                " row of the model as added, and cannot report rows removed until then.",
                abort=True,
            )
        with state.lock(name):
            forgotten = state.reset(name)
    click.echo(f"Sync '{name}' is reset ({forgotten} row(s) forgotten).")


def _run_json(run: Run) -> dict[str, Any]:
    out = asdict(run)
    out.update(out.pop("counts"))
    return out


def _schedule_text(sync: config.SyncSpec) -> str:
    if sync.schedule is None:
        return "manual"
    if sync.schedule.cron is not None:
        return f"cron {sync.schedule.cron} (UTC)"
    return f"every {sync.schedule.interval}"


def _target_text(sync: config.SyncSpec) -> str:
    target = sync.target
    if target.type == "segment":
        return f"Segment-compatible {target.data_plane or config.DEFAULT_SEGMENT_DATA_PLANE}"
    where = f" at {target.data_plane}" if target.data_plane else ""
    return f"Trackway source '{target.source or 'default'}'{where}"


@models.command(name="delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@data_dir_option
@_friendly
def models_delete(name: str, yes: bool, data_dir: Path) -> None:
    """Delete a model; refused while a sync reads it."""
    store = _store(data_dir)
    config.get_model(store, name)
    if not yes:
        click.confirm(f"Delete model '{name}'?", abort=True)
    click.echo(delete.delete_model(store, storage_settings(data_dir), name) + ".")


@syncs.command(name="delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@data_dir_option
@_friendly
def syncs_delete(name: str, yes: bool, data_dir: Path) -> None:
    """Delete a sync: it is no longer scheduled; its run history stays."""
    store = _store(data_dir)
    config.get_sync(store, name)
    if not yes:
        click.confirm(
            f"Delete sync '{name}'? A sync declared again under this name sends every row as"
            " added.",
            abort=True,
        )
    click.echo(delete.delete_sync(store, storage_settings(data_dir), name) + ".")
