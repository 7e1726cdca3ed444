""" "Feature Flag Changed" events of Trackway's own flags (docs/flag-events.md).

Every change of a flag environment (`trackway apply`, `apply --prune`, `flags import`)
queues one event per changed environment, in the body ConfigCat's webhook sends
(integrations/configcat_webhook.py), with each changed setting as served before and
after. The queue is objects of kind `flags.changed` in the state store, written in the
same transaction as the change itself, so a change is never stored without its event.

A running server drains the queue at its state refresh (about once a second): each
event becomes a track event through the webhook source's own conversion and is appended
to the environment's `changed_events` source, or `flags` (both created on first use as
`configcat` sources). The messageId comes from the queued event's id, so a server that
stops between the append and the removal from the queue, or two API nodes draining the
same queue, store it once.
"""

import getpass
import logging
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from trackway.flags import environments as envs
from trackway.ingest.handler import Ingestor
from trackway.ingest.sources import SourceCache
from trackway.integrations import configcat_webhook as webhook
from trackway.spec.errors import IngestError
from trackway.storage.base import StateStore
from trackway.storage.records import Source

QUEUE_KIND = "flags.changed"
DEFAULT_SOURCE = "flags"
INTEGRATION = "trackway-flags"

_log = logging.getLogger(__name__)
_TYPES: dict[Any, str] = {0: "bool", 1: "string", 2: "int", 3: "double"}

Change = tuple[envs.Environment | None, envs.Environment | None]
"""(before, after) of one environment; None: it did not exist / it is deleted."""


@dataclass(frozen=True)
class Author:
    """Who made a change (`--actor`, else the OS user), with what, and from where."""

    actor: str
    via: str
    url: str | None = None


def os_user() -> str:
    """The OS user running the command: the default `--actor`."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        return f"uid {os.getuid()}"


def save(store: StateStore, changes: Sequence[Change], author: Author) -> None:
    """Store the environments (or delete them) and queue their events, atomically."""
    put: list[tuple[str, str, dict[str, Any]]] = []
    delete: list[tuple[str, str]] = []
    now = time.time()
    for old, new in changes:
        if new is not None:
            put.append((envs.KIND, new.name, msgspec.to_builtins(new)))
        elif old is not None:
            delete.append((envs.KIND, old.name))
        put.append(
            (
                QUEUE_KIND,
                f"{time.time_ns():020d}-{uuid.uuid4().hex}",
                _queued(old, new, author, now),
            )
        )
    store.write_objects(put, delete)


def body(
    old: envs.Environment | None, new: envs.Environment | None, author: Author
) -> webhook.WebhookBody:
    """The webhook body ConfigCat would send for this change of one environment."""
    env = new or old
    assert env is not None
    notes = _environment_notes(old, new)
    return webhook.WebhookBody(
        environment_id=env.name,
        environment_name=env.name,
        url=author.url,
        change_notes=f"{author.via}: {'; '.join(notes)}" if notes else author.via,
        changed_by=author.actor,
        change_details=_setting_changes(old, new),
    )


def _queued(
    old: envs.Environment | None, new: envs.Environment | None, author: Author, now: float
) -> dict[str, Any]:
    env = new or old
    assert env is not None
    return {
        "id": str(uuid.uuid4()),
        "timestamp": int(now),
        "source": env.changed_source or DEFAULT_SOURCE,
        "body": msgspec.to_builtins(body(old, new, author)),
    }


def _environment_notes(old: envs.Environment | None, new: envs.Environment | None) -> list[str]:
    if old is None:
        return ["environment created"]
    if new is None:
        return ["environment deleted"]
    notes = []
    if old.sdk_key != new.sdk_key:
        notes.append("new SDK key")
    if old.config.get("s") != new.config.get("s"):
        notes.append("segments changed")
    if old.events != new.events:
        notes.append("evaluated events changed")
    if old.changed_source != new.changed_source:
        notes.append("changed events source changed")
    return notes


def _setting_changes(
    old: envs.Environment | None, new: envs.Environment | None
) -> list[webhook.Change]:
    before = old.settings if old is not None else {}
    after = new.settings if new is not None else {}
    out = []
    for key in [*before, *(k for k in after if k not in before)]:
        was, now = before.get(key), after.get(key)
        if was == now:
            continue
        event = "created" if was is None else "deleted" if now is None else "changed"
        out.append(webhook.Change(key, event, _describe(key, was, now), was, now))
    return out


def _describe(key: str, was: dict[str, Any] | None, now: dict[str, Any] | None) -> str:
    """One line as ConfigCat writes them: `key: false ➔ true`."""
    if was is None:
        assert now is not None
        return f"{key}: created ({_TYPES.get(now.get('t'), '?')}, {_value(now)})"
    if now is None:
        return f"{key}: deleted (was {_value(was)})"
    parts = []
    if was.get("t") != now.get("t"):
        parts.append(f"type {_TYPES.get(was.get('t'), '?')} ➔ {_TYPES.get(now.get('t'), '?')}")
    if was.get("v") != now.get("v"):
        parts.append(f"{_value(was)} ➔ {_value(now)}")
    if was.get("r") != now.get("r"):
        parts.append("targeting rules changed")
    if was.get("p") != now.get("p") or was.get("a") != now.get("a"):
        parts.append("percentage options changed")
    if not parts:
        parts.append("variation ids changed")
    return f"{key}: {', '.join(parts)}"


def _value(setting: dict[str, Any]) -> str:
    value = next(iter((setting.get("v") or {}).values()), None)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class ChangedEvents:
    """Drains the queue of a server: appends the queued events to their sources."""

    def __init__(self, store: StateStore, ingestor: Ingestor, sources: SourceCache) -> None:
        self._store = store
        self._ingestor = ingestor
        self._sources = sources

    async def ingest(self) -> int:
        """Append every queued event, then take it off the queue; the number appended."""
        queued = self._store.objects(QUEUE_KIND)
        by_source: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for name, item in queued.items():
            by_source.setdefault(item["source"], []).append((name, item))
        done = 0
        for source_name, items in by_source.items():
            source = self._source(source_name)
            settings = webhook.load_settings(self._store, source.name)
            messages = [
                webhook.to_message(
                    msgspec.convert(item["body"], webhook.WebhookBody),
                    item["id"],
                    item["timestamp"],
                    settings,
                    INTEGRATION,
                )
                for _, item in items
            ]
            try:
                await self._ingestor.append(source, messages, datetime.now(UTC))
            except IngestError as exc:  # kept queued: nothing is dropped
                _log.error("flag change events for source '%s' were refused: %s", source_name, exc)
                continue
            self._store.write_objects([], [(QUEUE_KIND, name) for name, _ in items])
            done += len(items)
        return done

    def _source(self, name: str) -> Source:
        source = self._sources.named(name)
        if source is not None:
            return source
        try:
            self._store.create_source(name, "configcat")
            _log.info("created source '%s' for Feature Flag Changed events", name)
        except ValueError:  # another process created it meanwhile
            pass
        self._sources.reload()
        found = self._sources.named(name)
        assert found is not None
        return found
