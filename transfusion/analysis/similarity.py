"""Representation similarity: CCA, SVCCA, PWCCA and linear CKA.

Every measure takes two representations of the *same* datapoints, ``x`` of shape (n, p) and
``y`` of shape (n, q) (datapoints × features, as scikit-learn), as torch tensors or numpy
arrays, and computes in float64 with torch on the device of ``x`` (CPU or CUDA). Every option
after the data is keyword-only.

How it is computed. The arithmetic floor of all four measures is forming the centred
cross-products Sxx = XᵀX (p×p), Syy = YᵀY (q×q) and Sxy = XᵀY (p×q); everything after that
works on those small matrices: an eigendecomposition of Sxx and Syy (whitening, numerical
rank, SVCCA's principal directions) and an SVD of the whitened p×q cross-product, whose
singular values are the canonical correlations. A plain implementation on the n×p data
(thin SVD of each side, then the singular values of Uxᵀ Uy) is kept as :func:`_cca_svd` to
test against.

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
keep processes × ``torch.get_num_threads()`` ≤ cores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

ArrayLike = Tensor | np.ndarray

# Eigenvalues below this fraction of the largest are numerical zeros (see module docstring).
_RANK_RTOL = 1e-10
# Forming XᵀX − n·μμᵀ loses digits when a feature's mean dwarfs its spread; below this ratio
# of centred to uncentred second moment the data are centred explicitly instead.
_CANCEL_RTOL = 1e-6

__all__ = [
    "MEASURES",
    "CCAResult",
    "PWCCAResult",
    "cca",
    "conv_to_datapoints",
    "linear_cka",
    "matched_datapoints",
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


# ---------------------------------------------------------------------------------- inputs


def _as_float64(a: ArrayLike, name: str, device: torch.device | None = None) -> Tensor:
    t = torch.from_numpy(np.asarray(a)) if isinstance(a, np.ndarray) else a
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch tensor or numpy array, got {type(a).__name__}")
    if device is not None and t.device != device:
        raise ValueError(f"x is on {device} but {name} is on {t.device}; move both to one device")
    return t.to(torch.float64)


def _check_pair(x: ArrayLike, y: ArrayLike, measure: str, min_n: int = 2) -> tuple[Tensor, Tensor]:
    X = _as_float64(x, "x")
    Y = _as_float64(y, "y", X.device)
    if X.ndim != 2 or Y.ndim != 2:
        raise ValueError(
            f"{measure} needs 2-D (datapoints × features) inputs, got x {tuple(X.shape)} and "
            f"y {tuple(Y.shape)}; for conv activations (N, C, H, W) use conv_to_datapoints"
        )
    if X.shape[0] != Y.shape[0]:
        raise ValueError(
            f"{measure} needs the same datapoints in x and y, got x {tuple(X.shape)} and "
            f"y {tuple(Y.shape)} (rows differ)"
        )
    if X.shape[0] < min_n:
        raise ValueError(f"{measure} needs at least {min_n} datapoints, got x {tuple(X.shape)}")
    if X.shape[1] == 0 or Y.shape[1] == 0:
        raise ValueError(f"{measure} needs at least one feature, got x {tuple(X.shape)}, y {tuple(Y.shape)}")
    return X, Y


def _check_finite(X: Tensor, Y: Tensor, cxx: Tensor, cyy: Tensor) -> None:
    # a NaN/inf anywhere in the data reaches the diagonal of its cross-product: checking the
    # small p×p matrices is free, scanning the n×p data costs a quarter of the floor
    for name, t, c in (("x", X, cxx), ("y", Y, cyy)):
        if not bool(torch.isfinite(torch.diagonal(c)).all()):
            raise ValueError(f"{name} {tuple(t.shape)} contains NaN or infinite values")


def _moments(X: Tensor, Y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Centred cross-products Sxx (p×p), Syy (q×q), Sxy (p×q) of X (n×p), Y (n×q)."""
    n = X.shape[0]
    mx, my = X.mean(0), Y.mean(0)
    # XᵀX − n·μμᵀ avoids writing a centred copy of the data (a full extra pass and n×p buffer)
    sxx = X.T @ X
    syy = Y.T @ Y
    sxy = X.T @ Y
    cxx = sxx - n * torch.outer(mx, mx)
    cyy = syy - n * torch.outer(my, my)
    cxy = sxy - n * torch.outer(mx, my)
    bad_x = bool((torch.diagonal(cxx) < _CANCEL_RTOL * torch.diagonal(sxx)).any())
    bad_y = bool((torch.diagonal(cyy) < _CANCEL_RTOL * torch.diagonal(syy)).any())
    if bad_x or bad_y:
        # a mean far larger than the spread: the subtraction above cancelled; centre explicitly
        Xc, Yc = X - mx, Y - my
        cxx = Xc.T @ Xc if bad_x else cxx
        cyy = Yc.T @ Yc if bad_y else cyy
        cxy = Xc.T @ Yc
    # symmetrise: the two triangles of a computed XᵀX can differ in the last bit
    return (cxx + cxx.T) / 2, (cyy + cyy.T) / 2, cxy


def _eig_desc(S: Tensor, name: str, shape: tuple[int, ...]) -> tuple[Tensor, Tensor]:
    """Eigenvalues (descending, numerically non-zero only) and eigenvectors of S (p×p)."""
    evals, evecs = torch.linalg.eigh(S)
    evals, evecs = evals.flip(0), evecs.flip(1)
    top = float(evals[0])
    if top <= 0.0:
        raise ValueError(f"{name} {shape} has no variance (every feature is constant)")
    keep = evals > _RANK_RTOL * top  # drop numerical zeros (rank deficiency)
    return evals[keep], evecs[:, keep]


def _n_kept(evals: Tensor, keep: float | int, name: str, shape: tuple[int, ...]) -> int:
    """How many leading principal directions SVCCA keeps."""
    if isinstance(keep, bool) or not isinstance(keep, (int, float)):
        raise TypeError(f"keep must be a variance fraction in (0, 1] or a count, got {keep!r}")
    if isinstance(keep, int):
        if keep < 1:
            raise ValueError(f"keep={keep}: keep at least one direction")
        if keep > evals.numel():
            raise ValueError(
                f"keep={keep} directions but {name} {shape} has numerical rank {evals.numel()}"
            )
        return keep
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"keep={keep}: a variance fraction must lie in (0, 1]")
    frac = torch.cumsum(evals, 0) / evals.sum()
    # smallest k whose leading directions explain ≥ keep of the variance (1e-12: rounding slack)
    return min(int((frac < keep - 1e-12).sum()) + 1, evals.numel())


def _whitener(evals: Tensor, evecs: Tensor, epsilon: float, p: int) -> Tensor:
    """W (p×r) with Wᵀ (S + ridge) W = I on the kept directions."""
    if epsilon < 0:
        raise ValueError(f"epsilon={epsilon} must be ≥ 0")
    ridge = epsilon * float(evals.sum()) / p  # relative to the mean eigenvalue: scale-free
    return evecs / torch.sqrt(evals + ridge)


def _check_dims(n: int, rx: int, ry: int, x: Tensor, y: Tensor, measure: str, what: str) -> None:
    if rx + ry > n - 1:
        raise ValueError(
            f"{measure} needs more datapoints than the two {what} together (n > dims_x + dims_y), "
            f"got x {tuple(x.shape)} with {what} {rx} and y {tuple(y.shape)} with {what} {ry}; "
            f"with n = {n} canonical correlations of 1 would appear from dimension counting "
            f"alone. Use at least {rx + ry + 1} (better ≥ {10 * (rx + ry)}) datapoints, e.g. "
            "more images or spatial positions (conv_to_datapoints)"
        )


def _canonical(
    x: ArrayLike, y: ArrayLike, measure: str, keep: float | int | None, epsilon: float
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, int]:
    """Shared core: whiteners Wx, Wy, whitened cross M = Wxᵀ Sxy Wy, and the kept spectra."""
    X, Y = _check_pair(x, y, measure)
    n = X.shape[0]
    cxx, cyy, cxy = _moments(X, Y)
    _check_finite(X, Y, cxx, cyy)
    ex, vx = _eig_desc(cxx, "x", tuple(X.shape))
    ey, vy = _eig_desc(cyy, "y", tuple(Y.shape))
    if keep is not None:
        kx, ky = _n_kept(ex, keep, "x", tuple(X.shape)), _n_kept(ey, keep, "y", tuple(Y.shape))
        ex, vx, ey, vy = ex[:kx], vx[:, :kx], ey[:ky], vy[:, :ky]
    what = "numerical ranks" if keep is None else f"kept directions (keep={keep})"
    _check_dims(n, ex.numel(), ey.numel(), X, Y, measure, what)
    wx = _whitener(ex, vx, epsilon, X.shape[1])
    wy = _whitener(ey, vy, epsilon, Y.shape[1])
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


def svcca(x: ArrayLike, y: ArrayLike, *, keep: float | int = 0.99, epsilon: float = 0.0) -> CCAResult:
    """SVCCA (Raghu, Gilmer, Yosinski & Sohl-Dickstein, NeurIPS 2017) of x (n, p) and y (n, q).

    Each side is first reduced to its leading principal directions — those explaining a
    fraction ``keep`` of its variance (float in (0, 1]), or exactly ``keep`` directions (int)
    — then CCA runs on the reduced data. Computed from the eigendecomposition of the p×p
    covariance, never an SVD of the n×p data. ``n > kept x + kept y`` is required.
    Invariant to orthogonal maps and isotropic scaling; to a general invertible map only
    when it keeps the same leading subspace (always with ``keep=1.0``, where SVCCA = CCA).
    """
    m, *_, n = _canonical(x, y, "svcca", keep, epsilon)
    return _result(m, n)


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
    X, Y = _check_pair(x, y, "linear_cka", min_n=4 if debiased else 2)
    n = X.shape[0]
    if debiased:
        Xc, Yc = X - X.mean(0), Y - Y.mean(0)  # row norms of centred data are needed here
        cxx, cyy, cxy = Xc.T @ Xc, Yc.T @ Yc, Xc.T @ Yc
        rx, ry = (Xc * Xc).sum(1), (Yc * Yc).sum(1)
        xy = _hsic_u(cxy.square().sum(), rx, ry, n)
        xx = _hsic_u(cxx.square().sum(), rx, rx, n)
        yy = _hsic_u(cyy.square().sum(), ry, ry, n)
    else:
        cxx, cyy, cxy = _moments(X, Y)
        xy, xx, yy = cxy.square().sum(), cxx.square().sum(), cyy.square().sum()
    _check_finite(X, Y, cxx, cyy)
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


# ------------------------------------------------------------------ plain reference versions


def _orthobasis(A: Tensor, rtol: float = _RANK_RTOL) -> Tensor:
    """Orthonormal basis (n×r) of the centred columns of A (n×p), numerical rank only."""
    Ac = A - A.mean(0)
    u, s, _ = torch.linalg.svd(Ac, full_matrices=False)
    # same rank rule as the covariance path: s² > rtol·s_max²
    return u[:, s.square() > rtol * s[0].square()]


def _cca_svd(x: ArrayLike, y: ArrayLike) -> Tensor:
    """Plain CCA (Björck & Golub 1973): singular values of Uxᵀ Uy from thin SVDs of the data."""
    X, Y = _check_pair(x, y, "_cca_svd")
    return torch.linalg.svdvals(_orthobasis(X).T @ _orthobasis(Y)).clamp(0.0, 1.0)


def _cca_qr(x: ArrayLike, y: ArrayLike) -> Tensor:
    """Plain CCA for full-rank data: singular values of QxᵀQy from QR of the centred data."""
    X, Y = _check_pair(x, y, "_cca_qr")
    qx = torch.linalg.qr(X - X.mean(0)).Q
    qy = torch.linalg.qr(Y - Y.mean(0)).Q
    return torch.linalg.svdvals(qx.T @ qy).clamp(0.0, 1.0)


def _svcca_svd(x: ArrayLike, y: ArrayLike, keep: float | int = 0.99) -> Tensor:
    """Plain SVCCA: project each side on its leading singular directions, then :func:`_cca_svd`."""
    X, Y = _check_pair(x, y, "_svcca_svd")
    reduced = []
    for A in (X, Y):
        Ac = A - A.mean(0)
        u, s, _ = torch.linalg.svd(Ac, full_matrices=False)
        s2 = s.square()
        s2 = s2[s2 > _RANK_RTOL * s2[0]]
        k = _n_kept(s2, keep, "x", tuple(A.shape))
        reduced.append(u[:, :k] * s[:k])
    return _cca_svd(reduced[0], reduced[1])


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
