"""Synthetic tasks: ``synth-retina``, ``synth-cxr`` and ``synth-natural`` (deterministic by seed).

Labels are drawn first (exact class counts), splits are stratified on them, and then each
image ``i`` is rendered from its own random stream ``(seed, i)`` straight into the cache.
"""

from __future__ import annotations

import numpy as np

from .._cache import SplitWriter
from .._registry import RES_OPTION, SEED_OPTION, BuildResult, DatasetKind, fractions, register_kind
from .._spec import Option, ParsedSpec
from .._splits import strata, stratified_split
from ..base import TaskSpec
from . import cxr, natural, retina
from .cxr import CXR_LABELS, generate_cxr
from .natural import NATURAL_CLASSES, generate_natural
from .retina import GRADE_NAMES, REFERABLE_NAMES, generate_retina

__all__ = [
    "CXR_LABELS",
    "GRADE_NAMES",
    "NATURAL_CLASSES",
    "REFERABLE_NAMES",
    "generate_cxr",
    "generate_natural",
    "generate_retina",
]

UNCERTAIN_POLICIES = ("ignore", "ones", "zeros")


def _common_options(balance: float, balance_help: str) -> dict[str, Option]:
    return {
        "n": Option(int, 2000, "number of images (all splits)", lo=10, hi=10_000_000),
        "res": Option(int, 64, RES_OPTION.help, lo=8, hi=1024),
        "seed": SEED_OPTION,
        "balance": Option(float, balance, balance_help, lo=0.01, hi=1.0),
        "difficulty": Option(float, 0.5, "0 = obvious signs, 1 = faint signs, more noise and distractors", lo=0.0, hi=1.0),
        "val": Option(float, 0.15, "validation fraction", lo=0.0, hi=0.9),
        "test": Option(float, 0.15, "test fraction", lo=0.0, hi=0.9),
    }


def _write_splits(parsed: ParsedSpec, writer: SplitWriter, strata_ids: np.ndarray, chans: int, render) -> dict:
    """Split rows by stratum, then render each split's rows into its memmap."""
    res = parsed["res"]
    parts = stratified_split(strata_ids, fractions(parsed), seed=parsed["seed"])
    for name, rows in parts.items():
        out = writer.images(name, len(rows), chans, res, res)
        render(rows, out)
        parts[name] = rows
    return parts


def _build_retina(parsed: ParsedSpec, writer: SplitWriter) -> BuildResult:
    n, res, seed = parsed["n"], parsed["res"], parsed["seed"]
    grades = retina.retina_grades(n, parsed["balance"], seed)

    def render(rows, out):
        generate_retina(n, res, seed=seed, balance=parsed["balance"], difficulty=parsed["difficulty"], out=out, index=rows)

    parts = _write_splits(parsed, writer, grades, 3, render)
    referable = parsed["target"] == "referable"
    for name, rows in parts.items():
        targets = (grades[rows] >= 2).astype(np.int64) if referable else grades[rows]
        writer.labels(name, targets, ids=np.array([f"{i:07d}" for i in rows]))
    if referable:
        task = TaskSpec("binary", REFERABLE_NAMES, "referable DR: grade >= 2")
    else:
        task = TaskSpec("multiclass", GRADE_NAMES, "")
    counts = {GRADE_NAMES[g]: int(c) for g, c in enumerate(np.bincount(grades, minlength=5))}
    return BuildResult(task, 3, {"grades": counts})


def _build_cxr(parsed: ParsedSpec, writer: SplitWriter) -> BuildResult:
    n, res, seed = parsed["n"], parsed["res"], parsed["seed"]
    labels, flags = cxr.cxr_labels(n, parsed["balance"], parsed["uncertain"], seed)

    def render(rows, out):
        generate_cxr(
            n, res, seed=seed, balance=parsed["balance"], difficulty=parsed["difficulty"],
            uncertain=parsed["uncertain"], out=out, index=rows,
        )

    parts = _write_splits(parsed, writer, strata(labels), 1, render)
    policy = parsed["uncertain_policy"]
    for name, rows in parts.items():
        lab, flag = labels[rows].astype(np.float32), flags[rows]
        mask = None
        if policy == "ones":
            lab[flag] = 1.0
        else:
            lab[flag] = 0.0
            if policy == "ignore" and parsed["uncertain"] > 0:
                mask = ~flag
        writer.labels(name, lab, mask, ids=np.array([f"{i:07d}" for i in rows]))
    rule = f"CheXpert-like labels; uncertain entries ({parsed['uncertain']:g}) → {policy}"
    return BuildResult(TaskSpec("multilabel", CXR_LABELS, rule), 1, {"prevalence": dict(zip(CXR_LABELS, labels.mean(0).round(4).tolist()))})


def _build_natural(parsed: ParsedSpec, writer: SplitWriter) -> BuildResult:
    n, res, seed = parsed["n"], parsed["res"], parsed["seed"]
    labels = natural.natural_labels(n, parsed["balance"], seed)

    def render(rows, out):
        generate_natural(n, res, seed=seed, balance=parsed["balance"], difficulty=parsed["difficulty"], out=out, index=rows)

    parts = _write_splits(parsed, writer, labels, 3, render)
    for name, rows in parts.items():
        writer.labels(name, labels[rows], ids=np.array([f"{i:07d}" for i in rows]))
    return BuildResult(TaskSpec("multiclass", NATURAL_CLASSES), 3)


register_kind(DatasetKind(
    name="synth-retina",
    summary="synthetic colour fundus photos, DR grades 0-4 (target=referable|grade)",
    options={
        **_common_options(0.5, "fraction of referable (grade >= 2) images"),
        "target": Option(str, "referable", "referable: binary grade >= 2; grade: 5 classes", choices=("referable", "grade")),
    },
    build=_build_retina,
    target="none",
    version=retina.GENERATOR_VERSION,
    example="synth-retina?n=2000&res=64",
))
register_kind(DatasetKind(
    name="synth-cxr",
    summary="synthetic grayscale chest X-rays, 5 CheXpert pathologies (multilabel)",
    options={
        **_common_options(0.3, "mean prevalence of the five labels"),
        "uncertain": Option(float, 0.0, "fraction of label entries marked uncertain", lo=0.0, hi=1.0),
        "uncertain_policy": Option(str, "ignore", "uncertain labels: ignore (masked) | ones | zeros", choices=UNCERTAIN_POLICIES),
    },
    build=_build_cxr,
    target="none",
    version=cxr.GENERATOR_VERSION,
    example="synth-cxr?n=2000&res=64&uncertain=0.1",
))
register_kind(DatasetKind(
    name="synth-natural",
    summary="synthetic natural-image source task: 10 shape classes on varied backgrounds",
    options=_common_options(1.0, "rarest / commonest class frequency (1 = balanced)"),
    build=_build_natural,
    target="none",
    version=natural.GENERATOR_VERSION,
    example="synth-natural?n=2000&res=64",
))
