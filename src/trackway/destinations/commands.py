"""`trackway destinations ...`: list and inspect destinations, see their deliveries, test
an event, replay the log, and re-send dead letters."""

import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import click
import msgspec

from trackway import codec
from trackway.cli_options import (
    data_dir_option,
    friendly,
    json_option,
    parse_since,
    storage_settings,
)
from trackway.destinations import config, operations, report
from trackway.destinations.config import DestinationConfigError
from trackway.destinations.framework import InvalidSettings
from trackway.destinations.secrets import SecretError
from trackway.destinations.state import open_delivery_store
from trackway.destinations.tester import TestResult
from trackway.server.run import open_log, open_state
from trackway.settings import parse_duration
from trackway.workspace import delete

_friendly = friendly(ValueError, DestinationConfigError, SecretError, InvalidSettings)


@click.group(name="destinations")
def destinations_group() -> None:
    """Destinations: where events are delivered (declare them with `trackway apply`)."""


def _end_of_log(data_dir: Path) -> int:
    log = open_log(storage_settings(data_dir))
    try:
        return log.last_seqs()["accepted"]
    finally:
        log.close()


@destinations_group.command(name="list")
@data_dir_option
@json_option
@_friendly
def list_command(data_dir: Path, as_json: bool) -> None:
    """The destinations, with how far behind the log each is and what waits."""
    specs = config.destinations(open_state(storage_settings(data_dir)))
    end = _end_of_log(data_dir)
    with closing(open_delivery_store(storage_settings(data_dir))) as store:
        rows = operations.overview(specs, store, end)
    if as_json:
        click.echo(codec.dumps_text(rows))
        return
    if not rows:
        click.echo("No destinations. Declare them under `destinations:` in a workspace file.")
        return
    header = (
        "NAME", "TYPE", "ENABLED", "SUBSCRIPTIONS", "LAG", "RETRYING", "DEAD LETTERS",
        "RATE 24H", "ALERTING",
    )  # fmt: skip
    lines = [header] + [tuple(_cell(v) for v in row.values()) for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value * 100:.2f}%"
    return "-" if value is None else str(value)


@destinations_group.command(name="show")
@click.argument("name")
@data_dir_option
@_friendly
def show_command(name: str, data_dir: Path) -> None:
    """A destination's declaration as stored (secret settings are masked)."""
    spec = config.find(open_state(storage_settings(data_dir)), name)
    shown: dict[str, Any] = msgspec.to_builtins(spec)
    shown["settings"] = config.shown_settings(spec)
    click.echo(codec.dumps_text(shown))


def _set_enabled(name: str, data_dir: Path, enabled: bool) -> None:
    with closing(open_state(storage_settings(data_dir))) as state:
        spec = config.set_enabled(state, name, enabled)
    click.echo(
        f"Destination '{name}' {'enabled' if enabled else 'disabled'}. To keep it so, the"
        f" workspace file says:\n\n{config.enabled_yaml(spec)}"
    )


@destinations_group.command(name="enable")
@click.argument("name")
@data_dir_option
@_friendly
def enable_command(name: str, data_dir: Path) -> None:
    """Turn a destination on: it delivers from where its cursor stands."""
    _set_enabled(name, data_dir, True)


@destinations_group.command(name="disable")
@click.argument("name")
@data_dir_option
@_friendly
def disable_command(name: str, data_dir: Path) -> None:
    """Turn a destination off: it stops delivering within about a second; its cursor
    stays, so enabling it again delivers what arrived meanwhile."""
    _set_enabled(name, data_dir, False)


@destinations_group.command(name="delivery")
@click.argument("name")
@click.option(
    "--window", default="24h", show_default=True, help="Count events over this last period."
)
@click.option(
    "--errors",
    "error_count",
    default=5,
    show_default=True,
    type=click.IntRange(0, 100),
    help="Show this many of the last errors, each with its samples.",
)
@data_dir_option
@json_option
@_friendly
def delivery_command(
    name: str, window: str, error_count: int, data_dir: Path, as_json: bool
) -> None:
    """Event delivery: per action delivered, retried, discarded, dead-lettered, filtered,
    latency (p50/p95), then the last errors with the event, request and response."""
    spec = config.find(open_state(storage_settings(data_dir)), name)
    end = _end_of_log(data_dir)
    with closing(open_delivery_store(storage_settings(data_dir))) as store:
        found = report.delivery_report(spec, store, end, parse_duration(window), error_count)
    click.echo(codec.dumps_text(found) if as_json else report.render(found))


@destinations_group.command(name="test")
@click.argument("name")
@click.option(
    "--event",
    "event_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="A JSON file holding one event.",
)
@click.option("--dry-run", is_flag=True, help="Show the requests without sending them.")
@click.option("--source", help="Test the event as sent to this source (see `sources:`).")
@data_dir_option
@json_option
@_friendly
def test_command(
    name: str, event_file: Path, dry_run: bool, source: str | None, data_dir: Path, as_json: bool
) -> None:
    """Send one event through the destination's subscriptions and mappings (not its
    filters) and show, per matched action, the request and the real response.

    Exit status: 0 delivered (or a dry run, or nothing matched), 1 an error (no such
    destination, an unreadable event), 3 a request failed or got an error status (or a
    payload or the insert function failed), 4 a request was blocked before it was sent
    (a private address, an invalid URL).
    """
    event = _read_event(event_file)
    state = open_state(storage_settings(data_dir))
    destination = operations.compiled(state, data_dir, name)
    as_source = operations.tested_source(state, source)
    result = operations.run_test(destination, event, dry_run, data_dir, as_source)
    if as_json:
        click.echo(codec.dumps_text(result))
    else:
        _print_test(result)
    if result.outcome != "ok":
        sys.exit(_TEST_EXIT[result.outcome])


_TEST_EXIT = {"failed": 3, "blocked": 4}


def _print_test(result: TestResult) -> None:
    if result.message:
        click.echo(result.message)
    for tested in result.actions:
        click.echo(f"== {tested.subscription} → {tested.action}: {tested.status}")
        if tested.error:
            click.echo(f"   error: {tested.error}")
        if tested.request is not None:
            request = tested.request
            click.echo(f"   request:  {request['method']} {request['url']}")
            for header, value in request["headers"].items():
                click.echo(f"             {header}: {value}")
            click.echo(f"             {request['body']}")
        if tested.response is not None:
            response = tested.response
            click.echo(f"   response: HTTP {response['status']} ({response['elapsed_ms']} ms)")
            click.echo(f"             {response['body']}")


def _read_event(path: Path) -> dict[str, Any]:
    try:
        event = codec.loads(path.read_bytes())
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from exc
    except codec.DecodeError as exc:
        raise ValueError(f"{path} is not JSON: {exc}") from exc
    if not isinstance(event, dict):
        raise ValueError(f"{path} must hold one event (a JSON object)")
    return event


@destinations_group.command(name="auth")
@click.argument("name")
@data_dir_option
@json_option
@_friendly
def auth_command(name: str, data_dir: Path, as_json: bool) -> None:
    """Test the destination's credentials (its authentication test); exit status 1 when
    they are refused."""
    destination = operations.compiled(open_state(storage_settings(data_dir)), data_dir, name)
    result = operations.authenticate(destination)
    if as_json:
        click.echo(codec.dumps_text(result))
    else:
        click.echo(result["message"])
        if not result["ok"] and "response" in result:
            click.echo(f"response: {result['response']['body']}")
    if not result["ok"]:
        sys.exit(1)


@destinations_group.command(name="replay")
@click.argument("name")
@click.option(
    "--since",
    required=True,
    help="Deliver again the events received since this time (ISO 8601 with an offset) or"
    " this long ago (e.g. 2h).",
)
@data_dir_option
@_friendly
def replay_command(name: str, since: str, data_dir: Path) -> None:
    """Re-deliver events from the log by moving the destination's cursor back.

    Works while the server runs (its worker continues from the new position). Events
    keep their messageId, so receivers that dedupe by it see each event once.
    """
    since_ms = parse_since(since)
    spec = config.find(open_state(storage_settings(data_dir)), name)
    log = open_log(storage_settings(data_dir))
    try:
        with closing(open_delivery_store(storage_settings(data_dir))) as store:
            moved = operations.replay(spec, log, store, since_ms)
    finally:
        log.close()
    click.echo(
        f"Replaying {moved['events']} events to '{name}' (from position {moved['position']})."
    )


@destinations_group.command(name="dead-letters")
@click.argument("name")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10_000))
@data_dir_option
@json_option
@_friendly
def dead_letters_command(name: str, limit: int, data_dir: Path, as_json: bool) -> None:
    """The newest dead letters: events discarded or out of retries, kept until re-sent
    (those of a deleted destination until purged)."""
    state = open_state(storage_settings(data_dir))
    with closing(open_delivery_store(storage_settings(data_dir))) as store:
        owner = operations.dead_letters_of(state, store, name)
        letters = store.dead_letters(owner, limit)
        total = store.dead_letter_count(owner)
    if as_json:
        click.echo(codec.dumps_text([msgspec.to_builtins(d) for d in letters]))
        return
    click.echo(f"{total} dead letters for '{name}'" + (f" (newest {limit}):" if letters else "."))
    for letter in letters:
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(letter.failed_at_ms / 1000))
        message_id = letter.event.get("messageId", "?")
        click.echo(
            f"  #{letter.id} {when} {letter.subscription}: {letter.reason} after"
            f" {letter.attempts} attempt(s): {letter.error} (messageId {message_id})"
        )


@destinations_group.command(name="resend")
@click.argument("name")
@click.option(
    "--id",
    "ids",
    multiple=True,
    type=int,
    help="Re-send only this dead letter (repeatable); default: all of them.",
)
@data_dir_option
@_friendly
def resend_command(name: str, ids: tuple[int, ...], data_dir: Path) -> None:
    """Re-send dead letters: they go back into the retry schedule, due now."""
    spec = config.find(open_state(storage_settings(data_dir)), name)
    with closing(open_delivery_store(storage_settings(data_dir))) as store:
        moved = operations.resend(spec, store, list(ids) or None)
    click.echo(f"{moved} dead letter(s) of '{name}' will be delivered again.")


@destinations_group.command(name="delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@data_dir_option
@_friendly
def delete_command(name: str, yes: bool, data_dir: Path) -> None:
    """Delete a destination: it stops delivering; its dead letters (and the events
    waiting to be retried) stay readable until `destinations purge`."""
    settings = storage_settings(data_dir)
    state = open_state(settings)
    config.find(state, name)
    if not yes:
        click.confirm(
            f"Delete destination '{name}'? It stops delivering at once; its dead letters stay"
            f" until `trackway destinations purge {name}`.",
            abort=True,
        )
    click.echo(delete.delete_destination(state, settings, name) + ".")


@destinations_group.command(name="purge")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@data_dir_option
@_friendly
def purge_command(name: str, yes: bool, data_dir: Path) -> None:
    """Delete the dead letters of a destination (a deleted one's too)."""
    state = open_state(storage_settings(data_dir))
    with closing(open_delivery_store(storage_settings(data_dir))) as store:
        owner = operations.dead_letters_of(state, store, name)
        if not yes:
            count = store.dead_letter_count(owner)
            click.confirm(f"Delete the {count} dead letter(s) of '{name}'?", abort=True)
        purged = store.purge(owner)
    click.echo(f"{purged} dead letter(s) of '{name}' deleted.")
