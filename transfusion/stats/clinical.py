"""The clinical measures of one run, from its validation and test predictions: calibration
(:mod:`.calibration`: plug-in ECE, debiased CE with its noise floor, Brier, NLL) before and after
temperature scaling fitted on validation, and the operating points (:mod:`.operating`) chosen on
validation with one-sided confidence and read on test. No training: every finished run stores
both splits' scores."""

from __future__ import annotations

from typing import Any

import numpy as np

from transfusion.data.base import TaskSpec

from .calibration import (
    DEFAULT_BINS,
    apply_temperature,
    calibration,
    consistency_ce2,
    fit_temperature,
    noise_floor,
)
from .operating import DEFAULT_CONFIDENCE, choose_thresholds, operating_points

DEFAULT_SENSITIVITY = 0.90
DEFAULT_SPECIFICITY = 0.90


def _triple(interval: Any) -> list[float | None]:
    return [interval.value, interval.low, interval.high]


def _calibrated(task: TaskSpec, scores: Any, test: dict[str, Any], *, n_bins: int, n_boot: int,
                seed: int) -> tuple[dict[str, list[float | None]], float]:
    """({measure: [value, low, high]}, CE noise floor) of ``scores`` against the test targets."""
    mask = test.get("mask")
    cal = calibration(task, scores, test["targets"], mask, n_bins=n_bins, n_boot=n_boot, seed=seed)
    floor = noise_floor(consistency_ce2(task, scores, mask, n_bins=n_bins, seed=seed))
    return {k: _triple(v) for k, v in cal.items()}, floor


def clinical_measures(task: TaskSpec, val: dict[str, Any] | None, test: dict[str, Any], *,
                      sensitivity: float = DEFAULT_SENSITIVITY, specificity: float = DEFAULT_SPECIFICITY,
                      confidence: float = DEFAULT_CONFIDENCE, n_bins: int = DEFAULT_BINS, n_boot: int = 1000,
                      seed: int = 0) -> dict[str, Any]:
    """JSON-ready measures of one run. ``val`` / ``test``: prediction dicts (``scores``,
    ``targets``, optional ``mask``); without ``val`` (runs stored before it was kept) there is no
    temperature and no operating point. Keys: ``n_bins``; ``calibration`` and
    ``calibration_scaled`` (after temperature scaling): ``{measure: [value, low, high]}`` for
    ``ece`` (plug-in, no interval), ``ce`` (debiased root-mean-square calibration error), ``brier``,
    ``nll`` (probability units; NLL in nats); ``ce_floor`` / ``ce_scaled_floor``: the CE a
    perfectly calibrated model stays under at this test size (95th percentile); ``temperature``;
    ``sensitivity_target``, ``specificity_target``, ``threshold_confidence``;
    ``operating_points`` (:meth:`~.operating.OperatingPoint.to_dict`); ``operating_skipped``:
    why a target got no threshold (too few validation cases)."""
    cal, floor = _calibrated(task, test["scores"], test, n_bins=n_bins, n_boot=n_boot, seed=seed)
    out: dict[str, Any] = {"n_bins": n_bins, "calibration": cal, "ce_floor": floor, "temperature": None,
                           "calibration_scaled": None, "ce_scaled_floor": None, "sensitivity_target": sensitivity,
                           "specificity_target": specificity, "threshold_confidence": confidence,
                           "operating_points": [], "operating_skipped": []}
    if val is None or not len(np.asarray(val["scores"])):
        return out
    t = fit_temperature(task, val["scores"], val["targets"], val.get("mask"))
    scaled, scaled_floor = _calibrated(task, apply_temperature(task, test["scores"], t), test, n_bins=n_bins,
                                       n_boot=n_boot, seed=seed)
    skipped = [f"{c.label}: {c.reason}" for c in choose_thresholds(task, val, sensitivity=sensitivity,
                                                                   specificity=specificity, confidence=confidence)
               if c.threshold is None]
    out.update(temperature=t, calibration_scaled=scaled, ce_scaled_floor=scaled_floor, operating_skipped=skipped,
               operating_points=[p.to_dict() for p in operating_points(task, val, test, sensitivity=sensitivity,
                                                                       specificity=specificity,
                                                                       confidence=confidence)])
    return out
