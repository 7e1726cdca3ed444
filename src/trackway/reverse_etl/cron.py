"""Five-field cron expressions (minute hour day-of-month month day-of-week), in UTC.

Written here rather than taken from a package: the whole grammar is ~80 lines, and
this keeps the scheduler free of an untyped dependency. Semantics are Vixie cron's:
`*`, `a-b`, `*/n`, `a-b/n`, lists with `,`, month and weekday names, `0` or `7` for
Sunday, and when both day fields are restricted a day matches if either does.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# Eight years contain every weekday/date combination, leap days included.
_SEARCH_LIMIT = timedelta(days=8 * 366)


@dataclass(frozen=True)
class Cron:
    """A parsed cron expression; `next_after` finds its next firing minute."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    any_day: bool
    any_weekday: bool

    def matches_day(self, when: datetime) -> bool:
        in_month = when.day in self.days
        in_week = (when.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return in_month and in_week
        return in_month or in_week

    def next_after(self, when: datetime) -> datetime:
        """The first minute strictly after `when` (UTC) at which the expression fires."""
        t = when.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = t + _SEARCH_LIMIT
        while t < limit:
            if t.month not in self.months:
                t = (t.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
            elif not self.matches_day(t):
                t = t.replace(hour=0, minute=0) + timedelta(days=1)
            elif t.hour not in self.hours:
                t = t.replace(minute=0) + timedelta(hours=1)
            elif t.minute not in self.minutes:
                t += timedelta(minutes=1)
            else:
                return t
        raise ValueError(f"cron {self.text!r} never fires")


def parse_cron(text: str) -> Cron:
    """Parse a cron expression; raises ValueError naming the field that is wrong."""
    fields = _MACROS.get(text.strip().lower(), text).split()
    if len(fields) != 5:
        raise ValueError(
            f"cron {text!r} must have 5 fields: minute hour day-of-month month day-of-week"
        )
    minute, hour, day, month, weekday = fields
    cron = Cron(
        text,
        _field(text, "minute", minute, 0, 59),
        _field(text, "hour", hour, 0, 23),
        _field(text, "day-of-month", day, 1, 31),
        _field(text, "month", month, 1, 12, _MONTHS, 1),
        frozenset(d % 7 for d in _field(text, "day-of-week", weekday, 0, 7, _DAYS, 0)),
        any_day=day.startswith("*"),
        any_weekday=weekday.startswith("*"),
    )
    cron.next_after(datetime(2000, 1, 1, tzinfo=UTC))
    return cron


def _field(
    text: str,
    name: str,
    spec: str,
    low: int,
    high: int,
    names: list[str] | None = None,
    first: int = 0,
) -> frozenset[int]:
    values: set[int] = set()
    for part in spec.lower().split(","):
        rng, _, step_text = part.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if rng == "*":
                start, end = low, high
            else:
                start_text, _, end_text = rng.partition("-")
                start = _value(start_text, names, first)
                end = _value(end_text, names, first) if end_text else (high if step_text else start)
        except ValueError:
            raise ValueError(f"cron {text!r}: cannot read the {name} field {spec!r}") from None
        if not (low <= start <= end <= high) or step < 1:
            raise ValueError(f"cron {text!r}: the {name} field {spec!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _value(text: str, names: list[str] | None, first: int) -> int:
    if names is not None and text in names:
        return names.index(text) + first
    return int(text)
