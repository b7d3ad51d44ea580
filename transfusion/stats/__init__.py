"""Statistics of test scores, in metric units (AUC 0..1; 0.005 = 0.5 AUC points): metrics per
task kind (:mod:`.metrics`), bootstrap intervals and paired differences over test images
(:mod:`.bootstrap`), DeLong's test (:mod:`.delong`) and verdicts within an equivalence margin
(:mod:`.verdicts`)."""

from .bootstrap import BootstrapResult, PairedDifference, bootstrap, bootstrap_ci, paired_difference
from .delong import DeLongResult, delong_test
from .metrics import (
    METRICS,
    Metric,
    UndefinedMetricError,
    evaluate,
    scores_from_logits,
    steps_to_target,
)
from .seeds import MIN_SEEDS, SeedEstimate, pool_seed_variance, seed_estimate
from .verdicts import (
    UNJUDGED,
    Judgement,
    Verdict,
    equivalence_verdict,
    family_level,
    judge,
    non_inferior,
)

__all__ = [
    "METRICS",
    "MIN_SEEDS",
    "UNJUDGED",
    "Judgement",
    "SeedEstimate",
    "family_level",
    "judge",
    "non_inferior",
    "pool_seed_variance",
    "seed_estimate",
    "BootstrapResult",
    "DeLongResult",
    "Metric",
    "PairedDifference",
    "UndefinedMetricError",
    "Verdict",
    "bootstrap",
    "bootstrap_ci",
    "delong_test",
    "equivalence_verdict",
    "evaluate",
    "paired_difference",
    "scores_from_logits",
    "steps_to_target",
]
