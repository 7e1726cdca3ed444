"""Experiments as declared in the workspace file (`experiments:` in `trackway apply`).

An experiment names the flag whose evaluations expose units to its variations, the
unit, the period, and its goals and guardrails (metrics over goal events). They are
stored as objects of kind `experiment` in the state store.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec

from trackway.settings import parse_duration
from trackway.storage.base import NotFound, StateStore
from trackway.workspace.diff import field_changes, with_changes
from trackway.workspace.sources import check_name

KIND = "experiment"
"""The kind of the experiments' objects in the state store."""

DEFAULT_WINDOW = "72h"
DEFAULT_CUPED_WINDOW = "14d"
UNIT_COLUMNS = {"userId": "user_id", "anonymousId": "anonymous_id"}
"""Units that are the events' own ids; any other unit is a property of the events."""

MetricType = Literal["conversion", "count", "sum", "mean", "ratio"]
EventType = Literal["track", "page", "screen"]


class ExperimentNotFound(ValueError, NotFound):
    """No experiment has that name."""


class GoalEvent(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """The events a metric counts: a track event's name, or a page's or screen's name."""

    event: str
    type: EventType = "track"
    property: str | None = None
    """The numeric property summed (`sum`, `mean`, a ratio's part); none: each event is 1."""


class MetricSpec(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A goal or guardrail: what is measured per unit after its first exposure.

    - conversion: did the unit do `event` (1 or 0);
    - count: how many times;
    - sum: the total of `property` (revenue per unit);
    - mean: the total of `property` over the number of events (average order value);
    - ratio: the total of `event`/`property` over the total of `denominator`.
    """

    event: str
    type: MetricType = "conversion"
    name: str | None = None
    event_type: EventType = "track"
    property: str | None = None
    denominator: GoalEvent | None = None
    window: str | None = DEFAULT_WINDOW
    """Counted from `delay` after the first exposure for this long; null: until the end."""
    delay: str = "0s"
    cuped: bool = False
    """Adjust with the same metric in the `cuped_window` before the first exposure."""
    cuped_window: str = DEFAULT_CUPED_WINDOW
    inverse: bool = False
    """Lower is better (guardrails such as errors)."""


def label(metric: MetricSpec) -> str:
    """A metric's name in results: its `name`, or its event's."""
    return metric.name or metric.event


class VariationSpec(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A variation: the flag value or variation id that exposes a unit to it, its share."""

    name: str
    value: Any = None
    variation_id: str | None = None
    weight: float = 1.0


class ExperimentSpec(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """An experiment as declared in a workspace file (the first variation is the control)."""

    name: str
    flag: str
    variations: list[VariationSpec]
    exposure: Literal["flag", "experiment_viewed"] = "flag"
    unit: str = "userId"
    start: datetime | None = None
    end: datetime | None = None
    goals: list[MetricSpec] = []
    guardrails: list[MetricSpec] = []
    engine: Literal["bayesian", "frequentist"] = "bayesian"
    sequential: bool = False
    correction: Literal["none", "holm-bonferroni", "benjamini-hochberg"] = "none"
    alpha: float = 0.05
    warehouse: str = "default"
    source: str | None = None
    """The source whose tables hold the events; default: the oldest source's."""


@dataclass(frozen=True)
class Window:
    """A metric's window in seconds after the first exposure (end None: no limit)."""

    delay: float
    length: float | None
    pre: float


def window(metric: MetricSpec) -> Window:
    return Window(
        parse_duration(metric.delay),
        None if metric.window is None else parse_duration(metric.window),
        parse_duration(metric.cuped_window),
    )


def in_utc(moment: datetime, where: str) -> datetime:
    """A time with an offset (or Z), in UTC."""
    if moment.tzinfo is None:
        raise ValueError(f"{where}: add a UTC offset or Z to {moment.isoformat()}")
    return moment.astimezone(UTC)


def validate(spec: ExperimentSpec) -> ExperimentSpec:
    """Raise ValueError naming the field (`variations[1].weight: ...`) unless it makes sense."""
    try:
        check_name(spec.name)
    except ValueError as exc:
        raise ValueError(str(exc).replace("source name", "experiment name")) from None
    if not spec.flag:
        raise ValueError("flag: name the flag key (or Experiment Viewed's experiment_id)")
    if len(spec.variations) < 2:
        raise ValueError("variations: an experiment needs at least two (the first is the control)")
    names: set[str] = set()
    for index, variation in enumerate(spec.variations):
        where = f"variations[{index}]"
        if variation.name in names:
            raise ValueError(f"{where}: variation '{variation.name}' is declared twice")
        names.add(variation.name)
        if (variation.value is None) == (variation.variation_id is None):
            raise ValueError(f"{where}: give either value or variation_id")
        if spec.exposure == "experiment_viewed" and variation.value is not None:
            raise ValueError(f"{where}: Experiment Viewed exposures match by variation_id")
        if not variation.weight > 0:
            raise ValueError(f"{where}.weight: must be more than 0, not {variation.weight}")
    if not spec.unit:
        raise ValueError("unit: name userId, anonymousId or a property")
    start = in_utc(spec.start, "start") if spec.start else None
    end = in_utc(spec.end, "end") if spec.end else None
    if start and end and end <= start:
        raise ValueError("end: must be after start")
    if not 0 < spec.alpha < 1:
        raise ValueError(f"alpha: must be between 0 and 1, not {spec.alpha}")
    labels: set[str] = set()
    for group, metrics in (("goals", spec.goals), ("guardrails", spec.guardrails)):
        for index, metric in enumerate(metrics):
            where = f"{group}[{index}]"
            _check_metric(metric, where)
            if label(metric) in labels:
                raise ValueError(f"{where}: metric '{label(metric)}' is declared twice")
            labels.add(label(metric))
    if not spec.goals:
        raise ValueError("goals: name at least one goal")
    return spec


def _check_metric(metric: MetricSpec, where: str) -> None:
    if not metric.event:
        raise ValueError(f"{where}.event: name the goal's event")
    if metric.type in ("sum", "mean") and not metric.property:
        raise ValueError(f"{where}.property: a {metric.type} metric needs a numeric property")
    if metric.type == "ratio" and metric.denominator is None:
        raise ValueError(f"{where}.denominator: a ratio metric needs a denominator event")
    if metric.type != "ratio" and metric.denominator is not None:
        raise ValueError(f"{where}.denominator: only ratio metrics have one")
    if metric.type in ("conversion", "count") and metric.property:
        raise ValueError(f"{where}.property: a {metric.type} metric counts events, no property")
    if metric.cuped and metric.type in ("ratio", "mean"):
        raise ValueError(f"{where}.cuped: CUPED is for conversion, count and sum metrics")
    for field, text in (
        ("window", metric.window),
        ("delay", metric.delay),
        ("cuped_window", metric.cuped_window),
    ):
        if text is None:
            continue
        try:
            seconds = parse_duration(text)
        except ValueError as exc:
            raise ValueError(f"{where}.{field}: {exc}") from None
        if seconds < 0 or (field != "delay" and seconds == 0):
            raise ValueError(f"{where}.{field}: must be longer than 0 s")


def experiments(store: StateStore) -> list[ExperimentSpec]:
    """Every stored experiment, by name."""
    stored = store.objects(KIND)
    return [msgspec.convert(stored[name], ExperimentSpec) for name in sorted(stored)]


def find(store: StateStore, name: str) -> ExperimentSpec:
    """The experiment of that name; raises ExperimentNotFound."""
    data = store.objects(KIND).get(name)
    if data is None:
        raise ExperimentNotFound(f"no experiment named '{name}'")
    return msgspec.convert(data, ExperimentSpec)


def apply(specs: list[ExperimentSpec], store: StateStore, dry_run: bool = False) -> list[str]:
    """Store the declared experiments (for `trackway apply`); one line per change."""
    have = store.objects(KIND)
    changes = []
    for spec in specs:
        want: dict[str, Any] = msgspec.to_builtins(spec)
        old = have.get(spec.name)
        if old == want:
            continue
        verb = "create" if old is None else "update"
        line = f"{verb} experiment '{spec.name}' (flag {spec.flag})"
        changes.append(
            line if old is None else with_changes(line, field_changes(KIND, spec.name, old, want))
        )
        if not dry_run:
            store.put_object(KIND, spec.name, want)
    return changes


def delete(store: StateStore, name: str) -> str:
    """Delete an experiment (raises ExperimentNotFound); its events stay in the warehouse."""
    find(store, name)
    store.delete_object(KIND, name)
    return f"deleted experiment '{name}'"
