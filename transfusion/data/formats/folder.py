"""``folder:PATH`` — an ImageFolder tree or a folder with a ``labels.csv``.

Layouts, tried in this order:

1. ``PATH/labels.csv`` with columns ``path`` (relative to PATH) and either ``label`` (a class
   name per image: binary / multiclass) or one column per label (values 1, 0, -1 = uncertain,
   blank = 0: multilabel). Optional columns ``split`` (train / val / test) and ``patient``
   (validation and test are then carved by patient). An optional ``PATH/task.json``
   (``{"kind": ..., "labels": [...], "positive_rule": ...}``) fixes the task and the class
   order; this is what ``transfusion data synth`` writes.
2. ``PATH/train/<class>/*.png`` (+ ``val/`` or ``valid/``, ``test/``): the official split.
3. ``PATH/<class>/*.png``: one pool, split stratified by class.

With two classes the task is binary and the positive class is the second in sorted order
(or ``positive=NAME``); with more it is multiclass.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .._cache import SplitWriter
from .._images import IMAGE_EXTENSIONS, image_channels
from .._registry import BuildResult, DatasetKind, fractions, register_kind
from .._spec import Option, ParsedSpec
from .._splits import group_split, strata, stratified_split
from ..base import TaskSpec
from ._common import (
    UNCERTAIN_POLICIES,
    FileSplit,
    absolute_target,
    apply_uncertain,
    file_options,
    parse_observations,
    read_csv,
    require_dir,
    stat_fingerprint,
    write_file_splits,
)

_SPLIT_DIRS = {"train": ("train",), "val": ("val", "valid", "validation"), "test": ("test",)}
_SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
_RESERVED = ("path", "split", "patient", "label")
EXPECTED = "labels.csv (path,label[,split,patient] or path,<label columns>), or class sub-folders of images"


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _layout(root: Path) -> str:
    if (root / "labels.csv").is_file():
        return "csv"
    names = {p.name.lower() for p in _class_dirs(root)}
    if "train" in names and names & {"test", "val", "valid", "validation"}:
        return "split-dirs"
    if names:
        return "class-dirs"
    raise FileNotFoundError(f"{root} holds no labels.csv and no class sub-folders; expected {EXPECTED}")


def _fingerprint(parsed: ParsedSpec) -> str:
    root = Path(parsed.target)
    if not root.is_dir():
        return "missing"
    files = [root / "labels.csv", root / "task.json"]
    if not (root / "labels.csv").is_file():
        files += _images_in(root)
    return stat_fingerprint(files)


def _read_task_json(path: Path) -> dict:
    """``task.json``: an object with ``kind`` (binary / multiclass / multilabel) and ``labels``;
    ``ValueError`` naming the file and what is wrong otherwise."""
    try:
        given = json.loads(path.read_text())
    except ValueError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); expected {{\"kind\": ..., \"labels\": [...]}}") from None
    missing = [k for k in ("kind", "labels") if not isinstance(given, dict) or k not in given]
    if missing:
        raise ValueError(f"{path} lacks {' and '.join(missing)}; expected {{\"kind\": \"binary\" | \"multiclass\" | "
                         f"\"multilabel\", \"labels\": [...]}}")
    try:
        TaskSpec.from_dict(given)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    return given


def _task_from(names: list[str], positive: str | None, given: dict | None) -> TaskSpec:
    if given:
        return TaskSpec.from_dict(given)
    if positive is not None:
        if positive not in names:
            raise ValueError(f"positive={positive!r} is not one of the classes {names}")
        if len(names) != 2:
            raise ValueError(f"positive= needs exactly 2 classes, found {len(names)}: {names}")
        names = [n for n in names if n != positive] + [positive]
    if len(names) < 2:
        raise ValueError(f"need at least 2 classes, found {names}")
    if len(names) == 2:
        return TaskSpec("binary", tuple(names), f"positive class: {names[1]}")
    return TaskSpec("multiclass", tuple(names))


def _carve(parsed: ParsedSpec, n: int, strata_ids: np.ndarray, groups: np.ndarray | None, have: set[str]) -> dict[str, np.ndarray]:
    """Rows per split for a pool with no official split (or only train + test)."""
    fr = fractions(parsed)
    if "test" in have:  # official test: carve only val from the training pool
        fr = {"train": 1.0 - fr["val"], "val": fr["val"]}
    if groups is not None:
        return group_split(groups, fr, seed=parsed["seed"])
    return stratified_split(strata_ids, fr, seed=parsed["seed"])


def _build(parsed: ParsedSpec, writer: SplitWriter) -> BuildResult:
    root = require_dir(parsed.target, f"an image folder: {EXPECTED}")
    layout = _layout(root)
    info = {"source": str(root), "layout": layout}
    if layout == "csv":
        splits, task = _from_csv(root, parsed)
    else:
        splits, task = _from_dirs(root, parsed, layout)
    paths = [p for sp in splits.values() for p in sp.paths]
    if not paths:
        raise ValueError(f"{root}: no images found; expected {EXPECTED}")
    chans = parsed["channels"] if parsed["channels"] != "auto" else None
    channels = int(chans) if chans else image_channels(paths, parsed["bad_images"])
    problems, skipped = write_file_splits(writer, splits, parsed, channels)
    info["skipped"] = skipped
    return BuildResult(task, channels, info, problems)


def _from_dirs(root: Path, parsed: ParsedSpec, layout: str) -> tuple[dict[str, FileSplit], TaskSpec]:
    pools: dict[str, list[tuple[Path, str]]] = {}
    if layout == "split-dirs":
        for d in _class_dirs(root):
            split = _SPLIT_NAMES.get(d.name.lower())
            if split is None:
                continue
            for cls in _class_dirs(d):
                pools.setdefault(split, []).extend((p, cls.name) for p in _images_in(cls))
    else:
        for cls in _class_dirs(root):
            pools.setdefault("train", []).extend((p, cls.name) for p in _images_in(cls))
    names = sorted({c for items in pools.values() for _, c in items})
    task = _task_from(names, parsed["positive"], None)
    index = {name: i for i, name in enumerate(task.labels)}
    splits = {}
    for split, items in pools.items():
        splits[split] = FileSplit([p for p, _ in items], np.array([index[c] for _, c in items], np.int64))
    if "val" not in splits:
        pool = splits.pop("train")
        parts = _carve(parsed, len(pool.paths), pool.targets, None, set(splits))
        for name, rows in parts.items():
            splits[name] = FileSplit([pool.paths[i] for i in rows], pool.targets[rows])
    return {k: splits[k] for k in ("train", "val", "test") if k in splits}, task


def _from_csv(root: Path, parsed: ParsedSpec) -> tuple[dict[str, FileSplit], TaskSpec]:
    csv = root / "labels.csv"
    df = read_csv(csv, ["path"], ["path", "label | <label columns>", "split (optional)", "patient (optional)"])
    given = _read_task_json(root / "task.json") if (root / "task.json").is_file() else None
    label_cols = [c for c in df.columns if c not in _RESERVED]
    if "label" in df.columns:
        raw = df["label"].astype(str).str.strip()
        names = list(given["labels"]) if given else sorted(set(raw))
        task = _task_from(names, parsed["positive"], given)
        index = {name: i for i, name in enumerate(task.labels)}
        bad = sorted(set(raw) - set(index))
        if bad:
            raise ValueError(f"{csv}: label out of range in column 'label': {bad[:5]}; expected one of {list(task.labels)}")
        targets = raw.map(index).to_numpy(np.int64)
        mask = None
    elif label_cols:
        if given and list(given["labels"]) != label_cols:
            label_cols = list(given["labels"])
            missing = [c for c in label_cols if c not in df.columns]
            if missing:
                raise ValueError(f"{csv} is missing label column(s) {missing} named in task.json")
        values, unc = parse_observations(df, label_cols, csv)
        targets, mask = apply_uncertain(values, unc, parsed["uncertain"])
        task = TaskSpec("multilabel", tuple(label_cols), (given or {}).get("positive_rule", ""))
    else:
        raise ValueError(f"{csv} has no label column; expected columns: path, label (class name) or one column per label")
    paths = [root / p.strip() for p in df["path"]]
    ids = df["path"].to_numpy(str)
    groups = df["patient"].to_numpy(str) if "patient" in df.columns else None
    if "split" in df.columns:
        raw_split = df["split"].astype(str).str.strip().str.lower()
        bad = sorted(set(raw_split) - set(_SPLIT_NAMES))
        if bad:
            raise ValueError(f"{csv}: unknown split value(s) {bad}; expected train, val or test")
        split_of = raw_split.map(_SPLIT_NAMES).to_numpy(str)
    else:
        split_of = np.full(len(df), "train")
    have = set(split_of)
    rows_by_split = {s: np.flatnonzero(split_of == s) for s in ("train", "val", "test") if s in have}
    if "val" not in have:
        pool = rows_by_split.pop("train", np.zeros(0, np.int64))
        st = strata(targets[pool], None if mask is None else mask[pool])
        parts = _carve(parsed, len(pool), st, None if groups is None else groups[pool], set(rows_by_split))
        rows_by_split.update({k: pool[v] for k, v in parts.items()})
    splits = {}
    for name in ("train", "val", "test"):
        if name in rows_by_split:
            r = rows_by_split[name]
            splits[name] = FileSplit(
                [paths[i] for i in r], targets[r], None if mask is None else mask[r], ids[r]
            )
    return splits, task


register_kind(DatasetKind(
    name="folder",
    summary="ImageFolder tree (class per sub-folder) or a folder with labels.csv",
    options={
        **file_options("stretch"),
        "channels": Option(str, "auto", "1 (grayscale), 3 (RGB) or auto (from the first image)", choices=("auto", "1", "3")),
        "positive": Option(str, None, "binary tasks: the positive class name (default: second in sorted order)"),
        "uncertain": Option(str, "ignore", "labels.csv multilabel -1 entries: ignore (masked) | ones | zeros", choices=UNCERTAIN_POLICIES),
    },
    build=_build,
    finalize=absolute_target,
    fingerprint=_fingerprint,
    example="folder:/data/my_images",
))
