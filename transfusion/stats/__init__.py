"""Statistics of test scores, in metric units (AUC 0..1; 0.005 = 0.5 AUC points): metrics per
task kind (:mod:`.metrics`), bootstrap intervals and paired differences over test images
(:mod:`.bootstrap`), DeLong's test (:mod:`.delong`), estimates over seeds (:mod:`.seeds`), the
comparison engine every verdict table uses (:mod:`.comparisons`) and its coverage by simulation
(:mod:`.coverage`), calibration, operating points, crossover and planning."""

from .bootstrap import BootstrapResult, PairedDifference, bootstrap, bootstrap_ci, paired_difference
from .comparisons import (
    ALPHA,
    BORDERLINE,
    UNJUDGED,
    VERDICTS,
    Arm,
    Judgement,
    judge,
    judge_family,
    moved_beyond_noise,
    paired_estimate,
    verdict_label,
    verdict_of,
)
from .delong import DeLongResult, delong_test
from .metrics import (
    METRICS,
    Metric,
    UndefinedMetricError,
    evaluate,
    scores_from_logits,
    steps_to_target,
)
from .seeds import MIN_SEEDS, SeedEstimate, difference, seed_estimate
from .verdicts import non_inferior

__all__ = [
    "ALPHA",
    "BORDERLINE",
    "METRICS",
    "MIN_SEEDS",
    "UNJUDGED",
    "VERDICTS",
    "Arm",
    "BootstrapResult",
    "DeLongResult",
    "Judgement",
    "Metric",
    "PairedDifference",
    "SeedEstimate",
    "UndefinedMetricError",
    "bootstrap",
    "bootstrap_ci",
    "delong_test",
    "difference",
    "evaluate",
    "judge",
    "judge_family",
    "moved_beyond_noise",
    "non_inferior",
    "paired_difference",
    "paired_estimate",
    "scores_from_logits",
    "seed_estimate",
    "steps_to_target",
    "verdict_label",
    "verdict_of",
]
