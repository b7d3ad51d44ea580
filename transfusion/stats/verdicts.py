"""Non-inferiority of a deployment variant (int8, fp16) against the model it was made from, on
the same test rows. Verdicts over seeds live in :mod:`.comparisons`."""

from __future__ import annotations


def non_inferior(task, scores, reference_scores, targets, mask=None, *, margin: float, n_boot: int = 1000,
                 seed: int = 0) -> dict:
    """Is a variant of a model (int8, fp16) no worse than the model it was made from, on the same
    test rows? ``scores`` are the variant's, ``reference_scores`` the original's.

    Returns ``test_auc`` (the variant's), ``auc_diff`` (variant − original), its 95%
    paired-bootstrap interval ``auc_diff_low`` / ``auc_diff_high``, ``margin`` and ``passed``:
    the interval's lower end is above −``margin`` (AUC units; 0.005 = 0.5 AUC points; 0 tolerates
    no loss at all).
    """
    from .bootstrap import paired_difference
    from .metrics import evaluate

    if not 0.0 <= float(margin) < 1.0:
        raise ValueError(f"margin is in AUC units (0.005 = 0.5 AUC points) and must be in [0, 1), got {margin}")
    auc = evaluate(task, scores, targets, mask)["auc"]
    d = paired_difference(task, scores, reference_scores, targets, mask, n_boot=n_boot, seed=seed)
    return {"test_auc": auc, "auc_diff": d.diff, "auc_diff_low": d.ci_low, "auc_diff_high": d.ci_high,
            "margin": float(margin), "passed": bool(d.ci_low > -float(margin))}
