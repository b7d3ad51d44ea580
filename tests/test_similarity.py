"""Similarity measures: properties, agreement between implementations, scikit-learn, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from reference_similarity import cca_qr, cca_svd, svcca_svd
from sklearn.cross_decomposition import CCA as SkCCA

from transfusion.analysis.similarity import (
    MEASURES,
    cca,
    conv_to_datapoints,
    linear_cka,
    matched_datapoints,
    principal_scores,
    pwcca,
    similarity,
    svcca,
)

f64 = torch.float64


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def related(n: int = 2000, p: int = 24, q: int = 16, latent: int = 6, noise: float = 1.0, seed: int = 0):
    """x (n, p), y (n, q) sharing a ``latent``-dimensional signal, with offsets."""
    g = gen(seed)
    z = torch.randn(n, latent, dtype=f64, generator=g)
    x = z @ torch.randn(latent, p, dtype=f64, generator=g) + noise * torch.randn(n, p, dtype=f64, generator=g)
    y = z @ torch.randn(latent, q, dtype=f64, generator=g) + noise * torch.randn(n, q, dtype=f64, generator=g)
    return x + 3.0, y - 1.0


def orthogonal(p: int, seed: int) -> torch.Tensor:
    return torch.linalg.qr(torch.randn(p, p, dtype=f64, generator=gen(seed))).Q


def invertible(p: int, seed: int, cond: float = 30.0) -> torch.Tensor:
    """A random invertible p×p map with condition number ``cond``."""
    s = torch.logspace(0, np.log10(cond), p, dtype=f64)
    return orthogonal(p, seed) @ torch.diag(s) @ orthogonal(p, seed + 1)


ALL = {
    "cca": lambda a, b: cca(a, b).mean,
    "svcca": lambda a, b: svcca(a, b).mean,
    "pwcca": lambda a, b: pwcca(a, b).mean,
    "cka": linear_cka,
    "cka_debiased": lambda a, b: linear_cka(a, b, debiased=True),
}


@pytest.mark.parametrize("name", list(ALL))
def test_identity_gives_one(name):
    x, _ = related()
    assert ALL[name](x, x) == pytest.approx(1.0, abs=1e-10)


@pytest.mark.parametrize("name", list(ALL))
def test_invariant_to_orthogonal_maps_and_isotropic_scaling(name):
    x, y = related()
    base = ALL[name](x, y)
    x2 = 7.5 * x @ orthogonal(x.shape[1], 1)
    assert ALL[name](x2, y) == pytest.approx(base, abs=1e-9)
    assert ALL[name](x, 0.01 * y) == pytest.approx(base, abs=1e-9)
    # PWCCA weights come from the lower-rank side's own units (here y): rotating it changes them
    if name != "pwcca":
        assert ALL[name](x2, y @ orthogonal(y.shape[1], 2)) == pytest.approx(base, abs=1e-9)


def test_pwcca_rotating_the_weighted_side_changes_it():
    x, y = related(p=12, q=20)
    assert pwcca(x, y).side == "x"
    assert abs(pwcca(x @ orthogonal(12, 3), y).mean - pwcca(x, y).mean) > 1e-4


def test_cca_invariant_to_invertible_maps_cka_not():
    x, y = related()
    a, b = invertible(x.shape[1], 4), invertible(y.shape[1], 6)
    torch.testing.assert_close(cca(x @ a, y @ b).correlations, cca(x, y).correlations, rtol=0, atol=1e-9)
    # SVCCA keeping every direction is CCA, hence invariant as well
    torch.testing.assert_close(svcca(x @ a, y @ b, keep=1.0).correlations, cca(x, y).correlations, rtol=0, atol=1e-9)
    assert linear_cka(x, x) == pytest.approx(1.0)
    assert linear_cka(x, x @ invertible(x.shape[1], 8, cond=1e3)) < 0.9


def test_svcca_invariant_to_invertible_maps_that_keep_the_leading_subspace():
    # low-rank signal + tiny noise: the kept directions are the signal subspace before and after
    x, y = related(noise=1e-3)
    a, b = invertible(x.shape[1], 4, cond=5), invertible(y.shape[1], 6, cond=5)
    r0, r1 = svcca(x, y), svcca(x @ a, y @ b)
    assert (r0.dims_x, r0.dims_y) == (r1.dims_x, r1.dims_y) == (6, 6)
    assert r1.mean == pytest.approx(r0.mean, abs=1e-4)


def test_independent_random_matrices_are_dissimilar():
    g = gen(5)
    x = torch.randn(5000, 20, dtype=f64, generator=g)
    y = torch.randn(5000, 20, dtype=f64, generator=g)
    assert cca(x, y).mean < 0.1
    assert svcca(x, y).mean < 0.1
    assert pwcca(x, y).mean < 0.1
    assert linear_cka(x, y) < 0.02
    assert abs(linear_cka(x, y, debiased=True)) < 0.01
    x2, y2 = related(noise=0.5)
    assert cca(x2, y2).mean > 0.2 and linear_cka(x2, y2) > 0.3


def test_covariance_and_plain_implementations_agree():
    x, y = related()
    r = cca(x, y)
    torch.testing.assert_close(r.correlations, cca_svd(x, y), rtol=0, atol=1e-8)
    torch.testing.assert_close(r.correlations, cca_qr(x, y), rtol=0, atol=1e-8)
    for keep in (0.99, 0.9, 5):
        torch.testing.assert_close(svcca(x, y, keep=keep).correlations, svcca_svd(x, y, keep=keep), rtol=0, atol=1e-8)
    assert r.correlations.dtype == f64 and r.correlations.shape == (16,)
    assert torch.all(r.correlations[:-1] >= r.correlations[1:])
    assert r.mean == pytest.approx(float(r.correlations.mean()))


@pytest.mark.parametrize("n", [2000, 40])  # more and fewer datapoints than features (through the n×n Gram)
def test_principal_scores_are_svccas_reduction(n):
    x, y = related(n=n, p=60, q=50, noise=0.3)
    for keep, cap in ((0.9, None), (0.99, 8), (5, None), (7, 4)):
        px, py = principal_scores(x, keep=keep, max_dims=cap), principal_scores(y, keep=keep, max_dims=cap)
        ref = svcca(x, y, keep=keep, max_dims=cap)
        assert (px.dims, py.dims) == (ref.dims_x, ref.dims_y)
        if cap is not None:
            assert px.dims <= cap and py.dims <= cap
        if px.dims + py.dims < n:
            torch.testing.assert_close(cca(px.scores, py.scores).correlations, ref.correlations, rtol=0, atol=1e-8)
    xc = x - x.mean(0)
    p = principal_scores(x, keep=3)
    variances = torch.linalg.eigvalsh(xc.T @ xc).flip(0)[:3]
    torch.testing.assert_close(p.scores.square().sum(0), variances, rtol=1e-9, atol=0)  # by decreasing variance
    if n < x.shape[1]:  # the Gram basis keeps the centred Gram matrix, hence CKA
        torch.testing.assert_close(p.gram_basis @ p.gram_basis.T, xc @ xc.T, rtol=0, atol=1e-8)
        assert linear_cka(p.gram_basis, y) == pytest.approx(linear_cka(x, y), abs=1e-12)
    else:
        assert p.gram_basis is None
    with pytest.raises(ValueError, match="max_dims=0"):
        principal_scores(x, max_dims=0)
    with pytest.raises(ValueError, match="no variance"):
        principal_scores(torch.ones(n, 3, dtype=f64))
    with pytest.raises(ValueError, match=r"\(60,\)"):
        principal_scores(x[0])


def test_pwcca_matches_the_definition_on_the_data():
    """Morcos et al. 2018: αᵢ ∝ Σⱼ |⟨hᵢ, zⱼ⟩| with hᵢ the canonical variates of x."""
    x, y = related(p=10, q=14)
    xc, yc = (x - x.mean(0)).numpy(), (y - y.mean(0)).numpy()
    ux = np.linalg.svd(xc, full_matrices=False)[0]
    uy = np.linalg.svd(yc, full_matrices=False)[0]
    a, rho, _ = np.linalg.svd(ux.T @ uy, full_matrices=False)
    h = ux @ a  # (n, k) unit-norm canonical variates of x
    alpha = np.abs(h.T @ xc).sum(1)
    alpha /= alpha.sum()
    r = pwcca(x, y)
    assert r.side == "x"
    np.testing.assert_allclose(r.weights.numpy(), alpha, atol=1e-10)
    assert r.mean == pytest.approx(float(alpha @ rho), abs=1e-10)
    assert r.weights.sum().item() == pytest.approx(1.0)


def _gram_cka(x: np.ndarray, y: np.ndarray, debiased: bool) -> float:
    """CKA from n×n Gram matrices (Kornblith et al. 2019), an independent implementation."""
    n = len(x)
    k, l_ = x @ x.T, y @ y.T
    if not debiased:
        h = np.eye(n) - 1.0 / n
        hsic = lambda a, b: np.trace(a @ h @ b @ h)  # noqa: E731
    else:
        def hsic(a, b):
            a, b = a - np.diag(np.diag(a)), b - np.diag(np.diag(b))
            one = np.ones(n)
            return (np.trace(a @ b) + one @ a @ one * (one @ b @ one) / ((n - 1) * (n - 2))
                    - 2.0 / (n - 2) * one @ a @ b @ one) / (n * (n - 3))
    return hsic(k, l_) / np.sqrt(hsic(k, k) * hsic(l_, l_))


@pytest.mark.parametrize("debiased", [False, True])
def test_cka_matches_gram_formula(debiased):
    x, y = related(n=300, p=40, q=25, noise=2.0)
    xc, yc = (x - x.mean(0)).numpy(), (y - y.mean(0)).numpy()
    assert linear_cka(x, y, debiased=debiased) == pytest.approx(_gram_cka(xc, yc, debiased), abs=1e-10)
    # CKA also works with fewer datapoints than features
    assert 0 < linear_cka(x[:30], y[:30], debiased=debiased) <= 1


def test_first_correlation_matches_scikit_learn():
    """x and y share one signal s; scikit-learn's CCA (NIPALS) finds the same first pair."""
    g = gen(7)
    n = 3000
    s = torch.randn(n, 1, dtype=f64, generator=g)
    x = torch.cat([s + 0.5 * torch.randn(n, 1, dtype=f64, generator=g), torch.randn(n, 2, dtype=f64, generator=g)], 1)
    y = torch.cat([s + 0.8 * torch.randn(n, 1, dtype=f64, generator=g), torch.randn(n, 1, dtype=f64, generator=g)], 1)
    sk = SkCCA(n_components=1, scale=False, tol=1e-14, max_iter=10_000).fit(x.numpy(), y.numpy())
    xs, ys = sk.transform(x.numpy(), y.numpy())
    rho_sk = abs(np.corrcoef(xs[:, 0], ys[:, 0])[0, 1])
    rho = cca(x, y).correlations[0].item()
    assert rho == pytest.approx(rho_sk, abs=1e-8)
    assert rho == pytest.approx(1 / np.sqrt(1.25 * 1.64), abs=0.03)  # population value


def test_rank_deficient_inputs_give_no_nan():
    x, y = related()
    dead = torch.zeros(len(x), 3, dtype=f64)
    xd = torch.cat([x, 2 * x[:, :5], dead + 4.0, dead], 1)  # duplicated, constant, dead units
    r = cca(xd, y)
    assert r.dims_x == x.shape[1] and torch.isfinite(r.correlations).all()
    torch.testing.assert_close(r.correlations, cca(x, y).correlations, rtol=0, atol=1e-8)
    torch.testing.assert_close(r.correlations, cca_svd(xd, y), rtol=0, atol=1e-8)
    for name, fn in ALL.items():
        v = fn(xd, xd)
        assert v == pytest.approx(1.0, abs=1e-8), name
        assert np.isfinite(fn(xd, y)), name


def test_large_offset_is_centred_exactly():
    x, y = related()
    torch.testing.assert_close(cca(x + 1e7, y).correlations, cca(x, y).correlations, rtol=0, atol=1e-8)
    assert linear_cka(x + 1e7, y) == pytest.approx(linear_cka(x, y), abs=1e-8)


def test_numpy_and_float32_inputs():
    x, y = related()
    r = cca(x.numpy(), y.float())
    assert r.correlations.dtype == f64
    assert r.mean == pytest.approx(cca(x, y).mean, abs=1e-5)
    assert similarity(x.numpy(), y.numpy(), method="cka") == pytest.approx(linear_cka(x, y))
    assert set(MEASURES) == {"cca", "svcca", "pwcca", "cka", "cka_debiased"}


def test_epsilon_regularises_and_stays_scale_free():
    x, y = related()
    plain, ridge = cca(x, y), cca(x, y, epsilon=0.1)
    assert ridge.mean < plain.mean
    assert cca(1e3 * x, y, epsilon=0.1).mean == pytest.approx(ridge.mean, abs=1e-10)
    with pytest.raises(ValueError, match="epsilon"):
        cca(x, y, epsilon=-1.0)


def test_options_are_keyword_only():
    x, y = related()
    with pytest.raises(TypeError):
        cca(x, y, 1e-6)  # type: ignore[misc]
    with pytest.raises(TypeError):
        svcca(x, y, 0.98)  # type: ignore[misc]


def test_clear_errors():
    x, y = related()
    with pytest.raises(ValueError, match=r"x \(2000, 24\) and y \(1999, 16\)"):
        cca(x, y[:-1])
    with pytest.raises(ValueError, match=r"2-D"):
        cca(x[:, 0], y)
    with pytest.raises(ValueError, match=r"x \(30, 24\).*y \(30, 16\).*at least 41"):
        cca(x[:30], y[:30])
    with pytest.raises(ValueError, match=r"x \(30, 24\)"):
        pwcca(x[:30], y[:30])
    with pytest.raises(ValueError, match="no variance"):
        cca(torch.ones(100, 3, dtype=f64), y[:100, :2])
    with pytest.raises(ValueError, match="no variance"):
        linear_cka(torch.ones(100, 3, dtype=f64), y[:100])
    bad = x.clone()
    bad[3, 2] = float("nan")
    with pytest.raises(ValueError, match=r"NaN.*|.*NaN"):
        cca(bad, y)
    with pytest.raises(ValueError, match="NaN"):
        linear_cka(x, y.clone().fill_(float("inf")))
    with pytest.raises(ValueError, match="keep"):
        svcca(x, y, keep=1.5)
    with pytest.raises(ValueError, match="numerical rank 16"):
        svcca(x, y, keep=20)
    with pytest.raises(ValueError, match="unknown similarity method"):
        similarity(x, y, method="procrustes")
    with pytest.raises(ValueError, match="at least 4"):
        linear_cka(x[:3], y[:3], debiased=True)


def test_conv_to_datapoints_layout_pool_and_subsample():
    acts = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    d = conv_to_datapoints(acts, max_points=None)
    assert d.shape == (2 * 4 * 5, 3)
    torch.testing.assert_close(d[5 * 1 + 2], acts[0, :, 1, 2])  # image 0, row 1, col 2
    torch.testing.assert_close(d[20 + 7], acts[1, :, 1, 2])
    pooled = conv_to_datapoints(acts, pool=2, max_points=None)
    assert pooled.shape == (2 * 2 * 2, 3)
    torch.testing.assert_close(pooled.mean(0), torch.nn.functional.adaptive_avg_pool2d(acts, 2).mean((0, 2, 3)))
    a = conv_to_datapoints(acts, max_points=10, seed=1)
    assert a.shape == (10, 3)
    torch.testing.assert_close(a, conv_to_datapoints(acts, max_points=10, seed=1))
    assert not torch.equal(a, conv_to_datapoints(acts, max_points=10, seed=2))
    assert torch.all(a[1:, 0] > a[:-1, 0])  # original order kept
    assert conv_to_datapoints(acts.mean((2, 3)), max_points=1).shape == (1, 3)
    with pytest.raises(ValueError, match=r"\(3, 4, 5\)"):
        conv_to_datapoints(acts[0])
    with pytest.raises(ValueError, match="pool=9"):
        conv_to_datapoints(acts, pool=9)


def test_matched_datapoints_pair_the_same_positions():
    g = gen(3)
    a = torch.randn(4, 6, 8, 8, generator=g)
    b = torch.nn.functional.avg_pool2d(a, 2) * 2 + 1  # a's 4×4 regions, linearly mapped
    xa, xb = matched_datapoints(a, b, max_points=50, seed=0)
    assert xa.shape == (50, 6) and xb.shape == (50, 6)
    torch.testing.assert_close(xb, xa * 2 + 1)
    assert cca(xa.double(), xb.double(), epsilon=0).mean == pytest.approx(1.0)
    pa, pb = matched_datapoints(a, b.mean((2, 3)))
    assert pa.shape == (4, 6) and pb.shape == (4, 6)
    with pytest.raises(ValueError, match=r"\(4, 6, 8, 8\).*\(3, 6, 4, 4\)"):
        matched_datapoints(a, b[:3])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    x, y = related()
    for name, fn in ALL.items():
        assert fn(x.cuda(), y.cuda()) == pytest.approx(fn(x, y), abs=1e-9), name
    assert cca(x.cuda(), y.cuda()).correlations.device.type == "cuda"
