"""The SQL that reduces an experiment's exposures and goal events to sufficient statistics.

One statement, the same on DuckDB and PostgreSQL: `units` has one row per exposed unit
with its variation (NULL when it saw more than one) and its first exposure; each metric
part (`p0`, `p1`...) has the unit's value in the metric's window after that exposure (and
before it, for CUPED); the outer query sums them per variation. Tables or columns that
do not exist (no event of that kind loaded yet) count as no events.
"""

from dataclasses import dataclass
from datetime import datetime

import msgspec

from trackway.experiments.spec import (
    UNIT_COLUMNS,
    ExperimentSpec,
    GoalEvent,
    MetricSpec,
    Window,
    window,
)
from trackway.warehouse import naming
from trackway.warehouse.naming import quote

Columns = dict[str, set[str]]
"""The columns of each table of the experiment's schema."""

EXPOSURE_TABLES = {"flag": "feature_flag_evaluated", "experiment_viewed": "experiment_viewed"}
_KEY_COLUMNS = {"flag": "feature_flag_key", "experiment_viewed": "experiment_id"}
_CALL_TABLES = {"page": "pages", "screen": "screens"}


def columns_sql(schema: str) -> str:
    """The query listing the schema's tables and columns (for `Columns`)."""
    return (
        "SELECT table_name, column_name FROM information_schema.columns"
        f" WHERE table_schema = {_text(schema)}"
    )


@dataclass(frozen=True)
class Part:
    """One per-unit value the statistics need: a metric's numerator or denominator."""

    goal: GoalEvent
    first_only: bool
    """A conversion: 1 when the unit did it at all (and the time it first did)."""
    window: Window
    cuped: bool


def parts(metric: MetricSpec) -> list[Part]:
    """The parts of a metric: one, or numerator and denominator (ratio and mean)."""
    when = window(metric)
    first = Part(
        GoalEvent(metric.event, metric.event_type, metric.property),
        metric.type == "conversion",
        when,
        metric.cuped,
    )
    if metric.type == "mean":
        return [first, Part(GoalEvent(metric.event, metric.event_type), False, when, False)]
    if metric.type == "ratio" and metric.denominator is not None:
        return [first, Part(metric.denominator, False, when, False)]
    return [first]


class Builder:
    """Builds the statistics statement of one experiment at one time."""

    def __init__(
        self,
        spec: ExperimentSpec,
        engine: str,
        schema: str,
        columns: Columns,
        start: datetime | None,
        end: datetime,
    ) -> None:
        self.spec = spec
        self.engine = engine
        self.schema = schema
        self.columns = columns
        self.start = start
        self.end = end
        self.unit = UNIT_COLUMNS.get(spec.unit) or naming.identifier(spec.unit)

    def units(self) -> str:
        """The `units` CTE: unit, variation (NULL: seen in several), first_ts."""
        table = EXPOSURE_TABLES[self.spec.exposure]
        have = self.columns.get(table, set())
        key = _KEY_COLUMNS[self.spec.exposure]
        if not {key, self.unit, "timestamp"} <= have:
            return (
                "units AS (SELECT CAST(NULL AS VARCHAR) AS unit, CAST(NULL AS VARCHAR)"
                " AS variation, CAST(NULL AS TIMESTAMP) AS first_ts WHERE 1 = 0)"
            )
        cases = []
        for variation in self.spec.variations:
            if variation.variation_id is not None:
                column, wanted = "variation_id", variation.variation_id
            else:
                column, wanted = "value", _value_text(variation.value)
            if column in have:
                cases.append(f"WHEN {quote(column)} = {_text(wanted)} THEN {_text(variation.name)}")
        arm = f"CASE {' '.join(cases)} END" if cases else "CAST(NULL AS VARCHAR)"
        where = [f"{quote(key)} = {_text(self.spec.flag)}", f"{quote(self.unit)} IS NOT NULL"]
        where += self._period('"timestamp"')
        return (
            "exposed AS ("
            f"SELECT CAST({quote(self.unit)} AS VARCHAR) AS unit, {arm} AS variation,"
            f' "timestamp" AS ts FROM {self._table(table)} WHERE {" AND ".join(where)}),'
            " units AS (SELECT unit, CASE WHEN MIN(variation) = MAX(variation)"
            " THEN MIN(variation) END AS variation, MIN(ts) AS first_ts"
            " FROM exposed WHERE variation IS NOT NULL GROUP BY unit)"
        )

    def part(self, index: int, part: Part) -> str:
        """The CTE `p{index}`: unit, v (post value), first (first post time), pre."""
        goal = part.goal
        table = _CALL_TABLES.get(goal.type) or naming.event_table(goal.event)
        have = self.columns.get(table, set())
        value = "1"
        if goal.property is not None:
            column = naming.identifier(goal.property)
            value = f"CAST({quote(column)} AS DOUBLE PRECISION)" if column in have else "0"
        filters = [f"{quote(self.unit)} IS NOT NULL"]
        if goal.type != "track":
            filters.append(f"name = {_text(goal.event)}")
        needed = {self.unit, "timestamp"} | ({"name"} if goal.type != "track" else set())
        name = f"p{index}"
        if not needed <= have:
            pre = ", CAST(NULL AS DOUBLE PRECISION) AS pre" if part.cuped else ""
            return (
                f"{name} AS (SELECT unit, CAST(NULL AS DOUBLE PRECISION) AS v,"
                f" CAST(NULL AS TIMESTAMP) AS first{pre} FROM units WHERE 1 = 0)"
            )
        low = self._after("u.first_ts", part.window.delay)
        post = [f"g.ts >= {low}", f"g.ts <= {self._time(self.end)}"]
        if part.window.length is not None:
            post.append(f"g.ts <= {self._after(low, part.window.length)}")
        is_post = " AND ".join(post)
        aggregate = "MAX" if part.first_only else "SUM"
        columns = [
            f"{aggregate}(CASE WHEN {is_post} THEN g.x ELSE 0 END) AS v",
            f"MIN(CASE WHEN {is_post} THEN g.ts END) AS first",
        ]
        lowest = low
        if part.cuped:
            before = self._after("u.first_ts", -part.window.pre)
            is_pre = f"g.ts >= {before} AND g.ts < u.first_ts"
            columns.append(f"{aggregate}(CASE WHEN {is_pre} THEN g.x ELSE 0 END) AS pre")
            lowest = before
        return (
            f"{name} AS (SELECT u.unit, {', '.join(columns)} FROM units u JOIN"
            f' (SELECT CAST({quote(self.unit)} AS VARCHAR) AS unit, "timestamp" AS ts,'
            f" {value} AS x FROM {self._table(table)} WHERE {' AND '.join(filters)}) g"
            f" ON g.unit = u.unit WHERE g.ts >= {lowest} AND g.ts <= {self._time(self.end)}"
            " GROUP BY u.unit)"
        )

    def statistics(self, metrics: list[MetricSpec]) -> str:
        """One row per variation (NULL: units exposed to several): n, then per part
        s{i} Σv, q{i} Σv², and for CUPED r{i} Σpre, t{i} Σpre², c{i} Σv·pre, and per ratio
        x{i} Σnumerator·denominator (i the numerator's part)."""
        ctes = [self.units()]
        select = ["u.variation AS variation", "COUNT(*) AS n"]
        joins = []
        index = 0
        for metric in metrics:
            metric_parts = parts(metric)
            for offset, part in enumerate(metric_parts):
                i = index + offset
                ctes.append(self.part(i, part))
                joins.append(f"LEFT JOIN p{i} ON p{i}.unit = u.unit")
                v = f"COALESCE(p{i}.v, 0)"
                select += [f"SUM({v}) AS s{i}", f"SUM({v} * {v}) AS q{i}"]
                if part.cuped:
                    pre = f"COALESCE(p{i}.pre, 0)"
                    select += [
                        f"SUM({pre}) AS r{i}",
                        f"SUM({pre} * {pre}) AS t{i}",
                        f"SUM({v} * {pre}) AS c{i}",
                    ]
            if len(metric_parts) == 2:
                select.append(
                    f"SUM(COALESCE(p{index}.v, 0) * COALESCE(p{index + 1}.v, 0)) AS x{index}"
                )
            index += len(metric_parts)
        return (
            f"WITH {', '.join(ctes)} SELECT {', '.join(select)} FROM units u"
            f" {' '.join(joins)} GROUP BY u.variation"
        )

    def timeline(self, metrics: list[MetricSpec], bucket: str) -> str:
        """Per `bucket` (`day` or `hour`, UTC) in which anything happened, variation and
        metric: `units` exposed by the bucket's end, `conversions` (units that had done
        the metric's event in its window by then) and `rate`, cumulated in the warehouse.
        A variation or metric with nothing in a bucket has a row with the running totals."""
        ctes = [self.units()]
        happened = [
            f"SELECT u.variation, {self._bucket('u.first_ts', bucket)} AS slot, -1 AS metric"
            " FROM units u WHERE u.variation IS NOT NULL"
        ]
        for index, metric in enumerate(metrics):
            ctes.append(self.part(index, parts(metric)[0]))
            happened.append(
                f"SELECT u.variation, {self._bucket(f'p{index}.first', bucket)}, {index}"
                f" FROM units u JOIN p{index} ON p{index}.unit = u.unit"
                f" WHERE u.variation IS NOT NULL AND p{index}.first IS NOT NULL"
            )
        arms = ", ".join(f"({_text(v.name)})" for v in self.spec.variations)
        goals = ", ".join(f"({i})" for i in range(len(metrics)))
        running = "PARTITION BY a.variation, m.metric ORDER BY b.slot ROWS UNBOUNDED PRECEDING"
        return (
            f"WITH {', '.join(ctes)},"
            f" happened (variation, slot, metric) AS ({' UNION ALL '.join(happened)}),"
            " counts AS (SELECT variation, slot, metric, COUNT(*) AS n FROM happened"
            " GROUP BY variation, slot, metric),"
            " buckets AS (SELECT DISTINCT slot FROM happened),"
            f" arms (variation) AS (VALUES {arms}), metrics (metric) AS (VALUES {goals}),"
            " running AS (SELECT b.slot AS slot, a.variation AS variation, m.metric AS metric,"
            f" SUM(COALESCE(e.n, 0)) OVER ({running}) AS units,"
            f" SUM(COALESCE(c.n, 0)) OVER ({running}) AS conversions"
            " FROM buckets b CROSS JOIN arms a CROSS JOIN metrics m"
            " LEFT JOIN counts e ON e.variation = a.variation AND e.slot = b.slot"
            " AND e.metric = -1"
            " LEFT JOIN counts c ON c.variation = a.variation AND c.slot = b.slot"
            " AND c.metric = m.metric)"
            " SELECT slot, variation, metric, units, conversions, CASE WHEN units > 0 THEN"
            " CAST(conversions AS DOUBLE PRECISION) / units ELSE 0 END AS rate"
            " FROM running ORDER BY slot, metric, variation"
        )

    def first_exposure(self) -> str:
        """The time of the first exposure (NULL: none yet)."""
        return f"WITH {self.units()} SELECT MIN(first_ts) FROM units"

    def _bucket(self, expression: str, bucket: str) -> str:
        """The start of the UTC day or hour of a timestamp (PostgreSQL's are zoned)."""
        if self.engine == "postgres":
            expression = f"({expression} AT TIME ZONE 'UTC')"
        return f"date_trunc('{bucket}', {expression})"

    def _period(self, column: str) -> list[str]:
        out = [f"{column} <= {self._time(self.end)}"]
        if self.start is not None:
            out.append(f"{column} >= {self._time(self.start)}")
        return out

    def _table(self, table: str) -> str:
        return f"{quote(self.schema)}.{quote(table)}"

    def _time(self, moment: datetime) -> str:
        text = moment.strftime("%Y-%m-%d %H:%M:%S.%f")
        if self.engine == "postgres":
            return f"TIMESTAMPTZ '{text}+00'"
        return f"TIMESTAMP '{text}'"

    @staticmethod
    def _after(expression: str, seconds: float) -> str:
        if not seconds:
            return expression
        return f"({expression} + INTERVAL '{round(seconds)} seconds')"


def _value_text(value: object) -> str:
    """A flag value as the warehouse's `value` column holds it: text as it is, any
    other value as its JSON text."""
    if isinstance(value, str):
        return value
    return msgspec.json.encode(value).decode()


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def goals_sql(schema: str, columns: Columns) -> str | None:
    """Every track, page and screen event name seen in the schema (Kameleoon's automatic
    goals): type, name, first and last seen, volume. None when no such table exists yet."""
    selects = []
    for kind, table, name in (
        ("track", "tracks", "event_text"),
        ("page", "pages", "name"),
        ("screen", "screens", "name"),
    ):
        if {name, "timestamp"} <= columns.get(table, set()):
            selects.append(
                f"SELECT {_text(kind)} AS type, {quote(name)} AS name,"
                ' MIN("timestamp") AS first_seen, MAX("timestamp") AS last_seen,'
                f" COUNT(*) AS events FROM {quote(schema)}.{quote(table)}"
                f" WHERE {quote(name)} IS NOT NULL GROUP BY {quote(name)}"
            )
    if not selects:
        return None
    return " UNION ALL ".join(selects) + " ORDER BY events DESC, type, name"
