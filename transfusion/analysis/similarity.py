"""Representation similarity: CCA, SVCCA, PWCCA and linear CKA.

Every measure takes two representations of the *same* datapoints, ``x`` of shape (n, p) and
``y`` of shape (n, q) (datapoints × features, as scikit-learn), as torch tensors or numpy
arrays, and computes in float64 with torch on the device of ``x`` (CPU or CUDA). Every option
after the data is keyword-only.

How it is computed. The arithmetic floor of all four measures is forming the centred
cross-products Sxx = XᵀX (p×p), Syy = YᵀY (q×q) and Sxy = XᵀY (p×q); everything after that
works on those small matrices: an eigendecomposition of Sxx and Syy (whitening, numerical
rank, SVCCA's principal directions) and an SVD of the whitened p×q cross-product, whose
singular values are the canonical correlations. (Plain implementations on the n×p data —
thin SVD or QR of each side, then the singular values of Uxᵀ Uy — live in the tests, which
check these against them.)

Principal directions. :func:`principal_scores` reduces one representation to its leading
principal directions — the reduction inside SVCCA — through the smaller of the p×p and n×n
Gram matrices, so a caller comparing one representation with many others reduces it once;
CCA of two such reductions is :func:`svcca` (to rounding). ``max_dims`` caps the kept
directions of either, e.g. at n / 20 so that n ≥ 10·(kept x + kept y) for any layer width.

Rank deficiency (dead or duplicated units). Directions of Sxx with an eigenvalue below
``1e-10`` × the largest are discarded: they are numerical zeros (rounding in forming Sxx is
~1e-13 × the largest), and whitening them would amplify rounding into spurious correlations.
CCA then runs in the remaining subspace and the result records its dimension (``dims_x``,
``dims_y``); CCA(X, X) is exactly 1 also for rank-deficient X, and no NaN is ever produced.
A representation with no variance at all (constant) is refused with ``ValueError``.

Too few datapoints. With n datapoints the centred data live in an (n−1)-dimensional space;
if the two representations' dimensions add up to more than n−1 their subspaces must
intersect, and canonical correlations of exactly 1 appear from dimension counting alone.
CCA, SVCCA and PWCCA therefore refuse (``ValueError`` printing the shapes and ranks) unless
``n > dims_x + dims_y``: the numerical ranks for CCA and PWCCA (so fewer datapoints than
independent features is refused), SVCCA's kept directions (so it accepts n < p when few are
kept). Even above that bound independent data give a mean CCA of order sqrt(max(p, q)/n):
use n ≥ 10·(p + q) datapoints
for numbers worth comparing (for conv layers, spatial positions are datapoints:
:func:`conv_to_datapoints`). Linear CKA works with any n ≥ 2 (debiased: n ≥ 4).

``epsilon`` regularises CCA (ridge CCA): each covariance gets ``epsilon`` × its mean
eigenvalue added to its diagonal, so the regulariser scales with the data and the measures
stay invariant to isotropic scaling. The default 0 is plain CCA.

Threads: the eigendecompositions are small but very sensitive to oversubscription (a
512×512 ``eigh`` took 0.05 s on a quiet core and 7 s competing with another busy process);
keep processes × ``torch.get_num_threads()`` ≤ cores (:func:`transfusion.core.runtime.torch_threads`
sets them for a block).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from transfusion.analysis._covariance import (
    ArrayLike,
    as_float64,
    check_dims,
    check_finite,
    check_pair,
    eig_desc,
    moments,
    n_kept,
    whitener,
)

__all__ = [
    "MEASURES",
    "CCAResult",
    "PWCCAResult",
    "PrincipalScores",
    "cca",
    "conv_to_datapoints",
    "linear_cka",
    "matched_datapoints",
    "principal_scores",
    "pwcca",
    "similarity",
    "svcca",
]


@dataclass(frozen=True)
class CCAResult:
    """Canonical correlations of two representations.

    ``correlations``: (k,) float64 tensor on the input's device, descending, in [0, 1], with
    k = min(dims_x, dims_y); ``mean``: their plain mean (the similarity usually reported);
    ``dims_x``/``dims_y``: dimensions CCA ran on (numerical rank for :func:`cca`, kept
    principal directions for :func:`svcca`); ``n_datapoints``: n.
    """

    correlations: Tensor
    mean: float
    dims_x: int
    dims_y: int
    n_datapoints: int


@dataclass(frozen=True)
class PWCCAResult:
    """Projection-weighted CCA (Morcos et al. 2018).

    ``mean``: the weighted mean Σ αᵢ ρᵢ; ``correlations``: (k,) canonical correlations ρ,
    descending; ``weights``: (k,) α ≥ 0 summing to 1; ``side``: which representation the
    weights were computed from ("x" or "y").
    """

    mean: float
    correlations: Tensor
    weights: Tensor
    side: Literal["x", "y"]


@dataclass(frozen=True)
class PrincipalScores:
    """One representation on its leading principal directions (:func:`principal_scores`).

    ``scores``: (n, k) float64, the centred data projected on the k kept directions, by
    decreasing variance (column j has squared norm λⱼ, the j-th eigenvalue of the centred
    XᵀX); ``gram_basis``: when p > n, (n, r) all r = rank principal scores — the same centred
    Gram matrix XXᵀ as the data in r ≤ n columns, so :func:`linear_cka` (a function of that
    Gram matrix) gives the same value at n² instead of n·p² cost; ``None`` when p ≤ n.
    """

    scores: Tensor
    gram_basis: Tensor | None

    @property
    def dims(self) -> int:
        """k, the number of kept directions."""
        return int(self.scores.shape[1])


def _canonical(
    x: ArrayLike, y: ArrayLike, measure: str, keep: float | int | None, epsilon: float,
    max_dims: int | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, int]:
    """Shared core: whiteners Wx, Wy, whitened cross M = Wxᵀ Sxy Wy, and the kept spectra."""
    X, Y = check_pair(x, y, measure)
    n = X.shape[0]
    cxx, cyy, cxy = moments(X, Y)
    check_finite(X, Y, cxx, cyy)
    ex, vx = eig_desc(cxx, "x", tuple(X.shape))
    ey, vy = eig_desc(cyy, "y", tuple(Y.shape))
    if keep is not None:
        kx = n_kept(ex, keep, "x", tuple(X.shape), max_dims)
        ky = n_kept(ey, keep, "y", tuple(Y.shape), max_dims)
        ex, vx, ey, vy = ex[:kx], vx[:, :kx], ey[:ky], vy[:, :ky]
    cap = "" if max_dims is None else f", max_dims={max_dims}"
    what = "numerical ranks" if keep is None else f"kept directions (keep={keep}{cap})"
    check_dims(n, ex.numel(), ey.numel(), X, Y, measure, what)
    wx = whitener(ex, vx, epsilon, X.shape[1])
    wy = whitener(ey, vy, epsilon, Y.shape[1])
    m = wx.T @ cxy @ wy
    return m, wx, wy, ex, ey, n


def _result(m: Tensor, n: int) -> CCAResult:
    # rounding can push a correlation of exactly 1 a few ulps above it
    rho = torch.linalg.svdvals(m).clamp(0.0, 1.0)
    return CCAResult(rho, float(rho.mean()), m.shape[0], m.shape[1], n)


# -------------------------------------------------------------------------------- measures


def cca(x: ArrayLike, y: ArrayLike, *, epsilon: float = 0.0) -> CCAResult:
    """Canonical correlation analysis (Hotelling 1936) of x (n, p) and y (n, q).

    Returns all k = min(rank x, rank y) canonical correlations, descending, and their mean
    (the "mean CCA similarity" of Raghu et al. 2017, without truncation). Invariant to
    invertible linear maps of either side. Rank-deficient inputs are reduced to their
    numerical rank; ``n > rank x + rank y`` is required (``ValueError`` otherwise);
    ``epsilon`` ≥ 0 is a ridge relative to the mean eigenvalue (see the module docstring).
    """
    m, *_, n = _canonical(x, y, "cca", None, epsilon)
    return _result(m, n)


def svcca(x: ArrayLike, y: ArrayLike, *, keep: float | int = 0.99, epsilon: float = 0.0,
          max_dims: int | None = None) -> CCAResult:
    """SVCCA (Raghu, Gilmer, Yosinski & Sohl-Dickstein, NeurIPS 2017) of x (n, p) and y (n, q).

    Each side is first reduced to its leading principal directions — those explaining a
    fraction ``keep`` of its variance (float in (0, 1]), or exactly ``keep`` directions (int),
    at most ``max_dims`` of them (``None``: no cap) — then CCA runs on the reduced data.
    Computed from the eigendecomposition of the p×p covariance, never an SVD of the n×p data;
    equal to :func:`cca` of the two sides' :func:`principal_scores` (the route that reduces each
    representation once). ``n > kept x + kept y`` is required. Invariant to orthogonal maps
    and isotropic scaling; to a general invertible map only when it keeps the same leading
    subspace (always with ``keep=1.0``, where SVCCA = CCA).
    """
    m, *_, n = _canonical(x, y, "svcca", keep, epsilon, max_dims)
    return _result(m, n)


def principal_scores(a: ArrayLike, *, keep: float | int = 0.99, max_dims: int | None = None) -> PrincipalScores:
    """a (n, p) reduced to its leading principal directions: SVCCA's reduction of one side.

    Keeps the directions explaining a fraction ``keep`` of the variance (float in (0, 1]) or
    exactly ``keep`` directions (int), at most ``max_dims`` (``None``: no cap), after dropping
    numerical zeros as :func:`cca` does. Computed in float64 from the eigendecomposition of the
    smaller of the centred p×p and n×n Gram matrices, so a layer much wider than the datapoints
    costs n² per feature, not p². ``cca(principal_scores(x, …).scores, principal_scores(y,
    …).scores)`` equals ``svcca(x, y, …)`` to rounding; see :class:`PrincipalScores` for the
    Gram basis that makes :func:`linear_cka` as cheap. A constant ``a`` is refused.
    """
    A = as_float64(a, "a")
    if A.ndim != 2 or A.shape[0] < 2 or A.shape[1] == 0:
        raise ValueError(f"principal_scores needs 2-D (datapoints × features) input with n ≥ 2 and p ≥ 1, "
                         f"got a {tuple(A.shape)}")
    shape = tuple(A.shape)
    n, p = shape
    Ac = A - A.mean(0)  # centred explicitly: the n×n Gram matrix is formed from centred rows
    small = p <= n
    gram = Ac.T @ Ac if small else Ac @ Ac.T
    if not bool(torch.isfinite(torch.diagonal(gram)).all()):
        raise ValueError(f"a {shape} contains NaN or infinite values")
    evals, vecs = eig_desc(gram, "a", shape)
    k = n_kept(evals, keep, "a", shape, max_dims)
    if small:
        return PrincipalScores(Ac @ vecs[:, :k], None)
    # eigenvectors of XXᵀ scaled by √λ are the principal scores: XXᵀ = (V√Λ)(V√Λ)ᵀ
    scores = vecs * evals.sqrt()
    return PrincipalScores(scores[:, :k], scores)


def pwcca(x: ArrayLike, y: ArrayLike, *, epsilon: float = 0.0) -> PWCCAResult:
    """Projection-weighted CCA (Morcos, Raghu & Bengio, NeurIPS 2018) of x (n, p) and y (n, q).

    The canonical correlations ρᵢ are averaged with weights αᵢ ∝ Σⱼ |⟨hᵢ, zⱼ⟩|: how much of
    the representation's own (centred) unit activations zⱼ the canonical variate hᵢ accounts
    for, so directions that carry little of the representation count little. As in the
    reference code the weights come from the side with the smaller rank (x on a tie), whose
    every canonical direction has a partner; hence PWCCA is not symmetric, and it is
    invariant to orthogonal maps only of the other side. The variates hᵢ are the whitened
    canonical variates of the paper (google/svcca's ``pwcca.py`` projects on unwhitened
    directions instead and differs by about 1%). Requirements as :func:`cca`.
    """
    m, wx, wy, ex, ey, n = _canonical(x, y, "pwcca", None, epsilon)
    u, rho, vh = torch.linalg.svd(m, full_matrices=False)
    rho = rho.clamp(0.0, 1.0)  # rounding can push a correlation of 1 a few ulps above it
    side: Literal["x", "y"] = "x" if ex.numel() <= ey.numel() else "y"
    # ⟨hᵢ, zⱼ⟩ = (S W U)ⱼᵢ and S W = W Λ (W = V (Λ + ridge)^-½): no n×k variates are formed
    proj = (wx * ex) @ u if side == "x" else (wy * ey) @ vh.T
    alpha = proj.abs().sum(0)
    alpha = alpha / alpha.sum()
    return PWCCAResult(float((alpha * rho).sum()), rho, alpha, side)


def _hsic_u(gram_fro2: Tensor, r_a: Tensor, r_b: Tensor, n: int) -> Tensor:
    """Unbiased HSIC (Song et al. 2012) of linear kernels from centred data, in feature space.

    With K = AAᵀ, L = BBᵀ (A, B column-centred, row squared norms r_a, r_b) and K̃, L̃ their
    zero-diagonal versions: tr(K̃L̃) = ‖AᵀB‖² − r_a·r_b, 1ᵀK̃1 = −Σr_a, K̃1 = −r_a.
    """
    trace = gram_fro2 - r_a @ r_b
    return (trace + r_a.sum() * r_b.sum() / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * (r_a @ r_b)) / (
        n * (n - 3)
    )


def linear_cka(x: ArrayLike, y: ArrayLike, *, debiased: bool = False) -> float:
    """Linear centred kernel alignment (Kornblith, Norouzi, Lee & Hinton, ICML 2019).

    CKA = ‖XᵀY‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F) on column-centred x (n, p), y (n, q), computed in
    feature space (no n×n Gram matrix). Invariant to orthogonal maps and isotropic scaling,
    not to general invertible maps. Any n ≥ 2 and any rank work; a constant representation
    is refused. ``debiased=True`` uses the unbiased HSIC estimator (Song et al. 2012, as in
    Kornblith et al.'s code) and needs n ≥ 4 and positive self-similarity estimates.
    """
    X, Y = check_pair(x, y, "linear_cka", min_n=4 if debiased else 2)
    n = X.shape[0]
    if debiased:
        Xc, Yc = X - X.mean(0), Y - Y.mean(0)  # row norms of centred data are needed here
        cxx, cyy, cxy = Xc.T @ Xc, Yc.T @ Yc, Xc.T @ Yc
        rx, ry = (Xc * Xc).sum(1), (Yc * Yc).sum(1)
        xy = _hsic_u(cxy.square().sum(), rx, ry, n)
        xx = _hsic_u(cxx.square().sum(), rx, rx, n)
        yy = _hsic_u(cyy.square().sum(), ry, ry, n)
    else:
        cxx, cyy, cxy = moments(X, Y)
        xy, xx, yy = cxy.square().sum(), cxx.square().sum(), cyy.square().sum()
    check_finite(X, Y, cxx, cyy)
    for name, v, t in (("x", xx, X), ("y", yy, Y)):
        if float(v) <= 0.0:
            why = "a non-positive debiased self-similarity (too few datapoints)" if debiased else "no variance"
            raise ValueError(f"linear_cka: {name} {tuple(t.shape)} has {why}")
    return float(xy / torch.sqrt(xx * yy))


def _mean_cca(x: ArrayLike, y: ArrayLike) -> float:
    return cca(x, y).mean


def _mean_svcca(x: ArrayLike, y: ArrayLike) -> float:
    return svcca(x, y).mean


def _mean_pwcca(x: ArrayLike, y: ArrayLike) -> float:
    return pwcca(x, y).mean


def _cka_debiased(x: ArrayLike, y: ArrayLike) -> float:
    return linear_cka(x, y, debiased=True)


#: Table of measures by name, each ``(x, y) -> float`` with default options.
MEASURES: dict[str, Callable[[ArrayLike, ArrayLike], float]] = {
    "cca": _mean_cca,
    "svcca": _mean_svcca,
    "pwcca": _mean_pwcca,
    "cka": linear_cka,
    "cka_debiased": _cka_debiased,
}


def similarity(x: ArrayLike, y: ArrayLike, *, method: str = "svcca") -> float:
    """One number: the measure ``method`` (a key of :data:`MEASURES`) of x (n, p), y (n, q)."""
    try:
        fn = MEASURES[method]
    except KeyError:
        raise ValueError(f"unknown similarity method {method!r}; known: {sorted(MEASURES)}") from None
    return fn(x, y)


# ------------------------------------------------------------------- conv activations


def _as_tensor(a: ArrayLike, name: str) -> Tensor:
    if isinstance(a, np.ndarray):
        return torch.from_numpy(a)
    if isinstance(a, Tensor):
        return a
    raise TypeError(f"{name} must be a torch tensor or numpy array, got {type(a).__name__}")


def conv_to_datapoints(
    acts: ArrayLike, *, max_points: int | None = 20_000, pool: int | None = None, seed: int = 0
) -> Tensor:
    """Conv activations (N, C, H, W) → datapoints (M, C): every spatial position is a datapoint.

    As the SVCCA work does for conv layers, the C channels are the features and the N·H·W
    (image, position) pairs the datapoints, rows ordered image-major then row then column.
    To bound memory, ``pool`` (optional) first average-pools each map to ``pool`` × ``pool``
    (adaptive average pooling: neighbouring positions are averaged, coverage of the image
    is kept), then, if more than ``max_points`` rows remain, ``max_points`` of them are drawn
    uniformly without replacement by a generator seeded with ``seed`` and kept in their
    original order. The drawn rows depend only on (M, max_points, seed), so two layers with
    the same N·H·W get the same (image, position) datapoints — see
    :func:`matched_datapoints` for layers of different spatial size. A 2-D input (N, C) is
    already datapoints × features and is only subsampled. dtype and device are kept.
    """
    a = _as_tensor(acts, "acts")
    if a.ndim == 4:
        if pool is not None:
            if pool < 1 or pool > min(a.shape[2], a.shape[3]):
                raise ValueError(f"pool={pool} must lie in 1..min(H, W) for acts {tuple(a.shape)}")
            a = F.adaptive_avg_pool2d(a, pool)
        a = a.permute(0, 2, 3, 1).reshape(-1, a.shape[1])
    elif a.ndim != 2:
        raise ValueError(f"acts must be (N, C, H, W) or (N, C), got shape {tuple(a.shape)}")
    if max_points is not None:
        if max_points < 1:
            raise ValueError(f"max_points={max_points} must be ≥ 1 (or None for all)")
        if a.shape[0] > max_points:
            gen = torch.Generator().manual_seed(seed)
            rows = torch.randperm(a.shape[0], generator=gen)[:max_points].sort().values
            a = a[rows.to(a.device)]
    return a


def matched_datapoints(
    a: ArrayLike, b: ArrayLike, *, max_points: int | None = 20_000, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """Datapoint matrices (M, Ca), (M, Cb) of two layers' activations on the same N images.

    Same spatial size: :func:`conv_to_datapoints` on each, same rows. Different spatial
    sizes (e.g. block1 at 32×32 against block3 at 8×8): both are adaptively average-pooled
    to the common (smaller) size first, so a datapoint is the same image region in both.
    If either is already pooled to (N, C), the other is globally average-pooled to match.
    """
    ta, tb = _as_tensor(a, "a"), _as_tensor(b, "b")
    if ta.ndim not in (2, 4) or tb.ndim not in (2, 4) or ta.shape[0] != tb.shape[0]:
        raise ValueError(
            f"need activations (N, C, H, W) or (N, C) of the same N images, got a "
            f"{tuple(ta.shape)} and b {tuple(tb.shape)}"
        )
    if ta.ndim == 2 or tb.ndim == 2:
        ta = ta.mean((2, 3)) if ta.ndim == 4 else ta
        tb = tb.mean((2, 3)) if tb.ndim == 4 else tb
    else:
        size = (min(ta.shape[2], tb.shape[2]), min(ta.shape[3], tb.shape[3]))
        ta = F.adaptive_avg_pool2d(ta, size) if tuple(ta.shape[2:]) != size else ta
        tb = F.adaptive_avg_pool2d(tb, size) if tuple(tb.shape[2:]) != size else tb
    return (
        conv_to_datapoints(ta, max_points=max_points, seed=seed),
        conv_to_datapoints(tb, max_points=max_points, seed=seed),
    )
