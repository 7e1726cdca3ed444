"""What `analyze` and `srm` give beyond the numbers: shapes, defaults, refusals."""

import math

import pytest

from trackway.experiments.stats import (
    AnalysisSettings,
    Cuped,
    Proportion,
    Ratio,
    SampleMean,
    adjust_p_values,
    analyze,
    srm,
)

FREQUENTIST = AnalysisSettings(engine="frequentist")
ARMS = [
    ("control", Proportion(1000, 100)),
    ("b", Proportion(1000, 130)),
    ("c", Proportion(1000, 105)),
]


def test_defaults_are_growthbooks() -> None:
    default = AnalysisSettings()
    assert (default.engine, default.alpha, default.relative) == ("bayesian", 0.05, True)
    assert (default.sequential, default.sequential_tuning) == (False, 5000)
    assert default.correction == "none"
    assert (default.prior_mean, default.prior_stddev, default.prior_proper) == (0, 0.3, False)


def test_the_control_carries_no_comparison() -> None:
    control, *_ = analyze(ARMS, FREQUENTIST)
    assert (control.variation, control.units, control.mean) == ("control", 1000, 0.1)
    assert (control.expected, control.ci, control.p_value, control.error) == (0, (0, 0), None, None)
    assert (control.chance_to_win, control.risk) == (None, None)


def test_frequentist_results_have_p_values_and_no_bayesian_numbers() -> None:
    for result in analyze(ARMS, FREQUENTIST)[1:]:
        assert result.p_value is not None and 0 < result.p_value < 1
        assert (result.chance_to_win, result.risk, result.p_value_adjusted) == (None, None, None)
        assert result.ci[0] < result.expected < result.ci[1]


def test_bayesian_results_have_chance_to_win_and_risk_and_no_p_value() -> None:
    _, b, _ = analyze(ARMS)
    assert b.p_value is None and b.p_value_adjusted is None
    assert b.chance_to_win is not None and b.chance_to_win > 0.95
    assert b.risk is not None and b.risk[0] > b.risk[1] >= 0


def test_an_inverse_metric_wins_when_it_goes_down() -> None:
    _, b, _ = analyze(ARMS)
    _, inverse_b, _ = analyze(ARMS, AnalysisSettings(inverse=True))
    assert b.chance_to_win is not None and inverse_b.chance_to_win is not None
    assert inverse_b.chance_to_win == pytest.approx(1 - b.chance_to_win)
    assert b.risk is not None and inverse_b.risk == b.risk[::-1]


@pytest.mark.parametrize("correction", ["holm-bonferroni", "benjamini-hochberg"])
def test_a_correction_adjusts_the_treatment_arms_together(correction: str) -> None:
    config = AnalysisSettings(engine="frequentist", correction=correction)  # type: ignore[arg-type]
    _, b, c = analyze(ARMS, config)
    assert b.p_value is not None and c.p_value is not None
    assert [b.p_value_adjusted, c.p_value_adjusted] == adjust_p_values(
        [b.p_value, c.p_value], config.correction
    )
    for arm in (b, c):
        assert arm.ci_adjusted is not None
        assert arm.ci_adjusted[0] <= arm.ci[0] and arm.ci_adjusted[1] >= arm.ci[1]


def test_an_arm_without_data_gets_the_neutral_default_and_an_error() -> None:
    empty = [("control", Proportion(1000, 100)), ("b", Proportion(0, 0))]
    frequentist = analyze(empty, FREQUENTIST)[1]
    assert (frequentist.expected, frequentist.ci, frequentist.p_value) == (0, (0, 0), 1)
    assert frequentist.error == "ZERO_NEGATIVE_VARIANCE"
    bayesian = analyze(empty)[1]
    assert (bayesian.chance_to_win, bayesian.risk) == (0.5, (0, 0))


def test_a_zero_baseline_has_no_relative_uplift_but_an_absolute_one() -> None:
    arms = [("control", SampleMean(10, 0, 10)), ("b", SampleMean(10, 5, 10))]
    assert analyze(arms, FREQUENTIST)[1].error == "ZERO_NEGATIVE_VARIANCE"
    absolute = analyze(arms, AnalysisSettings(engine="frequentist", relative=False))[1]
    assert absolute.error == "ZERO_NEGATIVE_BASELINE_VARIATION"


def test_statistics_of_different_kinds_are_not_compared() -> None:
    arms = [("control", Proportion(100, 10)), ("b", SampleMean(100, 10, 10))]
    assert analyze(arms)[1].error == "MIXED_STATISTIC_TYPES"


def test_a_cuped_mean_shows_the_unadjusted_mean() -> None:
    post, pre = SampleMean(100, 500, 3000), SampleMean(100, 200, 600)
    result = analyze([("control", Cuped(100, post, pre, 1200))])[0]
    assert result.mean == 5


def test_a_ratio_mean_is_the_ratio_of_sums() -> None:
    ratio = Ratio(10, SampleMean(10, 300, 10000), SampleMean(10, 20, 50), 700)
    assert analyze([("control", ratio)])[0].mean == 15


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: SampleMean(-1, 0, 0), "units must not be negative"),
        (lambda: Proportion(10, 11), "within 0..n"),
        (lambda: SampleMean(10, math.nan, 1), "sum must be a finite number, not nan"),
        (
            lambda: Ratio(10, SampleMean(9, 1, 1), SampleMean(10, 1, 1), 1),
            "numerator covers 9 units, not the statistic's 10",
        ),
        (lambda: AnalysisSettings(alpha=1), "alpha must be between 0 and 1"),
        (lambda: AnalysisSettings(engine="freq"), "unknown engine 'freq'"),  # type: ignore[arg-type]
        (
            lambda: AnalysisSettings(correction="bonferroni"),  # type: ignore[arg-type]
            "unknown correction 'bonferroni'; use one of none, holm-bonferroni, benjamini-hochberg",
        ),
        (lambda: adjust_p_values([0.1], "holm"), "unknown correction 'holm'"),  # type: ignore[arg-type]
        (lambda: AnalysisSettings(sequential_tuning=0), "sequential_tuning must be positive"),
        (lambda: analyze([]), "at least the control"),
        (lambda: srm([1, 2], [1]), "2 unit counts but 1 weights"),
        (lambda: srm([1], [1]), "at least two variations"),
        (lambda: srm([1, 2], [0, 0]), "must not all be 0"),
    ],
)
def test_bad_input_is_refused_precisely(make: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()  # type: ignore[operator]


def test_cuped_post_and_pre_must_be_of_one_kind() -> None:
    with pytest.raises(TypeError, match="same kind"):
        Cuped(10, Proportion(10, 1), SampleMean(10, 1, 1), 1)


def test_srm_flags_below_one_in_a_thousand() -> None:
    assert srm([1000, 1200], [0.5, 0.5]).flagged
    assert not srm([1000, 1050], [0.5, 0.5]).flagged
    assert srm([0, 0], [1, 1]).p_value == 1


def test_sequential_intervals_are_wider_than_fixed_ones() -> None:
    fixed = analyze(ARMS, FREQUENTIST)[1]
    sequential = analyze(ARMS, AnalysisSettings(engine="frequentist", sequential=True))[1]
    assert sequential.ci[0] < fixed.ci[0] and sequential.ci[1] > fixed.ci[1]
    assert sequential.p_value is not None and fixed.p_value is not None
    assert sequential.p_value > fixed.p_value
    assert math.isclose(sequential.expected, fixed.expected)
