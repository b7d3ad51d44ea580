"""The table of dataset kinds, spec canonicalisation and :func:`load_dataset`."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import _cache
from ._spec import Option, ParsedSpec, format_spec, parse_options, split_spec
from .base import ArraySplit, Dataset, TaskSpec

RES_OPTION = Option(int, None, "image side in px (the cache is keyed by it)", lo=4, hi=4096)
SEED_OPTION = Option(int, 0, "seed for generation (synthetic) or for carving splits (real data)", lo=0)
RESIZE_OPTION = Option(str, None, "how the pixels were made: native (decoded or generated at res; the default) or "
                       "from:PX (made at res, taken down to PX px, then up to res again: what MedMNIST's 224-px "
                       "images upsampled from 28 px are)")


def parse_resize(raw: Any, res: int | None, spec: str) -> int | None:
    """The ``resize`` option: ``None`` for ``native``, else the PX of ``from:PX`` (4 <= PX < res)."""
    text = str(raw).strip().lower()
    if text in ("", "native"):
        return None
    px = text.removeprefix("from:")
    if px == text or not px.isdigit() or int(px) < 4:
        raise ValueError(f"dataset spec {spec!r}: option resize={raw!r}: expected native or from:PX "
                         "(PX a whole number of pixels >= 4, e.g. from:28)")
    if res is not None and int(px) >= int(res):
        raise ValueError(f"dataset spec {spec!r}: resize=from:{px} upsamples from {px} px to the resolution, so it "
                         f"must be below res={res} px; use a larger res or a smaller PX")
    return int(px)


@dataclass
class BuildResult:
    """What a kind's builder hands back after writing its splits through the writer."""

    task: TaskSpec
    in_chans: int
    info: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DatasetKind:
    """One ``KIND`` of spec string.

    ``target``: ``"none"`` (synthetic), ``"path"`` or ``"name[:path]"`` (MedMNIST).
    ``finalize(parsed)`` fills defaults that depend on other options and normalises the
    target (absolute path); ``fingerprint(parsed)`` describes the source files' state (sizes,
    mtimes) so the cache is rebuilt when they change; ``build(parsed, writer)`` writes the
    splits and returns a :class:`BuildResult`.
    """

    name: str
    summary: str
    options: dict[str, Option]
    build: Callable[[ParsedSpec, _cache.SplitWriter], BuildResult]
    target: str = "path"
    finalize: Callable[[ParsedSpec], ParsedSpec] = lambda p: p
    fingerprint: Callable[[ParsedSpec], str] = lambda p: ""
    version: int = 1
    example: str = ""


_KINDS: dict[str, DatasetKind] = {}


def register_kind(kind: DatasetKind) -> DatasetKind:
    """Add a dataset kind to the table (a duplicate name is an error)."""
    if kind.name in _KINDS:
        raise ValueError(f"dataset kind {kind.name!r} is already registered")
    _KINDS[kind.name] = kind
    return kind


def list_dataset_kinds() -> list[str]:
    """Names of the registered dataset kinds, sorted."""
    _load_builtin_kinds()
    return sorted(_KINDS)


def dataset_kind(name: str) -> DatasetKind:
    _load_builtin_kinds()
    if name not in _KINDS:
        raise ValueError(f"unknown dataset kind {name!r}; known kinds: {', '.join(sorted(_KINDS))}")
    return _KINDS[name]


def _load_builtin_kinds() -> None:
    from . import formats, synthetic  # noqa: F401  (registers the built-in kinds)


def parse_spec(spec: str, *, res: int | None = None, seed: int | None = None) -> ParsedSpec:
    """Parse and complete a spec string: typed options with every default filled in.

    ``res`` (if given) overrides the spec's ``res``; ``seed`` is used when the spec gives none.
    """
    name, target, raw = split_spec(spec)
    kind = dataset_kind(name)
    if kind.target == "none" and target:
        raise ValueError(f"dataset spec {spec!r}: {name!r} takes no path (use {name}?key=value)")
    if kind.target != "none" and not target:
        raise ValueError(f"dataset spec {spec!r}: {name!r} needs a path, e.g. {kind.example or name + ':/path'}")
    resize = raw.pop("resize", None)
    options = parse_options(name, kind.options, raw, spec)
    if res is not None:
        options["res"] = RES_OPTION.parse("res", res, name)
    if seed is not None and "seed" not in raw:
        options["seed"] = SEED_OPTION.parse("seed", seed, name)
    parsed = kind.finalize(ParsedSpec(name, target, options))
    px = None if resize is None else parse_resize(resize, parsed.options.get("res"), spec)
    if px is not None:  # native is the default and stays out of the canonical form (and the run ids)
        parsed.options["resize"] = f"from:{px}"
    return parsed


def canonical_spec(spec: str, *, res: int | None = None, seed: int | None = None) -> str:
    """The normalised form of ``spec``: options sorted, defaults filled in, paths absolute.

    Two spellings of the same dataset give the same string; use it to hash run ids. ``res``
    overrides the spec's resolution; ``seed`` fills in the seed when the spec gives none
    (pass the same ``seed`` as to :func:`load_dataset`).
    """
    return format_spec(parse_spec(spec, res=res, seed=seed))


def spec_res(spec: str) -> int | None:
    """The input side in px a dataset spec asks for (its ``res`` option, or the kind's default;
    ``None`` when the kind decides from the files, e.g. a MedMNIST size)."""
    res = parse_spec(spec).options.get("res")
    return None if res is None else int(res)


def load_dataset(
    spec: str,
    *,
    res: int | None = None,
    cache_dir: str | Path | None = None,
    seed: int = 0,
) -> Dataset:
    """Load (building once, then from the uint8 cache) the dataset named by ``spec``.

    ``spec`` is ``KIND[:PATH][?key=value&...]`` (see ``docs/data.md``; every kind also takes
    ``resize=from:PX``, see :data:`RESIZE_OPTION`); ``res`` (px) overrides
    the spec's ``res``; ``seed`` is the spec's ``seed`` unless the spec sets one (generation
    seed for synthetic tasks, split seed for real data). Images come back as read-only uint8
    memmaps (N, C, res, res). ``dataset.info["spec"]`` holds the canonical spec.
    """
    parsed = parse_spec(spec, res=res, seed=seed)
    kind = dataset_kind(parsed.kind)
    canonical = format_spec(parsed)
    fingerprint = kind.fingerprint(parsed)
    root = Path(cache_dir).expanduser() if cache_dir is not None else _cache.default_cache_dir()
    key = _cache.cache_key(canonical, fingerprint, kind.version)
    folder = _cache.entry_dir(root, parsed.kind, key)
    if not _cache.is_complete(folder):

        def build(writer: _cache.SplitWriter) -> dict:
            result = kind.build(parsed, writer)
            if parsed.options.get("resize"):
                from ._images import resample_through

                writer.transform_images(lambda x: resample_through(x, int(parsed.options["resize"][5:])))
            info = {"spec": canonical, **result.info, "problems": list(result.problems)}
            return {
                "name": _display_name(parsed, kind),
                "task": result.task.to_dict(),
                "res": parsed["res"],
                "in_chans": result.in_chans,
                "info": info,
            }

        _cache.build_entry(folder, build)
    dataset = _cache.open_entry(folder)
    problems = dataset.info.setdefault("problems", [])
    for problem in split_problems(dataset):
        if problem not in problems:
            problems.append(problem)
    for problem in problems:
        if problem.startswith(("empty", "no examples", "no positives")):
            warnings.warn(f"{canonical}: {problem}", stacklevel=2)
    return dataset


def _display_name(parsed: ParsedSpec, kind: DatasetKind) -> str:
    """``synth-retina``, ``medmnist:pneumoniamnist``, ``chexpert:CheXpert-v1.0-small``."""
    if kind.target == "none":
        return parsed.kind
    if kind.target == "name":
        return f"{parsed.kind}:{parsed.target.split(':')[0]}"
    return f"{parsed.kind}:{Path(parsed.target).name or parsed.target}"


def split_problems(dataset: Dataset) -> list[str]:
    """Empty splits, classes with no examples and labels with no positives, per split."""
    out = []
    for name in ("train", "val", "test"):
        split = dataset.splits.get(name)
        if split is None or len(split) == 0:
            out.append(f"empty split: {name}")
            continue
        for label, n in label_counts(dataset.task, split)[0].items():
            if n == 0:
                what = "no positives for label" if dataset.task.kind == "multilabel" else "no examples of class"
                out.append(f"{what} {label!r} in split {name}")
    return out


def label_counts(task: TaskSpec, split: ArraySplit) -> tuple[dict[str, int], dict[str, int]]:
    """(positives, masked) per label: class counts for binary/multiclass; observed positives
    and masked (uncertain) entries for multilabel."""
    if task.kind == "multilabel":
        observed = np.ones(split.targets.shape, bool) if split.mask is None else split.mask
        pos = ((split.targets > 0.5) & observed).sum(0)
        masked = (~observed).sum(0)
        return (
            {k: int(v) for k, v in zip(task.labels, pos)},
            {k: int(v) for k, v in zip(task.labels, masked)},
        )
    counts = np.bincount(np.asarray(split.targets, np.int64), minlength=len(task.labels))
    return {k: int(v) for k, v in zip(task.labels, counts)}, {k: 0 for k in task.labels}


def fractions(parsed: ParsedSpec) -> dict[str, float]:
    """Split fractions from the ``val`` / ``test`` options (train takes the rest)."""
    val, test = float(parsed["val"]), float(parsed["test"])
    if val + test >= 1.0:
        raise ValueError(f"val ({val}) + test ({test}) must leave some training data")
    return {"train": 1.0 - val - test, "val": val, "test": test}
