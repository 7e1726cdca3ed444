"""Reading the case tables (gbstats_cases.json, reference_cases.json) into Trackway's types."""

import json
import math
from pathlib import Path
from typing import Any

from trackway.experiments.stats import (
    AnalysisSettings,
    Cuped,
    Proportion,
    Ratio,
    SampleMean,
    Statistic,
)

HERE = Path(__file__).parent

Json = dict[str, Any]


def load(name: str) -> Json:
    document: Json = json.loads((HERE / name).read_text())
    return document


def statistic(data: Json) -> Statistic:
    kind = data["kind"]
    if kind == "mean":
        return SampleMean(n=data["n"], sum=data["sum"], sum_squares=data["sum_squares"])
    if kind == "proportion":
        return Proportion(n=data["n"], sum=data["sum"])
    parts = ("numerator", "denominator") if kind == "ratio" else ("post", "pre")
    first, second = (simple(data[part]) for part in parts)
    if kind == "ratio":
        return Ratio(
            n=data["n"],
            numerator=first,
            denominator=second,
            sum_of_products=data["sum_of_products"],
        )
    return Cuped(n=data["n"], post=first, pre=second, sum_of_products=data["sum_of_products"])


def simple(data: Json) -> SampleMean | Proportion:
    stat = statistic(data)
    assert isinstance(stat, SampleMean | Proportion)
    return stat


def settings(data: Json) -> AnalysisSettings:
    return AnalysisSettings(**data)


def close(actual: float | None, expected: float | None, *, rel: float, abs_: float) -> bool:
    if actual is None or expected is None:
        return actual is expected
    return math.isclose(actual, expected, rel_tol=rel, abs_tol=abs_)
