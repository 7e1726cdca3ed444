"""Sufficient statistics of one metric in one variation, as the SQL reduces them.

Means and per-unit variances follow GrowthBook's gbstats (`models/statistics.py`):
a proportion's variance is m(1 - m) (no n - 1), a mean's is the sample variance, a
ratio's comes from the delta method, and a CUPED statistic is adjusted with a θ
pooled over the two arms being compared.
"""

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class SampleMean:
    """A count or revenue metric: units n, Σx and Σx² over the units."""

    n: int
    sum: float
    sum_squares: float

    def __post_init__(self) -> None:
        _check_numbers(self.n, sum=self.sum, sum_squares=self.sum_squares)

    @property
    def mean(self) -> float:
        return self.sum / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        """Per-unit sample variance (n - 1 denominator); 0 with fewer than two units."""
        if self.n <= 1:
            return 0.0
        return (self.sum_squares - self.sum**2 / self.n) / (self.n - 1)


@dataclass(frozen=True)
class Proportion:
    """A conversion metric: units n and the number of them that converted."""

    n: int
    sum: float

    def __post_init__(self) -> None:
        _check_numbers(self.n, sum=self.sum)
        if not 0 <= self.sum <= self.n:
            raise ValueError(f"a proportion's sum must be within 0..n ({self.n}), not {self.sum}")

    @property
    def sum_squares(self) -> float:
        """Σx² of 0/1 values is Σx."""
        return self.sum

    @property
    def mean(self) -> float:
        return self.sum / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        """Bernoulli variance m(1 - m)."""
        return self.mean * (1 - self.mean)


Simple = SampleMean | Proportion
"""The statistics a ratio or CUPED statistic is built from."""


@dataclass(frozen=True)
class Ratio:
    """A ratio metric Σnumerator / Σdenominator (e.g. revenue per order) over n units."""

    n: int
    numerator: Simple
    denominator: Simple
    sum_of_products: float
    """Σ numerator·denominator over the units."""

    def __post_init__(self) -> None:
        _check_numbers(self.n, sum_of_products=self.sum_of_products)
        _check_parts(self.n, numerator=self.numerator, denominator=self.denominator)

    @property
    def mean(self) -> float:
        if self.denominator.sum == 0:
            return 0.0
        return self.numerator.sum / self.denominator.sum

    @property
    def variance(self) -> float:
        """Per-unit variance of the ratio by the delta method."""
        if self.denominator.mean == 0 or self.n <= 1:
            return 0.0
        return variance_of_ratio(
            self.numerator.mean,
            self.numerator.variance,
            self.denominator.mean,
            self.denominator.variance,
            covariance(self.n, self.numerator, self.denominator, self.sum_of_products),
        )


@dataclass(frozen=True)
class Cuped:
    """A metric with its pre-exposure value as covariate (CUPED regression adjustment).

    `post` and `pre` are the metric after and before first exposure over the same n
    units, of the same kind; `sum_of_products` is Σ post·pre.
    """

    n: int
    post: Simple
    pre: Simple
    sum_of_products: float

    def __post_init__(self) -> None:
        _check_numbers(self.n, sum_of_products=self.sum_of_products)
        _check_parts(self.n, post=self.post, pre=self.pre)
        if type(self.post) is not type(self.pre):
            raise TypeError("a CUPED statistic's post and pre must be of the same kind")

    @property
    def mean(self) -> float:
        """The unadjusted mean: the metric after exposure."""
        return self.post.mean

    @property
    def covariance(self) -> float:
        return covariance(self.n, self.post, self.pre, self.sum_of_products)

    def adjusted_mean(self, theta: float) -> float:
        return self.post.mean - theta * self.pre.mean

    def adjusted_variance(self, theta: float) -> float:
        """Per-unit variance of post - θ·pre."""
        if self.n <= 1:
            return 0.0
        return self.post.variance + theta**2 * self.pre.variance - 2 * theta * self.covariance


Statistic = SampleMean | Proportion | Ratio | Cuped
"""What the SQL reduces one metric in one variation to."""


def covariance(n: int, a: Simple, b: Simple, sum_of_products: float) -> float:
    """Covariance of two per-unit values; two proportions use n, others n - 1 (as gbstats)."""
    if n <= 1:
        return 0.0
    if isinstance(a, Proportion) and isinstance(b, Proportion):
        return sum_of_products / n - a.sum * b.sum / n**2
    return (sum_of_products - a.sum * b.sum / n) / (n - 1)


def variance_of_ratio(
    mean_m: float, var_m: float, mean_d: float, var_d: float, cov_m_d: float
) -> float:
    """Delta-method variance of M / D from the moments of M and D."""
    if mean_d == 0:
        return 0.0
    return var_m / mean_d**2 + var_d * mean_m**2 / mean_d**4 - 2 * cov_m_d * mean_m / mean_d**3


def pooled_theta(a: Cuped, b: Cuped) -> float:
    """θ = cov(post, pre) / var(pre) over both arms pooled; 0 when either pooled variance is 0."""
    n = a.n + b.n
    post = _pool(a.post, b.post, n)
    pre = _pool(a.pre, b.pre, n)
    if pre.variance == 0 or post.variance == 0:
        return 0.0
    return covariance(n, post, pre, a.sum_of_products + b.sum_of_products) / pre.variance


def _pool(a: Simple, b: Simple, n: int) -> Simple:
    if isinstance(a, Proportion) and isinstance(b, Proportion):
        return Proportion(n=n, sum=a.sum + b.sum)
    if isinstance(a, SampleMean) and isinstance(b, SampleMean):
        return SampleMean(n=n, sum=a.sum + b.sum, sum_squares=a.sum_squares + b.sum_squares)
    raise TypeError("a metric's statistics must be of the same kind in every variation")


def _check_numbers(n: int, **sums: float) -> None:
    if n < 0:
        raise ValueError(f"units must not be negative, not {n}")
    for name, value in sums.items():
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, not {value}")


def _check_parts(n: int, **parts: Simple) -> None:
    for name, part in parts.items():
        if part.n != n:
            raise ValueError(f"{name} covers {part.n} units, not the statistic's {n}")
