"""The `trackway` command."""

import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from trackway import __version__, codec
from trackway.debugger import record_json, record_line
from trackway.server.run import open_log, open_state, serve
from trackway.settings import (
    DEFAULT_DATA_DIR,
    Settings,
    env,
    parse_duration,
    parse_networks,
)
from trackway.storage.base import SourceNotFound, StateStore
from trackway.storage.records import Status
from trackway.workspace import apply as workspace_apply
from trackway.workspace.keys import new_admin_token, token_hash
from trackway.workspace.sources import SOURCE_TYPES, check_name, source_json

F = TypeVar("F", bound=Callable[..., Any])

_TAIL_POLL_S = 0.25


def _data_dir_option(fn: F) -> F:
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=DEFAULT_DATA_DIR,
        envvar="TRACKWAY_DATA_DIR",
        show_default=True,
        show_envvar=True,
        help="Directory holding Trackway's data.",
    )(fn)


def _json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(fn)


def _store(data_dir: Path) -> StateStore:
    return open_state(Settings(data_dir=data_dir))


def _friendly(fn: F) -> F:
    """Turn expected failures into one clear line and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (SourceNotFound, ValueError, workspace_apply.ApplyError) as exc:
            raise click.ClickException(str(exc.args[0] if exc.args else exc)) from exc

    return wrapper  # type: ignore[return-value]


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="trackway")
def main() -> None:
    """Trackway: a self-hosted, Segment-compatible customer data platform.

    Start the server with `trackway serve`; point any Segment SDK at it with the
    write key it prints. Every command works on the data directory directly,
    whether or not the server is running.
    """


@main.command(name="serve")
@_data_dir_option
@click.option(
    "--host",
    default="127.0.0.1",
    envvar="TRACKWAY_HOST",
    show_default=True,
    help="Address to listen on.",
)
@click.option(
    "--port",
    default=8088,
    type=click.IntRange(0, 65535),
    envvar="TRACKWAY_PORT",
    show_default=True,
    help="Port to listen on.",
)
@click.option(
    "--synchronous",
    type=click.Choice(["full", "normal"]),
    default="full",
    envvar="TRACKWAY_SYNCHRONOUS",
    show_default=True,
    help="full: a 200 means the events survive a power loss. normal: faster; the "
    "last commits can be lost on power loss (not on a process crash).",
)
@click.option(
    "--dedup-window",
    default="24h",
    callback=_duration,
    show_default=True,
    envvar="TRACKWAY_DEDUP_WINDOW",
    help="A messageId seen again within this time is acknowledged, not stored.",
)
@click.option(
    "--retention",
    default="7d",
    callback=_duration,
    show_default=True,
    envvar="TRACKWAY_RETENTION",
    help="How long the event log keeps events.",
)
@click.option(
    "--trusted-proxy",
    multiple=True,
    envvar="TRACKWAY_TRUSTED_PROXIES",
    help="Address or CIDR of a proxy whose X-Forwarded-For is believed "
    "(repeatable, or comma-separated).",
)
@_friendly
def serve_command(
    data_dir: Path,
    host: str,
    port: int,
    synchronous: str,
    dedup_window: float,
    retention: float,
    trusted_proxy: tuple[str, ...],
) -> None:
    """Run the tracking API and the admin API in one process."""
    settings = Settings(
        data_dir=data_dir,
        host=host,
        port=port,
        synchronous="normal" if synchronous == "normal" else "full",
        dedup_window_s=dedup_window,
        retention_s=retention,
        trusted_proxies=parse_networks(trusted_proxy),
        admin_token=env("ADMIN_TOKEN"),
    )
    serve(settings)


@main.group()
def sources() -> None:
    """Create and manage sources and their write keys."""


@sources.command(name="create")
@click.argument("name")
@click.option(
    "--type",
    "source_type",
    type=click.Choice(SOURCE_TYPES),
    default="segment",
    show_default=True,
    help="What sends to this source.",
)
@_data_dir_option
@_json_option
@_friendly
def sources_create(name: str, source_type: str, data_dir: Path, as_json: bool) -> None:
    """Create a source and print its write key."""
    store = _store(data_dir)
    source = store.create_source(check_name(name), source_type)
    out = source_json(store, source)
    if as_json:
        click.echo(codec.dumps_text({k: out[k] for k in ("id", "name", "write_key")}))
    else:
        click.echo(f"Created source '{name}' ({out['id']}) with write key: {out['write_key']}")


@sources.command(name="list")
@_data_dir_option
@_json_option
def sources_list(data_dir: Path, as_json: bool) -> None:
    """List sources with their write keys."""
    store = _store(data_dir)
    rows = [source_json(store, s) for s in store.list_sources()]
    if as_json:
        click.echo(codec.dumps_text(rows))
        return
    if not rows:
        click.echo("No sources yet: trackway sources create NAME")
        return
    for row in rows:
        state = "enabled" if row["enabled"] else "DISABLED"
        click.echo(f"{row['name']:<24} {row['id']:<22} {state:<9} {row['write_key']}")
        for old in row.get("previous_write_keys", []):
            until = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(old["expires_at"]))
            click.echo(f"{'':<57}{old['write_key']} (old, works until {until})")


@sources.command(name="rotate-key")
@click.argument("name")
@click.option(
    "--grace",
    default="24h",
    callback=_duration,
    show_default=True,
    help="How long the old write key keeps working.",
)
@_data_dir_option
@_json_option
@_friendly
def sources_rotate(name: str, grace: float, data_dir: Path, as_json: bool) -> None:
    """Give a source a new write key; the old one works for the grace period."""
    key = _store(data_dir).rotate_key(name, grace)
    if as_json:
        click.echo(codec.dumps_text({"name": name, "write_key": key, "grace_seconds": grace}))
    else:
        click.echo(f"New write key of '{name}': {key}")
        click.echo(f"The old key keeps working for {grace / 3600:g} h.")


@sources.command(name="disable")
@click.argument("name")
@_data_dir_option
@_friendly
def sources_disable(name: str, data_dir: Path) -> None:
    """Refuse events for a source (its write keys get 401) until it is enabled again."""
    _store(data_dir).set_enabled(name, False)
    click.echo(f"Source '{name}' is disabled.")


@sources.command(name="enable")
@click.argument("name")
@_data_dir_option
@_friendly
def sources_enable(name: str, data_dir: Path) -> None:
    """Accept events for a disabled source again."""
    _store(data_dir).set_enabled(name, True)
    click.echo(f"Source '{name}' is enabled.")


@main.command(name="apply")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@_data_dir_option
@_friendly
def apply_command(file: Path, dry_run: bool, data_dir: Path) -> None:
    """Make the workspace match a YAML file (creates and updates; never deletes)."""
    spec = workspace_apply.load(file)
    changes = workspace_apply.apply(spec, _store(data_dir), dry_run=dry_run)
    if not changes:
        click.echo("Nothing to change.")
    for line in changes:
        click.echo(("would " if dry_run else "") + line)


@main.group()
def events() -> None:
    """The live debugger: what each source received, accepted or rejected."""


_STATUS_CHOICE = click.Choice(["accepted", "rejected", "duplicate"])


@events.command(name="list")
@click.option("--source", "source_name", required=True, help="Source name.")
@click.option("--limit", default=20, type=click.IntRange(1, 100_000), show_default=True)
@click.option("--status", type=_STATUS_CHOICE, help="Only records with this status.")
@_data_dir_option
@_json_option
@_friendly
def events_list(
    source_name: str, limit: int, status: str | None, data_dir: Path, as_json: bool
) -> None:
    """Newest events of a source first, with the status of each."""
    source = _store(data_dir).get_source(source_name)
    statuses: frozenset[Status] | None = frozenset([status]) if status else None  # type: ignore[list-item]
    records = open_log(Settings(data_dir=data_dir)).debug_records(source.id, limit, statuses)
    if as_json:
        click.echo(codec.dumps_text([record_json(r) for r in records]))
        return
    if not records:
        click.echo(f"No events for source '{source_name}' yet.")
    for record in records:
        click.echo(record_line(record, source_name))


@events.command(name="tail")
@click.option("--source", "source_name", required=True, help="Source name.")
@_data_dir_option
@_json_option
@_friendly
def events_tail(source_name: str, data_dir: Path, as_json: bool) -> None:
    """Follow a source's events as they arrive (Ctrl-C to stop)."""
    source = _store(data_dir).get_source(source_name)
    log = open_log(Settings(data_dir=data_dir))
    after = log.last_seqs()
    if not as_json:
        click.echo(f"Following '{source_name}' (Ctrl-C to stop)...", err=True)
    try:
        while True:
            for record in log.debug_records_after(source.id, after):
                after[record.status] = max(after[record.status], record.seq)
                line = (
                    codec.dumps_text(record_json(record))
                    if as_json
                    else record_line(record, source_name)
                )
                click.echo(line)
            sys.stdout.flush()
            time.sleep(_TAIL_POLL_S)
    except KeyboardInterrupt:
        pass


@main.command(name="admin-token")
@_data_dir_option
def admin_token(data_dir: Path) -> None:
    """Create a new admin API token (shown once); earlier tokens keep working."""
    token = new_admin_token()
    _store(data_dir).add_admin_token(token_hash(token))
    click.echo(token)
