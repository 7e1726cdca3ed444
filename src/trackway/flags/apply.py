"""The `flags:` part of `trackway apply`: compile every environment, then store them."""

from trackway.flags import changes as flag_changes
from trackway.flags import environments as envs
from trackway.flags.compile import compile_environment
from trackway.flags.spec import EnvironmentSpec
from trackway.settings import parse_duration
from trackway.storage.base import StateStore
from trackway.workspace.sources import check_name as check_source_name


def validate(specs: list[EnvironmentSpec]) -> None:
    """Refuse a bad `flags:` list before anything is applied (errors name `flags[i]...`)."""
    names: set[str] = set()
    keys: set[str] = set()
    for index, spec in enumerate(specs):
        where = f"flags[{index}]"
        try:
            envs.check_name(spec.environment)
            if spec.sdk_key is not None:
                envs.check_sdk_key(spec.sdk_key)
                if spec.sdk_key in keys:
                    raise ValueError(f"SDK key '{spec.sdk_key}' is declared twice")
                keys.add(spec.sdk_key)
            if spec.environment in names:
                raise ValueError(f"environment '{spec.environment}' is declared twice")
            names.add(spec.environment)
            compile_environment(spec, salt="")
            events_config(spec)
            if spec.changed_events is not None:
                try:
                    check_source_name(spec.changed_events.source)
                except ValueError as exc:
                    raise ValueError(f"changed_events.source: {exc}") from exc
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from exc


Planned = list[tuple[str, flag_changes.Change]]


def plan(specs: list[EnvironmentSpec], store: StateStore) -> Planned:
    """(change line, (stored, new)) for each environment that differs from the store.

    A stored environment keeps its salt (hashed comparison values stay valid) and, when
    the file gives none, its SDK key.
    """
    have = {env.name: env for env in envs.environments(store)}
    out: Planned = []
    for spec in specs:
        old = have.get(spec.environment)
        salt = old.config.get("p", {}).get("s") if old is not None else None
        key = spec.sdk_key or (old.sdk_key if old is not None else envs.new_sdk_key())
        envs.check_unique_key(store, spec.environment, key)
        new = envs.Environment(
            spec.environment,
            key,
            compile_environment(spec, salt or envs.new_salt()),
            "apply",
            events_config(spec),
            spec.changed_events.source if spec.changed_events is not None else None,
        )
        count = f"{len(new.settings)} setting{'' if len(new.settings) == 1 else 's'}"
        if old is None:
            out.append((f"create flag environment '{spec.environment}' ({count})", (old, new)))
        elif old != new:
            line = f"update flag environment '{spec.environment}' ({_diff(old, new)})"
            out.append((line, (old, new)))
    return out


def undeclared(specs: list[EnvironmentSpec], store: StateStore) -> list[str]:
    """The stored environments the file does not declare (what `--prune` deletes)."""
    declared = {spec.environment for spec in specs}
    return [env.name for env in envs.environments(store) if env.name not in declared]


def delete_plan(names: list[str], store: StateStore) -> Planned:
    """(change line, (stored, None)) for each stored environment named."""
    return [
        (f"deleted flag environment '{env.name}'", (env, None))
        for env in envs.environments(store)
        if env.name in names
    ]


def events_config(spec: EnvironmentSpec) -> envs.EventsConfig | None:
    """The checked `evaluated_events` of an environment."""
    given = spec.evaluated_events
    if given is None:
        return None
    where = "evaluated_events"
    if not given.source:
        raise ValueError(f"{where}.source: name the source the events are written to")
    if not 0 < given.sample <= 1:
        raise ValueError(f"{where}.sample: {given.sample} is not in (0, 1]")
    try:
        window = parse_duration(given.window)
    except ValueError as exc:
        raise ValueError(f"{where}.window: {exc}") from exc
    if window <= 0:
        raise ValueError(f"{where}.window: the window must be longer than 0 s")
    return envs.EventsConfig(given.source, given.sample, window)


def commit(
    planned: Planned, store: StateStore, dry_run: bool, author: flag_changes.Author
) -> list[str]:
    """Store the planned environments with their Feature Flag Changed events."""
    if not dry_run and planned:
        flag_changes.save(store, [change for _, change in planned], author)
    return [line for line, _ in planned]


def _diff(old: envs.Environment, new: envs.Environment) -> str:
    parts = []
    if old.sdk_key != new.sdk_key:
        parts.append("new SDK key")
    added = [k for k in new.settings if k not in old.settings]
    changed = [k for k in new.settings if k in old.settings and old.settings[k] != new.settings[k]]
    if added:
        parts.append("add " + ", ".join(added))
    if changed:
        parts.append("change " + ", ".join(changed))
    if old.config.get("s") != new.config.get("s"):
        parts.append("segments")
    if old.events != new.events:
        parts.append("evaluated events")
    if old.changed_source != new.changed_source:
        parts.append("changed events")
    if len(new.settings) < len(old.settings) or old.origin != new.origin:
        parts.append("replace the whole config")
    return "; ".join(parts) or "config"
