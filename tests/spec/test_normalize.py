"""Normalization's timestamp rule on every valid ISO-8601 timestamp of years 1-9999."""

from datetime import UTC, datetime

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.strategies import ISO_TIMESTAMPS
from trackway.spec.errors import Rejection
from trackway.spec.message import Message, decode_message
from trackway.spec.normalize import RequestInfo, normalize

_FIELDS = ("timestamp", "sentAt", "originalTimestamp")


def _time(text: str) -> datetime:
    value = msgspec.json.decode(msgspec.json.encode(text), type=datetime)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@settings(max_examples=1000, deadline=None, derandomize=True, database=None)
@given(
    times=st.fixed_dictionaries({}, optional={f: ISO_TIMESTAMPS for f in _FIELDS}),
    batch_sent_at=st.none() | ISO_TIMESTAMPS,
    received=st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC)),
)
def test_timestamps_are_corrected_or_the_event_rejected(
    times: dict[str, str], batch_sent_at: str | None, received: datetime
) -> None:
    event = msgspec.json.encode({"type": "track", "event": "x", "userId": "u", **times})
    msg = decode_message(event, None)
    assert isinstance(msg, Message)
    try:
        sent_at = _time(batch_sent_at).astimezone(UTC) if batch_sent_at else None
    except OverflowError:
        return  # the handler refuses the whole request (tests/ingest/test_hostile_input.py)
    outcome = normalize(msg, RequestInfo(received, sent_at))
    if isinstance(outcome, Rejection):
        assert outcome.code == "invalid_timestamp" and "outside years 1-9999" in outcome.message
        return
    assert outcome.received_at == received
    original = _time(times["timestamp"]) if "timestamp" in times else None
    sent = _time(times["sentAt"]) if "sentAt" in times else sent_at
    assert outcome.original_timestamp == original
    if original is None:
        assert outcome.timestamp == received
    elif sent is None:
        assert outcome.timestamp == original
    else:
        assert outcome.timestamp == received - (sent - original)
    assert outcome.timestamp is not None and outcome.timestamp.tzinfo is UTC
    msgspec.json.encode(outcome)
