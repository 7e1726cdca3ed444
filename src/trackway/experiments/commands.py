"""`trackway experiments`: list, show, results, and the goals seen in the warehouse."""

from datetime import datetime
from pathlib import Path

import click

from trackway import codec
from trackway.cli_options import (
    data_dir_option,
    friendly,
    json_option,
    storage_settings,
)
from trackway.experiments import spec as experiments
from trackway.experiments import views
from trackway.server.run import open_state
from trackway.warehouse.base import QueryError, WarehouseUnavailable

_friendly = friendly(ValueError, WarehouseUnavailable, QueryError)


def _as_of(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return views.parse_as_of(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


_as_of_option = click.option(
    "--as-of",
    callback=_as_of,
    metavar="TIME",
    help="Results as they were at this time (ISO 8601 with an offset, or e.g. 24h ago).",
)


@click.group(name="experiments")
def experiments_group() -> None:
    """A/B experiments over flag exposures and goal events (declare them with `trackway apply`)."""


@experiments_group.command(name="list")
@json_option
@data_dir_option
@_friendly
def experiments_list(as_json: bool, data_dir: Path) -> None:
    """Every experiment: name, flag, variations, goals."""
    store = open_state(storage_settings(data_dir))
    if as_json:
        click.echo(codec.dumps_text(views.listed(store)))
        return
    found = experiments.experiments(store)
    if not found:
        click.echo("No experiments.")
    for spec in found:
        variations = ", ".join(v.name for v in spec.variations)
        click.echo(f"{spec.name}  flag {spec.flag}  [{variations}]  {len(spec.goals)} goal(s)")


@experiments_group.command(name="show")
@click.argument("name")
@json_option
@data_dir_option
@_friendly
def experiments_show(name: str, as_json: bool, data_dir: Path) -> None:
    """One experiment's definition."""
    store = open_state(storage_settings(data_dir))
    if as_json:
        click.echo(codec.dumps_text(views.shown(store, name)))
        return
    spec = experiments.find(store, name)
    period = f"{spec.start or 'any time'} to {spec.end or 'now'}"
    click.echo(f"{spec.name}: flag {spec.flag} ({spec.exposure}), unit {spec.unit}, {period}")
    click.echo(f"  engine {spec.engine}, alpha {spec.alpha}, warehouse {spec.warehouse}")
    total = sum(v.weight for v in spec.variations)
    for variation in spec.variations:
        by = (
            f"variation id {variation.variation_id}"
            if variation.variation_id is not None
            else f"value {codec.dumps_text(variation.value)}"
        )
        click.echo(f"  variation {variation.name}: {by}, {variation.weight / total:.0%}")
    for role, metrics in (("goal", spec.goals), ("guardrail", spec.guardrails)):
        for metric in metrics:
            click.echo(f"  {role} {experiments.label(metric)}: {_describe(metric)}")


def _describe(metric: experiments.MetricSpec) -> str:
    what = f"{metric.type} of {metric.event_type} '{metric.event}'"
    if metric.property:
        what += f" {metric.property}"
    if metric.denominator is not None:
        what += f" per {metric.denominator.type} '{metric.denominator.event}'"
    window = f"within {metric.window}" if metric.window else "until the end"
    if metric.delay not in ("0", "0s"):
        window += f" after {metric.delay}"
    return what + f", {window}" + (f", CUPED {metric.cuped_window}" if metric.cuped else "")


@experiments_group.command(name="results")
@click.argument("name")
@_as_of_option
@json_option
@data_dir_option
@_friendly
def experiments_results(name: str, as_of: datetime | None, as_json: bool, data_dir: Path) -> None:
    """Units, conversions, rates and uplifts per variation and goal, with SRM."""
    from trackway.experiments.render import render

    results = views.results(open_state(storage_settings(data_dir)), data_dir, name, as_of)
    click.echo(codec.dumps_text(results.to_json()) if as_json else render(results))


@experiments_group.command(name="goals")
@click.option("--source", help="The source whose events to list (default: the oldest).")
@click.option("--warehouse", "warehouse_name", default="default", show_default=True)
@json_option
@data_dir_option
@_friendly
def experiments_goals(
    source: str | None, warehouse_name: str, as_json: bool, data_dir: Path
) -> None:
    """Every track, page and screen event name seen: each is a goal an experiment can use."""
    from trackway.experiments.goals import goals

    found = goals(open_state(storage_settings(data_dir)), data_dir, warehouse_name, source)
    if as_json:
        click.echo(codec.dumps_text(found))
        return
    if not found:
        click.echo("No events seen yet.")
    for goal in found:
        click.echo(
            f"{goal['type']:<6}  {goal['name']}  {goal['events']} event(s),"
            f" {goal['first_seen']} .. {goal['last_seen']}"
        )
