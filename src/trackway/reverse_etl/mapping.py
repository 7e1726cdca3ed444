"""Applying a sync's mapping to a model's rows: what each row would send, and its hash.

A staged row is `(pk, hash, payload, extra, error)`:
- `payload` is the JSON object of what the row sends: `userId`/`anonymousId` and the
  mapped `properties` (track, segment) or `traits` (identify);
- `hash` is a 63-bit hash of that payload, so only the mapped columns (and the ids,
  and the names they are mapped to) decide whether a row changed;
- `extra` is the JSON `[timestamp, messageId]` of the row's timestamp and message-ID
  columns as found (None when the sync maps neither). They are read (`read_extra`)
  only for rows that are sent: a run stages every row, but sends few;
- `error` says why the row cannot be sent (it is then rejected, not sent).
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec
import xxhash

from trackway.reverse_etl.config import ModelSpec, SyncSpec
from trackway.reverse_etl.errors import ConfigError
from trackway.spec.limits import MAX_MESSAGE_ID_CHARS
from trackway.spec.normalize import utc

StagedRow = tuple[Any, int, bytes, bytes | None, str | None]

_HASH_MASK = (1 << 63) - 1  # SQLite and PostgreSQL integers are signed 64-bit
# Values the JSON encoder has no rule for (IP addresses, ranges...) are sent as text;
# decimals are numbers, as a reader of the event expects a price to be.
_encoder = msgspec.json.Encoder(enc_hook=str, decimal_format="number")


class Mapper:
    """Turns rows of one model's result into staged rows for one sync."""

    def __init__(self, sync: SyncSpec, model: ModelSpec, columns: Sequence[str]) -> None:
        wanted = [model.primary_key, *sync.used_columns()]
        missing = [c for c in dict.fromkeys(wanted) if c not in columns]
        if missing:
            names = ", ".join(f"'{c}'" for c in missing)
            raise ConfigError(
                f"sync '{sync.name}': model '{model.name}' has no column {names}"
                f" (its columns: {', '.join(columns)})"
            )
        where = {name: columns.index(name) for name in wanted}
        self.sync = sync
        self.pk = where[model.primary_key]
        self.user_id = where.get(sync.user_id) if sync.user_id else None
        self.anonymous_id = where.get(sync.anonymous_id) if sync.anonymous_id else None
        self.extra = [where[c] if c else None for c in (sync.timestamp, sync.message_id)]
        self.fields = [(where[column], name) for column, name in sync.mapping.items()]
        self.section = "traits" if sync.type == "identify" else "properties"

    def stage(self, rows: Sequence[tuple[Any, ...]]) -> tuple[list[StagedRow], int]:
        """The staged rows, and how many rows had a null primary key (left out)."""
        out: list[StagedRow] = []
        nulls = 0
        section, fields = self.section, self.fields
        for row in rows:
            pk = row[self.pk]
            if pk is None:
                nulls += 1
                continue
            payload: dict[str, Any] = {}
            error = None
            if self.user_id is not None and (uid := _id(row[self.user_id])) is not None:
                payload["userId"] = uid
            if self.anonymous_id is not None and (aid := _id(row[self.anonymous_id])) is not None:
                payload["anonymousId"] = aid
            if not payload:
                error = self._missing_ids()
            payload[section] = {name: row[i] for i, name in fields}
            encoded = _encoder.encode(payload)
            extra = None
            if self.sync.timestamp or self.sync.message_id:
                extra = _encoder.encode([None if i is None else row[i] for i in self.extra])
            digest = xxhash.xxh64_intdigest(encoded) & _HASH_MASK
            out.append((_key(pk), digest, encoded, extra, error))
        return out, nulls

    def _missing_ids(self) -> str:
        named = [
            f"{field} (column '{column}')"
            for field, column in (
                ("userId", self.sync.user_id),
                ("anonymousId", self.sync.anonymous_id),
            )
            if column is not None
        ]
        return f"no {' or '.join(named)}: every event needs a userId or an anonymousId"


def has_ids(payload: bytes) -> bool:
    """Whether a staged payload has a userId or an anonymousId (they come first in it)."""
    return payload.startswith((b'{"userId"', b'{"anonymousId"'))


def _key(value: Any) -> Any:
    """Primary keys are kept as integers or text, the types every state backend compares."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, bytes):
        return value.hex()
    return value if isinstance(value, str) else str(value)


def _id(value: Any) -> str | None:
    """userId/anonymousId as the server stores them: text; null and "" mean absent."""
    if value is None or value == "":
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value if isinstance(value, str) else str(value)


def read_extra(sync: SyncSpec, extra: bytes | None) -> tuple[str | None, str | None, str | None]:
    """The row's event timestamp and messageId from its staged `extra`, or why the row
    cannot be sent: `(timestamp, message_id, error)`."""
    if extra is None:
        return None, None, None
    stamp, mid = msgspec.json.decode(extra)
    timestamp = message_id = error = None
    if sync.timestamp is not None:
        timestamp, error = _timestamp(sync.timestamp, stamp)
    if sync.message_id is not None:
        message_id, problem = _message_id(sync.message_id, mid)
        error = error or problem
    return timestamp, message_id, error


def _timestamp(column: str, value: Any) -> tuple[str | None, str | None]:
    """The event timestamp (UTC ISO 8601) from a column value, or why not.

    Timestamp and date values were staged as ISO 8601 text, like string columns. The
    common forms (RFC 3339 without an offset, or in UTC) are checked by msgspec's parser
    and passed on as they are; others go through `datetime`.
    """
    if not isinstance(value, str):
        return None, _not_a_timestamp(column, value)
    try:
        parsed = msgspec.convert(value, datetime)
    except msgspec.ValidationError:
        parsed = None
    if parsed is not None and parsed.tzinfo is None:
        return value.replace(" ", "T") + "Z", None
    if parsed is not None and value.endswith("Z"):
        return value, None
    try:
        when = utc(parsed or datetime.fromisoformat(value.strip()))
    except ValueError:
        return None, _not_a_timestamp(column, value)
    assert when is not None
    return when.isoformat().replace("+00:00", "Z"), None


def _not_a_timestamp(column: str, value: Any) -> str:
    return (
        f"timestamp column '{column}' holds {value!r}, not a timestamp"
        " (a timestamp type or an ISO 8601 string)"
    )


def _message_id(column: str, value: Any) -> tuple[str | None, str | None]:
    text = _id(value)
    if text is None:
        return None, f"message ID column '{column}' is empty"
    if len(text) > MAX_MESSAGE_ID_CHARS:
        return None, f"message ID column '{column}' is over {MAX_MESSAGE_ID_CHARS} characters"
    return text, None
