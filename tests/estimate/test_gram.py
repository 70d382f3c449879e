"""The compiled Gram kernels (estimate/gram.py) against numpy, and the fused pass through them
against the BLAS path it replaces and against statsmodels: the same sums to rounding, the same
fits to 1e-10."""

import numpy as np
import pytest
import statsmodels.api as sm

from buzzpipe.estimate import gram, kernel
from buzzpipe.estimate.design import Design
from buzzpipe.estimate.families import binary_terms, get_family
from buzzpipe.estimate.fitting import fit_design, prepare_design


def design(n: int, p: int, seed: int = 1, layout: str = "C") -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) * rng.uniform(0.5, 20.0, p)
    return np.asfortranarray(X) if layout == "F" else X


def relative_gap(ours: np.ndarray, reference: np.ndarray) -> float:
    return float(np.max(np.abs(ours - reference)) / max(np.max(np.abs(reference)), 1e-300))


@pytest.mark.parametrize("layout", ["C", "F", "strided"])
def test_pack_index_copies_the_block_and_sums_the_index(layout):
    X = design(700, 9, layout="F" if layout == "F" else "C")
    if layout == "strided":
        X = design(700, 18)[:, ::2]  # neither C- nor F-contiguous
    rng = np.random.default_rng(2)
    beta, offset = rng.normal(size=9), rng.normal(size=700)
    packed = np.full((gram.padded_rows(9), 800), np.nan)
    packed[9:] = 0.0
    eta = gram.pack_index(X, beta, offset, packed)
    np.testing.assert_array_equal(packed[:9, :700], X.T)
    np.testing.assert_allclose(eta, X @ beta + offset, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(gram.pack_index(X, beta, None, packed), X @ beta, atol=1e-12)


@pytest.mark.parametrize("p", [1, 2, 3, 4, 5, 7, 11, 12, 13, 24, 25, 26, 31])
@pytest.mark.parametrize("m", [1, 511, 512, 513, 1_500])
def test_gram_and_gradient_equal_numpy_for_every_width_and_length(p, m):
    X = design(m, p, seed=p * 1000 + m)
    rng = np.random.default_rng(m)
    weight = rng.uniform(-0.2, 1.0, m)  # any sign: no square roots
    first = rng.normal(size=m)
    padded = gram.padded_rows(p)
    packed = np.zeros((padded, m))
    upper, gradient = np.zeros((padded, padded)), np.zeros(p)
    gram.pack_index(X, np.zeros(p), None, packed)
    gram.gram_update(packed, p, m, weight, upper, first, gradient)
    assert relative_gap(gram.upper_of(upper, p), X.T @ (X * weight[:, None])) < 1e-13
    assert relative_gap(gradient, X.T @ first) < 1e-13
    alone = np.zeros(p)
    gram.gradient_update(packed, m, first, alone)
    assert relative_gap(alone, X.T @ first) < 1e-13
    # a second block adds to the same sums
    gram.gram_update(packed, p, m, weight, upper)
    assert relative_gap(gram.upper_of(upper, p), 2 * X.T @ (X * weight[:, None])) < 1e-13


@pytest.mark.parametrize("weighted", [False, True])
def test_logit_pieces_equal_binary_terms(weighted):
    rng = np.random.default_rng(5)
    eta = np.concatenate([rng.normal(scale=3.0, size=997), [0.0, -800.0, 800.0]])
    y = (rng.uniform(size=eta.size) < 0.4).astype(float)
    w = rng.uniform(0.1, 3.0, eta.size) if weighted else None
    loglike, d, h = binary_terms(eta, y, "logit")
    small = np.exp(-np.abs(eta))
    first, curvature = np.empty_like(eta), np.empty_like(eta)
    total = gram.logit_pieces(eta, y, small, np.log1p(small), w, first, curvature)
    scale = np.ones_like(eta) if w is None else w
    np.testing.assert_allclose(first, d * scale, rtol=1e-15, atol=0)
    np.testing.assert_allclose(curvature, h * scale, rtol=1e-15, atol=0)
    assert total == pytest.approx(float((loglike * scale).sum()), rel=1e-13)
    assert gram.logit_pieces(eta, y, small, None, w, first, curvature) == 0.0


def test_small_passes_keep_the_blas_path(monkeypatch):
    """Below COMPILED_MIN_ROWS the pass is the BLAS one, bit for bit."""
    X, y, weights, offset, _ = problem(n=3_000)
    family, beta = get_family("logit"), np.full(25, 0.01)
    small = kernel.block_sums(family, beta, X, y, weights, offset)
    monkeypatch.setattr(kernel, "COMPILED_MAX_COLUMNS", 0)
    blas = kernel.block_sums(family, beta, X, y, weights, offset)
    np.testing.assert_array_equal(small.hessian, blas.hessian)
    np.testing.assert_array_equal(small.gradient, blas.gradient)


def problem(n=5_003, p=25, seed=11):
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1)) * rng.uniform(0.5, 5, p - 1)])
    beta = rng.normal(scale=0.3 / np.sqrt(p), size=p)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-(X @ beta)))).astype(float)
    return X, y, rng.uniform(0.2, 3.0, n), rng.normal(scale=0.3, size=n), rng.integers(0, 40, n)


@pytest.mark.parametrize("name", ["logit", "probit", "lpm"])
@pytest.mark.parametrize("layout", ["C", "F"])
def test_compiled_block_sums_equal_the_blas_path(name, layout, monkeypatch):
    monkeypatch.setattr(kernel, "COMPILED_MIN_ROWS", 0)  # the compiled path at this size
    X, y, weights, offset, codes = problem()
    if layout == "F":
        X = np.asfortranarray(X)
    family = get_family(name)
    beta = np.linalg.lstsq(X, y - 0.5, rcond=None)[0] * 0.5
    options = dict(meat=True, cluster_codes=codes, n_clusters=40, block_rows=1_000)
    compiled = kernel.block_sums(family, beta, X, y, weights, offset, **options)
    monkeypatch.setattr(kernel, "COMPILED_MAX_COLUMNS", 0)
    blas = kernel.block_sums(family, beta, X, y, weights, offset, **options)
    assert compiled.llf == pytest.approx(blas.llf, rel=1e-13)
    for field in ("gradient", "hessian", "meat", "cluster_score_sums"):
        assert relative_gap(getattr(compiled, field), getattr(blas, field)) < 1e-12, field
    np.testing.assert_array_equal(compiled.hessian, compiled.hessian.T)


def arrays_fit(X, y, vcov, clusters=None):
    names = ["Intercept"] + [f"x{j}" for j in range(1, X.shape[1])]
    data = Design.from_arrays(X, y, names, clusters=clusters)
    prepared, family, notes = prepare_design(data, get_family("logit"))
    return fit_design(prepared, family, vcov, notes=notes)


@pytest.mark.parametrize("vcov", ["classical", "robust", "cluster"])
def test_fits_through_the_compiled_kernels_equal_the_blas_path_and_statsmodels(vcov, monkeypatch):
    monkeypatch.setattr(kernel, "COMPILED_MIN_ROWS", 0)  # the compiled path at this size
    X, y, _, _, codes = problem(n=20_000)
    clusters = codes if vcov == "cluster" else None
    compiled = arrays_fit(X, y, vcov, clusters)
    monkeypatch.setattr(kernel, "COMPILED_MAX_COLUMNS", 0)
    blas = arrays_fit(X, y, vcov, clusters)
    assert relative_gap(compiled.params.to_numpy(), blas.params.to_numpy()) < 1e-10
    assert relative_gap(compiled.vcov.to_numpy(), blas.vcov.to_numpy()) < 1e-10
    theirs = sm.Logit(y, X).fit(disp=0, method="newton", tol=1e-14, maxiter=100)
    assert relative_gap(compiled.params.to_numpy(), theirs.params) < 1e-10
    if vcov == "classical":
        assert relative_gap(compiled.vcov.to_numpy(), theirs.cov_params()) < 1e-10


@pytest.mark.parametrize("layout", ["C", "F", "strided"])
@pytest.mark.parametrize("weighted", [True, False])
def test_compiled_weighted_gram_equals_the_blas_path(layout, weighted, monkeypatch):
    """weighted_gram through the compiled tiles (forced at this size) against the dsyrk path:
    blocks of several sizes, both layouts and a strided view, weights of both signs (the BLAS
    path then takes the general product), and X'X without weights."""
    X = design(9_001, 26, layout="F" if layout == "F" else "C")
    if layout == "strided":
        X = design(9_001, 52)[:, ::2]
    rng = np.random.default_rng(3)
    d = rng.uniform(0.1, 2.0, 9_001) if weighted else None
    if weighted:
        d[::97] *= -1.0
    monkeypatch.setattr(kernel, "COMPILED_MIN_ROWS", 0)
    monkeypatch.setattr(kernel, "COMPILED_BLOCK_BYTES", 8 * 26 * 1_000)  # 1,000-row blocks
    compiled = kernel.weighted_gram(X, d)
    monkeypatch.setattr(kernel, "COMPILED_MAX_COLUMNS", 0)
    blas = kernel.weighted_gram(X, d)
    assert relative_gap(compiled, blas) < 1e-12
    np.testing.assert_array_equal(compiled, compiled.T)
    reference = X.T @ X if d is None else X.T @ (X * d[:, None])
    assert relative_gap(compiled, reference) < 1e-12


def test_small_weighted_grams_keep_the_blas_path(monkeypatch):
    X = design(5_000, 12)
    d = np.random.default_rng(4).uniform(size=5_000)
    small = kernel.weighted_gram(X, d)
    monkeypatch.setattr(kernel, "COMPILED_MAX_COLUMNS", 0)
    np.testing.assert_array_equal(small, kernel.weighted_gram(X, d))
