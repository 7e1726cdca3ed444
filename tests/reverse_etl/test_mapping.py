"""Mapping rows to payloads and hashes, reading timestamps and message IDs, deriving messageIds."""

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from trackway import codec
from trackway.reverse_etl.config import Connection, EventNames, ModelSpec, SyncSpec
from trackway.reverse_etl.mapping import Mapper, has_ids, read_extra
from trackway.reverse_etl.plan import message_id
from trackway.reverse_etl.state import Change

MODEL = ModelSpec("m", Connection("sqlite", path="x"), "SELECT 1", "id")
COLUMNS = ["id", "uid", "plan", "price", "note", "at", "mid"]
SYNC = SyncSpec(
    "s",
    "m",
    "track",
    {"plan": "plan", "price": "price"},
    "uid",
    timestamp="at",
    message_id="mid",
    events=EventNames(added="A"),
)


def stage(*rows: tuple[Any, ...], sync: SyncSpec = SYNC) -> list[Any]:
    staged, nulls = Mapper(sync, MODEL, COLUMNS).stage(list(rows))
    assert nulls == 0
    return staged


def test_only_mapped_columns_and_their_names_decide_the_hash() -> None:
    base = (1, "u", "pro", Decimal("9.90"), "n", "2021-01-01", "m1")
    [a, b, c] = stage(base, (1, "u", "pro", Decimal("9.90"), "other note", "2022-01-01", "m2"),
                      (1, "u", "free", Decimal("9.90"), "n", "2021-01-01", "m1"))  # fmt: skip
    assert a[1] == b[1] != c[1]
    assert codec.loads(a[2]) == {"userId": "u", "properties": {"plan": "pro", "price": 9.9}}
    renamed = SyncSpec("s", "m", "track", {"plan": "tier", "price": "price"}, "uid")
    assert stage(base, sync=renamed)[0][1] != a[1]


def test_ids_are_text_and_empty_means_absent() -> None:
    sync = SyncSpec("s", "m", "identify", {}, "uid", "note")
    [number, whole, empty] = stage((1, 42, 0, 0, "anon", 0, 0), (2, 7.0, 0, 0, None, 0, 0),
                                   (3, "", 0, 0, "", 0, 0), sync=sync)  # fmt: skip
    assert codec.loads(number[2]) == {"userId": "42", "anonymousId": "anon", "traits": {}}
    assert codec.loads(whole[2]) == {"userId": "7", "traits": {}}
    assert has_ids(number[2]) and not has_ids(empty[2])
    assert empty[4] == (
        "no userId (column 'uid') or anonymousId (column 'note'): every event needs a"
        " userId or an anonymousId"
    )


@pytest.mark.parametrize(
    ("value", "timestamp"),
    [
        (datetime(2021, 3, 4, 5, 6, 7), "2021-03-04T05:06:07Z"),
        (
            datetime(2021, 3, 4, 7, 6, 7, 500, tzinfo=timezone(timedelta(hours=2))),
            "2021-03-04T05:06:07.000500Z",
        ),
        (date(2021, 3, 4), "2021-03-04T00:00:00Z"),
        ("2021-03-04 05:06:07", "2021-03-04T05:06:07Z"),
        ("2021-03-04T05:06:07Z", "2021-03-04T05:06:07Z"),
    ],
)
def test_timestamps_parse_to_utc(value: Any, timestamp: str) -> None:
    [row] = stage((1, "u", "p", 1, "n", value, "m"))
    assert read_extra(SYNC, row[3]) == (timestamp, "m", None)


@pytest.mark.parametrize(
    ("at", "mid", "error"),
    [
        (1_700_000_000, "m", "timestamp column 'at' holds 1700000000, not a timestamp"),
        ("yesterday", "m", "timestamp column 'at' holds 'yesterday', not a timestamp"),
        (datetime.now(UTC), None, "message ID column 'mid' is empty"),
        (datetime.now(UTC), "x" * 101, "message ID column 'mid' is over 100 characters"),
    ],
)
def test_unreadable_timestamps_and_message_ids_reject_the_row(
    at: Any, mid: Any, error: str
) -> None:
    [row] = stage((1, "u", "p", 1, "n", at, mid))
    assert (read_extra(SYNC, row[3])[2] or "").startswith(error)


def change(**fields: Any) -> Change:
    base: dict[str, Any] = {
        "id": 1,
        "kind": "added",
        "pk": 7,
        "hash": 123,
        "seq": 0,
        "payload": b"{}",
        "extra": None,
        "error": None,
    }
    return Change(**{**base, **fields})


def test_derived_message_ids_are_stable_and_differ_per_change() -> None:
    first = message_id("s", change())
    assert first == message_id("s", change(id=99)) and len(first) == 36
    others = [
        message_id("t", change()),
        message_id("s", change(pk="7")),
        message_id("s", change(kind="changed")),
        message_id("s", change(hash=124)),
        message_id("s", change(seq=1)),
    ]
    assert len({first, *others}) == 6
