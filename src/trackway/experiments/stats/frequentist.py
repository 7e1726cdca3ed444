"""Frequentist tests of an effect: Welch's t-test and asymptotic confidence sequences.

As gbstats' `frequentist/tests.py` (two-sided tests): the fixed-horizon test uses the
t distribution with Welch-Satterthwaite df; the sequential one the always-valid
confidence sequence of Waudby-Smith et al. 2023 (arXiv 2103.06476v7, eqs. 9 and 155),
which may be looked at any number of times without inflating the false-positive rate.
"""

import math
from dataclasses import dataclass

from scipy import stats

from trackway.experiments.stats.effect import Effect


@dataclass(frozen=True)
class FrequentistResult:
    """A two-sided p-value against no effect and the (1 - alpha) interval of the effect."""

    p_value: float
    ci: tuple[float, float]


def t_test(effect: Effect, alpha: float) -> FrequentistResult:
    """Welch's two-sided t-test."""
    t = effect.estimate / effect.standard_error
    p_value = 2 * float(stats.t.sf(abs(t), effect.dof))
    halfwidth = float(stats.t.ppf(1 - alpha / 2, effect.dof)) * effect.standard_error
    return FrequentistResult(p_value, (effect.estimate - halfwidth, effect.estimate + halfwidth))


def sequential_test(effect: Effect, alpha: float, tuning: float) -> FrequentistResult:
    """The two-sided asymptotic confidence sequence tuned to be tightest near `tuning` units."""
    n = effect.units
    rho2 = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning
    spread = n * rho2 + 1
    s2 = effect.standard_error**2 * n
    halfwidth = math.sqrt(s2) * math.sqrt(
        2 * spread * math.log(math.sqrt(spread) / alpha) / (n**2 * rho2)
    )
    # p = 1/E with E the e-value (eq. 155); in logs, as E overflows for clear effects.
    z2 = effect.estimate**2 * n / effect.standard_error**2
    log_evalue = rho2 * z2 / (2 * spread) - math.log(spread) / 2
    p_value = min(1.0, math.exp(-log_evalue))
    return FrequentistResult(p_value, (effect.estimate - halfwidth, effect.estimate + halfwidth))
