"""Machinery shared by the studies over a results store (see :mod:`transfusion.analysis.studies`).

- :class:`StudyOutput` — what every study returns; :class:`StudyAbsent` — raised when the store
  lacks the runs a study needs (the message names what is missing and what was found).
- :class:`StudyContext` — an open store plus caches: datasets, probe sets, and the activations
  of every checkpoint (trained ``best.pt`` or the run's rebuilt initialisation), so that within
  one :func:`~transfusion.analysis.studies.run_all` call each checkpoint is forwarded once.
- :func:`stage_similarities` — per-stage similarity of two checkpoints' probe activations.
- :func:`knn_probe_scores` — a k-nearest-neighbour probe scored by the task's rule.

Probe set and activation reduction. The probe set is a fixed subset of each dataset's *test*
split — ``probe`` images (default 256) drawn by :func:`~transfusion.analysis.activations.probe_set`
with seed 0, the same images for every model and checkpoint. A single forward pass records,
for every stage, (a) the map adaptively average-pooled to at most ``pool`` × ``pool``
(default 4 × 4) positions — these positions become the datapoints of the similarity measures
(:func:`~transfusion.analysis.similarity.matched_datapoints`), so a conv stage of C channels
gives probe × pool² datapoints × C features — and (b) the global average (probe × C) used by
the kNN probe. The head contributes its logits (probe × classes).
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from transfusion.analysis.activations import capture, probe_indices
from transfusion.analysis.similarity import (
    MEASURES,
    cca,
    linear_cka,
    matched_datapoints,
    similarity,
)
from transfusion.data import ArraySplit, Dataset, TaskSpec, load_dataset
from transfusion.harness.store import Store
from transfusion.transfer import IMAGENET_MEAN, IMAGENET_STD
from transfusion.transfer.checkpoint import load_checkpoint, model_from_checkpoint

__all__ = [
    "CONTEXT_OPTIONS",
    "StudyAbsent",
    "StudyContext",
    "StudyOutput",
    "found_text",
    "knn_probe_scores",
    "stage_similarities",
]

#: Options of :class:`StudyContext` that studies and ``run_all`` accept.
CONTEXT_OPTIONS = ("probe", "fit", "pool", "max_points", "device", "batch_size")

# SVCCA keeps, on each side, at most n / _POINTS_PER_DIM principal directions, so that
# n ≥ 10·(kept x + kept y): the guideline of transfusion.analysis.similarity for numbers worth
# comparing (independent data then give a mean CCA of about sqrt(k / n) ≤ 0.22).
_POINTS_PER_DIM = 20


@dataclass(frozen=True)
class StudyOutput:
    """The result of one study.

    ``csv``/``png``: the table and figure written (``None`` when absent); ``absent``: why the
    store lacks what the study needs, else ``None``; ``summary``: one or two sentences computed
    from the numbers.
    """

    name: str
    title: str
    csv: Path | None
    png: Path | None
    absent: str | None
    summary: str


class StudyAbsent(Exception):
    """The store lacks the runs a study needs; the message says what is missing and what was found."""


# ------------------------------------------------------------------------------ run labels


def data_label(spec: str) -> str:
    """A short name for a dataset spec: its kind (``synth-retina``) or ``kind:folder``."""
    kind, _, rest = spec.partition("?")
    name, _, path = kind.partition(":")
    return f"{name}:{Path(path).name}" if path else name


def data_labels(specs: Iterable[str]) -> dict[str, str]:
    """Short, unambiguous labels for dataset specs (the full spec where short names collide)."""
    specs = sorted(set(specs))
    short = {s: data_label(s) for s in specs}
    counts: dict[str, int] = {}
    for v in short.values():
        counts[v] = counts.get(v, 0) + 1
    out = {}
    for s in specs:
        if counts[short[s]] == 1:
            out[s] = short[s]
        else:
            res = re.search(r"res=(\d+)", s)
            n = re.search(r"[?&]n=(\d+)", s)
            extra = ",".join(x for x in (res and f"{res.group(1)}px", n and f"n={n.group(1)}") if x)
            out[s] = f"{short[s]}[{extra or s}]"
    return out


def regime_order(init: str) -> tuple[int, int, str]:
    """Sort key putting regimes in the paper's order: random, transfusion:K by K, transfer, others."""
    name, _, k = init.partition(":")
    rank = {"random": 0, "transfusion": 1, "transfer": 2, "meanvar": 3, "gabor": 4, "freeze": 5, "slim": 6}
    return (rank.get(name, 9), int(k) if k.lstrip("-").isdigit() else -1, init)


def found_text(runs: list[dict], *, not_done: int = 0) -> str:
    """What a store holds, e.g. ``cbr_small on synth-retina: random (seeds 0, 1), gabor (seed 0)``."""
    if not runs:
        text = "no finished training runs"
    else:
        labels = data_labels(r["dataset"] for r in runs)
        groups: dict[tuple[str, str], dict[str, set]] = {}
        for r in runs:
            g = groups.setdefault((r["model"], labels[r["dataset"]]), {})
            g.setdefault(r["init"], set()).add(r["seed"])
        parts = []
        for (model, data), inits in sorted(groups.items()):
            regs = ", ".join(
                f"{i} (seed{'s' if len(s) > 1 else ''} {', '.join(map(str, sorted(s)))})"
                for i, s in sorted(inits.items(), key=lambda kv: regime_order(kv[0]))
            )
            parts.append(f"{model} on {data}: {regs}")
        text = "; ".join(parts)
    if not_done:
        text += f" ({not_done} training run{'s' if not_done > 1 else ''} not done)"
    return text


# ----------------------------------------------------------------------------- reduction


@dataclass(frozen=True)
class PoolAndMean:
    """Reducer: (B, C, H, W) → (B, C, s² + 1): the map pooled to s × s, s = min(size, H, W),
    flattened, then the global mean as the last column. (B, C) outputs → (B, C, 1)."""

    size: int

    def __call__(self, act: Tensor, first_index: int) -> Tensor:
        if act.ndim != 4:
            return act.reshape(act.shape[0], -1)[:, :, None]
        s = min(self.size, act.shape[2], act.shape[3])
        pooled = F.adaptive_avg_pool2d(act, s).flatten(2)
        return torch.cat([pooled, act.mean((2, 3))[:, :, None]], 2)


def split_pooled(t: Tensor) -> tuple[Tensor, Tensor]:
    """Undo :class:`PoolAndMean`: (N, C, L) → pooled (N, C, s, s) or (N, C), and mean (N, C)."""
    if t.shape[2] == 1:
        return t[:, :, 0], t[:, :, 0]
    s = math.isqrt(t.shape[2] - 1)
    return t[:, :, :-1].reshape(t.shape[0], t.shape[1], s, s), t[:, :, -1]


@dataclass(frozen=True)
class Activations:
    """One checkpoint's probe activations per stage: ``pooled`` (N, C, s, s) or (N, C) for the
    similarity measures, ``mean`` (N, C) globally pooled; stages in forward order."""

    pooled: dict[str, Tensor]
    mean: dict[str, Tensor]


# ---------------------------------------------------------------------------- similarity


@dataclass(frozen=True)
class _Reduced:
    """One side of a comparison: ``scores`` (n, k) on the kept principal directions (for SVCCA)
    and, when p > n, ``gram_basis`` (n, r), all principal scores: the same centred Gram matrix
    as the data in r ≤ n columns, so linear CKA (a function of that Gram matrix) is unchanged
    and costs n² instead of p² per datapoint."""

    scores: Tensor
    gram_basis: Tensor | None


def _reduce(a: Tensor, keep: float, max_dims: int) -> _Reduced:
    """(n, p) → the leading principal directions explaining ``keep`` of the variance, at most
    ``max_dims`` of them, through the smaller of the p×p and n×n Gram matrices (float64)."""
    a = a.to(torch.float64)
    a = a - a.mean(0)
    n, p = a.shape
    small = p <= n
    evals, vecs = torch.linalg.eigh(a.T @ a if small else a @ a.T)
    evals, vecs = evals.flip(0), vecs.flip(1)
    top = float(evals[0])
    if top <= 0.0:
        raise ValueError(f"a {tuple(a.shape)} representation has no variance (every feature is constant)")
    rank = int((evals > 1e-10 * top).sum())  # numerical zeros dropped, as in similarity.py
    frac = torch.cumsum(evals[:rank], 0) / evals[:rank].sum()
    k = min(int((frac < keep - 1e-12).sum()) + 1, rank, max(1, max_dims))
    if small:
        return _Reduced(a @ vecs[:, :k], None)
    scores = vecs[:, :rank] * evals[:rank].sqrt()
    return _Reduced(scores[:, :k], scores)


def svcca_capped(x: Tensor, y: Tensor, *, keep: float = 0.99) -> tuple[float, int, int]:
    """SVCCA (Raghu et al. 2017) of x (n, p), y (n, q) with each side's kept directions capped.

    Each side keeps the principal directions explaining ``keep`` of its variance but at most
    n / 20, so n ≥ 10·(kx + ky) whatever the width of the layer; then mean CCA on the reduced
    data. Returns (mean canonical correlation, kx, ky).
    """
    n = x.shape[0]
    res = cca(_reduce(x, keep, n // _POINTS_PER_DIM).scores, _reduce(y, keep, n // _POINTS_PER_DIM).scores)
    return res.mean, res.dims_x, res.dims_y


def _reduced_cached(cache: dict | None, source: Tensor, data: Tensor, cap: int, keep: float = 0.99) -> _Reduced:
    """:func:`_reduce` of ``data`` (datapoints made from ``source``), memoised on ``source``."""
    if cache is None:
        return _reduce(data, keep, cap)
    key = (id(source), data.shape[0], cap, keep)
    hit = cache.get(key)
    if hit is None or hit[0] is not source:  # the source is kept alive with the entry: ids stay unique
        hit = cache[key] = (source, _reduce(data, keep, cap))
    return hit[1]


def stage_similarities(
    a: dict[str, Tensor],
    b: dict[str, Tensor],
    *,
    method: str = "svcca",
    with_cka: bool = True,
    max_points: int | None = 20_000,
    strict: bool = True,
    cache: dict | None = None,
) -> list[dict[str, Any]]:
    """Per-stage similarity of two checkpoints' activations on the same probe images.

    ``a``/``b``: stage → (N, C, s, s) pooled maps or (N, C) features (as :class:`Activations`
    ``.pooled``); stages of ``a`` present in ``b`` are compared in ``a``'s order. Spatial
    positions become datapoints (:func:`matched_datapoints`, at most ``max_points``).
    ``method``: ``"svcca"`` (capped, see :func:`svcca_capped`) or a key of
    :data:`~transfusion.analysis.similarity.MEASURES` (``cca``/``pwcca`` use every direction and
    refuse when the datapoints are too few for the features). Returns one dict per stage:
    ``stage, stage_index, similarity, cka, n_datapoints, features_a, features_b, dims_a,
    dims_b, note``. With ``strict`` a measure's ``ValueError`` is raised again naming the stage;
    otherwise the value is ``None`` and ``note`` holds the reason. ``cache`` (a dict kept by the
    caller) reuses each activation tensor's principal directions across comparisons.
    """
    if method != "svcca" and method not in MEASURES:
        raise ValueError(f"unknown similarity method {method!r}; known: {sorted({'svcca', *MEASURES})}")
    with single_thread():
        return _stage_similarities(a, b, method, with_cka, max_points, strict, cache)


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one CPU thread inside the block (restored afterwards).

    The measures' eigendecompositions are small and very sensitive to oversubscription: a
    512×512 ``eigh`` took 0.05 s on one quiet core and 7 s when its two threads competed with
    another busy process, and a study on a shared 2-core machine slowed down tenfold.
    """
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _stage_similarities(a: dict[str, Tensor], b: dict[str, Tensor], method: str, with_cka: bool,
                        max_points: int | None, strict: bool, cache: dict | None) -> list[dict[str, Any]]:
    rows = []
    for i, stage in enumerate(s for s in a if s in b):
        x, y = matched_datapoints(a[stage], b[stage], max_points=max_points)
        row: dict[str, Any] = {
            "stage": stage, "stage_index": i, "similarity": None, "cka": None, "n_datapoints": x.shape[0],
            "features_a": x.shape[1], "features_b": y.shape[1], "dims_a": None, "dims_b": None, "note": "",
        }
        try:
            cka_x, cka_y = x, y
            if method == "svcca":
                cap = x.shape[0] // _POINTS_PER_DIM
                rx, ry = _reduced_cached(cache, a[stage], x, cap), _reduced_cached(cache, b[stage], y, cap)
                res = cca(rx.scores, ry.scores)
                row["similarity"], row["dims_a"], row["dims_b"] = res.mean, res.dims_x, res.dims_y
                cka_x = x if rx.gram_basis is None else rx.gram_basis
                cka_y = y if ry.gram_basis is None else ry.gram_basis
            else:
                row["similarity"] = similarity(x, y, method=method)
            if with_cka:
                row["cka"] = linear_cka(cka_x, cka_y)
        except ValueError as exc:
            n_img = a[stage].shape[0]
            where = (f"stage {stage!r}: {method} on {x.shape[0]} datapoints ({n_img} probe images × "
                     f"{x.shape[0] // max(1, n_img)} positions) for {x.shape[1]} and {y.shape[1]} features")
            if "datapoints" in str(exc):
                where = f"probe set too small for {where} — use more probe images or method svcca/cka"
            if strict:
                raise ValueError(f"{where}: {exc}") from exc
            row["note"] = f"{where}: {exc}"
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------- kNN


def knn_probe_scores(
    fit_x: np.ndarray, fit_y: np.ndarray, fit_mask: np.ndarray | None, test_x: np.ndarray, task: TaskSpec,
    *, k: int = 20,
) -> np.ndarray:
    """Scores of a k-nearest-neighbour probe, shaped as :func:`transfusion.stats.evaluate` expects.

    ``fit_x`` (n, C) features with targets ``fit_y`` (and multilabel ``fit_mask``), ``test_x``
    (m, C). Features are standardised with the fit set's mean and std, neighbours found by
    scikit-learn's :class:`~sklearn.neighbors.KNeighborsClassifier` (Euclidean, uniform votes,
    k = min(k, n)). Binary → (m,) the neighbours' fraction of positives; multiclass → (m, C)
    class fractions; multilabel → (m, L), per label the fraction of positives among the
    neighbours whose label is observed (0.5 if none is).
    """
    from sklearn.neighbors import KNeighborsClassifier

    mu, sd = fit_x.mean(0), fit_x.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    fx, tx = (fit_x - mu) / sd, (test_x - mu) / sd
    clf = KNeighborsClassifier(n_neighbors=min(k, len(fx)))
    if task.kind == "multilabel":
        y = np.asarray(fit_y, dtype=np.float64)
        m = np.ones_like(y) if fit_mask is None else np.asarray(fit_mask, dtype=np.float64)
        clf.fit(fx, (y * m > 0.5).astype(int))
        idx = clf.kneighbors(tx, return_distance=False)  # (m, k)
        pos, seen = (y * m)[idx].sum(1), m[idx].sum(1)
        return np.where(seen > 0, pos / np.maximum(seen, 1.0), 0.5)
    clf.fit(fx, np.asarray(fit_y))
    proba = clf.predict_proba(tx)
    full = np.zeros((len(tx), task.num_outputs))
    full[:, clf.classes_.astype(int)] = proba
    return full[:, 1] if task.kind == "binary" else full


# ------------------------------------------------------------------------------- context


def normalizer(mean: Iterable[float], std: Iterable[float]) -> Callable[[Tensor], Tensor]:
    """uint8 batch → the model's float input, as the trainer normalises, in channels-last
    layout (16–35% faster convolutions on CPU; the values are the same)."""
    from transfusion.train.inference import normalize

    m, s = tuple(mean), tuple(std)
    return lambda x: normalize(x, m, s).contiguous(memory_format=torch.channels_last)


class StudyContext:
    """An open results store with caches shared by the studies.

    ``probe``: probe images per dataset (from the test split; fewer if the split is smaller);
    ``fit``: training images the kNN probe is fitted on (a fixed subset of the train split,
    default 256);
    ``pool``: conv maps are pooled to at most pool × pool positions; ``max_points``: at most
    this many datapoints per similarity; ``device``/``batch_size``: for forward passes.
    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, store_path: str | Path, *, probe: int = 256, fit: int = 256, pool: int = 4,
                 max_points: int = 20_000, device: str = "cpu", batch_size: int = 64) -> None:
        self.store_path = Path(store_path)
        if not self.store_path.is_file():
            raise FileNotFoundError(f"no results store at {self.store_path} (run `transfusion bench` first)")
        for name, v in (("probe", probe), ("fit", fit), ("pool", pool), ("max_points", max_points),
                        ("batch_size", batch_size)):
            if int(v) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {v}")
        self.probe_size, self.fit_size, self.pool = int(probe), int(fit), int(pool)
        self.max_points, self.device, self.batch_size = int(max_points), device, int(batch_size)
        self.store = Store(self.store_path)
        all_train = self.store.runs(kind="train")
        #: finished training runs (dicts as :meth:`Store.runs` gives them)
        self.runs: list[dict] = [r for r in all_train if r["status"] == "done"]
        self.not_done = len(all_train) - len(self.runs)
        self._datasets: dict[str, Dataset] = {}
        self._acts: dict[tuple[str, str], Activations] = {}
        self._fit_feats: dict[tuple[str, str], dict[str, Tensor]] = {}
        self._sources: dict[str, Any] = {}
        #: principal directions of activations, shared by the similarity studies
        self.pca_cache: dict = {}

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> StudyContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def found(self, runs: list[dict] | None = None) -> str:
        """:func:`found_text` of the store's finished training runs."""
        return found_text(self.runs if runs is None else runs, not_done=self.not_done)

    # ---------------------------------------------------------------- data

    def dataset(self, spec: str) -> Dataset:
        if spec not in self._datasets:
            self._datasets[spec] = load_dataset(spec)
        return self._datasets[spec]

    def probe(self, spec: str) -> ArraySplit:
        """The probe set of a dataset: min(probe, |test|) test images chosen with seed 0."""
        test = self.dataset(spec)["test"]
        return test.subset(probe_indices(len(test), min(self.probe_size, len(test)), seed=0))

    def fit_set(self, spec: str) -> ArraySplit:
        """The kNN fit set: min(fit, |train|) training images chosen with seed 0."""
        train = self.dataset(spec)["train"]
        return train.subset(probe_indices(len(train), min(self.fit_size, len(train)), seed=0))

    # ---------------------------------------------------------------- models

    def run_dir(self, run: dict) -> Path:
        """The run's folder: ``<store folder>/<run_id>`` if present, else the recorded ``out_dir``."""
        here = self.store_path.parent / run["run_id"]
        if here.is_dir() or not run.get("out_dir"):
            return here
        return Path(run["out_dir"])

    def model(self, run: dict, which: str) -> tuple[nn.Module, tuple[float, ...], tuple[float, ...]]:
        """(model in eval mode, input mean, input std) of a run: ``which`` = ``"trained"``
        (its ``best.pt``, the checkpoint its test metrics come from) or ``"init"`` (rebuilt as it
        was before its first step with :func:`~transfusion.train.loop.build_initial_model`)."""
        if which == "trained":
            ck = load_checkpoint(self.run_dir(run) / "best.pt")
            return model_from_checkpoint(ck), tuple(ck["mean"]), tuple(ck["std"])
        if which != "init":
            raise ValueError(f"which must be 'trained' or 'init', got {which!r}")
        from transfusion.harness.execute import resolve_source
        from transfusion.train.setup import build_initial_model
        from transfusion.train.spec import RunSpec

        spec = RunSpec.from_dict(run["spec"])
        source = None
        if spec.source and spec.source.startswith("run:"):
            if spec.source not in self._sources:
                root = self.store_path.parent
                if not (root / spec.source[4:]).is_dir() and run.get("out_dir"):
                    root = Path(run["out_dir"]).parent
                self._sources[spec.source] = resolve_source(spec, root)
            source = self._sources[spec.source]
        with torch.random.fork_rng(devices=[]):  # build_initial_model seeds the global generator
            model, _, _ = build_initial_model(spec, self.dataset(spec.data), source)
        summary = run.get("summary")
        mean = tuple((summary.mean if summary else ()) or (source.mean if source else IMAGENET_MEAN))
        std = tuple((summary.std if summary else ()) or (source.std if source else IMAGENET_STD))
        return model.eval(), mean, std

    def activations(self, run: dict, which: str) -> Activations:
        """Probe activations of a run's checkpoint (cached: each checkpoint is forwarded once)."""
        key = (run["run_id"], which)
        if key not in self._acts:
            model, mean, std = self.model(run, which)
            raw = capture(model.to(memory_format=torch.channels_last), self.probe(run["dataset"]).images,
                          reducer=PoolAndMean(self.pool), transform=normalizer(mean, std),
                          device=self.device, batch_size=self.batch_size)
            pooled, means = {}, {}
            for stage, t in raw.items():
                pooled[stage], means[stage] = split_pooled(t)
            self._acts[key] = Activations(pooled, means)
        return self._acts[key]

    def fit_features(self, run: dict, which: str) -> dict[str, Tensor]:
        """Globally pooled stage features (n_fit, C) of the kNN fit set (cached)."""
        key = (run["run_id"], which)
        if key not in self._fit_feats:
            model, mean, std = self.model(run, which)
            model = model.to(memory_format=torch.channels_last)
            self._fit_feats[key] = capture(model, self.fit_set(run["dataset"]).images, reducer="mean",
                                           transform=normalizer(mean, std), device=self.device,
                                           batch_size=self.batch_size)
        return self._fit_feats[key]


# -------------------------------------------------------------------------------- output


def figure(nrows: int, ncols: int, *, width: float = 4.2, height: float = 3.2):
    """(Figure, axes array nrows × ncols) on an Agg canvas (no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # at least 6.4 in wide, so a one-panel figure still holds its suptitle
    fig = Figure(figsize=(max(width * ncols, 6.4), height * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def grid_shape(n: int, max_cols: int = 3) -> tuple[int, int]:
    cols = min(max_cols, max(1, n))
    return math.ceil(n / cols), cols


def save_figure(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=110)
    return path


def write_csv(rows: list[dict], columns: list[str], path: Path) -> Path:
    """Write ``rows`` with exactly ``columns`` (fixed, never taken from the first row)."""
    import pandas as pd

    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False)
    return path


def regime_colors(inits: Iterable[str]) -> dict[str, Any]:
    """A stable colour per regime (tab10), in regime order."""
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return {init: cmap(i % 10) for i, init in enumerate(sorted(set(inits), key=regime_order))}


def fmt(v: float | None, spec: str = ".2f") -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)
