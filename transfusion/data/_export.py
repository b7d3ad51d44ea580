"""Write a dataset out as PNG files + ``labels.csv`` + ``task.json`` (loads back as ``folder:``),
and summarise a dataset for ``transfusion data check``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from PIL import Image

from ._registry import label_counts, split_problems
from .base import Dataset


def write_image_folder(dataset: Dataset, out: str | Path) -> Path:
    """Write every split of ``dataset`` under ``out``: ``images/<split>/<id>.png``,
    ``labels.csv`` (``path,split,label`` or ``path,split,<label columns>`` with -1 for masked
    entries) and ``task.json``. ``load_dataset("folder:OUT?res=<res>")`` reads it back with the
    same splits, labels and (PNG being lossless) the same pixels. Returns the labels.csv path.
    """
    out = Path(out)
    task = dataset.task
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for split_name, split in dataset.splits.items():
        folder = out / "images" / split_name
        folder.mkdir(parents=True, exist_ok=True)
        stems = [Path(str(x)).stem for x in split.ids] if split.ids is not None else []
        if len(set(stems)) != len(split):  # no ids, or ids whose file stems collide
            stems = [f"{i:07d}" for i in range(len(split))]
        for i in range(len(split)):
            name = f"{stems[i]}.png"
            img = np.asarray(split.images[i])
            Image.fromarray(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)).save(folder / name)
            rel = f"images/{split_name}/{name}"
            if task.kind == "multilabel":
                t = split.targets[i]
                m = np.ones(len(t), bool) if split.mask is None else split.mask[i]
                rows.append([rel, split_name, *[(int(v) if ok else -1) for v, ok in zip(t, m)]])
            else:
                rows.append([rel, split_name, task.labels[int(split.targets[i])]])
    header = ["path", "split", *(task.labels if task.kind == "multilabel" else ["label"])]
    labels_csv = out / "labels.csv"
    with open(labels_csv, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    meta = {**task.to_dict(), "res": dataset.res, "source_spec": dataset.info.get("spec", "")}
    (out / "task.json").write_text(json.dumps(meta, indent=1))
    return labels_csv


def check_report(dataset: Dataset) -> dict:
    """``{"task": {"kind", "labels"}, "splits": {name: {"n", "positives", "masked"}},
    "problems": [...]}``: per split the count, positives per label (examples per class for
    binary/multiclass) and masked (uncertain) entries per label, and the problems found."""
    splits = {}
    for name in ("train", "val", "test"):
        if name not in dataset.splits:
            continue
        split = dataset.splits[name]
        positives, masked = label_counts(dataset.task, split)
        splits[name] = {"n": len(split), "positives": positives, "masked": masked}
    problems = list(dataset.info.get("problems", []))
    for p in split_problems(dataset):
        if p not in problems:
            problems.append(p)
    return {
        "task": {"kind": dataset.task.kind, "labels": list(dataset.task.labels)},
        "splits": splits,
        "problems": problems,
    }
