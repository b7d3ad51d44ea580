"""``chexpert:PATH`` — the CheXpert-v1.0 / CheXpert-v1.0-small layout.

``PATH`` is the dataset folder holding ``train.csv`` and ``valid.csv`` (or its parent, when that
holds exactly one ``CheXpert-v1.0*`` folder); their ``Path`` column
reads like ``CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg`` (relative to the
folder above PATH). Observation columns hold 1.0, 0.0, -1.0 (uncertain) or blank (not mentioned
= 0). The official ``valid.csv`` is the test split; validation is carved from ``train.csv`` by
patient, so no patient is in two splits.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .._cache import SplitWriter
from .._registry import BuildResult, DatasetKind, register_kind
from .._spec import Option, ParsedSpec
from .._splits import group_split
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

OBSERVATIONS = (
    "No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion",
    "Edema", "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion",
    "Pleural Other", "Fracture", "Support Devices",
)
COLUMNS = ("Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", *OBSERVATIONS)
PAPER_LABELS = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion")
_PATIENT = re.compile(r"(patient\d+)")


def _labels(parsed: ParsedSpec) -> tuple[str, ...]:
    text = parsed["labels"]
    if text == "paper":
        return PAPER_LABELS
    if text == "all":
        return OBSERVATIONS
    names = tuple(s.strip() for s in text.split(",") if s.strip())
    lookup = {o.lower(): o for o in OBSERVATIONS}
    bad = [s for s in names if s.lower() not in lookup]
    if bad or not names:
        raise ValueError(f"chexpert labels={text!r}: unknown {bad}; use paper, all or a comma list of {', '.join(OBSERVATIONS)}")
    return tuple(lookup[s.lower()] for s in names)


def dataset_folder(path: Path) -> Path:
    """The folder holding ``train.csv``: ``path`` itself, or the one ``CheXpert-v1.0*`` folder in
    it (the parent a download unpacks into). Anything else is returned as given for the build to
    report."""
    if (path / "train.csv").is_file() or not path.is_dir():
        return path
    inner = sorted(p for p in path.glob("CheXpert-v1.0*") if (p / "train.csv").is_file())
    if len(inner) > 1:
        raise ValueError(f"{path} holds {len(inner)} CheXpert folders ({', '.join(p.name for p in inner)}); "
                         f"give the one to use, e.g. chexpert:{inner[0]}")
    return inner[0] if inner else path


def _finalize(parsed: ParsedSpec) -> ParsedSpec:
    parsed = absolute_target(parsed)
    parsed = ParsedSpec(parsed.kind, str(dataset_folder(Path(parsed.target))), parsed.options)
    return parsed.with_options(labels=",".join(_labels(parsed)))


def _fingerprint(parsed: ParsedSpec) -> str:
    root = Path(parsed.target)
    return stat_fingerprint([root / "train.csv", root / "valid.csv"])


def _resolver(root: Path, rel_paths: list[str], csv: Path):
    """Find the folder the CSV's relative paths start from (tries a few rows)."""
    for rel in rel_paths[:20]:
        rel_p = Path(rel)
        candidates = [root.parent, root]
        for base in candidates:
            if (base / rel_p).is_file():
                return lambda r, base=base: base / r
        if len(rel_p.parts) > 1 and (root / Path(*rel_p.parts[1:])).is_file():
            return lambda r: root / Path(*Path(r).parts[1:])
    rel = rel_paths[0] if rel_paths else "?"
    raise FileNotFoundError(
        f"images listed in {csv} not found: tried {root.parent / rel} and {root / Path(*Path(rel).parts[1:])}; "
        f"PATH should be the CheXpert-v1.0(-small) folder that holds train.csv, valid.csv, train/ and valid/"
    )


def _read(root: Path, name: str, parsed: ParsedSpec, labels: tuple[str, ...]):
    csv = root / name
    required = ["Path", *labels] + (["Frontal/Lateral"] if parsed["views"] == "frontal" else [])
    df = read_csv(csv, required, list(COLUMNS))
    if parsed["views"] == "frontal":
        df = df[df["Frontal/Lateral"].str.strip().str.lower() == "frontal"]
    values, uncertain = parse_observations(df, list(labels), csv)
    targets, mask = apply_uncertain(values, uncertain, parsed["uncertain"])
    rel = df["Path"].str.strip().tolist()
    patients = np.array([(m.group(1) if (m := _PATIENT.search(r)) else str(Path(r).parent.parent)) for r in rel])
    if mask is None and parsed["uncertain"] == "ignore":
        mask = np.ones_like(targets, dtype=bool)
    return csv, rel, targets, mask, patients


def _build(parsed: ParsedSpec, writer: SplitWriter) -> BuildResult:
    root = require_dir(parsed.target, "the CheXpert-v1.0(-small) folder with train.csv and valid.csv")
    labels = _labels(parsed)
    train_csv, train_rel, train_t, train_m, train_pat = _read(root, "train.csv", parsed, labels)
    valid_csv, valid_rel, valid_t, valid_m, valid_pat = _read(root, "valid.csv", parsed, labels)
    resolve = _resolver(root, train_rel or valid_rel, train_csv)
    parts = group_split(train_pat, {"train": 1.0 - parsed["val"], "val": parsed["val"]}, seed=parsed["seed"])
    splits = {}
    for name, rows in parts.items():
        splits[name] = FileSplit(
            [resolve(train_rel[i]) for i in rows], train_t[rows],
            None if train_m is None else train_m[rows], np.array([train_rel[i] for i in rows]),
        )
    splits["test"] = FileSplit([resolve(r) for r in valid_rel], valid_t, valid_m, np.array(valid_rel))
    patients = {
        "train": sorted(set(train_pat[parts["train"]])), "val": sorted(set(train_pat[parts["val"]])),
        "test": sorted(set(valid_pat)),
    }
    problems, skipped = write_file_splits(writer, splits, parsed, 1)
    info = {"source": str(root), "skipped": skipped, "patients": {k: len(v) for k, v in patients.items()}}
    rule = f"CheXpert observations; uncertain (-1) → {parsed['uncertain']}"
    return BuildResult(TaskSpec("multilabel", labels, rule), 1, info, problems)


register_kind(DatasetKind(
    name="chexpert",
    summary="CheXpert-v1.0(-small): train.csv / valid.csv, multilabel chest X-rays",
    options={
        **file_options("stretch", val=0.1, test=None),
        "uncertain": Option(str, "ignore", "uncertain (-1) labels: ignore (masked) | ones | zeros", choices=UNCERTAIN_POLICIES),
        "views": Option(str, "frontal", "frontal: frontal views only; all: every view", choices=("frontal", "all")),
        "labels": Option(str, "paper", "paper (the 5 of the paper), all (14) or a comma list of observation names"),
    },
    build=_build,
    finalize=_finalize,
    fingerprint=_fingerprint,
    example="chexpert:/data/CheXpert-v1.0-small?uncertain=ignore&views=frontal",
))
