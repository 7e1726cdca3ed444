"""Deleting what a workspace declares: experiments, sources, destinations, models and syncs.

Shared by the `delete` commands, the admin API's DELETE routes and `apply --prune`.
Something still used is refused, naming what uses it. What each deletion keeps:

- a source: its write keys stop working at once (a running server reloads them within
  about a second); its events stay in the log until retention (destinations still
  deliver them, warehouses still load them); its id is never given to another source.
- a destination: its dead letters stay readable (`destinations dead-letters`) until
  purged, and the events waiting to be retried join them (reason `deleted`).
- a sync: its run history stays; its snapshot is reset, so a sync declared again under
  the same name sends every row as added (with new messageIds).
"""

import time
from collections.abc import Callable
from contextlib import closing

from trackway.destinations import config as destination_config
from trackway.destinations.state import open_delivery_store
from trackway.experiments import spec as experiments
from trackway.integrations import configcat_webhook
from trackway.reverse_etl import config as reverse_etl_config
from trackway.reverse_etl.runner import DEFAULT_OWN_SOURCE
from trackway.reverse_etl.state import open_sync_store
from trackway.settings import Settings
from trackway.storage.base import StateStore

KINDS = ("experiment", "sync", "model", "destination", "source")
"""What can be deleted, in an order that deletes users before what they use."""


class InUse(ValueError):
    """It cannot be deleted: other things use it (named in the message)."""


def source_users(store: StateStore, name: str) -> list[str]:
    """The destinations and syncs that use the source `name`."""
    users = [
        f"destination '{d.name}'"
        for d in destination_config.destinations(store)
        if name in (d.sources or [])
    ]
    return users + [
        f"sync '{s.name}'"
        for s in reverse_etl_config.syncs(store).values()
        if s.target.type == "own" and (s.target.source or DEFAULT_OWN_SOURCE) == name
    ]


def model_users(store: StateStore, name: str) -> list[str]:
    """The syncs that read the model `name`."""
    return [f"sync '{s.name}'" for s in reverse_etl_config.syncs(store).values() if s.model == name]


def delete_source(store: StateStore, settings: Settings, name: str) -> str:
    """Delete a source (raises SourceNotFound, or InUse)."""
    store.get_source(name)
    users = source_users(store, name)
    if users:
        raise InUse(f"source '{name}' is used by {_and(users)}: change or delete them first")
    store.delete_source(name)
    store.delete_object(configcat_webhook.SETTINGS_KIND, name)
    return f"deleted source '{name}' (its write keys no longer work; its events stay in the log)"


def delete_destination(store: StateStore, settings: Settings, name: str) -> str:
    """Delete a destination, keeping its dead letters (raises DestinationNotFound)."""
    destination_config.find(store, name)
    store.delete_object(destination_config.KIND, name)
    # A server's worker may finish a window after this; it retires again once stopped.
    with closing(open_delivery_store(settings)) as deliveries:
        kept = deliveries.retire(name, int(time.time() * 1000))
    return f"deleted destination '{name}' ({kept} dead letter(s) kept until purged)"


def delete_model(store: StateStore, settings: Settings, name: str) -> str:
    """Delete a model (raises ConfigError when there is none, InUse when a sync reads it)."""
    reverse_etl_config.get_model(store, name)
    users = model_users(store, name)
    if users:
        raise InUse(f"model '{name}' is used by {_and(users)}: delete or change them first")
    store.delete_object(reverse_etl_config.MODEL_KIND, name)
    return f"deleted model '{name}'"


def delete_sync(store: StateStore, settings: Settings, name: str) -> str:
    """Delete a sync and reset its snapshot (raises ConfigError, or SyncBusy while it runs)."""
    reverse_etl_config.get_sync(store, name)
    with closing(open_sync_store(settings)) as syncs, syncs.lock(name):
        store.delete_object(reverse_etl_config.SYNC_KIND, name)
        syncs.reset(name)
    return f"deleted sync '{name}'"


def delete_experiment(store: StateStore, settings: Settings, name: str) -> str:
    """Delete an experiment (raises ExperimentNotFound); its events stay where they are."""
    return experiments.delete(store, name)


DELETE: dict[str, Callable[[StateStore, Settings, str], str]] = {
    "experiment": delete_experiment,
    "source": delete_source,
    "destination": delete_destination,
    "model": delete_model,
    "sync": delete_sync,
}


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
