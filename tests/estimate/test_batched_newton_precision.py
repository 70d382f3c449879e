"""The batched Newton solver's fast warm-start path (the pairs and cluster bootstraps, the
counterfactual bootstrap): single-precision sums where they are provably harmless, the same fits
as double precision and as full Newton steps; and its exact helpers against their plain forms."""

import numpy as np
import pytest
import statsmodels.api as sm

import buzzpipe.estimate.batched_newton as batched
from buzzpipe.estimate import random_weights
from buzzpipe.estimate.batched_newton import newton_batch
from buzzpipe.estimate.compiled_batch import LANES


def logit_sample(seed, n=1200, p=12):
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1))])
    X[:, 2] += 2.0  # a column off zero: an intercept with some collinearity
    index = X @ rng.normal(scale=0.3, size=p) - 0.6
    return X, (rng.random(n) < 1 / (1 + np.exp(-index))).astype(float)


def double_only(monkeypatch):
    """The warm path without any single-precision sum (the path before they came)."""
    monkeypatch.setattr(batched, "_single_precision_error", lambda X, curvature: None)
    monkeypatch.setattr(batched, "SINGLE_GRADIENT_ABOVE", np.inf)


def fits(X, y, weights, start):
    return newton_batch(X, y, weights, start=start)


@pytest.fixture
def sample():
    X, y = logit_sample(3)
    weights = random_weights.poisson_weights(11, np.arange(len(y)), 200)
    start = newton_batch(X, y, np.ones(len(y))).params[:, 0]
    return X, y, weights, start


def test_single_precision_sums_give_the_double_precision_fits(sample, monkeypatch):
    X, y, weights, start = sample
    used = []
    original = batched._single_precision_error

    def spy(X, curvature):
        used.append(original(X, curvature))
        return used[-1]

    monkeypatch.setattr(batched, "_single_precision_error", spy)
    fast = fits(X, y, weights, start)
    assert used and used[0] is not None  # the single-precision first step was taken
    plain = newton_batch(X, y, weights, start=start, keep_hessian=True)  # full Newton steps
    with monkeypatch.context() as patched:
        double_only(patched)
        double = fits(X, y, weights, start)
    assert fast.converged.all() and fast.full_rank.all() and not fast.separated.any()
    np.testing.assert_allclose(fast.params, double.params, rtol=0, atol=1e-10)
    np.testing.assert_allclose(fast.params, plain.params, rtol=0, atol=1e-10)
    for b in (0, 77, 199):  # and each replicate is statsmodels' fit of the resampled rows
        counts = weights[:, b].astype(int)
        expected = (
            sm.Logit(np.repeat(y, counts), np.repeat(X, counts, axis=0))
            .fit(disp=0, method="newton", tol=1e-14, maxiter=100)
            .params
        )
        np.testing.assert_allclose(fast.params[:, b], expected, rtol=0, atol=1e-10)


def test_replicates_failing_the_single_precision_check_are_redone_in_double(sample, monkeypatch):
    """An error bound that half the replicates fail: those get double-precision Hessians; every
    fit and flag is as in double precision throughout."""
    X, y, weights, start = sample
    eta = X @ start
    curvature = np.exp(-eta) / (1 + np.exp(-eta)) ** 2
    traces = []
    for b in range(weights.shape[1]):
        hessian = (X * (weights[:, b] * curvature)[:, None]).T @ X
        root = np.sqrt(np.diag(hessian))
        traces.append(np.trace(np.linalg.inv(hessian / np.outer(root, root))))
    error = 0.5 / np.median(traces)  # half the replicates above, half below
    monkeypatch.setattr(batched, "_single_precision_error", lambda X, curvature: error)
    checked = fits(X, y, weights, start)
    with monkeypatch.context() as patched:
        double_only(patched)
        double = fits(X, y, weights, start)
    for flag in ("converged", "full_rank", "separated"):
        np.testing.assert_array_equal(getattr(checked, flag), getattr(double, flag))
    np.testing.assert_allclose(checked.params, double.params, rtol=0, atol=1e-10)


def test_a_resample_missing_a_category_is_rank_deficient_in_single_precision(monkeypatch):
    """A dummy whose rows a replicate leaves out: flagged rank deficient as in double precision,
    the other replicates equal."""
    rng = np.random.default_rng(4)
    n = 600
    rare = np.zeros(n)
    rare[:4] = 1.0
    X = np.column_stack([np.ones(n), rng.normal(size=(n, 3)), rare])
    y = (rng.random(n) < 0.45).astype(float)
    y[:4] = [1.0, 0.0, 1.0, 0.0]
    weights = random_weights.poisson_weights(2, np.arange(n), 300)
    start = newton_batch(X, y, np.ones(n)).params[:, 0]
    assert batched._single_precision_error(X, np.full(n, 0.25)) is not None
    fast = fits(X, y, weights, start)
    with monkeypatch.context() as patched:
        double_only(patched)
        double = fits(X, y, weights, start)
    missing = (weights[:4] == 0).all(axis=0)
    assert missing.any()
    np.testing.assert_array_equal(fast.full_rank, ~missing)
    for flag in ("converged", "full_rank", "separated"):
        np.testing.assert_array_equal(getattr(fast, flag), getattr(double, flag))
    good = fast.converged & fast.full_rank & ~fast.separated
    np.testing.assert_allclose(fast.params[:4, good], double.params[:4, good], rtol=0, atol=1e-10)
    # the stopping rule bounds the distance to the optimum in the metric of the Hessian (the
    # decrement below tol^2 = 1e-16, then the last step): the four-row dummy, with a Hessian
    # entry near 2 and a standard error near 0.8, moves by about 1e-10 with rounding
    np.testing.assert_allclose(fast.params[4, good], double.params[4, good], rtol=0, atol=1e-9)


def test_hessians_summed_in_single_precision_blocks_give_the_double_precision_fits(monkeypatch):
    """``single_in_blocks``: a design whose whole-sample single-precision sum fails the bound
    but whose 512-row blocks pass it gets its first Hessians from blocks (summed in double),
    and every fit and flag is double precision's; without the option the fits are unchanged
    (the bound declines, double precision throughout)."""
    X, y = logit_sample(7, n=2000, p=12)
    X[:, 3] = X[:, 4] + 0.15 * X[:, 3]  # collinear enough to fail the whole-sample bound
    weights = random_weights.poisson_weights(5, np.arange(len(y)), 150)
    start = newton_batch(X, y, np.ones(len(y))).params[:, 0]
    eta = X @ start
    curvature = np.exp(-eta) / (1 + np.exp(-eta)) ** 2
    assert batched._single_precision_error(X, curvature) is None
    assert batched._single_precision_error(X, curvature, rows=batched.SINGLE_PRECISION_BLOCK)
    blocks = []
    original = batched._single_precision_error

    def spy(X, curvature, rows=None):
        blocks.append(rows)
        return original(X, curvature, rows=rows)

    monkeypatch.setattr(batched, "_single_precision_error", spy)
    blocked = newton_batch(X, y, weights, start=start, single_in_blocks=True)
    assert blocks == [None, batched.SINGLE_PRECISION_BLOCK]
    blocks.clear()
    plain = newton_batch(X, y, weights, start=start)
    assert blocks == [None]  # off: the whole-sample bound alone, which declines
    full = newton_batch(X, y, weights, start=start, keep_hessian=True)  # full Newton steps
    with monkeypatch.context() as patched:
        double_only(patched)
        double = newton_batch(X, y, weights, start=start)
    for flag in ("converged", "full_rank", "separated"):
        np.testing.assert_array_equal(getattr(blocked, flag), getattr(double, flag))
    assert blocked.converged.all()
    # the stopping rule bounds the distance to the optimum in the Hessian's metric: with two
    # collinear columns (coefficients near 4, large standard errors) every path's fits move by
    # up to about 1.5e-10 with rounding (measured: blocked 1.4e-10, plain 0.7e-10, double 1.3e-10)
    for fits in (blocked, plain, double):
        np.testing.assert_allclose(fits.params, full.params, rtol=0, atol=5e-10)


def test_the_single_precision_bound_declines_large_or_ill_conditioned_designs():
    X, _ = logit_sample(5, n=1000, p=10)
    assert batched._single_precision_error(X, np.full(1000, 0.2)) is not None
    wide = np.column_stack([X] * 6)  # 60 columns: the bound alone exceeds what helps
    assert batched._single_precision_error(wide, np.full(1000, 0.2)) is None
    close = X.copy()
    close[:, 3] = close[:, 4] + 1e-3 * close[:, 5]  # nearly collinear: a huge inverse trace
    assert batched._single_precision_error(close, np.full(1000, 0.2)) is None


def test_farthest_weighted_decides_the_separation_flags_as_the_masked_maximum():
    rng = np.random.default_rng(0)
    eta = rng.normal(scale=3.0, size=(500, 60))
    eta[7, :20] = 40.0  # far out in rows that some replicates leave out
    weights = rng.poisson(size=(500, 60)).astype(float)
    weights[7, :10] = 0.0
    masked = np.abs(eta).max(axis=0, where=weights > 0, initial=0.0)
    for family in ("logit", "probit"):
        found = batched._farthest_weighted(eta, weights, family)
        assert (found >= masked).all()
        for threshold in (batched._SATURATED, batched._NEARLY_SATURATED):
            np.testing.assert_array_equal(
                batched.fitted_probability(-found, family) < threshold,
                batched.fitted_probability(-masked, family) < threshold,
            )
        far = batched.fitted_probability(-masked, family) < batched._NEARLY_SATURATED
        assert far.any()
        np.testing.assert_array_equal(found[far], masked[far])
    one_column = batched._farthest_weighted(eta, weights[:, :1], "logit")  # n x 1 weights
    np.testing.assert_array_equal(
        one_column[:20],
        np.abs(eta[:, :20]).max(axis=0, where=weights[:, :1] > 0, initial=0.0),
    )


def test_column_products_and_factor_inverses_equal_their_plain_forms():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 9))
    products, upper_j, upper_k = batched._column_products(X)
    np.testing.assert_array_equal(products, X[:, upper_j] * X[:, upper_k])
    A = rng.normal(size=(40, 9, 20))
    scales = rng.uniform(1, 1e3, size=(40, 9, 1))  # columns on very different scales
    hessians = (scales * A) @ (scales * A).transpose(0, 2, 1)
    rank, inverse, trace = batched._rank_and_inverse(hessians)
    assert rank.all()
    expected = np.linalg.inv(hessians)
    np.testing.assert_allclose(inverse, expected, rtol=1e-10, atol=0)
    np.testing.assert_array_equal(inverse, inverse.transpose(0, 2, 1))
    diagonal = np.einsum("bii->bi", hessians)
    scaled = hessians / np.sqrt(diagonal[:, :, None] * diagonal[:, None, :])
    np.testing.assert_allclose(trace, np.trace(np.linalg.inv(scaled), axis1=1, axis2=2))


def test_rank_and_inverse_across_groups_and_failed_factorisations():
    """Matrices in several compiled groups (``LANES`` each), among them a rank-deficient one
    (a zero column: the factorisation fails, eigenvalues decide), a collinear one (factored,
    its pivot below 1e-10) and an indefinite one: the rank as the eigenvalues say, the
    inverses of the others as numpy's."""
    rng = np.random.default_rng(2)
    count, p = 2 * LANES + 5, 7
    A = rng.normal(size=(count, p, 3 * p))
    hessians = A @ A.transpose(0, 2, 1)
    hessians[3, 2, :] = hessians[3, :, 2] = 0.0  # no rows with column 2: rank deficient
    B = rng.normal(size=(p, 3 * p))
    B[4] = B[1] + 1e-7 * B[0]  # collinear to 1e-14 in the Gram
    hessians[LANES + 1] = B @ B.T
    hessians[LANES + 2] = np.diag([1.0, 2.0, -1.0, 1.0, 1.0, 1.0, 1.0])  # indefinite
    rank, inverse, trace = batched._rank_and_inverse(hessians)
    expected_bad = {3, LANES + 1, LANES + 2}
    assert set(np.flatnonzero(~rank)) == expected_bad
    good = np.setdiff1d(np.arange(count), list(expected_bad))
    np.testing.assert_allclose(inverse[good], np.linalg.inv(hessians[good]), rtol=1e-10)
    assert np.isfinite(trace[good]).all() and np.isnan(trace[[3, LANES + 2]]).all()
    lapack_rank, lapack_inverse, _ = batched._rank_and_inverse(hessians, compiled=False)
    np.testing.assert_array_equal(lapack_rank, rank)
    np.testing.assert_allclose(inverse[good], lapack_inverse[good], rtol=1e-12)
