"""The storage interfaces. Callers depend on these Protocols, never on a backend module."""

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from trackway.storage.records import (
    AppendResult,
    DebugRecord,
    IngestBatch,
    LogEvent,
    Source,
    Status,
    WriteKey,
)


class StorageUnavailable(Exception):
    """The backend could not commit; nothing was acknowledged."""


class NotFound(LookupError):
    """Nothing of that name in the workspace (a source, destination, warehouse, model or
    sync); the CLI adds where it looked."""


class SourceNotFound(NotFound):
    """No source has that name."""


class NoDataDirectory(Exception):
    """A command that only reads was pointed at a directory holding no Trackway data."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"no Trackway data directory at {path.resolve()}")
        self.path = path


Subscriber = Callable[[list[DebugRecord]], None]


class EventLog(Protocol):
    """The durable, ordered, deduplicated event log.

    `append` returns only after the batch is committed; one writer commits many
    pending appends at once (group commit). Events get consecutive positions; a
    consumer keeps the last position it has processed.
    """

    def start(self) -> None: ...

    def close(self) -> None: ...

    async def append(self, batch: IngestBatch) -> AppendResult: ...

    @property
    def pending_events(self) -> int: ...

    def subscribe(self, loop: asyncio.AbstractEventLoop, fn: Subscriber) -> Callable[[], None]: ...

    def read(self, after: int, limit: int) -> list[LogEvent]: ...

    def wait_for(self, after: int, timeout_s: float) -> None:
        """Return once an event after position `after` is committed (by any process),
        or when `timeout_s` has passed: how consumers idle at the end of the log."""
        ...

    def debug_records(
        self, source_id: int | None, limit: int, statuses: frozenset[Status] | None = None
    ) -> list[DebugRecord]: ...

    def debug_records_after(
        self, source_id: int | None, after: dict[Status, int]
    ) -> list[DebugRecord]: ...

    def last_seqs(self) -> dict[Status, int]: ...

    def volume(self, since_ms: int) -> list[tuple[int, Status, int, int]]:
        """Records per (source id, status, minute since the epoch) since `since_ms`."""
        ...

    def enforce_retention(self, now_ms: int) -> int: ...

    def ping(self) -> None: ...


class StateStore(Protocol):
    """Workspace state: sources, write keys, admin tokens, and named objects.

    Objects are the other things a workspace declares (warehouses, destinations,
    syncs): a JSON spec per (kind, name), validated by the module that owns the kind.
    """

    def close(self) -> None: ...

    def create_source(self, name: str, type: str, write_key: str | None = None) -> Source: ...

    def list_sources(self) -> list[Source]: ...

    def get_source(self, name: str) -> Source: ...

    def set_enabled(self, name: str, enabled: bool) -> Source: ...

    def delete_source(self, name: str) -> Source:
        """Delete a source and its write keys at once; its id is never given to another
        source (its events stay in the log until retention). Raises SourceNotFound."""
        ...

    def write_keys(self, source_id: int | None = None) -> list[WriteKey]: ...

    def rotate_key(self, name: str, grace_s: float, new_key: str | None = None) -> str: ...

    def add_admin_token(self, token_hash: str) -> None: ...

    def has_admin_token(self, token_hash: str) -> bool: ...

    def admin_token_count(self) -> int: ...

    def put_object(self, kind: str, name: str, spec: dict[str, Any]) -> None: ...

    def objects(self, kind: str) -> dict[str, dict[str, Any]]: ...

    def delete_object(self, kind: str, name: str) -> bool: ...

    def changed(self) -> bool: ...

    def ping(self) -> None: ...
