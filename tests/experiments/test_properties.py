"""Invariances the statistics must keep whatever the data (hypothesis)."""

import itertools
import random
from dataclasses import replace

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from trackway.experiments.stats import (
    AnalysisSettings,
    Correction,
    Cuped,
    Proportion,
    Ratio,
    SampleMean,
    Statistic,
    VariationResult,
    adjust_p_values,
    analyze,
    srm,
)

# Each example runs a few scipy distributions; 40 keep the module to a few seconds.
FEW = settings(max_examples=40)
VALUES = st.floats(0, 1000, allow_nan=False, allow_infinity=False)


@st.composite
def sample_means(draw: st.DrawFn) -> SampleMean:
    xs = draw(st.lists(VALUES, min_size=2, max_size=40))
    return SampleMean(n=len(xs), sum=sum(xs), sum_squares=sum(x * x for x in xs))


@st.composite
def proportions(draw: st.DrawFn) -> Proportion:
    n = draw(st.integers(2, 100_000))
    return Proportion(n=n, sum=draw(st.integers(0, n)))


@st.composite
def ratios(draw: st.DrawFn) -> Ratio:
    pairs = draw(st.lists(st.tuples(VALUES, st.integers(0, 5)), min_size=2, max_size=40))
    m, d = [p[0] for p in pairs], [float(p[1]) for p in pairs]
    n = len(pairs)
    return Ratio(
        n=n,
        numerator=SampleMean(n, sum(m), sum(x * x for x in m)),
        denominator=SampleMean(n, sum(d), sum(x * x for x in d)),
        sum_of_products=sum(x * y for x, y in pairs),
    )


@st.composite
def cupeds(draw: st.DrawFn) -> Cuped:
    pairs = draw(st.lists(st.tuples(VALUES, VALUES), min_size=2, max_size=40))
    post, pre = [p[0] for p in pairs], [p[1] for p in pairs]
    n = len(pairs)
    return Cuped(
        n=n,
        post=SampleMean(n, sum(post), sum(x * x for x in post)),
        pre=SampleMean(n, sum(pre), sum(x * x for x in pre)),
        sum_of_products=sum(x * y for x, y in pairs),
    )


KINDS = [sample_means(), proportions(), ratios(), cupeds()]
PAIRS = st.one_of(*(st.tuples(kind, kind) for kind in KINDS))
ENGINES = st.builds(
    AnalysisSettings,
    engine=st.sampled_from(["frequentist", "bayesian"]),
    sequential=st.booleans(),
    alpha=st.sampled_from([0.01, 0.05, 0.1]),
    prior_proper=st.booleans(),
    prior_mean=st.floats(-0.2, 0.2),
    prior_stddev=st.floats(0.05, 1),
)


def _both(a: Statistic, b: Statistic, config: AnalysisSettings) -> tuple[VariationResult, ...]:
    forward = analyze([("a", a), ("b", b)], config)[1]
    backward = analyze([("b", b), ("a", a)], config)[1]
    assume(forward.error is None and backward.error is None)
    return forward, backward


def approx(x: float) -> object:
    return pytest.approx(x, rel=1e-9, abs=1e-12)


@FEW
@given(PAIRS, ENGINES)
def test_swapping_arms_flips_the_absolute_effect(
    pair: tuple[Statistic, Statistic], config: AnalysisSettings
) -> None:
    # A proper prior is scaled by the control's mean for absolute effects: not symmetric.
    config = replace(config, relative=False, prior_proper=False)
    forward, backward = _both(*pair, config)
    assert backward.expected == approx(-forward.expected)
    assert backward.ci == (approx(-forward.ci[1]), approx(-forward.ci[0]))
    if config.engine == "frequentist":
        assert backward.p_value == approx(forward.p_value or 0)
    else:
        assert forward.chance_to_win is not None and forward.risk is not None
        assert backward.chance_to_win == pytest.approx(1 - forward.chance_to_win, abs=1e-12)
        assert backward.risk == (approx(forward.risk[1]), approx(forward.risk[0]))


@FEW
@given(PAIRS, ENGINES)
def test_swapping_arms_flips_the_sign_of_the_relative_effect(
    pair: tuple[Statistic, Statistic], config: AnalysisSettings
) -> None:
    config = replace(config, relative=True, prior_proper=False)
    forward, backward = _both(*pair, config)
    assert (forward.expected > 0) == (backward.expected < 0)
    assert (forward.expected == 0) == (backward.expected == 0)


def _doubled(stat: Statistic) -> Statistic:
    """The statistic of every unit's data twice."""
    if isinstance(stat, SampleMean):
        return SampleMean(2 * stat.n, 2 * stat.sum, 2 * stat.sum_squares)
    if isinstance(stat, Proportion):
        return Proportion(2 * stat.n, 2 * stat.sum)
    if isinstance(stat, Ratio):
        return Ratio(
            2 * stat.n,
            _simple(_doubled(stat.numerator)),
            _simple(_doubled(stat.denominator)),
            2 * stat.sum_of_products,
        )
    return Cuped(
        2 * stat.n,
        _simple(_doubled(stat.post)),
        _simple(_doubled(stat.pre)),
        2 * stat.sum_of_products,
    )


def _simple(stat: Statistic) -> SampleMean | Proportion:
    assert isinstance(stat, SampleMean | Proportion)
    return stat


@FEW
@given(PAIRS, ENGINES, st.booleans())
def test_duplicating_all_data_leaves_means_and_effect_unchanged(
    pair: tuple[Statistic, Statistic], config: AnalysisSettings, relative: bool
) -> None:
    a, b = pair
    config = replace(config, relative=relative, prior_proper=False)
    once = analyze([("a", a), ("b", b)], config)
    twice = analyze([("a", _doubled(a)), ("b", _doubled(b))], config)
    assert [r.mean for r in twice] == [approx(r.mean) for r in once]
    assert [r.units for r in twice] == [2 * r.units for r in once]
    assume(once[1].error is None and twice[1].error is None)
    assert twice[1].expected == approx(once[1].expected)
    if not config.sequential or config.engine == "bayesian":
        # More data, a tighter interval (the confidence sequence is only asymptotically so).
        assert twice[1].ci[1] - twice[1].ci[0] < once[1].ci[1] - once[1].ci[0]


P_VALUES = st.lists(st.floats(0, 1), min_size=1, max_size=30)


@pytest.mark.parametrize("correction", ["holm-bonferroni", "benjamini-hochberg"])
@given(p_values=P_VALUES)
def test_corrections_only_raise_p_values_and_keep_their_order(
    correction: Correction, p_values: list[float]
) -> None:
    adjusted = adjust_p_values(p_values, correction)
    # p·m/(m - i) may round one ulp below p, in GrowthBook too.
    assert all(p <= q + 1e-15 and q <= 1 for p, q in zip(p_values, adjusted, strict=True))
    pairs = sorted(zip(p_values, adjusted, strict=True))
    assert all(x[1] <= y[1] for x, y in itertools.pairwise(pairs))


@given(P_VALUES)
def test_benjamini_hochberg_is_never_stricter_than_holm(p_values: list[float]) -> None:
    holm = adjust_p_values(p_values, "holm-bonferroni")
    bh = adjust_p_values(p_values, "benjamini-hochberg")
    assert all(b <= h + 1e-15 for b, h in zip(bh, holm, strict=True))


@FEW
@given(
    st.lists(st.tuples(st.integers(0, 10**6), st.floats(0.01, 1)), min_size=2, max_size=6),
    st.randoms(use_true_random=False),
    st.floats(0.1, 100),
)
def test_srm_ignores_the_order_of_arms_and_the_scale_of_weights(
    arms: list[tuple[int, float]], rnd: random.Random, scale: float
) -> None:
    units, weights = zip(*arms, strict=True)
    shuffled = list(arms)
    rnd.shuffle(shuffled)
    units2, weights2 = zip(*shuffled, strict=True)
    p = srm(units, weights).p_value
    assert srm(units2, [w * scale for w in weights2]).p_value == pytest.approx(
        p, rel=1e-9, abs=1e-15
    )
