"""`trackway apply FILE.yaml`: declare the workspace in a file, idempotently.

The file has one list per kind of thing: `sources`, `destinations`, `warehouses`,
`models`, `syncs`, `flags` (feature flag environments, see trackway.flags) and
`experiments` (see trackway.experiments.spec).
Applying creates what is missing and changes what differs; it deletes what the file
does not name only when asked (`prune`).
"""

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import msgspec
import yaml

from trackway.destinations import config as destination_config
from trackway.destinations.secrets import Secrets
from trackway.experiments import spec as experiments_spec
from trackway.flags import apply as flags_apply
from trackway.flags.changes import Author
from trackway.flags.spec import EnvironmentSpec
from trackway.integrations import configcat_webhook
from trackway.reverse_etl import config as reverse_etl_config
from trackway.reverse_etl.apply import ModelSpec, SyncSpec, apply_reverse_etl
from trackway.reverse_etl.runner import DEFAULT_OWN_SOURCE
from trackway.settings import DEFAULT_KEY_GRACE_S, Settings
from trackway.storage.base import SourceNotFound, StateStore
from trackway.warehouse import config as warehouse_config
from trackway.workspace.delete import DELETE, KINDS
from trackway.workspace.fql_changes import fql_changes
from trackway.workspace.sources import SOURCE_TYPES, check_name

FLAG_ENVIRONMENT = "flag environment"


class SourceSpec(msgspec.Struct, forbid_unknown_fields=True):
    """A source as declared in a workspace file."""

    name: str
    type: str = "segment"
    enabled: bool = True
    write_key: str | None = None
    signing_keys: list[str] | None = None
    product_id: str | None = None
    product_name: str | None = None


class WorkspaceFile(msgspec.Struct, forbid_unknown_fields=True):
    """The whole workspace file."""

    version: int = 1
    sources: list[SourceSpec] = []
    destinations: list[destination_config.DestinationSpec] = []
    warehouses: list[warehouse_config.WarehouseSpec] = []
    models: list[ModelSpec] = []
    syncs: list[SyncSpec] = []
    flags: list[EnvironmentSpec] = []
    experiments: list[experiments_spec.ExperimentSpec] = []


class ApplyError(Exception):
    """The workspace file is not valid; nothing was changed."""


def load(path: Path) -> WorkspaceFile:
    """Parse and validate a workspace file."""
    try:
        data: Any = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ApplyError(f"cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ApplyError(f"{path} is not valid YAML: {exc}") from exc
    try:
        spec = msgspec.convert(data or {}, WorkspaceFile)
    except msgspec.ValidationError as exc:
        raise ApplyError(f"{path}: {exc}") from exc
    if spec.version != 1:
        raise ApplyError(f"{path}: unsupported version {spec.version} (this Trackway reads 1)")
    seen: set[str] = set()
    for index, source in enumerate(spec.sources):
        where = f"{path}: sources[{index}]"
        try:
            check_name(source.name)
        except ValueError as exc:
            raise ApplyError(f"{where}: {exc}") from exc
        if source.name in seen:
            raise ApplyError(f"{where}: source '{source.name}' is declared twice")
        seen.add(source.name)
        if source.type not in SOURCE_TYPES:
            raise ApplyError(
                f"{where}: unknown type '{source.type}' (one of: {', '.join(SOURCE_TYPES)})"
            )
        if source.type != "configcat" and _configcat_fields(source):
            raise ApplyError(
                f"{where}: signing_keys, product_id and product_name are for configcat sources"
            )
    _validate_named(path, "warehouse", spec.warehouses, warehouse_config.validate)
    try:
        flags_apply.validate(spec.flags)
    except ValueError as exc:
        raise ApplyError(f"{path}: {exc}") from exc
    _validate_named(path, "experiment", spec.experiments, experiments_spec.validate)
    return spec


class _HasName(Protocol):
    @property
    def name(self) -> str: ...


_Named = TypeVar("_Named", bound=_HasName)


def _validate_named(
    path: Path, kind: str, items: Sequence[_Named], validate: Callable[[_Named], object]
) -> None:
    """Validate each item of the file's `kind`s list (`validate` raises ValueError); an
    error names the item's index, and a name declared twice is one."""
    names: set[str] = set()
    for index, item in enumerate(items):
        where = f"{path}: {kind}s[{index}]"
        try:
            validate(item)
        except ValueError as exc:
            raise ApplyError(f"{where}: {exc}") from exc
        if item.name in names:
            raise ApplyError(f"{where}: {kind} '{item.name}' is declared twice")
        names.add(item.name)


def apply(
    spec: WorkspaceFile,
    store: StateStore,
    dry_run: bool = False,
    *,
    data_dir: Path,
    end_of_log: Callable[[], int],
    author: Author,
    base_dir: Path | None = None,
    recent_events: Callable[[], Iterable[Any]] = tuple,
    warn: Callable[[str], None] = lambda line: None,
) -> list[str]:
    """Make the store match the file; returns one line per change (empty: nothing to do).

    `end_of_log` gives the log's last position: where a new destination starts reading.
    Flag environment changes queue Feature Flag Changed events naming `author`.
    A dry run also calls `warn` for each subscription and filter whose meaning changed
    with typed FQL comparisons (looking for fields that held text in `recent_events`).
    """
    # Destinations, models and syncs are checked first (models against their databases),
    # so that a bad one changes nothing; they are stored after the sources.
    base = base_dir if base_dir is not None else Path.cwd()
    secrets = Secrets.of(data_dir)
    sources = {s.name for s in store.list_sources()} | {s.name for s in spec.sources}
    destination_config.apply(
        spec.destinations, store, secrets, end_of_log, True, base_dir=base, sources=sources
    )
    apply_reverse_etl(spec.models, spec.syncs, store, True, data_dir=data_dir, base_dir=base_dir)
    try:
        flags = flags_apply.plan(spec.flags, store)
    except ValueError as exc:
        raise ApplyError(str(exc)) from exc
    if dry_run:
        for line in fql_changes(spec.destinations, recent_events()):
            warn(line)
    changes: list[str] = []
    for want in spec.sources:
        try:
            have = store.get_source(want.name)
        except SourceNotFound:
            changes.append(f"create source '{want.name}' ({want.type})")
            if not dry_run:
                store.create_source(want.name, want.type, want.write_key)
                if not want.enabled:
                    store.set_enabled(want.name, False)
                if _configcat_fields(want):
                    configcat_webhook.save_settings(store, want.name, _configcat_settings(want))
            continue
        if have.type != want.type:
            raise ApplyError(
                f"source '{want.name}' is of type '{have.type}'; its type cannot change to"
                f" '{want.type}'"
            )
        if have.enabled != want.enabled:
            changes.append(f"{'enable' if want.enabled else 'disable'} source '{want.name}'")
            if not dry_run:
                store.set_enabled(want.name, want.enabled)
        if want.type == "configcat" and _configcat_fields(want):
            settings = _configcat_settings(want)
            if configcat_webhook.load_settings(store, want.name) != settings:
                changes.append(f"configure source '{want.name}' (ConfigCat settings)")
                if not dry_run:
                    configcat_webhook.save_settings(store, want.name, settings)
        current = [k.key for k in store.write_keys(have.id) if k.expires_at is None]
        if want.write_key is not None and want.write_key not in current:
            changes.append(
                f"set the write key of source '{want.name}' (the old one works for"
                f" {DEFAULT_KEY_GRACE_S / 3600:.0f} h)"
            )
            if not dry_run:
                store.rotate_key(want.name, DEFAULT_KEY_GRACE_S, want.write_key)
    changes += destination_config.apply(
        spec.destinations, store, secrets, end_of_log, dry_run, base_dir=base, sources=sources
    )
    changes += warehouse_config.apply(spec.warehouses, store, dry_run)
    changes += flags_apply.commit(flags, store, dry_run, author)
    changes += experiments_spec.apply(spec.experiments, store, dry_run)
    return changes + apply_reverse_etl(
        spec.models, spec.syncs, store, dry_run, data_dir=data_dir, base_dir=base_dir
    )


def prune_plan(spec: WorkspaceFile, store: StateStore) -> list[tuple[str, str]]:
    """What `apply --prune` deletes: the (kind, name) of everything stored that the file
    does not declare, experiments, flag environments and syncs first, sources last
    (warehouses are never pruned). Raises ApplyError when something the file declares
    uses one of them."""
    declared = {
        "experiment": {e.name for e in spec.experiments},
        "sync": {s.name for s in spec.syncs},
        "model": {m.name for m in spec.models},
        "destination": {d.name for d in spec.destinations},
        "source": {s.name for s in spec.sources},
    }
    stored = {
        "experiment": sorted(store.objects(experiments_spec.KIND)),
        "sync": sorted(reverse_etl_config.syncs(store)),
        "model": sorted(reverse_etl_config.models(store)),
        "destination": [d.name for d in destination_config.destinations(store)],
        "source": [s.name for s in store.list_sources()],
    }
    plan = [(FLAG_ENVIRONMENT, name) for name in flags_apply.undeclared(spec.flags, store)]
    plan += [(kind, name) for kind in KINDS for name in stored[kind] if name not in declared[kind]]
    gone = set(plan)
    uses = [(f"sync '{s.name}'", "model", s.model) for s in spec.syncs]
    uses += [
        (f"sync '{s.name}'", "source", s.target.source or DEFAULT_OWN_SOURCE)
        for s in spec.syncs
        if s.target.type == "own"
    ]
    uses += [
        (f"destination '{d.name}'", "source", n) for d in spec.destinations for n in d.sources or []
    ]
    for user, kind, name in uses:
        if (kind, name) in gone:
            raise ApplyError(
                f"{user} uses {kind} '{name}', which the file does not declare:"
                " --prune would delete it"
            )
    return plan


def prune(
    plan: list[tuple[str, str]], store: StateStore, settings: Settings, author: Author
) -> list[str]:
    """Delete what `prune_plan` found; one line each. Flag environments are deleted
    together, with their Feature Flag Changed events."""
    flags = flags_apply.delete_plan([n for kind, n in plan if kind == FLAG_ENVIRONMENT], store)
    lines = flags_apply.commit(flags, store, False, author)
    return lines + [DELETE[k](store, settings, name) for k, name in plan if k != FLAG_ENVIRONMENT]


def _configcat_fields(spec: SourceSpec) -> bool:
    return bool(spec.signing_keys or spec.product_id or spec.product_name)


def _configcat_settings(spec: SourceSpec) -> configcat_webhook.SourceSettings:
    return configcat_webhook.SourceSettings(
        signing_keys=spec.signing_keys or [],
        product_id=spec.product_id,
        product_name=spec.product_name,
    )
