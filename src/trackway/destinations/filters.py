"""Destination filters: drop, sample or trim events before a destination sees them.

A destination has at most ten filters, each `{"if": <FQL> | "all", "actions": [...]}`.
As in Segment, the actions of all filters run in a fixed order, whatever the order of
the filters: every `sample`, then every `drop`, then every `drop_properties`, then every
`allow_properties`. Each filter's `if` is tested on the event as it arrived, so one
filter's edits never decide whether another applies. A filter whose `if` cannot be
evaluated drops the event (fail closed) and says so in the outcome.
"""

import enum
import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from trackway import codec, fql
from trackway.fql.evaluate import MISSING, lookup

MAX_FILTERS = 10
_HASH_SPACE = float(2**64)


class Drop(msgspec.Struct, tag_field="type", tag="drop", forbid_unknown_fields=True):
    """Drop the event."""


class Sample(msgspec.Struct, tag_field="type", tag="sample", forbid_unknown_fields=True):
    """Keep the fraction `percent` (0 to 1) of events: at random, or, with `path`, by a
    hash of the value there, so that the same value (a user id) is always kept or not."""

    percent: float
    path: str | None = None


class DropProperties(
    msgspec.Struct, tag_field="type", tag="drop_properties", forbid_unknown_fields=True
):
    """Remove the named keys from the objects at the given paths (`""` is the event)."""

    fields: dict[str, list[str]]


class AllowProperties(
    msgspec.Struct, tag_field="type", tag="allow_properties", forbid_unknown_fields=True
):
    """Keep only the named keys of the objects at the given paths (`""` is the event)."""

    fields: dict[str, list[str]]


Action = Drop | Sample | DropProperties | AllowProperties
_ORDER = (Sample, Drop, DropProperties, AllowProperties)


class FilterSpec(msgspec.Struct, forbid_unknown_fields=True):
    """One filter as configured: a condition and what to do with the events it matches."""

    if_: str = msgspec.field(name="if")
    actions: list[Action] = []
    name: str | None = None


class FilterError(ValueError):
    """A filter list that is not valid; the message names the filter and the problem."""


class DropReason(enum.StrEnum):
    """Why the filters dropped an event."""

    DROPPED = "dropped"
    SAMPLED_OUT = "sampled_out"
    UNEVALUABLE = "unevaluable"  # a filter's `if` could not be evaluated on the event


@dataclass(frozen=True, slots=True)
class FilterOutcome:
    """The event to deliver (possibly trimmed), or None with the reason and the filter."""

    event: dict[str, Any] | None
    reason: DropReason | None = None
    detail: str = ""


_Fields = tuple[tuple[tuple[str, ...], frozenset[str]], ...]


@dataclass(frozen=True, slots=True)
class _Step:
    """One action of one filter, with that filter's condition (None: all events)."""

    filter: int
    label: str
    condition: fql.Expression | None
    action: Action
    path: tuple[str, ...] = ()  # sample: where the value to hash is
    fields: _Fields = ()  # drop_properties, allow_properties


class FilterChain:
    """A destination's validated filters, in the order Segment applies them."""

    def __init__(self, steps: list[_Step], rng: Callable[[], float]) -> None:
        self._steps = sorted(steps, key=lambda step: _ORDER.index(type(step.action)))
        self._rng = rng

    def apply(self, event: Any) -> FilterOutcome:
        """Run the filters on one event; the event passed in is never changed."""
        if not isinstance(event, dict):
            kind = type(event).__name__
            return FilterOutcome(
                None, DropReason.UNEVALUABLE, f"the event is a {kind}, not an object"
            )
        matched: dict[int, bool] = {}
        current = event
        for step in self._steps:
            if step.filter not in matched:
                try:
                    matched[step.filter] = step.condition is None or step.condition.matches(event)
                except fql.EvaluationError as exc:
                    return FilterOutcome(None, DropReason.UNEVALUABLE, f"{step.label}: {exc}")
            if not matched[step.filter]:
                continue
            action = step.action
            if isinstance(action, Drop):
                return FilterOutcome(None, DropReason.DROPPED, step.label)
            if isinstance(action, Sample):
                if not self._keep(action.percent, step.path, event):
                    return FilterOutcome(None, DropReason.SAMPLED_OUT, step.label)
            else:
                current = _edit(current, step.fields, keep=isinstance(action, AllowProperties))
        return FilterOutcome(current)

    def _keep(self, percent: float, path: tuple[str, ...], event: dict[str, Any]) -> bool:
        if not path:
            return self._rng() < percent
        value = lookup(event, path)
        # sha256 of the JSON value: the same decision in every process and on every run
        digest = hashlib.sha256(codec.dumps(None if value is MISSING else value)).digest()
        return int.from_bytes(digest[:8], "big") / _HASH_SPACE < percent


def compile_filters(specs: Any, *, rng: Callable[[], float] = random.random) -> FilterChain:
    """Validate a destination's filters (a list of objects); raises FilterError.

    `rng` draws the numbers that random sampling keeps an event by (below `percent`).
    """
    if not isinstance(specs, list):
        raise FilterError(f"filters must be a list, got {type(specs).__name__}")
    if len(specs) > MAX_FILTERS:
        raise FilterError(f"a destination has at most {MAX_FILTERS} filters, got {len(specs)}")
    try:
        filters = msgspec.convert(specs, list[FilterSpec])
    except msgspec.ValidationError as exc:
        raise FilterError(str(exc).replace("`$", "`filters")) from exc
    steps: list[_Step] = []
    for index, spec in enumerate(filters):
        label = f"filter {spec.name!r}" if spec.name else f"filters[{index}]"
        condition = _condition(spec.if_, label)
        if not spec.actions:
            raise FilterError(f"{label}: a filter needs at least one action")
        for action in spec.actions:
            steps.append(_step(index, label, condition, action))
    return FilterChain(steps, rng)


def _condition(text: str, label: str) -> fql.Expression | None:
    if text.strip() == "all":
        return None
    try:
        return fql.compile(text)
    except fql.FQLError as exc:
        raise FilterError(f"{label}: if: {exc}") from exc


def _step(index: int, label: str, condition: fql.Expression | None, action: Action) -> _Step:
    path: tuple[str, ...] = ()
    fields: _Fields = ()
    if isinstance(action, Sample):
        if not 0 <= action.percent <= 1:
            raise FilterError(
                f"{label}: sample percent is a fraction from 0 to 1 (0.25 keeps a quarter"
                f" of the events), got {action.percent}"
            )
        if action.path is not None:
            path = _path(action.path, label)
    elif isinstance(action, DropProperties | AllowProperties):
        if not action.fields:
            kind = "drop_properties" if isinstance(action, DropProperties) else "allow_properties"
            raise FilterError(f"{label}: {kind} needs at least one entry in fields")
        # an empty list allows nothing (so it empties the object), but drops nothing
        may_be_empty = isinstance(action, AllowProperties)
        fields = tuple(
            (_path(key, label) if key else (), _names(names, label, may_be_empty))
            for key, names in action.fields.items()
        )
    return _Step(index, label, condition, action, path, fields)


def _path(text: str, label: str) -> tuple[str, ...]:
    path = tuple(text.split("."))
    if not all(path):
        raise FilterError(f"{label}: invalid path {text!r}")
    return path


def _names(names: list[str], label: str, may_be_empty: bool) -> frozenset[str]:
    if not (names or may_be_empty):
        raise FilterError(f"{label}: drop_properties needs the names to drop at each path")
    if not all(names):
        raise FilterError(f"{label}: a property name must not be empty")
    return frozenset(names)


def _edit(event: dict[str, Any], fields: _Fields, *, keep: bool) -> dict[str, Any]:
    for path, names in fields:
        event = _edit_at(event, path, names, keep)
    return event


def _edit_at(
    obj: dict[str, Any], path: tuple[str, ...], names: frozenset[str], keep: bool
) -> dict[str, Any]:
    """A copy of `obj` with the object at `path` trimmed; `obj` itself is not changed."""
    if not path:
        return {key: value for key, value in obj.items() if (key in names) == keep}
    child = obj.get(path[0])
    if not isinstance(child, dict):
        return obj
    return {**obj, path[0]: _edit_at(child, path[1:], names, keep)}
