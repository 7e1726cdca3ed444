"""`models:` and `syncs:` of a workspace file: check them, then store what is new or changed.

Checking connects to each model's database and runs its query for no rows, so a
mapping that names a missing column (or a query that fails) is refused at apply time,
before anything is stored.
"""

from pathlib import Path

import msgspec

from trackway.reverse_etl import config
from trackway.reverse_etl.config import ModelSpec, SyncSpec
from trackway.reverse_etl.connections import columns
from trackway.reverse_etl.errors import ConfigError
from trackway.reverse_etl.mapping import Mapper
from trackway.storage.base import StateStore
from trackway.workspace.diff import field_changes, with_changes

__all__ = ["ModelSpec", "SyncSpec", "apply_reverse_etl"]


def apply_reverse_etl(
    models: list[ModelSpec],
    syncs: list[SyncSpec],
    store: StateStore,
    dry_run: bool = False,
    *,
    data_dir: Path,
    base_dir: Path | None = None,
) -> list[str]:
    """Store the declared models and syncs; returns one line per change.

    Relative database paths are resolved against `base_dir` (the workspace file's
    directory; default: the current directory); a duckdb model without a path reads
    Trackway's own warehouse in `data_dir`. Raises ConfigError, changing nothing, when
    anything is invalid. Never deletes what the file does not name.
    """
    base = base_dir if base_dir is not None else Path.cwd()
    models = [config.resolve_paths(m, base) for m in models]
    _check_unique("model", [m.name for m in models])
    _check_unique("sync", [s.name for s in syncs])
    for model in models:
        config.check_model(model)
    for sync in syncs:
        config.check_sync(sync)
    known = {**config.models(store), **{m.name: m for m in models}}
    found: dict[str, list[str]] = {}
    for model in models:
        found[model.name] = _columns(model, data_dir, store, found)
    for sync in syncs:
        source = known.get(sync.model)
        if source is None:
            raise ConfigError(f"sync '{sync.name}': no model named '{sync.model}'")
        Mapper(sync, source, _columns(source, data_dir, store, found))
    changes = _put(store, config.MODEL_KIND, models, dry_run)
    return changes + _put(store, config.SYNC_KIND, syncs, dry_run)


def _columns(
    model: ModelSpec, data_dir: Path, store: StateStore, found: dict[str, list[str]]
) -> list[str]:
    if model.name not in found:
        names = columns(model, data_dir, store)
        if model.primary_key not in names:
            raise ConfigError(
                f"model '{model.name}': the primary key '{model.primary_key}' is not a column"
                f" of its result (columns: {', '.join(names)})"
            )
        found[model.name] = names
    return found[model.name]


def _check_unique(kind: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ConfigError(f"{kind} '{name}' is declared twice")
        seen.add(name)


def _put(
    store: StateStore, kind: str, specs: list[ModelSpec] | list[SyncSpec], dry_run: bool
) -> list[str]:
    have = store.objects(kind)
    changes = []
    for spec in specs:
        want = msgspec.to_builtins(spec)
        old = have.get(spec.name)
        if old == want:
            continue
        line = f"{'create' if old is None else 'update'} {kind} '{spec.name}'"
        if isinstance(spec, SyncSpec) and old is not None and _mapping_changed(old, spec):
            line += " (what it sends changed: its next run counts every row as changed)"
        if old is not None:
            line = with_changes(line, field_changes(kind, spec.name, old, want, _secret_path))
        changes.append(line)
        if not dry_run:
            store.put_object(kind, spec.name, want)
    return changes


def _secret_path(path: str) -> bool:
    # a sync's write key to Segment; URLs show without their password (diff.py)
    return path == "target.write_key"


def _mapping_changed(old: dict[str, object], new: SyncSpec) -> bool:
    before = msgspec.convert(old, SyncSpec)
    return (before.type == "identify") != (new.type == "identify") or (
        (list(before.mapping.items()), before.user_id, before.anonymous_id)
        != (list(new.mapping.items()), new.user_id, new.anonymous_id)
    )
