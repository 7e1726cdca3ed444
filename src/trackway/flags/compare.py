"""config_v6's comparators as functions of a user attribute, made once per condition.

`comparison(comparator, expected, salt, context)` does the work that depends only on the
config (parsing the comparison value, building sets and prefixes, the hash's salt and
context) when a config is prepared, so evaluating a condition for a user is one call.
The results are the official Python SDK's (`configcat-client`, its `rolloutevaluator.py`):
an attribute of the wrong form raises `InvalidAttribute` (the rule is skipped); any other
exception is a config the SDKs cannot evaluate.
"""

import functools
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import semver

from trackway.flags.compile import sensitive_hash

Test = Callable[[Any], bool]
"""A prepared comparison: the user's attribute value → whether the condition holds."""

_T = TypeVar("_T")

COMPARATOR_TEXTS = (
    "IS ONE OF",
    "IS NOT ONE OF",
    "CONTAINS ANY OF",
    "NOT CONTAINS ANY OF",
    "IS ONE OF",
    "IS NOT ONE OF",
    "<",
    "<=",
    ">",
    ">=",
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "IS ONE OF",
    "IS NOT ONE OF",
    "BEFORE",
    "AFTER",
    "EQUALS",
    "NOT EQUALS",
    "STARTS WITH ANY OF",
    "NOT STARTS WITH ANY OF",
    "ENDS WITH ANY OF",
    "NOT ENDS WITH ANY OF",
    "ARRAY CONTAINS ANY OF",
    "ARRAY NOT CONTAINS ANY OF",
    "EQUALS",
    "NOT EQUALS",
    "STARTS WITH ANY OF",
    "NOT STARTS WITH ANY OF",
    "ENDS WITH ANY OF",
    "NOT ENDS WITH ANY OF",
    "ARRAY CONTAINS ANY OF",
    "ARRAY NOT CONTAINS ANY OF",
)
"""The SDKs' text of each comparator (by number), as evaluation logs show it."""


class InvalidAttribute(Exception):
    """The attribute's value has the wrong form for the comparator: the rule is skipped."""


class EvaluationError(Exception):
    """A config the SDKs cannot evaluate (the caller's default is returned)."""


def comparison(c: int, expected: Any, salt: str, context: str) -> Test:
    """The test of comparator number `c` against the comparison value `expected`; hashed
    comparators hash with `salt` and `context` (the flag key, or the segment's name)."""
    if c in (0, 1):
        values = _members(expected)
        return lambda actual: (attribute_text(actual) in values) == (c == 0)
    if c in (2, 3):
        return lambda actual: any(i in attribute_text(actual) for i in expected) == (c == 2)
    if c in (4, 5):
        items = filter(None, (x.strip() for x in expected))
        return _semver_one_of(["==" + str(i) for i in items], c == 4)
    if 6 <= c <= 9:
        expression = COMPARATOR_TEXTS[c] + str(expected).strip()
        return lambda actual: _semver_match(str(actual).strip(), expression)
    if 10 <= c <= 15:
        order, bound = _ORDER[c - 10], float(expected)
        return lambda actual: order(_guard(_number, actual, "is not a valid decimal number"), bound)
    if c in (18, 19):
        return _date(float(expected), c == 18)

    def digest(raw: bytes) -> str:
        return sensitive_hash(raw, salt, context)

    if c in (16, 17):
        digests = _members(expected)
        return lambda actual: (digest(attribute_text(actual).encode()) in digests) == (c == 16)
    if c in (20, 21):
        return lambda actual: (digest(attribute_text(actual).encode()) == expected) == (c == 20)
    if 22 <= c <= 25:
        return _hashed_affix(c, expected, digest)
    if c in (26, 27, 34, 35):
        hashed, wanted = c in (26, 27), c in (26, 34)

        def contains(actual: Any) -> bool:
            items = _guard(_text_list, actual, "is not a valid string array")
            if hashed:
                items = [digest(i.encode()) for i in items]
            return any(item in items for item in expected) == wanted

        return contains
    if c in (28, 29):
        return lambda actual: (attribute_text(actual) == expected) == (c == 28)
    if 30 <= c <= 33:
        affixes = tuple(expected) if all(isinstance(i, str) for i in expected) else None
        starts, wanted = c in (30, 31), c in (30, 32)

        def affix(actual: Any) -> bool:
            text = attribute_text(actual)
            test = text.startswith if starts else text.endswith
            found = test(affixes) if affixes is not None else any(test(i) for i in expected)
            return found == wanted

        return affix
    raise EvaluationError(f"unknown comparator {c!r}")


def attribute_text(value: Any) -> str:
    """A user attribute as the text the text comparators and bucketing see."""
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        value = seconds(value)
    elif is_text_list(value):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        if "e" not in str(value) and value.is_integer():
            return str(int(value))
    return str(value)


def seconds(moment: datetime) -> float:
    """A datetime as Unix seconds (a naive one is UTC, as in the SDKs)."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def is_text_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _members(expected: Any) -> Any:
    """A list of text as a set (the same `in` answers, without the scan); else as given."""
    return frozenset(expected) if is_text_list(expected) else expected


def _semver_one_of(expressions: list[str], wanted: bool) -> Test:
    def test(actual: Any) -> bool:
        version, match = str(actual).strip(), False
        for expression in expressions:  # all of them, as the SDK: an invalid version raises
            match = _semver_match(version, expression) or match
        return match == wanted

    return test


def _date(bound: float, before: bool) -> Test:
    def test(actual: Any) -> bool:
        when = (
            seconds(actual)
            if isinstance(actual, datetime)
            else _guard(_number, actual, "is not a valid Unix timestamp")
        )
        return when < bound if before else when > bound

    return test


def _hashed_affix(c: int, expected: list[str], digest: Callable[[bytes], str]) -> Test:
    starts, positive = c in (22, 23), c in (22, 24)

    def test(actual: Any) -> bool:
        raw = attribute_text(actual).encode()
        for item in expected:
            length_text, separator, hashed = item.partition("_")
            if not separator:
                raise EvaluationError(f"a hashed comparison value has no length: {item!r}")
            length = int(length_text)
            if len(raw) >= length:
                part = raw[:length] if starts else raw[len(raw) - length :]
                if digest(part) == hashed:
                    return positive
        return not positive

    return test


def _number(value: Any) -> float:
    return float(value.replace(",", ".")) if isinstance(value, str) else float(value)


def _text_list(value: Any) -> list[str]:
    items = json.loads(value) if isinstance(value, str) else value
    if not is_text_list(items):
        raise ValueError("not a list of text")
    result: list[str] = items
    return result


@functools.lru_cache(maxsize=4096)
def _semver_match(version: str, expression: str) -> bool:
    """semver's `Version.parse(version).match(expression)`, as the Python SDK calls it;
    cached because parsing dominates and apps have few distinct versions."""
    try:
        return bool(semver.Version.parse(version).match(expression))
    except ValueError:
        raise InvalidAttribute(f"'{version}' is not a valid semantic version") from None


def _guard(parse: Callable[[Any], _T], value: Any, problem: str) -> _T:
    try:
        return parse(value)
    except ValueError:
        raise InvalidAttribute(f"'{value}' {problem}") from None


_ORDER = (
    float.__eq__,
    float.__ne__,
    float.__lt__,
    float.__le__,
    float.__gt__,
    float.__ge__,
)
