"""Covariance machinery shared by the similarity measures of :mod:`transfusion.analysis.similarity`
(whose docstring explains the numerics): input checks, centred cross-products, descending
spectra with numerical zeros dropped, SVCCA's kept directions, whitening and the bound on
dimensions against datapoints. Inputs are (datapoints × features), computed in float64.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

ArrayLike = Tensor | np.ndarray

# Eigenvalues below this fraction of the largest are numerical zeros (see the similarity module docstring).
RANK_RTOL = 1e-10
# Forming XᵀX − n·μμᵀ loses digits when a feature's mean dwarfs its spread; below this ratio
# of centred to uncentred second moment the data are centred explicitly instead.
CANCEL_RTOL = 1e-6


def as_float64(a: ArrayLike, name: str, device: torch.device | None = None) -> Tensor:
    """``a`` as a float64 tensor (numpy arrays shared, not copied, before the cast), on ``device`` if given."""
    t = torch.from_numpy(np.asarray(a)) if isinstance(a, np.ndarray) else a
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch tensor or numpy array, got {type(a).__name__}")
    if device is not None and t.device != device:
        raise ValueError(f"x is on {device} but {name} is on {t.device}; move both to one device")
    return t.to(torch.float64)


def check_pair(x: ArrayLike, y: ArrayLike, measure: str, min_n: int = 2) -> tuple[Tensor, Tensor]:
    """x (n, p), y (n, q) as float64 tensors on x's device; ``ValueError`` naming both shapes
    unless both are 2-D with the same n ≥ ``min_n`` rows and at least one feature each."""
    X = as_float64(x, "x")
    Y = as_float64(y, "y", X.device)
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


def check_finite(X: Tensor, Y: Tensor, cxx: Tensor, cyy: Tensor) -> None:
    """``ValueError`` if X or Y holds a NaN or inf, read off their cross-products' diagonals."""
    # a NaN/inf anywhere in the data reaches the diagonal of its cross-product: checking the
    # small p×p matrices is free, scanning the n×p data costs a quarter of the floor
    for name, t, c in (("x", X, cxx), ("y", Y, cyy)):
        if not bool(torch.isfinite(torch.diagonal(c)).all()):
            raise ValueError(f"{name} {tuple(t.shape)} contains NaN or infinite values")


def moments(X: Tensor, Y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
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
    bad_x = bool((torch.diagonal(cxx) < CANCEL_RTOL * torch.diagonal(sxx)).any())
    bad_y = bool((torch.diagonal(cyy) < CANCEL_RTOL * torch.diagonal(syy)).any())
    if bad_x or bad_y:
        # a mean far larger than the spread: the subtraction above cancelled; centre explicitly
        Xc, Yc = X - mx, Y - my
        cxx = Xc.T @ Xc if bad_x else cxx
        cyy = Yc.T @ Yc if bad_y else cyy
        cxy = Xc.T @ Yc
    # symmetrise: the two triangles of a computed XᵀX can differ in the last bit
    return (cxx + cxx.T) / 2, (cyy + cyy.T) / 2, cxy


def eig_desc(S: Tensor, name: str, shape: tuple[int, ...]) -> tuple[Tensor, Tensor]:
    """Eigenvalues (descending, numerically non-zero only) and eigenvectors of S (p×p)."""
    evals, evecs = torch.linalg.eigh(S)
    evals, evecs = evals.flip(0), evecs.flip(1)
    top = float(evals[0])
    if top <= 0.0:
        raise ValueError(f"{name} {shape} has no variance (every feature is constant)")
    keep = evals > RANK_RTOL * top  # drop numerical zeros (rank deficiency)
    return evals[keep], evecs[:, keep]


def n_kept(evals: Tensor, keep: float | int, name: str, shape: tuple[int, ...],
            max_dims: int | None = None) -> int:
    """How many leading principal directions SVCCA keeps: ``keep`` (a variance fraction or a
    count) of the descending spectrum ``evals``, at most ``max_dims``."""
    if max_dims is not None:
        if isinstance(max_dims, bool) or not isinstance(max_dims, int):
            raise TypeError(f"max_dims must be a whole number of directions or None, got {max_dims!r}")
        if max_dims < 1:
            raise ValueError(f"max_dims={max_dims}: keep at least one direction")
        return min(n_kept(evals, keep, name, shape), max_dims)
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


def whitener(evals: Tensor, evecs: Tensor, epsilon: float, p: int) -> Tensor:
    """W (p×r) with Wᵀ (S + ridge) W = I on the kept directions."""
    if epsilon < 0:
        raise ValueError(f"epsilon={epsilon} must be ≥ 0")
    ridge = epsilon * float(evals.sum()) / p  # relative to the mean eigenvalue: scale-free
    return evecs / torch.sqrt(evals + ridge)


def check_dims(n: int, rx: int, ry: int, x: Tensor, y: Tensor, measure: str, what: str) -> None:
    """``ValueError`` unless n > rx + ry: below that, correlations of 1 come from counting alone."""
    if rx + ry > n - 1:
        raise ValueError(
            f"{measure} needs more datapoints than the two {what} together (n > dims_x + dims_y), "
            f"got x {tuple(x.shape)} with {what} {rx} and y {tuple(y.shape)} with {what} {ry}; "
            f"with n = {n} canonical correlations of 1 would appear from dimension counting "
            f"alone. Use at least {rx + ry + 1} (better ≥ {10 * (rx + ry)}) datapoints, e.g. "
            "more images or spatial positions (conv_to_datapoints)"
        )
