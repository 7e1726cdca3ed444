"""The effect of a treatment against the control: estimate, standard error, Welch df.

This is gbstats' `EffectMoments` (`models/tests.py`): the absolute difference of the
(CUPED-adjusted) means, or the relative one divided by the control's unadjusted mean
with a delta-method variance that assumes the arms independent.
"""

import math
from dataclasses import dataclass

from trackway.experiments.stats.statistics import Cuped, Statistic, pooled_theta, variance_of_ratio

ZERO_VARIANCE = "ZERO_NEGATIVE_VARIANCE"
BASELINE_ZERO = "ZERO_NEGATIVE_BASELINE_VARIATION"
MIXED_STATISTICS = "MIXED_STATISTIC_TYPES"


class Inestimable(Exception):
    """The data cannot give an effect; `code` is gbstats' error message for the case."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Effect:
    """The estimated difference treatment - control and what the tests need of it."""

    estimate: float
    standard_error: float
    dof: float
    """Welch-Satterthwaite degrees of freedom."""
    units: int
    """Units in both arms."""
    control_mean: float
    """The control's unadjusted mean (scales a relative prior to an absolute one)."""


def effect(control: Statistic, treatment: Statistic, *, relative: bool) -> Effect:
    """The effect of `treatment` over `control`; raises Inestimable when there is none."""
    try:
        return _effect(control, treatment, relative=relative)
    except ZeroDivisionError:
        # Means or variances so small that their squares underflow float64 (below about
        # 1e-160) carry no usable variance; gbstats would fail here too.
        raise Inestimable(ZERO_VARIANCE) from None


def _effect(control: Statistic, treatment: Statistic, *, relative: bool) -> Effect:
    if type(control) is not type(treatment):
        raise Inestimable(MIXED_STATISTICS)
    theta = 0.0
    if isinstance(control, Cuped) and isinstance(treatment, Cuped):
        theta = pooled_theta(control, treatment)
        if theta == 0:
            # No variance to regress on: gbstats silently analyses the post statistics.
            return _effect(control.post, treatment.post, relative=relative)
    var_a, var_b = _variance(control, theta), _variance(treatment, theta)
    n_a, n_b = control.n, treatment.n
    # Fewer than two units leave no variance (and no Welch df); a proportion with one
    # unit and a fractional sum would otherwise slip through.
    if var_a <= 0 or var_b <= 0 or n_a <= 1 or n_b <= 1:
        raise Inestimable(ZERO_VARIANCE)
    mean_a, mean_b = _mean(control, theta), _mean(treatment, theta)
    if isinstance(control, Cuped) and isinstance(treatment, Cuped) and relative:
        variance = _relative_cuped_variance(control, treatment, theta)
    elif relative:
        variance = variance_of_ratio(mean_b, var_b / n_b, control.mean, var_a / n_a, 0)
    else:
        variance = var_b / n_b + var_a / n_a
    if variance <= 0:
        raise Inestimable(ZERO_VARIANCE)
    if mean_a == 0 or control.mean == 0:
        raise Inestimable(BASELINE_ZERO)
    difference = mean_b - mean_a
    dof = (var_b / n_b + var_a / n_a) ** 2 / (
        var_b**2 / (n_b**2 * (n_b - 1)) + var_a**2 / (n_a**2 * (n_a - 1))
    )
    return Effect(
        estimate=difference / abs(control.mean) if relative else difference,
        standard_error=math.sqrt(variance),
        dof=dof,
        units=n_a + n_b,
        control_mean=control.mean,
    )


def _mean(stat: Statistic, theta: float) -> float:
    return stat.adjusted_mean(theta) if isinstance(stat, Cuped) else stat.mean


def _variance(stat: Statistic, theta: float) -> float:
    return stat.adjusted_variance(theta) if isinstance(stat, Cuped) else stat.variance


def _relative_cuped_variance(a: Cuped, b: Cuped, theta: float) -> float:
    """gbstats' `frequentist_variance_relative_cuped`: the delta method on the adjusted means."""
    mean_a = a.post.mean
    if mean_a == 0:
        return 0.0
    v_treatment = b.adjusted_variance(theta) / (b.n * mean_a**2)
    ratio = b.post.mean / mean_a
    v_control = (
        a.post.variance * ratio**2 - 2 * theta * a.covariance * ratio + theta**2 * a.pre.variance
    ) / (a.n * mean_a**2)
    return v_treatment + v_control
