"""The `trackway` command."""

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from trackway import __version__, codec, terminal
from trackway.cli_options import (
    actor_option,
    data_dir_option,
    database_url,
    friendly,
    json_option,
    storage_settings,
)
from trackway.client.check import EXIT_CODES, check
from trackway.client.send import DEFAULT_DATA_PLANE, Call, ClientError, build, send
from trackway.debugger import record_json, record_line
from trackway.destinations import private_targets
from trackway.destinations.commands import destinations_group
from trackway.destinations.secrets import SecretError
from trackway.experiments.commands import experiments_group
from trackway.flags.changes import Author, os_user
from trackway.flags.commands import flags_group
from trackway.integrations import configcat_webhook
from trackway.reverse_etl.commands import models as models_group
from trackway.reverse_etl.commands import syncs as syncs_group
from trackway.server.run import open_log, open_state, serve
from trackway.settings import (
    Role,
    Settings,
    env,
    parse_duration,
    parse_networks,
)
from trackway.storage.base import SourceNotFound, StateStore
from trackway.storage.commands import db_group
from trackway.storage.records import Status
from trackway.warehouse.commands import sql_command, warehouse_group
from trackway.workspace import apply as workspace_apply
from trackway.workspace import delete
from trackway.workspace.fql_changes import RECENT_EVENTS
from trackway.workspace.keys import new_admin_token, token_hash
from trackway.workspace.sources import SOURCE_TYPES, check_name, source_json

F = TypeVar("F", bound=Callable[..., Any])

_TAIL_POLL_S = 0.25


def _store(data_dir: Path, create: bool = False) -> StateStore:
    return open_state(storage_settings(data_dir), create=create)


_friendly = friendly(SourceNotFound, ValueError, workspace_apply.ApplyError, SecretError)


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
@data_dir_option
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
@click.option(
    "--role",
    type=click.Choice(["all", "api", "worker"]),
    default="all",
    envvar="TRACKWAY_ROLE",
    show_default=True,
    help="api: the tracking and admin APIs only. worker: the background workers "
    "(destinations, warehouse loaders, scheduled syncs) with /health, /ready and "
    "/metrics only. all: both.",
)
@click.option(
    "--idle-timeout",
    default=5,
    type=click.IntRange(1, 3600),
    envvar="TRACKWAY_IDLE_TIMEOUT",
    show_default=True,
    help="Seconds a connection may stay open without a request begun (new or kept alive).",
)
@click.option(
    "--header-timeout",
    default="10s",
    callback=_duration,
    envvar="TRACKWAY_HEADER_TIMEOUT",
    show_default=True,
    help="A request's headers must arrive within this of its first byte (else 408).",
)
@click.option(
    "--body-timeout",
    default="60s",
    callback=_duration,
    envvar="TRACKWAY_BODY_TIMEOUT",
    show_default=True,
    help="A request's body must arrive within this of its headers (else the connection is closed).",
)
@click.option(
    "--max-connections",
    default=4096,
    type=click.IntRange(1),
    envvar="TRACKWAY_MAX_CONNECTIONS",
    show_default=True,
    help="Open connections beyond this are answered 503 too_many_connections.",
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
    role: Role,
    idle_timeout: int,
    header_timeout: float,
    body_timeout: float,
    max_connections: int,
) -> None:
    """Run the tracking API, the admin API and the background workers."""
    settings = Settings(
        role=role,
        data_dir=data_dir,
        database_url=database_url(),
        host=host,
        port=port,
        synchronous="normal" if synchronous == "normal" else "full",
        dedup_window_s=dedup_window,
        retention_s=retention,
        trusted_proxies=parse_networks(trusted_proxy),
        admin_token=env("ADMIN_TOKEN"),
        idle_timeout_s=idle_timeout,
        header_timeout_s=header_timeout,
        body_timeout_s=body_timeout,
        max_connections=max_connections,
    )
    serve(settings)


@main.group()
def sources() -> None:
    """Create and manage sources and their write keys."""


def _configcat_options(fn: F) -> F:
    for option in reversed(
        [
            click.option(
                "--signing-key",
                "signing_keys",
                multiple=True,
                help="ConfigCat webhook signing key (repeat for both keys while"
                " rotating). configcat sources only.",
            ),
            click.option("--product-id", help="ConfigCat product id, copied into events."),
            click.option("--product-name", help="ConfigCat product name, copied into events."),
        ]
    ):
        fn = option(fn)
    return fn


def _configure_configcat(
    store: StateStore,
    name: str,
    source_type: str,
    signing_keys: tuple[str, ...],
    product_id: str | None,
    product_name: str | None,
) -> bool:
    """Store the ConfigCat settings that were given; returns whether any were."""
    if not (signing_keys or product_id or product_name):
        return False
    if source_type != "configcat":
        raise ValueError("--signing-key, --product-id and --product-name are for configcat sources")
    current = configcat_webhook.load_settings(store, name)
    configcat_webhook.save_settings(
        store,
        name,
        configcat_webhook.SourceSettings(
            signing_keys=list(signing_keys) or current.signing_keys,
            product_id=product_id or current.product_id,
            product_name=product_name or current.product_name,
        ),
    )
    return True


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
@_configcat_options
@data_dir_option
@json_option
@_friendly
def sources_create(
    name: str,
    source_type: str,
    signing_keys: tuple[str, ...],
    product_id: str | None,
    product_name: str | None,
    data_dir: Path,
    as_json: bool,
) -> None:
    """Create a source and print its write key."""
    store = _store(data_dir, create=True)
    if source_type != "configcat" and (signing_keys or product_id or product_name):
        raise ValueError("--signing-key, --product-id and --product-name are for configcat sources")
    source = store.create_source(check_name(name), source_type)
    _configure_configcat(store, name, source_type, signing_keys, product_id, product_name)
    out = source_json(store, source)
    if as_json:
        click.echo(codec.dumps_text({k: out[k] for k in ("id", "name", "write_key")}))
    else:
        click.echo(f"Created source '{name}' ({out['id']}) with write key: {out['write_key']}")
    if source_type == "configcat":
        click.echo(
            f"ConfigCat webhook URL: <trackway URL>/v1/webhooks/configcat/{out['write_key']}",
            err=True,
        )


@sources.command(name="configure")
@click.argument("name")
@_configcat_options
@data_dir_option
@_friendly
def sources_configure(
    name: str,
    signing_keys: tuple[str, ...],
    product_id: str | None,
    product_name: str | None,
    data_dir: Path,
) -> None:
    """Change a configcat source's signing keys or product (what is given replaces)."""
    store = _store(data_dir)
    source = store.get_source(name)
    if not _configure_configcat(store, name, source.type, signing_keys, product_id, product_name):
        raise ValueError("nothing to change: give --signing-key, --product-id or --product-name")
    click.echo(f"Source '{name}' is configured.")


@sources.command(name="list")
@data_dir_option
@json_option
@_friendly
def sources_list(data_dir: Path, as_json: bool) -> None:
    """List sources with their type, state and write keys."""
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
        head = f"{row['name']:<24} {row['id']:<22} {row['type']:<10} {state:<9} "
        click.echo(head + row["write_key"])
        for old in row.get("previous_write_keys", []):
            until = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(old["expires_at"]))
            click.echo(f"{'':<{len(head)}}{old['write_key']} (old, works until {until})")


@sources.command(name="rotate-key")
@click.argument("name")
@click.option(
    "--grace",
    default="24h",
    callback=_duration,
    show_default=True,
    help="How long the old write key keeps working.",
)
@data_dir_option
@json_option
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
@data_dir_option
@_friendly
def sources_disable(name: str, data_dir: Path) -> None:
    """Refuse events for a source (its write keys get 401) until it is enabled again."""
    _store(data_dir).set_enabled(name, False)
    click.echo(f"Source '{name}' is disabled.")


@sources.command(name="enable")
@click.argument("name")
@data_dir_option
@_friendly
def sources_enable(name: str, data_dir: Path) -> None:
    """Accept events for a disabled source again."""
    _store(data_dir).set_enabled(name, True)
    click.echo(f"Source '{name}' is enabled.")


@sources.command(name="delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@data_dir_option
@_friendly
def sources_delete(name: str, yes: bool, data_dir: Path) -> None:
    """Delete a source: its write keys stop working at once; its events stay in the log
    until retention. Refused while a destination or sync uses it."""
    store = _store(data_dir)
    store.get_source(name)
    if not yes:
        click.confirm(
            f"Delete source '{name}'? Its write keys stop working at once (clients get 401).",
            abort=True,
        )
    click.echo(delete.delete_source(store, storage_settings(data_dir), name) + ".")


@main.command(name="apply")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@click.option(
    "--prune", is_flag=True, help="Also delete what the file does not declare (shown first)."
)
@click.option("--yes", is_flag=True, help="With --prune: do not ask for confirmation.")
@actor_option
@data_dir_option
@_friendly
def apply_command(
    file: Path, dry_run: bool, prune: bool, yes: bool, actor: str | None, data_dir: Path
) -> None:
    """Make the workspace match a YAML file (creates and updates; deletes with --prune)."""
    spec = workspace_apply.load(file)
    author = Author(actor or os_user(), f"trackway apply {file.name}", file.resolve().as_uri())
    store = _store(data_dir, create=True)
    plan = workspace_apply.prune_plan(spec, store) if prune else []
    if plan and not dry_run and not yes:
        for kind, name in plan:
            click.echo(f"delete {kind} '{name}'")
        click.confirm(f"Delete these {len(plan)} thing(s) the file does not declare?", abort=True)
    changes = workspace_apply.apply(
        spec,
        store,
        dry_run=dry_run,
        data_dir=data_dir,
        end_of_log=lambda: open_log(storage_settings(data_dir)).last_seqs()["accepted"],
        author=author,
        base_dir=file.parent,
        recent_events=lambda: _recent_events(data_dir),
        warn=lambda line: click.echo(f"warning: {line}", err=True),
    )
    if dry_run:
        changes += [f"delete {kind} '{name}'" for kind, name in plan]
    else:
        changes += workspace_apply.prune(plan, store, storage_settings(data_dir), author)
    if not changes:
        click.echo("Nothing to change.")
    for line in changes:
        click.echo(("would " if dry_run else "") + line)
    for warning in private_targets.warnings(spec.destinations, file.parent):
        click.echo(warning)


def _recent_events(data_dir: Path) -> list[dict[str, Any]]:
    """The newest accepted events (what `apply --dry-run` checks FQL changes against)."""
    log = open_log(storage_settings(data_dir))
    try:
        last = log.last_seqs()["accepted"]
        return [e.body for e in log.read(max(0, last - RECENT_EVENTS), RECENT_EVENTS)]
    finally:
        log.close()


@main.group()
def events() -> None:
    """The live debugger: what each source received, accepted or rejected."""


_STATUS_CHOICE = click.Choice(["accepted", "rejected", "duplicate"])


@events.command(name="list")
@click.option("--source", "source_name", help="Source name (default: every source).")
@click.option("--limit", default=20, type=click.IntRange(1, 100_000), show_default=True)
@click.option("--status", type=_STATUS_CHOICE, help="Only records with this status.")
@data_dir_option
@json_option
@_friendly
def events_list(
    source_name: str | None, limit: int, status: str | None, data_dir: Path, as_json: bool
) -> None:
    """Newest events first, of one source or of every source, with the status of each."""
    store = _store(data_dir)
    source_id = store.get_source(source_name).id if source_name else None
    statuses: frozenset[Status] | None = frozenset([status]) if status else None  # type: ignore[list-item]
    records = open_log(storage_settings(data_dir)).debug_records(source_id, limit, statuses)
    name = _source_names(store)
    if as_json:
        click.echo(codec.dumps_text([record_json(r, name(r.source_id)) for r in records]))
        return
    if not records:
        of = f" for source '{source_name}'" if source_name else ""
        click.echo(f"No events{of} yet.")
    width = terminal.width()
    for record in records:
        click.echo(record_line(record, name(record.source_id), width))


@events.command(name="tail")
@click.option("--source", "source_name", help="Source name (default: every source).")
@data_dir_option
@json_option
@_friendly
def events_tail(source_name: str | None, data_dir: Path, as_json: bool) -> None:
    """Follow events as they arrive, of one source or of every source (Ctrl-C to stop)."""
    store = _store(data_dir)
    source_id = store.get_source(source_name).id if source_name else None
    name = _source_names(store)
    log = open_log(storage_settings(data_dir))
    after = log.last_seqs()
    if not as_json:
        following = f"'{source_name}'" if source_name else "every source"
        click.echo(f"Following {following} (Ctrl-C to stop)...", err=True)
    try:
        while True:
            width = terminal.width()  # the terminal may have been resized
            for record in log.debug_records_after(source_id, after):
                after[record.status] = max(after[record.status], record.seq)
                line = (
                    codec.dumps_text(record_json(record, name(record.source_id)))
                    if as_json
                    else record_line(record, name(record.source_id), width)
                )
                click.echo(line)
            sys.stdout.flush()
            time.sleep(_TAIL_POLL_S)
    except KeyboardInterrupt:
        pass


def _source_names(store: StateStore) -> Callable[[int], str]:
    """Source id → name, reading the sources again for an id not seen yet (a source
    created while `tail` runs)."""
    names: dict[int, str] = {}

    def name(source_id: int) -> str:
        if source_id not in names:
            names.update((s.id, s.name) for s in store.list_sources())
        return names.get(source_id, f"#{source_id}")

    return name


@main.command(name="admin-token")
@data_dir_option
def admin_token(data_dir: Path) -> None:
    """Create a new admin API token (shown once); earlier tokens keep working."""
    token = new_admin_token()
    _store(data_dir, create=True).add_admin_token(token_hash(token))
    click.echo(token)


def _json_object(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    try:
        parsed = codec.loads(value)
    except codec.DecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise click.BadParameter('must be a JSON object, like \'{"plan": "pro"}\'')
    return parsed


def _iso_timestamp(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    from datetime import datetime

    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"not an ISO 8601 timestamp: {value!r} (e.g. 2026-11-22T10:00:00Z)"
        ) from None
    if parsed.tzinfo is None:
        raise click.BadParameter(f"add a UTC offset or Z to {value!r}")
    return value


def _client_options(fn: F) -> F:
    for option in reversed(
        [
            click.option(
                "--write-key",
                envvar="TRACKWAY_WRITE_KEY",
                required=True,
                show_envvar=True,
                help="Write key of the source.",
            ),
            click.option(
                "--data-plane",
                envvar="TRACKWAY_DATA_PLANE",
                default=DEFAULT_DATA_PLANE,
                show_default=True,
                show_envvar=True,
                help="Origin of a Segment-compatible endpoint (without /v1).",
            ),
        ]
    ):
        fn = option(fn)
    return fn


@main.command(name="send")
@click.argument(
    "call_type",
    metavar="TYPE",
    type=click.Choice(["track", "identify", "page", "screen", "group", "alias"]),
)
@_client_options
@click.option("--user-id", help="userId (this or --anonymous-id is required).")
@click.option("--anonymous-id", help="anonymousId.")
@click.option("--event", help="Event name (track).")
@click.option("--name", help="Page or screen name (page, screen).")
@click.option("--group-id", help="groupId (group).")
@click.option("--previous-id", help="previousId (alias; --user-id is required too).")
@click.option("--properties", callback=_json_object, help="JSON object (track, page, screen).")
@click.option("--traits", callback=_json_object, help="JSON object (identify, group).")
@click.option("--context", callback=_json_object, help="JSON object merged into context.")
@click.option(
    "--timestamp",
    callback=_iso_timestamp,
    help="When it happened, ISO 8601 with an offset (default: now).",
)
@click.option("--message-id", help="messageId (default: a new UUID); resending one dedups.")
def send_command(
    call_type: str,
    write_key: str,
    data_plane: str,
    user_id: str | None,
    anonymous_id: str | None,
    event: str | None,
    name: str | None,
    group_id: str | None,
    previous_id: str | None,
    properties: Any,
    traits: Any,
    context: Any,
    timestamp: str | None,
    message_id: str | None,
) -> None:
    """Send one event to Trackway or any Segment-compatible endpoint; prints a JSON result."""
    fields = {
        "event": event,
        "name": name,
        "groupId": group_id,
        "previousId": previous_id,
        "properties": properties,
        "traits": traits,
        "context": context,
    }
    try:
        body = build(Call(call_type, user_id, anonymous_id, fields, timestamp, message_id))
        send(body, write_key, data_plane)
    except ClientError as exc:
        raise click.ClickException(str(exc)) from exc
    result = {"success": True, "type": call_type}
    for key in (
        "event",
        "name",
        "userId",
        "anonymousId",
        "groupId",
        "previousId",
        "timestamp",
        "messageId",
    ):
        if key in body:
            result[key] = body[key]
    click.echo(codec.dumps_text(result))


@main.command(name="check")
@_client_options
@json_option
def check_command(write_key: str, data_plane: str, as_json: bool) -> None:
    """Verify a write key and an endpoint without sending an event.

    Exit status: 0 OK, 3 unreachable, 4 not a Segment-compatible endpoint,
    5 write key refused.
    """
    result = check(write_key, data_plane)
    if as_json:
        click.echo(
            codec.dumps_text(
                {
                    "status": result.verdict,
                    "message": result.message,
                    "key_verified": result.key_verified,
                }
            )
        )
    else:
        click.echo(("OK: " if result.verdict == "ok" else "FAILED: ") + result.message)
    sys.exit(EXIT_CODES[result.verdict])


main.add_command(destinations_group)
main.add_command(sql_command)
main.add_command(warehouse_group)
main.add_command(models_group)
main.add_command(syncs_group)
main.add_command(db_group)
main.add_command(flags_group)
main.add_command(experiments_group)
