"""Plain reference implementations of CCA and SVCCA, used only by the tests to check the
covariance-based measures of :mod:`transfusion.analysis.similarity` against.

They work on the n×p data directly (thin SVD or QR of each centred side, then the singular
values of the product of the two orthonormal bases: Björck & Golub 1973) — slow and memory
hungry at scale, but with nothing in common with the measures beyond the rank rule.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from transfusion.analysis._covariance import RANK_RTOL

__all__ = ["cca_qr", "cca_svd", "orthobasis", "svcca_svd"]


def _pair(x: Tensor | np.ndarray, y: Tensor | np.ndarray) -> tuple[Tensor, Tensor]:
    """x (n, p), y (n, q) as float64 tensors."""
    X, Y = (torch.as_tensor(a).to(torch.float64) for a in (x, y))
    if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0]:
        raise ValueError(f"need x (n, p) and y (n, q), got {tuple(X.shape)} and {tuple(Y.shape)}")
    return X, Y


def orthobasis(A: Tensor, rtol: float = RANK_RTOL) -> Tensor:
    """Orthonormal basis (n×r) of the centred columns of A (n×p), numerical rank only."""
    Ac = A - A.mean(0)
    u, s, _ = torch.linalg.svd(Ac, full_matrices=False)
    # same rank rule as the covariance path: s² > rtol·s_max²
    return u[:, s.square() > rtol * s[0].square()]


def cca_svd(x: Tensor | np.ndarray, y: Tensor | np.ndarray) -> Tensor:
    """Plain CCA (Björck & Golub 1973): singular values of Uxᵀ Uy from thin SVDs of the data."""
    X, Y = _pair(x, y)
    return torch.linalg.svdvals(orthobasis(X).T @ orthobasis(Y)).clamp(0.0, 1.0)


def cca_qr(x: Tensor | np.ndarray, y: Tensor | np.ndarray) -> Tensor:
    """Plain CCA for full-rank data: singular values of QxᵀQy from QR of the centred data."""
    X, Y = _pair(x, y)
    qx = torch.linalg.qr(X - X.mean(0)).Q
    qy = torch.linalg.qr(Y - Y.mean(0)).Q
    return torch.linalg.svdvals(qx.T @ qy).clamp(0.0, 1.0)


def _kept(s2: Tensor, keep: float | int) -> int:
    """SVCCA's kept directions of a descending spectrum: ``keep`` of them (int), or the fewest
    explaining a fraction ``keep`` of the variance (float; 1e-12 rounding slack)."""
    if isinstance(keep, int):
        return keep
    frac = torch.cumsum(s2, 0) / s2.sum()
    return min(int((frac < keep - 1e-12).sum()) + 1, s2.numel())


def svcca_svd(x: Tensor | np.ndarray, y: Tensor | np.ndarray, keep: float | int = 0.99) -> Tensor:
    """Plain SVCCA: project each side on its leading singular directions, then :func:`cca_svd`."""
    X, Y = _pair(x, y)
    reduced = []
    for A in (X, Y):
        u, s, _ = torch.linalg.svd(A - A.mean(0), full_matrices=False)
        s2 = s.square()
        s2 = s2[s2 > RANK_RTOL * s2[0]]
        k = _kept(s2, keep)
        reduced.append(u[:, :k] * s[:k])
    return cca_svd(reduced[0], reduced[1])
