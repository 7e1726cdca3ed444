"""An experiment's results: the warehouse sums, the statistics engine compares.

`compute` runs the statement of trackway.experiments.query on the experiment's
warehouse and hands each metric's sufficient statistics per variation to
`trackway.experiments.stats` (imported here, not at the CLI's start: scipy is slow to
import).
"""

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from trackway.experiments.query import Builder, Columns, columns_sql, parts
from trackway.experiments.spec import ExperimentSpec, MetricSpec, in_utc, label
from trackway.experiments.stats import (
    AnalysisSettings,
    Cuped,
    Proportion,
    Ratio,
    SampleMean,
    Srm,
    Statistic,
    VariationResult,
    analyze,
    srm,
)
from trackway.warehouse.base import Warehouse
from trackway.warehouse.naming import source_schemas
from trackway.warehouse.results import jsonable

_TIMEOUT_S = 300.0
_MAX_ROWS = 1_000_000
HOURLY_UP_TO_S = 3 * 86_400
"""Experiments that have run this long or less have an hourly timeline, others daily."""


@dataclass(frozen=True)
class MetricResult:
    """One goal's or guardrail's numbers per variation (the control first)."""

    name: str
    role: str
    """`goal` or `guardrail`."""
    type: str
    variations: list[VariationResult]
    sums: list[float]
    """Per variation: the metric's total (conversions, events, or the numerator's sum)."""


@dataclass(frozen=True)
class TimelinePoint:
    """A variation's running totals for one goal at the end of one hour or day."""

    at: str
    """The hour's or day's start (UTC)."""
    variation: str
    metric: str
    units: int
    """Units first exposed by the end of the hour or day."""
    conversions: int
    """Of them, those that had done the metric's event (in its window) by then."""
    rate: float


@dataclass(frozen=True)
class Timeline:
    """Results over time: a point per hour or day in which anything happened."""

    bucket: str
    """`hour` or `day`."""
    points: list[TimelinePoint]


@dataclass(frozen=True)
class Results:
    """What `trackway experiments results` shows."""

    experiment: str
    as_of: str
    units: dict[str, int]
    expected_split: dict[str, float]
    multiple_exposures: int
    """Units exposed to more than one variation: excluded from everything else."""
    srm: Srm
    metrics: list[MetricResult]
    timeline: Timeline
    """Cumulative units and conversions per variation and goal (not guardrails)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def schema_of(spec: ExperimentSpec, sources: list[tuple[int, str]]) -> str:
    """The schema of the experiment's source (by default the oldest source's)."""
    schemas = source_schemas(sources)
    if spec.source is None:
        if not schemas:
            raise ValueError("there is no source yet: the experiment's events have nowhere to be")
        return schemas[min(schemas)]
    for source_id, name in sources:
        if name == spec.source:
            return schemas[source_id]
    raise ValueError(f"experiment '{spec.name}': no source named '{spec.source}'")


def period(spec: ExperimentSpec, as_of: datetime | None) -> tuple[datetime | None, datetime]:
    """The start and the effective end: the experiment's end, or `as_of` (default now)."""
    start = in_utc(spec.start, "start") if spec.start else None
    now = as_of or datetime.now(UTC)
    end = in_utc(spec.end, "end") if spec.end else now
    return start, min(end, now)


def builder(
    spec: ExperimentSpec, warehouse: Warehouse, schema: str, as_of: datetime | None
) -> Builder:
    found = warehouse.query(columns_sql(schema), _MAX_ROWS, _TIMEOUT_S, [])
    columns: Columns = {}
    for table, column in found.rows:
        columns.setdefault(table, set()).add(column)
    start, end = period(spec, as_of)
    return Builder(spec, warehouse.engine, schema, columns, start, end)


def compute(
    spec: ExperimentSpec, warehouse: Warehouse, schema: str, as_of: datetime | None = None
) -> Results:
    """The experiment's results from the warehouse, as of `as_of` (default: now)."""
    query = builder(spec, warehouse, schema, as_of)
    metrics = [*spec.goals, *spec.guardrails]
    found = warehouse.query(query.statistics(metrics), _MAX_ROWS, _TIMEOUT_S, [])
    rows = {r[0]: dict(zip(found.columns, r, strict=True)) for r in found.rows}
    multiple = int(rows.pop(None, {}).get("n", 0))
    names = [v.name for v in spec.variations]
    empty: dict[str, Any] = {"n": 0}
    arms = [rows.get(name, empty) for name in names]
    units = {name: int(arm["n"]) for name, arm in zip(names, arms, strict=True)}
    weights = [v.weight for v in spec.variations]
    results = []
    index = 0
    for metric in metrics:
        stats = [_statistic(metric, index, arm) for arm in arms]
        settings = AnalysisSettings(
            engine=spec.engine,
            sequential=spec.sequential,
            correction=spec.correction,
            alpha=spec.alpha,
            inverse=metric.inverse,
        )
        results.append(
            MetricResult(
                name=label(metric),
                role="goal" if metric in spec.goals else "guardrail",
                type=metric.type,
                variations=analyze(list(zip(names, stats, strict=True)), settings),
                sums=[_number(arm, f"s{index}") for arm in arms],
            )
        )
        index += len(parts(metric))
    return Results(
        experiment=spec.name,
        as_of=query.end.isoformat().replace("+00:00", "Z"),
        units=units,
        expected_split={v.name: v.weight / sum(weights) for v in spec.variations},
        multiple_exposures=multiple,
        srm=srm(list(units.values()), weights),
        metrics=results,
        timeline=timeline(warehouse, query, spec.goals),
    )


def timeline(warehouse: Warehouse, query: Builder, metrics: list[MetricSpec]) -> Timeline:
    """The cumulative units and conversions per variation and metric over time, by hour
    when the experiment has run for at most `HOURLY_UP_TO_S` (from its start, or its
    first exposure when it declares none), by day otherwise."""
    first = query.start
    if first is None:
        found = warehouse.query(query.first_exposure(), 1, _TIMEOUT_S, [])
        first = _utc(found.rows[0][0]) if found.rows and found.rows[0][0] is not None else None
    short = first is not None and (query.end - first).total_seconds() <= HOURLY_UP_TO_S
    bucket = "hour" if short else "day"
    found = warehouse.query(query.timeline(metrics, bucket), _MAX_ROWS, _TIMEOUT_S, [])
    points = [
        TimelinePoint(
            at=jsonable(slot),
            variation=variation,
            metric=label(metrics[int(metric)]),
            units=int(units),
            conversions=int(conversions),
            rate=float(rate),
        )
        for slot, variation, metric, units, conversions, rate in found.rows
    ]
    return Timeline(bucket=bucket, points=points)


def _utc(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _number(row: dict[str, Any], key: str) -> float:
    value = row.get(key)
    return float(value) if value is not None else 0.0


def _statistic(metric: MetricSpec, index: int, row: dict[str, Any]) -> Statistic:
    n = int(row["n"])
    s, q = _number(row, f"s{index}"), _number(row, f"q{index}")
    if metric.type in ("mean", "ratio"):
        return Ratio(
            n=n,
            numerator=SampleMean(n=n, sum=s, sum_squares=q),
            denominator=SampleMean(
                n=n, sum=_number(row, f"s{index + 1}"), sum_squares=_number(row, f"q{index + 1}")
            ),
            sum_of_products=_number(row, f"x{index}"),
        )
    post: Proportion | SampleMean
    if metric.type == "conversion":
        post = Proportion(n=n, sum=s)
    else:
        post = SampleMean(n=n, sum=s, sum_squares=q)
    if not metric.cuped:
        return post
    r, t = _number(row, f"r{index}"), _number(row, f"t{index}")
    pre: Proportion | SampleMean
    pre = Proportion(n=n, sum=r) if metric.type == "conversion" else SampleMean(n, r, t)
    return Cuped(n=n, post=post, pre=pre, sum_of_products=_number(row, f"c{index}"))
