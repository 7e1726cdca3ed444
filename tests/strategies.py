"""Hypothesis strategies shared by the property tests."""

from datetime import datetime, timedelta, timezone

from hypothesis import strategies as st

OFFSETS = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
"""UTC offsets as RFC 3339 writes them: whole minutes, less than a day."""

ISO_TIMESTAMPS = st.datetimes(
    datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59, 999_999), timezones=st.none() | OFFSETS
).map(lambda t: t.isoformat().replace("+00:00", "Z"))
"""Every valid ISO-8601 timestamp of years 1-9999: local times without an offset, `Z`,
and any offset (which can put the instant outside years 1-9999 in UTC)."""
