"""An experiment's results: the warehouse sums, the statistics engine compares.

`compute` runs the statement of trackway.experiments.query on the experiment's
warehouse and hands each metric's sufficient statistics per variation to
`trackway.experiments.stats` (imported here, not at the CLI's start: scipy is slow to
import).
"""

from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
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

_TIMEOUT_S = 300.0
_MAX_ROWS = 1_000_000


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
    )


def series(
    spec: ExperimentSpec, warehouse: Warehouse, schema: str, as_of: datetime | None = None
) -> list[dict[str, Any]]:
    """Per day (UTC) and variation: cumulative units exposed and the cumulative
    conversion rate of the first goal (units that converted by that day over units
    exposed by it)."""
    query = builder(spec, warehouse, schema, as_of)
    found = warehouse.query(query.series(spec.goals[0]), _MAX_ROWS, _TIMEOUT_S, [])
    if not found.rows:
        return []
    exposed: dict[tuple[str, date], int] = {}
    converted: dict[tuple[str, date], int] = {}
    for variation, day, converted_day, n in found.rows:
        exposed[variation, _day(day)] = exposed.get((variation, _day(day)), 0) + int(n)
        if converted_day is not None:
            key = (variation, _day(converted_day))
            converted[key] = converted.get(key, 0) + int(n)
    days = [k[1] for k in exposed] + [k[1] for k in converted]
    first, last = min(days), max(days)
    out = []
    totals = {v.name: [0, 0] for v in spec.variations}
    day = first
    while day <= last:
        for name, total in totals.items():
            total[0] += exposed.get((name, day), 0)
            total[1] += converted.get((name, day), 0)
            out.append(
                {
                    "day": day.isoformat(),
                    "variation": name,
                    "units": total[0],
                    "conversions": total[1],
                    "rate": total[1] / total[0] if total[0] else 0.0,
                }
            )
        day += timedelta(days=1)
    return out


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


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
