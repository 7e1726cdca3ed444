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
        self, source_id: int, limit: int, statuses: frozenset[Status] | None = None
    ) -> list[DebugRecord]:
        """The newest `limit` records of a source, newest first."""
        wanted = statuses or _STATUSES
        records: list[DebugRecord] = []
        if "accepted" in wanted:
            rows = self._rows(
                "SELECT pos, received_at, events FROM chunks WHERE source_id = ?"
                " ORDER BY pos DESC LIMIT ?",
                (source_id, limit),
            )
            records.extend(accepted_records(source_id, rows, limit))
        records.extend(self._side_records(source_id, wanted, "id DESC", 0, limit))
        records.sort(key=lambda r: (r.received_at_ms, r.seq), reverse=True)
        return records[:limit]

    def debug_records_after(self, source_id: int, after: dict[Status, int]) -> list[DebugRecord]:
        """Records of a source newer than the given per-status sequence numbers, oldest first."""
        rows = self._rows(
            "SELECT pos, received_at, events FROM chunks WHERE source_id = ? AND pos > ?"
            " ORDER BY pos",
            (source_id, after["accepted"] - MAX_BATCH_EVENTS),
        )
        records = [r for r in accepted_records(source_id, rows, None) if r.seq > after["accepted"]]
        for status in ("rejected", "duplicate"):
            records.extend(self._side_records(source_id, {status}, "id", after[status], None))
        records.sort(key=lambda r: r.received_at_ms)
        return records

    def _side_records(
        self,
        source_id: int,
        wanted: set[str] | frozenset[str],
        order: str,
        after: int,
        limit: int | None,
    ) -> list[DebugRecord]:
        records: list[DebugRecord] = []
        limit_sql = "" if limit is None else f" LIMIT {int(limit)}"
        if "rejected" in wanted:
            for seq, at_ms, index, code, message, raw in self._rows(
                "SELECT id, received_at, idx, code, message, raw FROM failures"
                f" WHERE source_id = ? AND id > ? ORDER BY {order}{limit_sql}",
                (source_id, after),
            ):
                error = {"code": code, "message": message, "index": index}
                records.append(DebugRecord("rejected", source_id, at_ms, seq, raw_json(raw), error))
        if "duplicate" in wanted:
            for seq, at_ms, body in self._rows(
                "SELECT id, received_at, body FROM duplicates"
                f" WHERE source_id = ? AND id > ? ORDER BY {order}{limit_sql}",
                (source_id, after),
            ):
                records.append(DebugRecord("duplicate", source_id, at_ms, seq, codec.loads(body)))
        return records
