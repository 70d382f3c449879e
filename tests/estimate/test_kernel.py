"""The fused per-block kernel against plain numpy: log-likelihood, gradient, Hessian, meat and
cluster score sums of one pass, whatever the block size and the chunking; BLAS thread pinning."""

import numpy as np
import pytest
from scipy import special

from buzzpipe.estimate.families import get_family
from buzzpipe.estimate.kernel import (
    BlockSums,
    _mirror,
    blas_threads,
    block_sums,
    chunk_sums,
    weighted_gram,
)


def problem(name: str, n: int = 1_000, seed: int = 3):
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.normal(size=(n, 4))])
    beta = rng.normal(scale=0.4, size=5)
    y = (rng.uniform(size=n) < 0.35).astype(float)
    weights = rng.uniform(0.2, 3.0, n)
    offset = rng.normal(scale=0.5, size=n)
    codes = rng.integers(0, 7, n)
    return get_family(name), X, y, weights, offset, beta, codes


def plain_numpy(name, X, y, weights, offset, beta, codes, G):
    """The textbook formulas, row by row in vector form."""
    eta = X @ beta + offset
    if name == "logit":
        p = special.expit(eta)
        loglike, d, h = y * eta - np.logaddexp(0.0, eta), y - p, p * (1 - p)
    elif name == "probit":
        q = 2 * y - 1
        cdf, pdf = special.ndtr(q * eta), np.exp(-0.5 * eta**2) / np.sqrt(2 * np.pi)
        d = q * pdf / cdf
        loglike, h = np.log(cdf), d * (d + eta)
    else:
        r = y - eta
        loglike, d, h = -0.5 * r**2, r, np.ones_like(r)
    scores = X * (weights * d)[:, None]
    sums = np.zeros((G, X.shape[1]))
    np.add.at(sums, codes, scores)
    return (
        float((weights * loglike).sum()),
        scores.sum(axis=0),
        -(X * (weights * h)[:, None]).T @ X,
        scores.T @ scores,
        sums,
    )


@pytest.mark.parametrize("name", ["logit", "probit", "lpm"])
@pytest.mark.parametrize("block_rows", [None, 64, 333])
def test_fused_pass_equals_plain_numpy(name, block_rows):
    family, X, y, weights, offset, beta, codes = problem(name)
    expected = plain_numpy(name, X, y, weights, offset, beta, codes, 7)
    sums = block_sums(
        family,
        beta,
        X,
        y,
        weights,
        offset,
        meat=True,
        cluster_codes=codes,
        n_clusters=7,
        block_rows=block_rows,
    )
    assert sums.llf == pytest.approx(expected[0], rel=1e-12)
    np.testing.assert_allclose(sums.gradient, expected[1], rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(sums.hessian, expected[2], rtol=1e-11, atol=1e-11)
    np.testing.assert_array_equal(sums.hessian, sums.hessian.T)
    np.testing.assert_allclose(sums.meat, expected[3], rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(sums.cluster_score_sums, expected[4], rtol=1e-11, atol=1e-11)


def test_gradient_only_pass_and_no_weights():
    family, X, y, _, _, beta, _ = problem("logit", seed=4)
    full = block_sums(family, beta, X, y)
    light = block_sums(family, beta, X, y, hessian=False, need_loglike=False)
    assert light.hessian is None and light.meat is None and light.cluster_score_sums is None
    assert np.isnan(light.llf)
    np.testing.assert_allclose(light.gradient, full.gradient, rtol=1e-13, atol=1e-13)


def test_chunk_sums_over_a_stream_with_cluster_codes_equal_one_block():
    family, X, y, weights, offset, beta, codes = problem("probit", n=900, seed=5)
    whole = block_sums(
        family, beta, X, y, weights, offset, meat=True, cluster_codes=codes, n_clusters=7
    )

    def stream():
        for lo in range(0, 900, 250):
            rows = slice(lo, lo + 250)
            yield X[rows], y[rows], weights[rows], offset[rows], codes[rows]

    summed = chunk_sums(family, beta, stream, meat=True, n_clusters=7)
    assert summed.llf == pytest.approx(whole.llf, rel=1e-12)
    for field in ("gradient", "hessian", "meat", "cluster_score_sums"):
        np.testing.assert_allclose(
            getattr(summed, field), getattr(whole, field), rtol=1e-11, atol=1e-11
        )
    with pytest.raises(ValueError, match="fifth item"):
        chunk_sums(family, beta, [(X, y, weights, offset)], n_clusters=7)


def test_ordered_logit_goes_through_its_own_chunk_methods():
    rng = np.random.default_rng(6)
    n = 400
    X = rng.normal(size=(n, 3))
    y = rng.integers(0, 3, n).astype(float)
    family = get_family("ologit").with_categories((0.0, 1.0, 2.0))
    beta = np.array([0.3, -0.2, 0.1, -0.5, 0.7])
    codes = rng.integers(0, 4, n)
    sums = block_sums(family, beta, X, y, None, None, meat=True, cluster_codes=codes, n_clusters=4)
    llf, gradient, hessian = family.loglike_chunk(beta, X, y, None, None)
    scores = family.scores(beta, X, y, None)
    assert sums.llf == llf
    np.testing.assert_array_equal(sums.hessian, hessian)
    np.testing.assert_allclose(sums.meat, scores.T @ scores, rtol=1e-12)
    expected = np.zeros((4, 5))
    np.add.at(expected, codes, scores)
    np.testing.assert_allclose(sums.cluster_score_sums, expected, rtol=1e-11, atol=1e-12)


def test_weighted_gram_blocks_and_negative_rounding():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(70_001, 6))
    d = rng.uniform(size=70_001)
    np.testing.assert_allclose(weighted_gram(X, d), (X * d[:, None]).T @ X, rtol=1e-11)
    np.testing.assert_allclose(weighted_gram(X), X.T @ X, rtol=1e-11)
    d[5] = -1e-18  # rounding below zero: the general product, same numbers
    np.testing.assert_allclose(weighted_gram(X, d), (X * d[:, None]).T @ X, rtol=1e-11)
    # a Fortran-ordered design gives the same
    np.testing.assert_allclose(weighted_gram(np.asfortranarray(X)), X.T @ X, rtol=1e-11)


def test_block_sums_add_up_and_refuse_mismatched_fields():
    a = BlockSums(1.0, np.ones(2), np.eye(2))
    a += BlockSums(2.0, np.ones(2), np.eye(2))
    assert a.llf == 3.0 and np.array_equal(a.hessian, 2 * np.eye(2))
    with pytest.raises(ValueError, match="hessian"):
        a += BlockSums(1.0, np.ones(2))


def test_blas_threads_pins_and_restores():
    from threadpoolctl import threadpool_info

    def counts():
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    before = counts()
    with blas_threads(1):
        assert all(count == 1 for count in counts())
    assert counts() == before
    with blas_threads(None):
        assert counts() == before


def test_nested_blas_threads_blocks_keep_the_outer_pin():
    """A block inside one of the same limit asks nothing of threadpoolctl; one of another
    limit pins anew and gives the outer limit back when it ends; all restored at the end."""
    from unittest import mock

    from threadpoolctl import threadpool_info

    from buzzpipe.estimate import kernel

    def counts():
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    before = counts()
    limit = kernel._controller().limit
    with mock.patch.object(kernel._controller(), "limit", side_effect=limit) as asked:
        with blas_threads(1):
            assert asked.call_count == 1
            with blas_threads(1), blas_threads(None):
                assert all(count == 1 for count in counts()) and asked.call_count == 1
            with blas_threads(2):
                assert asked.call_count == 2
                with blas_threads(1):
                    assert all(count == 1 for count in counts()) and asked.call_count == 3
            assert all(count == 1 for count in counts())
            with blas_threads(1):
                assert asked.call_count == 3  # the outer pin is back: nothing asked
    assert counts() == before


def _bits(values) -> bytes:
    return np.ascontiguousarray(values, dtype=np.float64).view(np.uint64).tobytes()


def test_the_mirrored_triangle_is_the_sum_of_triangles_bit_for_bit():
    """``_mirror`` gives ``triu(u) + triu(u, 1).T``'s bits (0.0 for -0.0, what lies below the
    diagonal ignored) in C order, from either memory order."""
    rng = np.random.default_rng(8)
    for size in (1, 2, 5, 16):
        upper = rng.normal(size=(size, size))
        upper[np.triu_indices(size)[0][::3], np.triu_indices(size)[1][::3]] = -0.0
        upper[np.tril_indices(size, -1)] = np.nan  # not read
        for layout in (np.ascontiguousarray, np.asfortranarray):
            given = layout(upper)
            expected = np.triu(given) + np.triu(np.triu(given), 1).T
            found = _mirror(given)
            assert found.flags.c_contiguous
            assert _bits(found) == _bits(expected)


@pytest.mark.parametrize("name", ["logit", "probit", "lpm", "ologit"])
@pytest.mark.parametrize("weights", [False, True])
@pytest.mark.parametrize("fields", [(True, False, True), (False, True, False)])
def test_one_chunk_sums_are_the_loops_bit_for_bit(name, weights, fields):
    """A source of one chunk (an in-memory design) takes a shortcut past the loop over chunks;
    its sums are the loop's (a callable source goes through the loop) bit for bit."""
    hessian, meat, need_loglike = fields
    family, X, y, w, offset, beta, _codes = problem("logit" if name == "ologit" else name)
    if name == "ologit":
        family = get_family("ologit").with_categories((0.0, 1.0, 2.0))
        X = X[:, 1:]
        y = np.random.default_rng(9).integers(0, 3, y.size).astype(float)
        beta = np.array([0.3, -0.2, 0.1, 0.4, -0.5, 0.7])
        offset = None
    chunk = (X, y, w if weights else None, offset)
    options = dict(hessian=hessian, meat=meat, need_loglike=need_loglike)
    one = chunk_sums(family, beta, [chunk], **options)
    looped = chunk_sums(family, beta, lambda: iter([chunk]), **options)
    assert _bits(one.llf) == _bits(looped.llf)
    for field in ("gradient", "hessian", "meat"):
        found, expected = getattr(one, field), getattr(looped, field)
        assert (found is None) == (expected is None)
        if expected is not None:
            assert _bits(found) == _bits(expected) and found.flags.c_contiguous
