"""The clinical measures of one run, from its validation and test predictions: calibration
(:mod:`.calibration`) before and after temperature scaling fitted on validation, and the
operating points (:mod:`.operating`) chosen on validation and read on test. No training: every
finished run stores both splits' scores."""

from __future__ import annotations

from typing import Any

import numpy as np

from transfusion.data.base import TaskSpec

from .calibration import DEFAULT_BINS, apply_temperature, calibration, fit_temperature
from .operating import operating_points

DEFAULT_SENSITIVITY = 0.90
DEFAULT_SPECIFICITY = 0.90


def _triple(interval: Any) -> list[float | None]:
    return [interval.value, interval.low, interval.high]


def clinical_measures(task: TaskSpec, val: dict[str, Any] | None, test: dict[str, Any], *,
                      sensitivity: float = DEFAULT_SENSITIVITY, specificity: float = DEFAULT_SPECIFICITY,
                      n_bins: int = DEFAULT_BINS, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """JSON-ready measures of one run. ``val`` / ``test``: prediction dicts (``scores``,
    ``targets``, optional ``mask``); without ``val`` (runs stored before it was kept) there is no
    temperature and no operating point. Keys: ``n_bins``; ``calibration`` and
    ``calibration_scaled`` (after temperature scaling): ``{measure: [value, low, high]}``;
    ``temperature``; ``sensitivity_target``, ``specificity_target``; ``operating_points``."""
    mask = test.get("mask")
    cal = calibration(task, test["scores"], test["targets"], mask, n_bins=n_bins, n_boot=n_boot, seed=seed)
    out: dict[str, Any] = {"n_bins": n_bins, "calibration": {k: _triple(v) for k, v in cal.items()},
                           "temperature": None, "calibration_scaled": None, "sensitivity_target": sensitivity,
                           "specificity_target": specificity, "operating_points": []}
    if val is None or not len(np.asarray(val["scores"])):
        return out
    t = fit_temperature(task, val["scores"], val["targets"], val.get("mask"))
    scaled = calibration(task, apply_temperature(task, test["scores"], t), test["targets"], mask, n_bins=n_bins,
                         n_boot=n_boot, seed=seed)
    out.update(temperature=t, calibration_scaled={k: _triple(v) for k, v in scaled.items()},
               operating_points=[p.to_dict() for p in operating_points(task, val, test, sensitivity=sensitivity,
                                                                       specificity=specificity)])
    return out
