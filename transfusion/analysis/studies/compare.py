"""Per-stage similarity of two checkpoint files of the same architecture (``transfusion
analyze similarity``): the comparison behind the studies, outside a results store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transfusion.analysis.activations import probe_indices
from transfusion.analysis.stage_similarity import pooled_activations, stage_similarities
from transfusion.core.runtime import Runtime
from transfusion.data import load_dataset
from transfusion.transfer.checkpoint import load_checkpoint, model_from_checkpoint

__all__ = ["compare_checkpoints"]


def compare_checkpoints(
    checkpoint_a: str | Path,
    checkpoint_b: str | Path,
    data: str,
    *,
    method: str = "svcca",
    probe: int | None = None,
    pool: int = 4,
    max_points: int = 20_000,
    device: str = "cpu",
    batch_size: int = 64,
) -> list[dict[str, Any]]:
    """Per-stage similarity of two transfusion checkpoints of the same architecture.

    Both models see the same probe set: ``probe`` images (default min(256, |test|)) of the
    test split of dataset ``data`` (a spec string), drawn with seed 0; each is normalised
    with its own checkpoint's mean/std and run in fp32, channels-last, on ``device``. Rows as
    :func:`~transfusion.analysis.stage_similarity.stage_similarities` (which see for ``method``).
    Raises ``ValueError`` for checkpoints of different architectures (naming both), for a
    probe set too small for a stage's features (naming the stage), for a probe larger than
    the test split.
    """
    ck_a, ck_b = load_checkpoint(Path(checkpoint_a)), load_checkpoint(Path(checkpoint_b))
    if ck_a["arch"] != ck_b["arch"]:
        raise ValueError(
            f"checkpoints of different architectures: {checkpoint_a} is {ck_a['arch']}, "
            f"{checkpoint_b} is {ck_b['arch']}; a per-stage comparison needs the same architecture"
        )
    if ck_a["in_chans"] != ck_b["in_chans"]:
        raise ValueError(f"{checkpoint_a} takes {ck_a['in_chans']} input channels, {checkpoint_b} "
                         f"takes {ck_b['in_chans']}")
    test = load_dataset(data)["test"]
    if test.images.shape[1] != ck_a["in_chans"]:
        raise ValueError(f"dataset {data} has {test.images.shape[1]}-channel images but the checkpoints take "
                         f"{ck_a['in_chans']}")
    n = min(256, len(test)) if probe is None else probe
    images = test.subset(probe_indices(len(test), n, seed=0)).images
    runtime = Runtime.resolve(device, amp=False, channels_last=True)
    a, b = (pooled_activations(model_from_checkpoint(ck), images, ck["mean"], ck["std"], pool=pool,
                               runtime=runtime, batch_size=batch_size).pooled for ck in (ck_a, ck_b))
    return stage_similarities(a, b, method=method, max_points=max_points, strict=True)
