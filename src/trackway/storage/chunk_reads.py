"""The reads both log backends share: the log's events by position, and a source's
debug records. The tables are the same on both (`chunks`, `failures`, `duplicates`);
a backend supplies only how to run a read (`_rows`)."""

from abc import ABC, abstractmethod
from typing import Any, get_args

from trackway import codec
from trackway.spec.limits import MAX_BATCH_EVENTS
from trackway.storage.group_commit import accepted_records, raw_json
from trackway.storage.records import DebugRecord, LogEvent, Status

_STATUSES = frozenset(get_args(Status))
_TABLES: tuple[tuple[Status, str, str, str], ...] = (
    ("accepted", "chunks", "pos", "sum(count)"),
    ("rejected", "failures", "id", "count(*)"),
    ("duplicate", "duplicates", "id", "count(*)"),
)
_SKEW_MS = 60_000
"""How much older than the rows committed before it a row can be: received_at is taken
when a request arrives, the key when its commit is written (seconds later at most)."""


class ChunkReads(ABC):
    """`read`, `debug_records` and `debug_records_after` of the EventLog Protocol."""

    @abstractmethod
    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """The rows of one read on this thread's connection; `sql` uses `?` placeholders."""

    def read_chunks(self, after: int, limit: int) -> list[tuple[int, int, int, bytes]]:
        """The stored chunks holding the events after position `after` up to `after +
        limit`, in order, as (position of the chunk's first event, source id,
        received_at in ms, its events as one JSON array): the first and last chunks may
        hold events outside that range."""
        # Positions are consecutive, so the events wanted lie in chunks that start at or
        # after the one holding position after + 1, and at or before after + limit.
        rows: list[tuple[int, int, int, bytes]] = self._rows(
            "SELECT pos, source_id, received_at, events FROM chunks WHERE pos >="
            " coalesce((SELECT max(pos) FROM chunks WHERE pos <= ?), 0) AND pos <= ?"
            " ORDER BY pos",
            (after + 1, after + limit),
        )
        return rows

    def read(self, after: int, limit: int) -> list[LogEvent]:
        """Up to `limit` events with a position greater than `after`, in order."""
        out: list[LogEvent] = []
        for pos, source_id, at_ms, events in self.read_chunks(after, limit):
            for offset, event in enumerate(codec.loads(events)):
                if pos + offset > after:
                    out.append(LogEvent(pos + offset, source_id, at_ms, event))
                    if len(out) == limit:
                        return out
        return out

    def debug_records(
        self, source_id: int | None, limit: int, statuses: frozenset[Status] | None = None
    ) -> list[DebugRecord]:
        """The newest `limit` records of a source (None: of every source), newest first."""
        wanted = statuses or _STATUSES
        where, params = _of_source(source_id)
        records: list[DebugRecord] = []
        if "accepted" in wanted:
            rows = self._rows(
                f"SELECT pos, source_id, received_at, events FROM chunks WHERE {where}"
                " ORDER BY pos DESC LIMIT ?",
                (*params, limit),
            )
            records.extend(accepted_records(rows, limit))
        records.extend(self._side_records(source_id, wanted, "id DESC", 0, limit))
        records.sort(key=lambda r: (r.received_at_ms, r.seq), reverse=True)
        return records[:limit]

    def debug_records_after(
        self, source_id: int | None, after: dict[Status, int]
    ) -> list[DebugRecord]:
        """Records of a source (None: of every source) newer than the given per-status
        sequence numbers, oldest first."""
        where, params = _of_source(source_id)
        rows = self._rows(
            f"SELECT pos, source_id, received_at, events FROM chunks WHERE {where} AND pos > ?"
            " ORDER BY pos",
            (*params, after["accepted"] - MAX_BATCH_EVENTS),
        )
        records = [r for r in accepted_records(rows, None) if r.seq > after["accepted"]]
        for status in ("rejected", "duplicate"):
            records.extend(self._side_records(source_id, {status}, "id", after[status], None))
        records.sort(key=lambda r: r.received_at_ms)
        return records

    def volume(self, since_ms: int) -> list[tuple[int, Status, int, int]]:
        """How many records each source had per status and minute since `since_ms`, as
        (source id, status, minute since the epoch, count). Reads only the newest rows:
        no index on received_at (it would slow every commit), so each table's first row
        of the window is found by bisecting its key, along which received_at grows."""
        out: list[tuple[int, Status, int, int]] = []
        for status, table, key, count in _TABLES:
            first = self._first_at(table, key, since_ms - _SKEW_MS)
            for source_id, minute, n in self._rows(
                f"SELECT source_id, received_at / 60000, {count} FROM {table}"
                f" WHERE {key} >= ? AND received_at >= ? GROUP BY 1, 2",
                (first, since_ms),
            ):
                out.append((source_id, status, int(minute), int(n)))
        return out

    def _first_at(self, table: str, key: str, at_ms: int) -> int:
        """The smallest key of `table` whose row was received at `at_ms` or later (past
        the last key if none was)."""
        ((lo, hi),) = self._rows(f"SELECT min({key}), max({key}) FROM {table}")
        if lo is None:
            return 0
        hi += 1
        while lo < hi:
            mid = (lo + hi) // 2
            rows = self._rows(
                f"SELECT {key}, received_at FROM {table} WHERE {key} >= ? ORDER BY {key} LIMIT 1",
                (mid,),
            )
            if not rows or rows[0][1] >= at_ms:
                hi = mid
            else:  # every row up to the one found (keys may have gaps) is older
                lo = rows[0][0] + 1
        return int(lo)

    def _side_records(
        self,
        source_id: int | None,
        wanted: set[str] | frozenset[str],
        order: str,
        after: int,
        limit: int | None,
    ) -> list[DebugRecord]:
        records: list[DebugRecord] = []
        where, params = _of_source(source_id)
        limit_sql = "" if limit is None else f" LIMIT {int(limit)}"
        if "rejected" in wanted:
            for seq, source, at_ms, index, code, message, raw in self._rows(
                "SELECT id, source_id, received_at, idx, code, message, raw FROM failures"
                f" WHERE {where} AND id > ? ORDER BY {order}{limit_sql}",
                (*params, after),
            ):
                error = {"code": code, "message": message, "index": index}
                records.append(DebugRecord("rejected", source, at_ms, seq, raw_json(raw), error))
        if "duplicate" in wanted:
            for seq, source, at_ms, body in self._rows(
                "SELECT id, source_id, received_at, body FROM duplicates"
                f" WHERE {where} AND id > ? ORDER BY {order}{limit_sql}",
                (*params, after),
            ):
                records.append(DebugRecord("duplicate", source, at_ms, seq, codec.loads(body)))
        return records


def _of_source(source_id: int | None) -> tuple[str, tuple[int, ...]]:
    """The condition for the rows of a source, or of every source (None), and its
    parameters; written out rather than `? IS NULL OR ...` so the index is used."""
    if source_id is None:
        return "true", ()
    return "source_id = ?", (source_id,)
