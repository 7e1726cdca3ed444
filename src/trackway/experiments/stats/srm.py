"""Sample ratio mismatch: does the observed split of units match the configured one?

A χ² goodness-of-fit test as gbstats' `check_srm`; a mismatch (p < 0.001, GrowthBook's
`DEFAULT_SRM_THRESHOLD`) means the assignment or the exposure logging is broken and
the experiment's results should not be trusted.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats

SRM_THRESHOLD = 0.001


@dataclass(frozen=True)
class Srm:
    """The χ² p-value of the observed split and whether it flags a mismatch."""

    p_value: float
    flagged: bool


def srm(units: Sequence[int], weights: Sequence[float]) -> Srm:
    """Test observed `units` per variation against the expected split `weights`."""
    if len(units) != len(weights):
        raise ValueError(f"{len(units)} unit counts but {len(weights)} weights")
    if len(units) < 2:
        raise ValueError("a sample ratio test needs at least two variations")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError("weights must not be negative and must not all be 0")
    if any(n < 0 for n in units):
        raise ValueError("unit counts must not be negative")
    total = sum(units)
    if total == 0:
        return Srm(p_value=1.0, flagged=False)
    total_weight = sum(weights)
    chi2 = 0.0
    for observed, weight in zip(units, weights, strict=True):
        # An arm with weight 0 expects nobody; gbstats leaves it out of the sum (but not df).
        if weight > 0:
            expected = weight / total_weight * total
            chi2 += (observed - expected) ** 2 / expected
    p_value = float(stats.chi2.sf(chi2, len(units) - 1))
    return Srm(p_value=p_value, flagged=p_value < SRM_THRESHOLD)
