"""Evaluating an FQL AST against a stored event (a dict with camelCase keys).

The comparisons are typed, as in Segment's subscription evaluator: `= "10"` matches
only the string "10", `= 10` only a number, `= true` only a boolean; `!= "x"` and
`!= true` are `not =` (an absent field matches), `!= 10` matches only a number other
than 10; `<`, `<=`, `>`, `>=` match only numbers. `contains` and `match` look at strings
only, and so do their negations: `!contains(f, "x")` needs f to be a string.
"""

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, cast

from trackway.fql.lexer import number
from trackway.fql.parser import And, Call, Compare, In, Node, Not, Or, Value

MISSING: Final = object()
"""What `lookup` returns for a path the event does not have (unlike a null value)."""

_JSON_TYPES = (str, int, float, dict, list)


class EvaluationError(ValueError):
    """An event that an expression cannot be evaluated on (not a JSON object, or a value
    that is not JSON); destination filters drop such events and count them."""


def lookup(value: Any, path: Iterable[str]) -> Any:
    """The value at `path` (object keys, or decimal indexes into arrays), or MISSING."""
    for name in path:
        if isinstance(value, dict):
            value = value.get(name, MISSING)
            if value is MISSING:
                return MISSING
        # (more than 18 digits is past the end of any list, and more than int() reads)
        elif isinstance(value, list) and name.isascii() and name.isdigit() and len(name) <= 18:
            index = int(name)
            if index >= len(value):
                return MISSING
            value = value[index]
        else:
            return MISSING
    return value


@dataclass(frozen=True, slots=True)
class Expression:
    """A compiled FQL expression: tests events; `str()` gives its canonical FQL text."""

    node: Node

    def matches(self, event: Any) -> bool:
        """Whether `event` satisfies the expression; raises EvaluationError if the event
        is not a JSON object or a field it tests holds a value that is not JSON."""
        if not isinstance(event, dict):
            raise EvaluationError(f"the event is a {type(event).__name__}, not an object")
        return evaluate(self.node, event)

    def __str__(self) -> str:
        return str(self.node)


def evaluate(node: Node, event: dict[str, Any]) -> bool:
    """Evaluate one AST node against an event."""
    match node:
        case Compare(path, operator, expected):
            actual = _field(event, path)
            if expected is None and operator in ("=", "!="):
                absent = actual is MISSING or actual is None
                return absent if operator == "=" else not absent
            if operator == "=":
                return _equal(actual, expected)
            if operator == "!=":
                if _numeric(expected):  # Segment's number_not_equals: numbers only
                    return _numeric(actual) and actual != expected
                return not _equal(actual, expected)
            return _order(actual, operator, expected)
        case In(path, values):
            actual = _field(event, path)
            absent = actual is MISSING or actual is None
            return any(absent if v is None else _equal(actual, v) for v in values)
        case Call("contains", path, argument):
            actual = _field(event, path)
            return isinstance(actual, str) and argument in actual
        case Call(_, path, argument):
            actual = _field(event, path)
            return isinstance(actual, str) and _glob(argument).fullmatch(actual) is not None
        case Not(Call(_, path) as call):
            # Segment's not_contains, not_starts_with...: the field is a string that fails
            return isinstance(_field(event, path), str) and not evaluate(call, event)
        case Not(operand):
            return not evaluate(operand, event)
        case And(operands):
            return all(evaluate(operand, event) for operand in operands)
        case Or(operands):
            return any(evaluate(operand, event) for operand in operands)
    raise AssertionError(f"not an FQL node: {node!r}")


def _field(event: dict[str, Any], path: tuple[str, ...]) -> Any:
    value = lookup(event, path)
    if value is not MISSING and value is not None and not isinstance(value, _JSON_TYPES):
        raise EvaluationError(f"{'.'.join(path)} holds a {type(value).__name__}, not JSON")
    return value


def _equal(actual: Any, expected: Value) -> bool:
    """A string equals only that string, a boolean only itself, a number only a number."""
    if isinstance(expected, bool):
        return actual is expected
    if isinstance(expected, str):
        return isinstance(actual, str) and actual == expected
    return _numeric(actual) and bool(actual == expected)


def _order(actual: Any, operator: str, expected: Value) -> bool:
    # (the parser only lets numbers, and strings spelling one, reach here)
    right = number(expected) if isinstance(expected, str) else expected
    if not _numeric(actual) or not _numeric(right):
        return False
    left: float = actual  # (an int or a float: compared exactly, however large)
    right = cast(float, right)
    if operator == "<":
        return left < right
    if operator == "<=":
        return left <= right
    if operator == ">":
        return left > right
    return left >= right


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@functools.lru_cache(maxsize=256)
def _glob(pattern: str) -> re.Pattern[str]:
    """`*` matches any run of characters, `?` any one character; the rest is literal."""
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.DOTALL)
