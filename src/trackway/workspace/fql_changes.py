"""Warnings for `trackway apply --dry-run`: subscriptions and filters whose meaning
changed when FQL comparisons became typed, as Segment's are (docs/fql-and-mappings.md,
"Upgrade notes").

Some changes show in the expression alone (a quoted number, `!= 10`, `!contains`); the
others only for fields that have held text: `= 10`, `= true` and `< 10` no longer match
the strings "10" and "true", so those are looked up in recent events.
"""

from collections.abc import Iterable, Iterator
from typing import Any

from trackway import fql
from trackway.destinations.config import DestinationSpec
from trackway.fql.evaluate import lookup
from trackway.fql.lexer import number
from trackway.fql.parser import TEXT_FIELDS, And, Call, Compare, In, Node, Not, Or, Path, Value

RECENT_EVENTS = 1000
"""How many of the newest events are looked at for fields that have held text."""


def fql_changes(destinations: list[DestinationSpec], events: Iterable[Any]) -> list[str]:
    """One line per subscription or filter whose expression now means something else."""
    recent = [event for event in events if isinstance(event, dict)]
    lines = []
    for destination in destinations:
        expressions = [(f"subscription '{s.name}'", s.if_) for s in destination.subscriptions or []]
        for index, spec in enumerate(destination.filters):
            if isinstance(spec, dict) and isinstance(spec.get("if"), str) and spec["if"] != "all":
                name = f"filter '{spec['name']}'" if spec.get("name") else f"filters[{index}]"
                expressions.append((name, spec["if"]))
        for where, text in expressions:
            try:
                node = fql.compile(text).node
            except fql.FQLError:
                continue  # (apply reports it)
            reasons = list(dict.fromkeys(_reasons(node, recent)))
            if reasons:
                lines.append(f"destination '{destination.name}' {where}: " + "; ".join(reasons))
    return lines


def _reasons(node: Node, events: list[dict[str, Any]]) -> Iterator[str]:
    match node:
        case Compare(path, operator, value):
            yield from _compare(f"{node}", path, operator, value, events)
        case In(path, values):
            for value in values:
                yield from _compare(f"{node}", path, "=", value, events)
        case Not(Call(_, _) as call):
            yield f"{node} no longer matches when {_name(call.path)} is absent or not text"
        case Not(operand):
            yield from _reasons(operand, events)
        case And(operands) | Or(operands):
            for operand in operands:
                yield from _reasons(operand, events)


def _compare(
    text: str, path: Path, operator: str, value: Value, events: list[dict[str, Any]]
) -> Iterator[str]:
    if len(path) == 1 and path[0] in TEXT_FIELDS:
        return  # always text, compared as text before and now
    if isinstance(value, str) and operator in ("=", "!=") and _spells_scalar(value):
        yield f"{text} compares with the text {value}, no longer with the {_kind(value)}"
    elif operator == "!=" and _is_number(value):
        yield f"{text} no longer matches when {_name(path)} is absent or not a number"
    elif isinstance(value, bool | int | float) and _held_text(path, events):
        kind = "booleans" if isinstance(value, bool) else "numbers"
        yield f"{text} now matches only {kind}, and {_name(path)} has held text"


def _spells_scalar(text: str) -> bool:
    return text in ("true", "false") or number(text) is not None


def _kind(text: str) -> str:
    return "boolean" if text in ("true", "false") else "number"


def _is_number(value: Value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _held_text(path: Path, events: list[dict[str, Any]]) -> bool:
    return any(isinstance(lookup(event, path), str) for event in events)


def _name(path: Path) -> str:
    return ".".join(path)
