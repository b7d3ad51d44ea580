"""``aptos:PATH`` — diabetic-retinopathy grading: APTOS-2019 or the EyePACS (Kaggle 2015) layout.

- APTOS-2019: ``PATH/train.csv`` with ``id_code,diagnosis`` and ``PATH/train_images/<id_code>.png``.
- EyePACS: ``PATH/trainLabels.csv`` with ``image,level`` and ``PATH/train/<image>.jpeg``; if
  ``PATH/retinopathy_solution.csv`` (``image,level,Usage``) and ``PATH/test/`` exist they are
  the official test split. Both eyes of a patient (``10_left``, ``10_right``) stay in one split.

Grades 0–4; ``target=referable`` (default) is the paper's binary task (grade >= 2),
``target=grade`` the 5-class one. A dark border around the fundus is trimmed (``trim=1``)
before the central square is taken.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._cache import SplitWriter
from .._registry import BuildResult, DatasetKind, fractions, register_kind
from .._spec import Option, ParsedSpec
from .._splits import group_split, stratified_split
from ..base import TaskSpec
from ..synthetic.retina import GRADE_NAMES, REFERABLE_NAMES
from ._common import (
    FileSplit,
    absolute_target,
    file_options,
    parse_int_labels,
    read_csv,
    require_dir,
    stat_fingerprint,
    write_file_splits,
)

_LAYOUTS = {
    # csv name: (id column, grade column, image folders to try, extensions to try, variant)
    "train.csv": ("id_code", "diagnosis", ("train_images", "train", "."), (".png", ".jpg", ".jpeg"), "aptos2019"),
    "trainLabels.csv": ("image", "level", ("train", "train_images", "."), (".jpeg", ".jpg", ".png"), "eyepacs"),
}
EXPECTED = (
    "train.csv (APTOS-2019: id_code,diagnosis; images train_images/<id_code>.png) or "
    "trainLabels.csv (EyePACS: image,level; images train/<image>.jpeg)"
)


def _fingerprint(parsed: ParsedSpec) -> str:
    root = Path(parsed.target)
    return stat_fingerprint([root / n for n in (*_LAYOUTS, "retinopathy_solution.csv")])


def _locate(root: Path, ids: list[str], folders, exts, csv: Path):
    """The (folder, extension) under which the listed images live (checked on a few rows)."""
    for i in ids[:20]:
        for folder in folders:
            for ext in exts:
                if (root / folder / f"{i}{ext}").is_file():
                    return lambda x, d=root / folder, e=ext: d / f"{x}{e}"
    first = ids[0] if ids else "?"
    tried = ", ".join(str(root / f / f"{first}{exts[0]}") for f in folders)
    raise FileNotFoundError(f"images listed in {csv} not found (tried {tried}); expected {EXPECTED}")


def _build(parsed: ParsedSpec, writer: SplitWriter) -> BuildResult:
    root = require_dir(parsed.target, f"a retinopathy folder with {EXPECTED}")
    name = next((n for n in _LAYOUTS if (root / n).is_file()), None)
    if name is None:
        raise FileNotFoundError(f"{root} holds neither train.csv nor trainLabels.csv; expected {EXPECTED}")
    id_col, grade_col, folders, exts, variant = _LAYOUTS[name]
    csv = root / name
    df = read_csv(csv, [id_col, grade_col], [id_col, grade_col])
    ids = [s.strip() for s in df[id_col]]
    grades = parse_int_labels(df[grade_col], csv, grade_col, 0, 4)
    path_of = _locate(root, ids, folders, exts, csv)
    paths = [path_of(i) for i in ids]
    fr = fractions(parsed)
    rows: dict[str, np.ndarray]
    test_split = None
    solution = root / "retinopathy_solution.csv"
    if variant == "eyepacs" and solution.is_file() and (root / "test").is_dir():
        sol = read_csv(solution, ["image", "level"], ["image", "level", "Usage"])
        t_ids = [s.strip() for s in sol["image"]]
        t_grades = parse_int_labels(sol["level"], solution, "level", 0, 4)
        t_path = _locate(root, t_ids, ("test",), (".jpeg", ".jpg", ".png"), solution)
        test_split = (t_ids, t_grades, [t_path(i) for i in t_ids])
        fr = {"train": 1.0 - fr["val"], "val": fr["val"]}
    if variant == "eyepacs":
        patients = np.array([i.rsplit("_", 1)[0] for i in ids])
        rows = group_split(patients, fr, seed=parsed["seed"])
    else:
        rows = stratified_split(grades, fr, seed=parsed["seed"])
    referable = parsed["target"] == "referable"

    def target(g: np.ndarray) -> np.ndarray:
        return (g >= 2).astype(np.int64) if referable else g.astype(np.int64)

    splits = {k: FileSplit([paths[i] for i in r], target(grades[r]), None, np.array([ids[i] for i in r])) for k, r in rows.items()}
    if test_split is not None:
        t_ids, t_grades, t_paths = test_split
        splits["test"] = FileSplit(t_paths, target(t_grades), None, np.array(t_ids))
    problems, skipped = write_file_splits(writer, splits, parsed, 3, trim=parsed["trim"])
    task = TaskSpec("binary", REFERABLE_NAMES, "referable DR: grade >= 2") if referable else TaskSpec("multiclass", GRADE_NAMES)
    info = {"source": str(root), "variant": variant, "skipped": skipped,
            "grades": {GRADE_NAMES[g]: int(c) for g, c in enumerate(np.bincount(grades, minlength=5))}}
    return BuildResult(task, 3, info, problems)


register_kind(DatasetKind(
    name="aptos",
    summary="APTOS-2019 (train.csv) or EyePACS (trainLabels.csv) fundus photos, DR grades 0-4",
    options={
        **file_options("crop"),
        "target": Option(str, "referable", "referable: binary grade >= 2; grade: 5 classes", choices=("referable", "grade")),
        "trim": Option(bool, True, "cut the dark border around the fundus before cropping"),
    },
    build=_build,
    finalize=absolute_target,
    fingerprint=_fingerprint,
    example="aptos:/data/aptos2019?target=grade",
))
