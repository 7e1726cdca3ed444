"""Regenerate gbstats_cases.json: inputs and GrowthBook gbstats' outputs for them.

gbstats is not a dependency of Trackway; run this with a Python that has it, outside
the project's venv, e.g. from GrowthBook's source at the commit the reference read:

    git clone https://github.com/growthbook/growthbook /tmp/growthbook
    git -C /tmp/growthbook checkout 8f1db4456915a8e7b7faf23d5632ca7219d2f469
    python3 -m venv /tmp/gbvenv
    /tmp/gbvenv/bin/pip install numpy scipy pandas pydantic nbformat packaging
    PYTHONPATH=/tmp/growthbook/packages/stats /tmp/gbvenv/bin/python \
        tests/experiments/generate_gbstats_cases.py --gbstats-commit \
        8f1db4456915a8e7b7faf23d5632ca7219d2f469

Every analysis goes through gbstats' own entry point, `gbstats.gbstats.
get_configured_test` (the test GrowthBook configures from its analysis and metric
settings), once per treatment against the control; SRM through `gbstats.utils.
check_srm`. The inputs are hand-picked cases (several from gbstats' unit tests) and
random experiments simulated unit by unit with a fixed seed.
"""

import argparse
import json
import platform
import sys
from pathlib import Path
from typing import Any

import gbstats
import numpy as np
import scipy
from gbstats.gbstats import get_configured_test
from gbstats.models.settings import AnalysisSettingsForStatsEngine, MetricSettingsForStatsEngine
from gbstats.models.statistics import (
    ProportionStatistic,
    RatioStatistic,
    RegressionAdjustedStatistic,
    SampleMeanStatistic,
)
from gbstats.utils import check_srm

OUTPUT = Path(__file__).with_name("gbstats_cases.json")
GBSTATS_TESTS = "growthbook/growthbook packages/stats/tests/"

Json = dict[str, Any]


def mean(n: int, total: float, squares: float) -> Json:
    return {"kind": "mean", "n": n, "sum": total, "sum_squares": squares}


def proportion(n: int, total: float) -> Json:
    return {"kind": "proportion", "n": n, "sum": total}


def to_gbstats(stat: Json) -> Any:
    kind = stat["kind"]
    if kind == "mean":
        return SampleMeanStatistic(n=stat["n"], sum=stat["sum"], sum_squares=stat["sum_squares"])
    if kind == "proportion":
        return ProportionStatistic(n=stat["n"], sum=stat["sum"])
    if kind == "ratio":
        return RatioStatistic(
            n=stat["n"],
            m_statistic=to_gbstats(stat["numerator"]),
            d_statistic=to_gbstats(stat["denominator"]),
            m_d_sum_of_products=stat["sum_of_products"],
        )
    return RegressionAdjustedStatistic(
        n=stat["n"],
        post_statistic=to_gbstats(stat["post"]),
        pre_statistic=to_gbstats(stat["pre"]),
        post_pre_sum_of_products=stat["sum_of_products"],
        theta=None,
    )


def run(settings: Json, variations: list[tuple[str, Json]]) -> list[Json]:
    """gbstats' numbers for each variation, in Trackway's field names."""
    analysis = AnalysisSettingsForStatsEngine(
        var_names=[name for name, _ in variations],
        var_ids=[name for name, _ in variations],
        weights=[1.0] * len(variations),
        stats_engine=settings.get("engine", "bayesian"),
        sequential_testing_enabled=settings.get("sequential", False),
        sequential_tuning_parameter=settings.get("sequential_tuning", 5000),
        difference_type="relative" if settings.get("relative", True) else "absolute",
        alpha=settings.get("alpha", 0.05),
    )
    metric = MetricSettingsForStatsEngine(
        id="metric",
        name="metric",
        statistic_type="mean_ra" if variations[0][1]["kind"] == "cuped" else "mean",
        main_metric_type="count",
        inverse=settings.get("inverse", False),
        prior_proper=settings.get("prior_proper", False),
        prior_mean=settings.get("prior_mean", 0.0),
        prior_stddev=settings.get("prior_stddev", 0.3),
    )
    stats = [to_gbstats(stat) for _, stat in variations]
    rows = [{"variation": variations[0][0], "units": stats[0].n, "mean": stats[0].unadjusted_mean}]
    for (name, _), stat in zip(variations[1:], stats[1:], strict=True):
        test = get_configured_test(
            [(stats[0], stat)], stats[0].n + stat.n, analysis=analysis, metric=metric
        )
        result = test.compute_result()
        row = {
            "variation": name,
            "units": stat.n,
            "mean": stat.unadjusted_mean,
            "expected": result.expected,
            "ci": list(result.ci),
            "standard_error": result.uplift.stddev,
            "error": result.errorMessage,
        }
        if analysis.stats_engine == "frequentist":
            row["p_value"] = result.pValue
        else:
            row["chance_to_win"] = result.chanceToWin
            row["risk"] = list(result.risk)
        rows.append(row)
    return rows


def hand_cases() -> list[Json]:
    """Cases chosen to reach each branch; the `source` says where inputs came from."""
    # gbstats' frequentist/test_tests.py TestTwoSidedTTest and TestSequentialTTest.
    a, b = mean(3407, 1396.87, 52377.9767), mean(3461, 2422.7, 134698.29)
    a3000 = mean(3000, 1396.87, 52377.9767)
    cuped_a = {
        "kind": "cuped",
        "n": 3000,
        "post": a3000,
        "pre": mean(3000, 16.87, 527.9767),
        "sum_of_products": 1,
    }
    cuped_b = {
        "kind": "cuped",
        "n": 3461,
        "post": b,
        "pre": mean(3461, 22.7, 1348.29),
        "sum_of_products": 1,
    }
    freq = {"engine": "frequentist"}
    seq = {"engine": "frequentist", "sequential": True}
    two_sided = GBSTATS_TESTS + "frequentist/test_tests.py::TestTwoSidedTTest"
    sequential = GBSTATS_TESTS + "frequentist/test_tests.py::TestSequentialTTest"
    bayesian = GBSTATS_TESTS + "bayesian/test_tests.py"
    # A CUPED metric whose pre-period has no variance: gbstats falls back to post.
    flat_pre = {
        "kind": "cuped",
        "n": 100,
        "post": mean(100, 50, 80),
        "pre": mean(100, 100, 100),
        "sum_of_products": 50,
    }
    return [
        case("welch relative", two_sided, freq, [("a", a), ("b", b)]),
        case("welch absolute", two_sided, {**freq, "relative": False}, [("a", a), ("b", b)]),
        case(
            "welch binomial",
            two_sided,
            freq,
            [("a", proportion(28, 14)), ("b", proportion(30, 16))],
        ),
        case(
            "welch too few units (n=2, negative variance)",
            two_sided,
            freq,
            [("a", mean(2, 1396.87, 52377.9767)), ("b", b)],
        ),
        case(
            "sequential mean, tuning 1000",
            sequential,
            {**seq, "sequential_tuning": 1000},
            [("a", a3000), ("b", b)],
        ),
        case(
            "sequential proportion",
            sequential,
            seq,
            [("a", proportion(3000, 1396)), ("b", proportion(3461, 2422))],
        ),
        case("sequential cuped", sequential, seq, [("a", cuped_a), ("b", cuped_b)]),
        case(
            "bayesian binomial",
            bayesian + "::TestBinom",
            {},
            [("a", proportion(100, 49)), ("b", proportion(100, 51))],
        ),
        case(
            "bayesian no units",
            bayesian + "::TestBinom::test_missing_data",
            {},
            [("a", proportion(0, 0)), ("b", proportion(0, 0))],
        ),
        case(
            "bayesian normal",
            bayesian + "::TestNorm",
            {},
            [("a", mean(10, 100, 1002.25)), ("b", mean(10, 105, 1111.5))],
        ),
        case(
            "bayesian informative prior (mean 0.1, variance 0.1)",
            bayesian + "::TestNorm::test_bayesian_gaussian_ab_test_informative",
            {"prior_proper": True, "prior_mean": 0.1, "prior_stddev": 0.1**0.5},
            [("a", mean(10, 100, 1002.25)), ("b", mean(10, 105, 1111.5))],
        ),
        case(
            "bayesian absolute, proper prior scaled by the control mean",
            bayesian + "::TestGaussianEffectRelativeAbsolutePriors",
            {"relative": False, "prior_proper": True, "prior_mean": 1, "prior_stddev": 1},
            [("a", mean(100, 1000, 200000)), ("b", mean(100, 1100, 200005))],
        ),
        case(
            "bayesian inverse metric",
            "hand-picked",
            {"inverse": True},
            [("a", mean(10, 100, 1002.25)), ("b", mean(10, 105, 1111.5))],
        ),
        case(
            "bayesian far tail (|mean/sd| > 37)",
            "hand-picked",
            {},
            [("a", proportion(100000, 10000)), ("b", proportion(100000, 20000))],
        ),
        case(
            "control mean zero, relative",
            "hand-picked",
            freq,
            [("a", mean(10, 0, 10)), ("b", mean(10, 5, 10))],
        ),
        case(
            "control mean zero, absolute",
            "hand-picked",
            {**freq, "relative": False},
            [("a", mean(10, 0, 10)), ("b", mean(10, 5, 10))],
        ),
        case(
            "cuped without pre-period variance",
            "hand-picked",
            freq,
            [
                ("a", flat_pre),
                ("b", {**flat_pre, "post": mean(100, 60, 100), "sum_of_products": 60}),
            ],
        ),
        case(
            "four arms",
            "hand-picked",
            {**freq, "alpha": 0.1},
            [
                ("control", proportion(1000, 100)),
                ("b", proportion(1010, 120)),
                ("c", proportion(990, 85)),
                ("d", proportion(1005, 101)),
            ],
        ),
    ]


def case(name: str, source: str, settings: Json, variations: list[tuple[str, Json]]) -> Json:
    return {"name": name, "source": source, "settings": settings, "variations": variations}


SETTINGS_GRID = [
    {"engine": "frequentist"},
    {"engine": "frequentist", "relative": False},
    {"engine": "frequentist", "sequential": True},
    {"engine": "frequentist", "sequential": True, "relative": False, "sequential_tuning": 800},
    {"engine": "frequentist", "alpha": 0.1},
    {},
    {"relative": False},
    {"prior_proper": True},
    {"prior_proper": True, "relative": False, "prior_mean": 0.05, "prior_stddev": 0.1},
    {"inverse": True, "alpha": 0.2},
]


def random_cases(rng: np.random.Generator, count: int) -> list[Json]:
    """Experiments simulated unit by unit, reduced to sufficient statistics."""
    kinds = ["mean", "proportion", "ratio", "cuped mean", "cuped proportion"]
    cases = []
    for i in range(count):
        kind = kinds[i % len(kinds)]
        settings = SETTINGS_GRID[i % len(SETTINGS_GRID)]
        arms = 2 + i % 3
        lift = rng.normal(0, 0.05)
        variations = []
        for arm in range(arms):
            n = int(rng.integers(50, 5000))
            variations.append((f"v{arm}", simulate(rng, kind, n, 1 + lift * arm)))
        cases.append(case(f"random {i}: {kind}, {arms} arms", "simulated", settings, variations))
    return cases


def simulate(rng: np.random.Generator, kind: str, n: int, scale: float) -> Json:
    if kind == "mean":
        x = rng.lognormal(1, 1, n) * scale * (rng.random(n) < 0.4)
        return mean(n, float(x.sum()), float((x * x).sum()))
    if kind == "proportion":
        return proportion(n, int((rng.random(n) < 0.1 * scale).sum()))
    if kind == "ratio":
        orders = rng.poisson(1.5, n).astype(float)
        revenue = orders * rng.gamma(2, 20 * scale, n)
        return {
            "kind": "ratio",
            "n": n,
            "numerator": mean(n, float(revenue.sum()), float((revenue**2).sum())),
            "denominator": mean(n, float(orders.sum()), float((orders**2).sum())),
            "sum_of_products": float((revenue * orders).sum()),
        }
    if kind == "cuped mean":
        pre = rng.gamma(2, 5, n)
        post = np.maximum(0.6 * pre + rng.normal(3 * scale, 4, n), 0)
        return {
            "kind": "cuped",
            "n": n,
            "post": mean(n, float(post.sum()), float((post**2).sum())),
            "pre": mean(n, float(pre.sum()), float((pre**2).sum())),
            "sum_of_products": float((post * pre).sum()),
        }
    pre_flag = rng.random(n) < 0.2
    post_flag = rng.random(n) < np.where(pre_flag, 0.5, 0.1) * scale
    return {
        "kind": "cuped",
        "n": n,
        "post": proportion(n, int(post_flag.sum())),
        "pre": proportion(n, int(pre_flag.sum())),
        "sum_of_products": int((post_flag & pre_flag).sum()),
    }


def srm_cases() -> list[Json]:
    cases = [
        {
            "source": "growthbook/growthbook packages/back-end/test/stats.test.ts",
            "units": [1000, 1200],
            "weights": [0.5, 0.5],
        },
        {"source": "hand-picked", "units": [1000, 1010, 990], "weights": [1, 1, 1]},
        {"source": "hand-picked", "units": [2000, 1000], "weights": [0.7, 0.3]},
        {"source": "hand-picked", "units": [500, 520, 7], "weights": [0.5, 0.5, 0]},
        {"source": "hand-picked", "units": [0, 0], "weights": [0.5, 0.5]},
        {"source": "hand-picked", "units": [5051, 4949], "weights": [0.5, 0.5]},
    ]
    for c in cases:
        c["p_value"] = float(check_srm(c["units"], c["weights"]))
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gbstats-commit", required=True, help="the GrowthBook commit used")
    args = parser.parse_args()
    cases = hand_cases() + random_cases(np.random.default_rng(20261207), 50)
    for c in cases:
        c["expected"] = run(c["settings"], c["variations"])
    document = {
        "provenance": {
            "generator": "tests/experiments/generate_gbstats_cases.py",
            "gbstats_version": gbstats.__version__,
            "gbstats_source": f"github.com/growthbook/growthbook@{args.gbstats_commit}"
            " packages/stats",
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
        },
        "analyses": cases,
        "srm": srm_cases(),
    }
    OUTPUT.write_text(json.dumps(document, indent=1) + "\n")
    print(f"{len(cases)} analyses and {len(document['srm'])} SRM cases", file=sys.stderr)


if __name__ == "__main__":
    main()
