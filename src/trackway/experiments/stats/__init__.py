"""The statistics engine of experiments, matching GrowthBook's gbstats number for number.

Give `analyze` each variation's sufficient statistics (control first) and settings;
`srm` checks the split of units. docs/experiments.md ("Statistics") explains the numbers.
"""

from trackway.experiments.stats.analysis import AnalysisSettings, VariationResult, analyze
from trackway.experiments.stats.corrections import Correction, adjust_p_values, adjusted_ci
from trackway.experiments.stats.srm import SRM_THRESHOLD, Srm, srm
from trackway.experiments.stats.statistics import (
    Cuped,
    Proportion,
    Ratio,
    SampleMean,
    Statistic,
)

__all__ = [
    "SRM_THRESHOLD",
    "AnalysisSettings",
    "Correction",
    "Cuped",
    "Proportion",
    "Ratio",
    "SampleMean",
    "Srm",
    "Statistic",
    "VariationResult",
    "adjust_p_values",
    "adjusted_ci",
    "analyze",
    "srm",
]
