"""Every number Trackway computes matches GrowthBook's gbstats on the same statistics.

gbstats_cases.json holds gbstats' own outputs (regenerate with generate_gbstats_cases.py;
its provenance block names the gbstats commit); they must agree to 1e-6 relative (and
1e-12 absolute, for numbers that are 0). reference_cases.json holds the expected values
written in gbstats' and GrowthBook's unit tests, rounded there, so compared to their
rounding.
"""

from typing import Any

import pytest

from tests.experiments.cases import close, load, settings, statistic
from trackway.experiments.stats import adjust_p_values, adjusted_ci, analyze, srm

REL, ABS = 1e-6, 1e-12
GBSTATS = load("gbstats_cases.json")
REFERENCE = load("reference_cases.json")

NUMBERS = ("mean", "expected", "standard_error", "p_value", "chance_to_win")
PAIRS = ("ci", "risk")


def _compare(actual: Any, expected: dict[str, Any], rel: float, abs_: float) -> list[str]:
    """The fields of `actual` (a VariationResult) that differ from `expected`."""
    wrong = [
        f"{field}: {getattr(actual, field)} != {expected[field]}"
        for field in NUMBERS
        if field in expected
        and not close(getattr(actual, field), expected[field], rel=rel, abs_=abs_)
    ]
    for field in PAIRS:
        if field in expected:
            got = getattr(actual, field)
            if got is None or not all(
                close(g, e, rel=rel, abs_=abs_) for g, e in zip(got, expected[field], strict=True)
            ):
                wrong.append(f"{field}: {got} != {expected[field]}")
    for field in ("units", "error"):
        if field in expected and getattr(actual, field) != expected[field]:
            wrong.append(f"{field}: {getattr(actual, field)!r} != {expected[field]!r}")
    return wrong


def _analyses(document: dict[str, Any]) -> list[Any]:
    return [pytest.param(case, id=case["name"]) for case in document["analyses"]]


@pytest.mark.parametrize("case", _analyses(GBSTATS))
def test_analysis_matches_gbstats(case: dict[str, Any]) -> None:
    results = analyze(
        [(name, statistic(stat)) for name, stat in case["variations"]], settings(case["settings"])
    )
    assert [r.variation for r in results] == [row["variation"] for row in case["expected"]]
    wrong = {
        r.variation: diff
        for r, row in zip(results, case["expected"], strict=True)
        if (diff := _compare(r, row, REL, ABS))
    }
    assert not wrong, f"{case['source']}: {wrong}"


@pytest.mark.parametrize("case", GBSTATS["srm"], ids=lambda c: f"{c['units']} at {c['weights']}")
def test_srm_matches_gbstats(case: dict[str, Any]) -> None:
    result = srm(case["units"], case["weights"])
    assert close(result.p_value, case["p_value"], rel=REL, abs_=ABS)
    assert result.flagged == (case["p_value"] < 0.001)


@pytest.mark.parametrize("case", _analyses(REFERENCE))
def test_analysis_matches_the_reference_tests(case: dict[str, Any]) -> None:
    results = analyze(
        [(name, statistic(stat)) for name, stat in case["variations"]], settings(case["settings"])
    )
    treatment = results[1]
    wrong = _compare(treatment, case["expected"], 0, case["tolerance"])
    assert not wrong, f"{case['source']}: {wrong}"


@pytest.mark.parametrize("case", REFERENCE["srm"], ids=lambda c: str(c["units"]))
def test_srm_matches_the_reference_tests(case: dict[str, Any]) -> None:
    assert close(
        srm(case["units"], case["weights"]).p_value, case["p_value"], rel=0, abs_=case["tolerance"]
    )


@pytest.mark.parametrize("case", REFERENCE["corrections"], ids=lambda c: c["correction"])
def test_corrections_match_growthbook(case: dict[str, Any]) -> None:
    adjusted = adjust_p_values(case["p_values"], case["correction"])
    assert adjusted == pytest.approx(case["adjusted"], abs=case["tolerance"])


@pytest.mark.parametrize("case", REFERENCE["adjusted_ci"], ids=lambda c: str(c["alpha"]))
def test_adjusted_ci_matches_growthbook(case: dict[str, Any]) -> None:
    estimate = case["estimate"]
    ci = adjusted_ci(case["p_value_adjusted"], estimate, (estimate, estimate), case["alpha"])
    assert ci == pytest.approx(case["ci"], abs=case["tolerance"])
