"""Batched pairs and cluster bootstrap: replicate by replicate against statsmodels fits."""

import math
import warnings

import numpy as np
import pytest
import statsmodels.api as sm

from buzzpipe.errors import EstimationError, InputError
from buzzpipe.estimate import random_weights
from buzzpipe.estimate.batched_newton import newton_batch
from buzzpipe.estimate.bootstrap import run_bootstrap


def logit_sample(seed, n=800, p=6, family="logit"):
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1))])
    index = X @ rng.normal(scale=0.4, size=p)
    prob = (
        1 / (1 + np.exp(-index)) if family == "logit" else sm.families.links.Probit().inverse(index)
    )
    return X, (rng.random(n) < prob).astype(float)


def statsmodels_fit(X, y, counts, family="logit"):
    counts = counts.astype(int)
    model = (sm.Logit if family == "logit" else sm.Probit)(
        np.repeat(y, counts), np.repeat(X, counts, axis=0)
    )
    return model.fit(disp=0, method="newton", tol=1e-14, maxiter=100).params


@pytest.mark.parametrize(
    ("family", "scheme"), [("logit", "poisson"), ("logit", "multinomial"), ("probit", "poisson")]
)
def test_replicates_equal_statsmodels_fits_on_resampled_rows(family, scheme):
    X, y = logit_sample(1, family=family)
    result = run_bootstrap(X, y, family=family, replicates=40, seed=9, scheme=scheme)
    assert result.n_failed == 0
    full = (sm.Logit if family == "logit" else sm.Probit)(y, X).fit(disp=0, tol=1e-14)
    np.testing.assert_allclose(result.estimate, full.params, atol=1e-10)
    ids = np.arange(len(y))
    for b in (0, 17, 39):
        if scheme == "poisson":
            counts = random_weights.poisson_weights(9, ids, [b])[:, 0]
        else:
            counts = random_weights.multinomial_counts(9, len(y), [b])[:, 0]
            assert counts.sum() == len(y)
        np.testing.assert_allclose(
            result.replicates[b], statsmodels_fit(X, y, counts, family), atol=1e-10
        )


def test_weights_follow_row_ids_not_row_order_or_batches():
    X, y = logit_sample(2, n=500)
    ids = np.arange(1000, 1500)
    whole = run_bootstrap(X, y, row_ids=ids, replicates=30, seed=4)
    order = np.random.default_rng(0).permutation(len(y))
    shuffled = run_bootstrap(X[order], y[order], row_ids=ids[order], replicates=30, seed=4)
    batched = run_bootstrap(X, y, row_ids=ids, replicates=30, seed=4, batch_size=7, progress=True)
    np.testing.assert_allclose(shuffled.replicates, whole.replicates, atol=1e-10)
    np.testing.assert_allclose(batched.replicates, whole.replicates, atol=1e-10)
    # chunks of rows get the same weights as the whole
    full = random_weights.poisson_weights(4, ids, 30)
    chunk = random_weights.poisson_weights(4, ids[100:200], 30)
    np.testing.assert_array_equal(full[100:200], chunk)
    other_seed = run_bootstrap(X, y, row_ids=ids, replicates=30, seed=5)
    assert not np.allclose(other_seed.replicates, whole.replicates)


def test_streamed_row_blocks_give_the_in_memory_replicates():
    import tracemalloc

    X, y = logit_sample(12, n=3000, p=5)
    ids = np.arange(3000) * 7 + 3
    whole = run_bootstrap(X, y, row_ids=ids, replicates=200, seed=6, batch_size=200)
    tracemalloc.start()
    streamed = run_bootstrap(
        X, y, row_ids=ids, replicates=200, seed=6, batch_size=200, row_block=250
    )
    streamed_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    np.testing.assert_allclose(streamed.replicates, whole.replicates, atol=1e-10)
    np.testing.assert_array_equal(streamed.failed, whole.failed)
    # an n x B float64 matrix is 4.8 MB here; streaming holds a few 250 x B blocks at a time
    assert streamed_peak < 3000 * 200 * 8
    clustered = run_bootstrap(X, y, clusters=np.arange(3000) % 30, replicates=50, seed=1)
    clustered_streamed = run_bootstrap(
        X, y, clusters=np.arange(3000) % 30, replicates=50, seed=1, row_block=500
    )
    np.testing.assert_allclose(clustered_streamed.replicates, clustered.replicates, atol=1e-10)


def test_weight_distributions_have_their_moments():
    ids = np.arange(200_000)
    tolerance = 5 / np.sqrt(len(ids))  # five standard errors of a mean of unit-variance draws
    poisson = random_weights.poisson_weights(1, ids, [0])[:, 0]
    assert abs(poisson.mean() - 1) < tolerance and abs(poisson.var() - 1) < 3 * tolerance
    webb = random_weights.webb_weights(1, ids, [0])[:, 0]
    assert abs(webb.mean()) < tolerance and abs((webb**2).mean() - 1) < tolerance
    assert len(np.unique(webb)) == 6
    rademacher = random_weights.rademacher_weights(1, ids, [3])[:, 0]
    assert abs(rademacher.mean()) < tolerance
    uniform = random_weights.uniform_draws(1, ids, [0, 1])
    assert abs(uniform.mean() - 0.5) < tolerance and uniform.min() >= 0 and uniform.max() < 1
    assert abs(np.corrcoef(uniform[:, 0], uniform[:, 1])[0, 1]) < tolerance
    labelled = random_weights.uniform_draws(1, np.array(["oslo", "bergen"]), 3)
    assert labelled.shape == (2, 3)


def test_poisson_weights_are_the_counts_of_the_uniform_bits():
    """The compiled counts are the search of the 53 uniform bits among the Poisson(1)
    thresholds, for every count that occurs in 2,000,000 draws (0 to 10) and row ids that are
    labels."""
    for ids in (np.arange(2_000), np.array([f"firm {i}" for i in range(500)])):
        replicates = np.arange(17, 17 + 1_000)
        bits = random_weights._uniform_bits(5, ids, replicates)
        expected = np.searchsorted(random_weights._POISSON_THRESHOLDS, bits, side="right")
        counts = random_weights.poisson_weights(5, ids, replicates)
        np.testing.assert_array_equal(counts, expected)
    assert counts.dtype == np.float64 and counts.max() >= 6


@pytest.mark.parametrize("seed", [3, 13, 23, 33])
def test_bootstrap_se_close_to_sandwich_se(seed):
    X, y = logit_sample(seed, n=2000, p=4)
    result = run_bootstrap(X, y, replicates=300, seed=seed)
    robust = sm.Logit(y, X).fit(disp=0, cov_type="HC0")
    ratio = result.bse / robust.bse
    # the Monte Carlo error of a bootstrap s.e. with B = 300 is about 1/sqrt(2B) = 4.1%; allow
    # four of them: over 4 seeds x 4 coefficients a false alarm has probability below 0.1%
    assert np.all(np.abs(ratio - 1) < 4 / np.sqrt(2 * 300))
    lower, upper = result.percentile_interval().T
    assert np.all(lower < result.estimate) and np.all(result.estimate < upper)


def test_cluster_bootstrap_refuses_few_clusters_unless_forced():
    X, y = logit_sample(4, n=600)
    regions = np.arange(600) % 5
    with pytest.raises(EstimationError, match="only 5 clusters"):
        run_bootstrap(X, y, clusters=regions, replicates=50)
    forced = run_bootstrap(X, y, clusters=regions, replicates=50, force=True)
    assert forced.kind == "cluster" and forced.n_clusters == 5
    assert "forced with only 5 clusters" in forced.summary()
    many = run_bootstrap(X, y, clusters=np.arange(600) % 40, replicates=50, seed=1)
    assert many.n_clusters == 40 and many.n_failed == 0
    # the cluster count of a row's cluster is shared by all its rows: check through statsmodels
    labels = np.unique(np.arange(600) % 40)
    counts = random_weights.poisson_weights(1, labels, [3])[:, 0][np.arange(600) % 40]
    np.testing.assert_allclose(many.replicates[3], statsmodels_fit(X, y, counts), atol=1e-10)


def test_failed_replicates_are_flagged_and_counted():
    rng = np.random.default_rng(5)
    n = 400
    rare = np.zeros(n)
    rare[:3] = 1.0  # a category with three firms: many resamples miss it
    X = np.column_stack([np.ones(n), rng.normal(size=n), rare])
    y = (rng.random(n) < 0.4).astype(float)
    y[:3] = [1.0, 0.0, 1.0]
    result = run_bootstrap(X, y, replicates=200, seed=3)
    # P(no row of three drawn, Poisson(1)) = e^-3 = 5%; resamples with only y = 1 rows separate
    assert 0 < int((~result.full_rank).sum()) < 40
    assert result.separated.sum() > 0
    assert result.n_failed == int(result.failed.sum())
    assert result.n_failed < result.n_replicates
    assert f"{result.n_failed} of 200 replicates failed" in result.summary()
    good = result.replicates[~result.failed]
    assert np.all(np.isfinite(good)) and np.isfinite(result.bse).all()
    record = result.as_record()
    assert record["failed"] == result.n_failed and record["replicates"] == 200
    assert record["rank_deficient"] + record["separated"] >= 1


def test_newton_batch_solves_columns_independently():
    X, y = logit_sample(6, n=300, p=3)
    weights = np.column_stack([np.ones(300), random_weights.poisson_weights(0, np.arange(300), 1)])
    batch = newton_batch(X, y, weights)
    for column in range(2):
        alone = newton_batch(X, y, weights[:, column])
        np.testing.assert_allclose(batch.params[:, column], alone.params[:, 0], atol=1e-12)
    assert batch.converged.all() and (batch.iterations < 10).all()


def test_bad_input_is_one_clear_error():
    X, y = logit_sample(7, n=100)
    with pytest.raises(InputError, match="logit or probit"):
        run_bootstrap(X, y, family="ologit")
    with pytest.raises(InputError, match="poisson or multinomial"):
        run_bootstrap(X, y, scheme="jackknife", replicates=5)
    with pytest.raises(InputError, match="at least 2"):
        run_bootstrap(X, y, replicates=1)


def test_core_fit_entry_point_keys_rows_by_the_data_index():
    import pandas as pd

    from buzzpipe.estimate import fit
    from buzzpipe.estimate.bootstrap import bootstrap_fit

    rng = np.random.default_rng(8)
    n = 500
    frame = pd.DataFrame(
        {"breadth_regional": rng.integers(0, 6, n).astype(float), "size": rng.normal(size=n)},
        index=pd.RangeIndex(10, 10 + n),
    )
    frame["process"] = (rng.random(n) < 0.3 + 0.05 * frame["breadth_regional"]).astype(float)
    model = fit("process ~ breadth_regional + size", frame, family="probit", vcov="robust")
    result = bootstrap_fit(model, frame, replicates=20, seed=2)
    np.testing.assert_allclose(result.estimate, model.params.to_numpy(), atol=1e-7)
    assert result.names == list(model.params.index)
    shuffled = frame.sample(frac=1.0, random_state=0)
    again = bootstrap_fit(model, shuffled, replicates=20, seed=2)
    np.testing.assert_allclose(again.replicates, result.replicates, atol=1e-9)
    counts = random_weights.poisson_weights(2, frame.index.to_numpy(), [5])[:, 0]
    X = np.column_stack([np.ones(n), frame["breadth_regional"], frame["size"]])
    np.testing.assert_allclose(
        result.replicates[5],
        statsmodels_fit(X, frame["process"].to_numpy(), counts, "probit"),
        atol=1e-9,
    )


def test_poisson_counts_equal_a_search_over_the_float_cdf():
    """Integer thresholds on the random bits give the counts of searching the float CDF."""
    ids = np.arange(50_000)
    cdf = np.cumsum([np.exp(-1.0) / math.factorial(k) for k in range(30)])
    uniform = random_weights.uniform_draws(12, ids, 8)
    expected = np.searchsorted(cdf, uniform, side="right").astype(float)
    counts = random_weights.poisson_weights(12, ids, 8)
    np.testing.assert_array_equal(counts, expected)
    assert counts.max() >= 6  # the tail beyond the compared counts is exercised
    assert np.bincount(counts.astype(int).ravel())[0] / counts.size == pytest.approx(
        np.exp(-1.0), abs=5 * np.sqrt(0.25 / counts.size)
    )


def separating_sample(n=400):
    """A three-firm category: resamples without it are rank deficient, some separate."""
    rng = np.random.default_rng(5)
    rare = np.zeros(n)
    rare[:3] = 1.0
    X = np.column_stack([np.ones(n), rng.normal(size=n), rare])
    y = (rng.random(n) < 0.4).astype(float)
    y[:3] = [1.0, 0.0, 1.0]
    return X, y


@pytest.mark.parametrize(("family", "sample"), [("logit", 0), ("probit", 0), ("logit", 1)])
def test_warm_start_chord_steps_equal_full_newton_steps(family, sample):
    """The bootstrap's warm-start path (cheap first step, kept Hessians) vs Newton throughout."""
    X, y = logit_sample(8, n=1200, p=12, family=family) if sample == 0 else separating_sample()
    weights = random_weights.poisson_weights(3, np.arange(len(y)), 300)
    start = newton_batch(X, y, np.ones(len(y)), family=family).params[:, 0]
    fast = newton_batch(X, y, weights, family=family, start=start)
    # keep_hessian takes the plain path: a full Newton step (fresh Hessian) every time
    plain = newton_batch(X, y, weights, family=family, start=start, keep_hessian=True)
    for flag in ("converged", "full_rank", "separated"):
        np.testing.assert_array_equal(getattr(fast, flag), getattr(plain, flag), err_msg=flag)
    good = fast.converged & fast.full_rank & ~fast.separated
    assert good.sum() > (250 if sample == 0 else 100)  # a third of the second sample separates
    np.testing.assert_allclose(fast.params[:, good], plain.params[:, good], atol=1e-11)
    if sample == 1:
        assert fast.separated.sum() > 0 and (~fast.full_rank).sum() > 0


def test_the_logistic_of_the_newton_loop_is_scipys_expit_to_rounding():
    """The batched solver's logistic (numpy's vectorised exponential, not scipy's slower
    expit): the same probabilities to a few units in the last place, 0 and 1 at the far ends
    without an overflow warning, ``out`` may be the input."""
    from scipy import special

    from buzzpipe.estimate.batched_newton import _logistic

    eta = np.concatenate([np.linspace(-40, 40, 100_001), [-1e6, -800.0, -710.0, 710.0, 1e6]])
    with warnings.catch_warnings(), np.errstate(over="warn", invalid="raise"):
        warnings.simplefilter("error")
        found = _logistic(eta.copy(), out=np.empty_like(eta))
        again = eta.copy()
        _logistic(again, out=again)
    expected = special.expit(eta)
    np.testing.assert_array_equal(found, again)
    np.testing.assert_allclose(found, expected, rtol=4 * np.finfo(float).eps, atol=0)
    assert found[-5] == 0.0 and found[-1] == 1.0
