"""The Bayesian view of an effect: a Gaussian posterior, chance to win, risk, interval.

As gbstats' `EffectBayesianABTest` (`bayesian/tests.py`): the likelihood of the effect
is N(estimate, SE²); a proper Gaussian prior, stated on the relative scale, is combined
with it by precision weighting, an improper one leaves the likelihood as posterior.
"""

from dataclasses import dataclass

from scipy import stats

from trackway.experiments.stats.effect import Effect

# Beyond 37 standard deviations Φ(0) is exactly 0 or 1 in float64: the risk is the
# analytic limit (gbstats does the same, avoiding a degenerate truncated normal).
_FAR_TAIL = 37


@dataclass(frozen=True)
class Prior:
    """A Gaussian prior on the relative effect; `proper=False` means flat (no prior)."""

    mean: float
    stddev: float
    proper: bool


@dataclass(frozen=True)
class BayesianResult:
    """The posterior of the effect and the decisions read from it."""

    mean: float
    stddev: float
    chance_to_win: float
    ci: tuple[float, float]
    risk: tuple[float, float]
    """Expected loss of choosing (control, treatment)."""


def posterior(
    effect: Effect, prior: Prior, *, relative: bool, alpha: float, inverse: bool
) -> BayesianResult:
    """The posterior of `effect`; `inverse` metrics (lower is better) win below zero."""
    data_precision = 1 / effect.standard_error**2
    if prior.proper:
        # The prior is relative; an absolute effect scales it by the control mean.
        scale = 1.0 if relative else abs(effect.control_mean)
        prior_mean, prior_variance = prior.mean * scale, (prior.stddev * scale) ** 2
        precision = data_precision + 1 / prior_variance
        mean = (effect.estimate * data_precision + prior_mean / prior_variance) / precision
    else:
        precision, mean = data_precision, effect.estimate
    stddev = (1 / precision) ** 0.5
    chance_to_win = float(stats.norm.sf(0, mean, stddev))
    low, high = stats.norm.ppf([alpha / 2, 1 - alpha / 2], mean, stddev)
    risk_control, risk_treatment = _risk(mean, stddev)
    if inverse:
        chance_to_win = 1 - chance_to_win
        risk_control, risk_treatment = risk_treatment, risk_control
    return BayesianResult(
        mean=mean,
        stddev=stddev,
        chance_to_win=chance_to_win,
        ci=(float(low), float(high)),
        risk=(risk_control, risk_treatment),
    )


def _risk(mean: float, stddev: float) -> tuple[float, float]:
    """(E[max(Δ, 0)], E[max(-Δ, 0)]): what choosing control, or treatment, loses on average."""
    if abs(mean / stddev) > _FAR_TAIL:
        return max(mean, 0.0), max(-mean, 0.0)
    p_negative = float(stats.norm.cdf(0, mean, stddev))
    zero = -mean / stddev
    mean_positive = float(stats.truncnorm.mean(zero, float("inf"), loc=mean, scale=stddev))
    mean_negative = float(stats.truncnorm.mean(float("-inf"), zero, loc=mean, scale=stddev))
    return (1 - p_negative) * mean_positive, -p_negative * mean_negative
