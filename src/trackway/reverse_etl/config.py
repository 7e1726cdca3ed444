"""Models and syncs as declared in a workspace file and stored in the state store.

A model is a SQL query on a connection, with a primary-key column. A sync turns the
changes in a model's result into events: which events (type and names), which columns
go where (mapping), when it runs (schedule) and where the events go (target).
"""

import re
from pathlib import Path
from typing import Literal

import msgspec

from trackway.reverse_etl.cron import parse_cron
from trackway.reverse_etl.errors import ConfigError, NotDeclared
from trackway.settings import parse_duration
from trackway.storage.base import StateStore

MODEL_KIND = "model"
SYNC_KIND = "sync"

OWN_WAREHOUSE = "warehouse.duckdb"
"""Trackway's own DuckDB warehouse file in the data directory: a duckdb model without a path."""

DEFAULT_SEGMENT_DATA_PLANE = "https://api.segment.io"
SEGMENT_ENTERED = "Segment Entered"
SEGMENT_EXITED = "Segment Exited"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_EVENTS = {
    "track": {"added", "changed", "removed"},
    "segment": {"entered", "exited"},
    "identify": set(),
}


class Connection(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Where a model's query runs: a DuckDB or SQLite file (`path`) or PostgreSQL (`url`)."""

    type: Literal["duckdb", "postgres", "sqlite"]
    path: str | None = None
    url: str | None = None


class ModelSpec(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A model: a SQL query on a connection whose rows are unique by `primary_key`."""

    name: str
    connection: Connection
    query: str
    primary_key: str


class EventNames(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Event names per change kind: added/changed/removed (track), entered/exited (segment)."""

    added: str | None = None
    changed: str | None = None
    removed: str | None = None
    entered: str | None = None
    exited: str | None = None


class Schedule(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """When the server runs a sync: every `interval` (e.g. `15m`) or on a 5-field `cron` (UTC)."""

    interval: str | None = None
    cron: str | None = None


class Target(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Where events go: Trackway's own ingest (as `source`) or a Segment-compatible endpoint."""

    type: Literal["own", "segment"] = "own"
    source: str | None = None
    write_key: str | None = None
    data_plane: str | None = None


class SyncSpec(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A sync: which changes of a model become which events, sent where and when.

    `mapping` maps result columns to event properties (track, segment) or traits
    (identify). `user_id`, `anonymous_id`, `timestamp` and `message_id` name columns.
    """

    name: str
    model: str
    type: Literal["track", "segment", "identify"]
    mapping: dict[str, str] = {}
    user_id: str | None = None
    anonymous_id: str | None = None
    timestamp: str | None = None
    message_id: str | None = None
    events: EventNames = msgspec.field(default_factory=EventNames)
    send_initial: bool = False
    schedule: Schedule | None = None
    target: Target = msgspec.field(default_factory=Target)

    def event_name(self, kind: str) -> str | None:
        """The event a change of this kind sends (None: the change is recorded, not sent).

        Identify syncs send an identify call for added and changed rows, nothing for
        removed ones; the returned name is then only a marker.
        """
        if self.type == "identify":
            return None if kind == "removed" else "identify"
        if self.type == "segment":
            if kind == "added":
                return self.events.entered or SEGMENT_ENTERED
            return (self.events.exited or SEGMENT_EXITED) if kind == "removed" else None
        name: str | None = getattr(self.events, kind)
        return name

    def used_columns(self) -> list[str]:
        """Every column the sync reads from its model's result."""
        ids = (self.user_id, self.anonymous_id)
        extra = (self.timestamp, self.message_id)
        return [*(c for c in ids if c), *self.mapping, *(c for c in extra if c)]


def check_name(kind: str, name: str) -> None:
    """Model and sync names follow the source-name rule; raises ConfigError otherwise."""
    if not _NAME.match(name):
        raise ConfigError(
            f"invalid {kind} name {name!r}: use 1-64 letters, digits, '_', '.' or '-',"
            " starting with a letter or digit"
        )


def check_model(model: ModelSpec) -> None:
    """The rules a model must follow before its connection is tried."""
    check_name("model", model.name)
    where = f"model '{model.name}'"
    conn = model.connection
    if conn.type == "postgres":
        if not conn.url or conn.path is not None:
            raise ConfigError(f"{where}: a postgres connection takes a `url` (and no `path`)")
    elif conn.url is not None or (conn.type == "sqlite" and not conn.path):
        raise ConfigError(f"{where}: a {conn.type} connection takes a `path` (and no `url`)")
    if not model.query.strip():
        raise ConfigError(f"{where}: the query is empty")
    if not model.primary_key:
        raise ConfigError(f"{where}: `primary_key` names no column")


def check_sync(sync: SyncSpec) -> None:
    """The rules a sync must follow on its own (the model's columns are checked later)."""
    check_name("sync", sync.name)
    where = f"sync '{sync.name}'"
    if sync.user_id is None and sync.anonymous_id is None:
        raise ConfigError(f"{where}: name a `user_id` or `anonymous_id` column (or both)")
    given = {f: getattr(sync.events, f) for f in EventNames.__struct_fields__}
    given = {f: name for f, name in given.items() if name is not None}
    wrong = sorted(set(given) - _EVENTS[sync.type])
    if wrong:
        raise ConfigError(
            f"{where}: `events` {', '.join(wrong)} do(es) not apply to {sync.type} syncs"
        )
    if sync.type == "track" and not given:
        raise ConfigError(f"{where}: a track sync needs `events` with added, changed or removed")
    if not all(given.values()):
        raise ConfigError(f"{where}: event names cannot be empty")
    if sync.type == "identify" and sync.send_initial:
        raise ConfigError(f"{where}: identify syncs always send the initial result set")
    if sync.schedule is not None:
        _check_schedule(where, sync.schedule)
    target = sync.target
    if target.type == "segment":
        if not target.write_key or target.source is not None:
            raise ConfigError(f"{where}: a segment target takes a `write_key` (and no `source`)")
    elif target.write_key is not None:
        raise ConfigError(f"{where}: the own target takes a `source` name, not a `write_key`")
    if target.data_plane is not None and not target.data_plane.startswith(("http://", "https://")):
        raise ConfigError(f"{where}: `data_plane` must be an http(s) origin, without /v1")


def _check_schedule(where: str, schedule: Schedule) -> None:
    """Exactly one of interval and cron, each parseable."""
    if (schedule.interval is None) == (schedule.cron is None):
        raise ConfigError(f"{where}: a schedule has either `interval` or `cron`")
    try:
        if schedule.interval is not None and parse_duration(schedule.interval) <= 0:
            raise ValueError(f"the interval must be positive: {schedule.interval!r}")
        if schedule.cron is not None:
            parse_cron(schedule.cron)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def resolve_paths(model: ModelSpec, base_dir: Path) -> ModelSpec:
    """The model with a relative file path made absolute against `base_dir`."""
    path = model.connection.path
    if path is None or Path(path).is_absolute():
        return model
    absolute = str((base_dir / Path(path).expanduser()).resolve())
    return msgspec.structs.replace(
        model, connection=msgspec.structs.replace(model.connection, path=absolute)
    )


def database_path(connection: Connection, data_dir: Path) -> Path:
    """The file a duckdb or sqlite connection opens (Trackway's warehouse when no path)."""
    return Path(connection.path) if connection.path else data_dir / OWN_WAREHOUSE


def models(store: StateStore) -> dict[str, ModelSpec]:
    """Every stored model by name."""
    return {n: msgspec.convert(s, ModelSpec) for n, s in store.objects(MODEL_KIND).items()}


def syncs(store: StateStore) -> dict[str, SyncSpec]:
    """Every stored sync by name."""
    return {n: msgspec.convert(s, SyncSpec) for n, s in store.objects(SYNC_KIND).items()}


def get_model(store: StateStore, name: str) -> ModelSpec:
    """One stored model; raises NotDeclared when there is none of that name."""
    found = models(store).get(name)
    if found is None:
        raise NotDeclared(f"no model named '{name}' (declare it under `models:` and apply)")
    return found


def get_sync(store: StateStore, name: str) -> SyncSpec:
    """One stored sync; raises NotDeclared when there is none of that name."""
    found = syncs(store).get(name)
    if found is None:
        raise NotDeclared(f"no sync named '{name}' (declare it under `syncs:` and apply)")
    return found
