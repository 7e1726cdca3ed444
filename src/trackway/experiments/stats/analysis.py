"""Analyse one metric across an experiment's variations against the control.

Each treatment is compared with the control separately (as GrowthBook does); the
frequentist p-values of all treatment arms are then corrected together when asked.
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal, get_args

from trackway.experiments.stats.bayesian import Prior, posterior
from trackway.experiments.stats.corrections import (
    CORRECTIONS,
    Correction,
    adjust_p_values,
    adjusted_ci,
)
from trackway.experiments.stats.effect import Inestimable, effect
from trackway.experiments.stats.frequentist import sequential_test, t_test
from trackway.experiments.stats.statistics import Statistic

Engine = Literal["frequentist", "bayesian"]


@dataclass(frozen=True)
class AnalysisSettings:
    """How to analyse; the defaults are GrowthBook's (`shared/src/constants.ts`)."""

    engine: Engine = "bayesian"
    sequential: bool = False
    """Frequentist only: always-valid confidence sequences instead of a fixed-horizon test."""
    sequential_tuning: int = 5000
    """The number of units the confidence sequence is tightest at (N*)."""
    alpha: float = 0.05
    """1 - the confidence (or credible) level; also the significance threshold."""
    relative: bool = True
    """Relative uplift (treatment - control) / |control|; otherwise the absolute difference."""
    correction: Correction = "none"
    """Frequentist only: adjust the treatment arms' p-values for multiple comparisons."""
    prior_mean: float = 0.0
    """Bayesian prior on the relative effect: mean,"""
    prior_stddev: float = 0.3
    """standard deviation (GrowthBook's `DEFAULT_PROPER_PRIOR_STDDEV`)"""
    prior_proper: bool = False
    """and whether it is used at all (off: a flat prior, the posterior is the likelihood)."""
    inverse: bool = False
    """Lower is better (e.g. load time): the chance to win and risk look the other way."""

    def __post_init__(self) -> None:
        if self.engine not in get_args(Engine):
            raise ValueError(f"unknown engine {self.engine!r}; use frequentist or bayesian")
        if self.correction not in CORRECTIONS:
            raise ValueError(
                f"unknown correction {self.correction!r}; use one of {', '.join(CORRECTIONS)}"
            )
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be between 0 and 1, not {self.alpha}")
        if self.sequential_tuning <= 0:
            raise ValueError(f"sequential_tuning must be positive, not {self.sequential_tuning}")
        if self.prior_stddev <= 0:
            raise ValueError(f"prior_stddev must be positive, not {self.prior_stddev}")


@dataclass(frozen=True)
class VariationResult:
    """One variation's numbers; the control's carry no comparison (expected 0)."""

    variation: str
    units: int
    mean: float
    """The unadjusted mean of the metric (conversion rate, mean value or ratio)."""
    expected: float
    """The uplift over the control (posterior mean for Bayesian); 0 for the control."""
    ci: tuple[float, float]
    """Confidence interval (frequentist) or credible interval (Bayesian) of the uplift."""
    p_value: float | None
    p_value_adjusted: float | None
    """The p-value after the correction over all treatment arms; None without correction."""
    chance_to_win: float | None
    risk: tuple[float, float] | None
    """Expected loss of choosing (control, treatment), in the uplift's unit."""
    error: str | None
    """Why no effect could be estimated; the numbers are then gbstats' neutral default."""
    standard_error: float = 0.0
    """The standard deviation of the uplift (of its posterior, for Bayesian)."""
    ci_adjusted: tuple[float, float] | None = None
    """The interval widened to the adjusted p-value; None without correction."""


def analyze(
    variations: Sequence[tuple[str, Statistic]], settings: AnalysisSettings = AnalysisSettings()
) -> list[VariationResult]:
    """Compare every variation with `variations[0]`, the control."""
    if not variations:
        raise ValueError("an analysis needs at least the control variation")
    (control_name, control), *treatments = variations
    results = [
        VariationResult(
            variation=control_name,
            units=control.n,
            mean=control.mean,
            expected=0.0,
            ci=(0.0, 0.0),
            p_value=None,
            p_value_adjusted=None,
            chance_to_win=None,
            risk=None,
            error=None,
        )
    ]
    results += [_compare(name, control, stat, settings) for name, stat in treatments]
    if settings.engine == "frequentist" and settings.correction != "none" and treatments:
        results[1:] = _corrected(results[1:], settings)
    return results


def _compare(
    name: str, control: Statistic, treatment: Statistic, settings: AnalysisSettings
) -> VariationResult:
    frequentist = settings.engine == "frequentist"
    try:
        estimate = effect(control, treatment, relative=settings.relative)
    except Inestimable as no_effect:
        return VariationResult(
            variation=name,
            units=treatment.n,
            mean=treatment.mean,
            expected=0.0,
            ci=(0.0, 0.0),
            p_value=1.0 if frequentist else None,
            p_value_adjusted=None,
            chance_to_win=None if frequentist else 0.5,
            risk=None if frequentist else (0.0, 0.0),
            error=no_effect.code,
        )
    if frequentist:
        test = (
            sequential_test(estimate, settings.alpha, settings.sequential_tuning)
            if settings.sequential
            else t_test(estimate, settings.alpha)
        )
        return VariationResult(
            variation=name,
            units=treatment.n,
            mean=treatment.mean,
            expected=estimate.estimate,
            ci=test.ci,
            p_value=test.p_value,
            p_value_adjusted=None,
            chance_to_win=None,
            risk=None,
            error=None,
            standard_error=estimate.standard_error,
        )
    prior = Prior(settings.prior_mean, settings.prior_stddev, settings.prior_proper)
    belief = posterior(
        estimate, prior, relative=settings.relative, alpha=settings.alpha, inverse=settings.inverse
    )
    return VariationResult(
        variation=name,
        units=treatment.n,
        mean=treatment.mean,
        expected=belief.mean,
        ci=belief.ci,
        p_value=None,
        p_value_adjusted=None,
        chance_to_win=belief.chance_to_win,
        risk=belief.risk,
        error=None,
        standard_error=belief.stddev,
    )


def _corrected(
    treatments: list[VariationResult], settings: AnalysisSettings
) -> list[VariationResult]:
    p_values = [r.p_value if r.p_value is not None else 1.0 for r in treatments]
    adjusted = adjust_p_values(p_values, settings.correction)
    return [
        replace(
            r,
            p_value_adjusted=p,
            ci_adjusted=adjusted_ci(p, r.expected, r.ci, settings.alpha),
        )
        for r, p in zip(treatments, adjusted, strict=True)
    ]
