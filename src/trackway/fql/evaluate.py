"""Evaluating an FQL AST against a stored event (a dict with camelCase keys).

The comparisons follow Segment's subscription evaluator where it is sensible:
`=` compares values as text (so `properties.price = "10"` matches the number 10 and
`= true` matches `true` and `"true"`), `!=` is exactly `not =` (an absent field is not
equal to anything), `<`, `<=`, `>`, `>=` compare numbers (a numeric string counts;
anything else never matches), `contains` and `match` look at strings only.
"""

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

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


def as_text(value: Any) -> str:
    """A scalar as text, the way JavaScript's String() writes it (`true`, `10`, `1.5`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


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
    if actual is MISSING or actual is None or isinstance(actual, dict | list):
        return False
    if _numeric(actual) and _numeric(expected):
        return bool(actual == expected)
    return as_text(actual) == as_text(expected)


def _order(actual: Any, operator: str, expected: Value) -> bool:
    left, right = _as_number(actual), _as_number(expected)
    if left is None or right is None:
        return False
    if operator == "<":
        return left < right
    if operator == "<=":
        return left <= right
    if operator == ">":
        return left > right
    return left >= right


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _as_number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    return number(value) if isinstance(value, str) else None


@functools.lru_cache(maxsize=256)
def _glob(pattern: str) -> re.Pattern[str]:
    """`*` matches any run of characters, `?` any one character; the rest is literal."""
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.DOTALL)
