"""`trackway flags`: list, show, import, export and evaluate flag environments."""

from pathlib import Path
from typing import Any

import click

from trackway import codec
from trackway.cli_options import (
    actor_option,
    data_dir_option,
    friendly,
    json_option,
    storage_settings,
)
from trackway.flags import changes
from trackway.flags import environments as envs
from trackway.flags.changes import Author, os_user
from trackway.flags.evaluate import Evaluation, User, evaluate
from trackway.server.run import open_state
from trackway.storage.base import StateStore

_friendly = friendly(ValueError, envs.EnvironmentNotFound)
_TYPES = {0: "bool", 1: "string", 2: "int", 3: "double"}


@click.group(name="flags")
def flags_group() -> None:
    """Feature flags served to the ConfigCat SDKs (define them with `trackway apply`)."""


@flags_group.command(name="list")
@json_option
@data_dir_option
@_friendly
def flags_list(as_json: bool, data_dir: Path) -> None:
    """Every flag environment: name, SDK key, origin and number of settings."""
    found = envs.environments(open_state(storage_settings(data_dir)))
    if as_json:
        click.echo(codec.dumps_text([_summary(e) for e in found]))
        return
    if not found:
        click.echo("No flag environments.")
    for env in found:
        click.echo(f"{env.name}  {env.sdk_key}  {env.origin}  {len(env.settings)} settings")


@flags_group.command(name="show")
@click.argument("key")
@json_option
@data_dir_option
@_friendly
def flags_show(key: str, as_json: bool, data_dir: Path) -> None:
    """One environment (KEY: its name or SDK key) and its settings."""
    env = envs.find(open_state(storage_settings(data_dir)), key)
    if as_json:
        click.echo(codec.dumps_text({**_summary(env), "config": env.config}))
        return
    click.echo(f"{env.name} ({env.origin}), SDK key {env.sdk_key}")
    for flag, setting in env.settings.items():
        value = next(iter(setting["v"].values()))
        rules = len(setting.get("r") or [])
        options = len(setting.get("p") or [])
        click.echo(
            f"  {flag}  {_TYPES[setting['t']]}  default {value!r}"
            f"  {rules} rules  {options} percentage options"
        )


@flags_group.command(name="import")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--sdk-key", required=True, help="The SDK key the SDKs use (kept as it is).")
@click.option("--environment", help="Environment name (default: the file name without .json).")
@actor_option
@data_dir_option
@_friendly
def flags_import(
    file: Path, sdk_key: str, environment: str | None, actor: str | None, data_dir: Path
) -> None:
    """Serve a config_v6 JSON as ConfigCat serves it (hashed values and salt kept)."""
    name = environment or file.stem
    envs.check_name(name)
    envs.check_sdk_key(sdk_key)
    try:
        config = envs.check_config(codec.loads(file.read_bytes()))
    except codec.DecodeError as exc:
        raise ValueError(f"{file} is not JSON: {exc}") from exc
    store = open_state(storage_settings(data_dir))
    envs.check_unique_key(store, name, sdk_key)
    old = next((e for e in envs.environments(store) if e.name == name), None)
    # The config is replaced; where the environment's events go is not part of it.
    kept = (old.events, old.changed_source) if old is not None else (None, None)
    new = envs.Environment(name, sdk_key, config, "import", *kept)
    if old != new:
        author = Author(
            actor or os_user(), f"trackway flags import {file.name}", file.resolve().as_uri()
        )
        changes.save(store, [(old, new)], author)
    click.echo(f"Imported {len(config.get('f') or {})} settings as environment '{name}'.")


@flags_group.command(name="export")
@click.option("--sdk-key", required=True, help="The environment's SDK key (or its name).")
@data_dir_option
@_friendly
def flags_export(sdk_key: str, data_dir: Path) -> None:
    """Print an environment's config_v6 JSON (what `flags import` reads)."""
    click.echo(codec.dumps_text(envs.find(open_state(storage_settings(data_dir)), sdk_key).config))


@flags_group.command(name="evaluate")
@click.argument("key")
@click.option(
    "--user",
    "user_json",
    metavar="JSON",
    help='The user, e.g. \'{"identifier": "42", "email": "a@b.c", "custom": {"Plan": "pro"}}\''
    " (other keys are custom attributes too). Without it: no user.",
)
@click.option(
    "--sdk-key",
    "--environment",
    "environment",
    metavar="KEY|NAME",
    help="The environment (SDK key or name); needed when there is more than one.",
)
@json_option
@data_dir_option
@_friendly
def flags_evaluate(
    key: str, user_json: str | None, environment: str | None, as_json: bool, data_dir: Path
) -> None:
    """Evaluate flag KEY for a user as the ConfigCat SDKs would: value, variation id,
    the matched rule or percentage option and why."""
    store = open_state(storage_settings(data_dir))
    env = envs.find(store, environment) if environment else _only_environment(store)
    user = None
    if user_json is not None:
        try:
            user = User.from_json(codec.loads(user_json))
        except codec.DecodeError as exc:
            raise ValueError(f"--user is not JSON: {exc}") from exc
    if key not in env.settings:
        raise ValueError(
            f"environment '{env.name}' has no flag '{key}' (flags: {', '.join(env.settings)})"
        )
    result = evaluate(env.config, key, user, trace=True)
    if as_json:
        click.echo(codec.dumps_text({"environment": env.name, **result.to_json()}))
        return
    _show_evaluation(env, result, user)


def _only_environment(store: StateStore) -> envs.Environment:
    found = envs.environments(store)
    if len(found) != 1:
        names = ", ".join(e.name for e in found) or "none"
        raise ValueError(f"give --environment NAME or --sdk-key KEY (environments: {names})")
    return found[0]


def _show_evaluation(env: envs.Environment, result: Evaluation, user: User | None) -> None:
    click.echo(f"{result.key} = {result.value!r}  (variation {result.variation_id})")
    click.echo(f"  environment: {env.name}")
    click.echo(f"  user: {codec.dumps_text(user.to_json()) if user else 'none'}")
    click.echo(f"  reason: {result.reason}: {result.why}")
    for line in result.trace:
        click.echo(f"    {line}")


def _summary(env: envs.Environment) -> dict[str, Any]:
    return {
        "name": env.name,
        "sdk_key": env.sdk_key,
        "origin": env.origin,
        "settings": list(env.settings),
    }
