"""The durable state of syncs: snapshots, runs and their row errors, behind one Protocol.

The snapshot holds, per (sync, primary key), the hash and payload of what was last
acknowledged and `seq`, how many changes of that key were acknowledged (part of the
derived messageId, so a row that changes back and forth never reuses an id). A removed
key stays as a tombstone (no hash) so its `seq` survives.

A run stages the model's result beside the snapshot, diffs the two in the database
(bounded memory, whatever the size), then walks the plan; each acknowledged batch
advances the snapshot in the same transaction as the run's counters.
"""

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, Protocol

from trackway.reverse_etl.mapping import StagedRow
from trackway.settings import Settings

Kind = Literal["added", "changed", "removed"]
KINDS: tuple[Kind, ...] = ("added", "changed", "removed")
Trigger = Literal["manual", "schedule"]
Status = Literal["running", "succeeded", "partial", "failed", "cancelled"]


class Change(NamedTuple):
    """One planned change: a row to send (or only to record) as added, changed or removed.

    `payload` is what the row sends (for a removed row: what was last sent); `seq` is
    the key's acknowledged-change count before this change; `extra` and `error` are the
    staged row's (see `mapping`).
    """

    id: int
    kind: Kind
    pk: Any
    hash: int
    seq: int
    payload: bytes
    extra: bytes | None
    error: str | None


@dataclass
class Counts:
    """A run's counters: the diff, then what was sent, failed to send or was rejected."""

    added: int = 0
    changed: int = 0
    removed: int = 0
    sent: int = 0
    failed: int = 0
    rejected: int = 0


@dataclass(frozen=True)
class Run:
    """One run of a sync, as kept in the run history; `id` numbers the sync's runs
    (1, 2, 3...)."""

    id: int
    sync: str
    trigger: Trigger
    full_resync: bool
    status: Status
    started_at: str
    ended_at: str | None = None
    counts: Counts = field(default_factory=Counts)
    error: str | None = None


def describe_run(run: Run) -> str:
    """A run on one line: trigger, status, times and counts (and its error)."""
    c = run.counts
    line = (
        f"run {run.id} ({run.trigger}{', full resync' if run.full_resync else ''})"
        f" {run.status} {run.started_at} -> {run.ended_at or '...'}:"
        f" added {c.added}, changed {c.changed}, removed {c.removed};"
        f" sent {c.sent}, failed {c.failed}, rejected {c.rejected}"
    )
    return line + (f" ({run.error})" if run.error else "")


@dataclass(frozen=True)
class RowError:
    """Why one row of a run was not delivered: `failed` (to send) or `rejected` (not valid)."""

    pk: Any
    kind: Kind
    status: Literal["failed", "rejected"]
    error: str


class SyncStore(Protocol):
    """Snapshots, run history and the scratch space of the run in progress.

    One object serves one thread. `start_run` opens a scratch space for the run's
    staged rows and plan; `finish_run` discards it.
    """

    def lock(self, sync: str) -> AbstractContextManager[None]:
        """Hold the sync for one run (or a reset); raises SyncBusy if someone else does."""
        ...

    def start_run(self, sync: str, trigger: Trigger, full_resync: bool) -> Run:
        """Record a new running run (closing any left `running` by a dead process)."""
        ...

    def stage(self, rows: Sequence[StagedRow]) -> None:
        """Add rows of the model's current result to the run's scratch space."""
        ...

    def duplicate_keys(self, limit: int) -> tuple[int, list[Any]]:
        """How many primary keys occur more than once in the staged result, and a few."""
        ...

    def initialized(self, sync: str) -> bool:
        """Whether the sync has a baseline (its first run finished, or was recorded)."""
        ...

    def record_initial(self, run: Run) -> int:
        """Make the staged result the snapshot without sending anything; returns its size."""
        ...

    def plan(self, run: Run) -> Counts:
        """Diff the staged result against the snapshot into the run's plan; count by kind.

        A full resync plans every staged row as added (and removed rows as removed).
        """
        ...

    def changes(self, after: int, limit: int) -> list[Change]:
        """Planned changes with `id` above `after`, in order."""
        ...

    def save(
        self,
        run: Run,
        applied: Sequence[Change],
        resend: Sequence[Change],
        errors: Sequence[RowError],
        counts: Counts,
    ) -> None:
        """In one transaction: advance the snapshot for `applied` changes, mark `resend`
        keys (a full resync's failed sends) to be sent again, keep `errors` and the
        run's counters."""
        ...

    def finish_run(self, run: Run, status: Status, counts: Counts, error: str | None) -> Run:
        """Close the run and discard its scratch space."""
        ...

    def runs(self, sync: str, limit: int) -> list[Run]:
        """The sync's runs, newest first."""
        ...

    def last_runs(self) -> dict[str, Run]:
        """The newest run of every sync that has one."""
        ...

    def row_errors(self, sync: str, run_id: int) -> list[RowError]:
        """The row errors kept for a run of the sync (a sample: the first few)."""
        ...

    def snapshot_size(self, sync: str) -> int:
        """How many keys the snapshot holds as present."""
        ...

    def reset(self, sync: str) -> int:
        """Forget what was sent: the next run treats every row as added. Returns keys forgotten."""
        ...

    def close(self) -> None: ...


def open_sync_store(settings: Settings) -> SyncStore:
    """The sync state: in PostgreSQL with a database URL (any worker process on any
    machine can then run any sync), else in the data directory."""
    # imported here: both backends import this module's records
    if settings.database_url:
        from trackway.reverse_etl.state.postgres import PostgresSyncStore

        return PostgresSyncStore(settings.database_url)
    from trackway.reverse_etl.state.sqlite import SQLiteSyncStore

    return SQLiteSyncStore.in_data_dir(settings.data_dir)
