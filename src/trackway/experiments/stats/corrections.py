"""Multiple-testing corrections of p-values, as GrowthBook applies them in its app.

From `packages/shared/src/experiments/experiments.ts` (`adjustPValuesHolmBonferroni`,
`adjustPValuesBenjaminiHochberg`, `getAdjustedCI`): Holm-Bonferroni bounds the chance
of any false positive (family-wise error rate), Benjamini-Hochberg the expected share
of false positives among the significant results (false discovery rate).
"""

import math
from collections.abc import Sequence
from typing import Literal, get_args

from scipy import stats

Correction = Literal["none", "holm-bonferroni", "benjamini-hochberg"]
CORRECTIONS: tuple[Correction, ...] = get_args(Correction)


def adjust_p_values(p_values: Sequence[float], correction: Correction) -> list[float]:
    """The adjusted p-values, in the order given."""
    if correction not in CORRECTIONS:
        raise ValueError(f"unknown correction {correction!r}; use one of {', '.join(CORRECTIONS)}")
    m = len(p_values)
    if correction == "none" or m == 0:
        return list(p_values)
    adjusted = [0.0] * m
    if correction == "holm-bonferroni":
        # Ascending: p·(m - i), kept monotone by a running maximum.
        order = sorted(range(m), key=lambda i: p_values[i])
        running = 0.0
        for rank, i in enumerate(order):
            running = max(running, min(p_values[i] * (m - rank), 1.0))
            adjusted[i] = running
    else:
        # Descending: p·m/(m - i), kept monotone by a running minimum.
        order = sorted(range(m), key=lambda i: p_values[i], reverse=True)
        running = 1.0
        for rank, i in enumerate(order):
            running = min(running, min(p_values[i] * m / (m - rank), 1.0))
            adjusted[i] = running
    return adjusted


def adjusted_ci(
    p_value_adjusted: float, estimate: float, ci: tuple[float, float], alpha: float
) -> tuple[float, float]:
    """The interval widened to match an adjusted p-value (never narrower than `ci`).

    The standard error is backed out of the estimate and the adjusted p-value by the
    normal approximation: SE = |estimate| / z(1 - p_adj/2), half-width z(1 - alpha/2)·SE.
    """
    if p_value_adjusted > 0.999999:
        return (-math.inf, math.inf)
    if not estimate:
        return ci
    z_alpha = float(stats.norm.ppf(1 - alpha / 2))
    width = z_alpha * abs(estimate / float(stats.norm.ppf(1 - p_value_adjusted / 2)))
    low, high = estimate - width, estimate + width
    return (low, high) if low < ci[0] and high > ci[1] else ci
