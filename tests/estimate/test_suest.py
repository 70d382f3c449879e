"""suest against a hand-built stacked sandwich (statsmodels' scores and Hessians), the one-model
reduction to the fit's own robust and cluster covariances, and differing samples."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from bands import Claim, at_least, states, two_sided
from scipy import stats

from buzzpipe.errors import InputError
from buzzpipe.estimate import fit
from buzzpipe.estimate.hypothesis_tests import lincom
from buzzpipe.estimate.suest import suest

RIGHT = "breadth_regional + breadth_international + foreign_share"
COLUMNS = ["breadth_regional", "breadth_international", "foreign_share"]


def firms(seed: int, n: int = 1200, process_international: float = 0.6) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = pd.DataFrame(
        {
            "breadth_regional": rng.poisson(1.2, n).astype(float),
            "breadth_international": rng.poisson(0.8, n).astype(float),
            "foreign_share": rng.uniform(0, 1, n),
            "region": rng.integers(0, 40, n),
        }
    )
    shared = rng.normal(size=n)  # a firm trait that correlates the two outcomes
    base = -0.8 + 0.2 * data.breadth_regional + 0.3 * data.foreign_share + 0.8 * shared
    product_index = base + 0.6 * data.breadth_international
    process_index = base + process_international * data.breadth_international
    data["product"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-product_index))).astype(float)
    data["process"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-process_index))).astype(float)
    data.index = pd.Index(np.arange(n) + 5000, name="firm_id")
    return data


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return firms(21)


def hand_stacked(data: pd.DataFrame, outcomes, samples, cluster=None):
    """B S B with statsmodels' per-firm scores (zero outside a sample) and Hessians."""
    union = data.index[np.any([data.index.isin(s) for s in samples], axis=0)]
    blocks, breads = [], []
    for outcome, sample in zip(outcomes, samples, strict=True):
        rows = data.loc[sample]
        model = sm.Logit(rows[outcome], sm.add_constant(rows[COLUMNS]))
        results = model.fit(disp=0, tol=1e-12)
        block = np.zeros((len(union), results.params.size))
        block[union.get_indexer(sample)] = model.score_obs(results.params.to_numpy())
        blocks.append(block)
        breads.append(np.linalg.inv(-model.hessian(results.params.to_numpy())))
    scores = np.hstack(blocks)
    size = sum(b.shape[0] for b in breads)
    bread = np.zeros((size, size))
    start = 0
    for b in breads:
        bread[start : start + b.shape[0], start : start + b.shape[0]] = b
        start += b.shape[0]
    if cluster is None:
        meat = scores.T @ scores
        factor = len(union) / (len(union) - 1)
    else:
        sums = pd.DataFrame(scores).groupby(data.loc[union, cluster].to_numpy()).sum().to_numpy()
        meat = sums.T @ sums
        factor = len(sums) / (len(sums) - 1)
    return factor * bread @ meat @ bread


def test_one_model_reduces_to_its_robust_and_cluster_covariance(data):
    robust = fit(f"product ~ {RIGHT}", data, family="logit", vcov="robust")
    alone = suest([robust], data)
    np.testing.assert_allclose(alone.vcov.to_numpy(), robust.vcov.to_numpy(), rtol=1e-10)
    assert list(alone.params.index) == [f"product:{name}" for name in robust.params.index]
    clustered = fit(f"product ~ {RIGHT}", data, family="probit", vcov={"cluster": "region"})
    alone = suest([clustered], data, vcov={"cluster": "region"})
    np.testing.assert_allclose(alone.vcov.to_numpy(), clustered.vcov.to_numpy(), rtol=1e-10)
    assert alone.n_clusters == 40


def test_linear_probability_model_uses_stata_suest_factor(data):
    """Stata's suest after regress uses N/(N-1), not regress's N/(N-K): a known ratio."""
    model = fit(f"product ~ {RIGHT}", data, family="lpm", vcov="robust")
    alone = suest([model], data)
    n, k = model.nobs, model.params.size
    ratio = (n / (n - 1)) / (n / (n - k))
    np.testing.assert_allclose(alone.vcov.to_numpy(), ratio * model.vcov.to_numpy(), rtol=1e-10)


def test_two_models_equal_hand_built_stacked_sandwich(data):
    product = fit(f"product ~ {RIGHT}", data, family="logit")
    process = fit(f"process ~ {RIGHT}", data, family="logit")
    stacked = suest([product, process], data)
    expected = hand_stacked(data, ["product", "process"], [data.index, data.index])
    np.testing.assert_allclose(stacked.vcov.to_numpy(), expected, rtol=1e-7, atol=1e-12)
    assert stacked.overlap.identical
    clustered = suest([product, process], data, vcov={"cluster": "region"})
    expected = hand_stacked(data, ["product", "process"], [data.index, data.index], "region")
    np.testing.assert_allclose(clustered.vcov.to_numpy(), expected, rtol=1e-7, atol=1e-12)
    # the cross-model block is not zero: the two outcomes share a firm trait
    cross = stacked.vcov.loc["product:breadth_international", "process:breadth_international"]
    assert cross > 0


def test_differing_samples_are_stacked_on_row_ids_and_reported(data):
    frame = data.copy()
    frame.loc[frame.index[:150], "process"] = np.nan  # process unanswered by 150 firms
    frame = frame.sample(frac=1.0, random_state=3)  # row order must not matter
    product = fit(f"product ~ {RIGHT}", frame, family="logit")
    process = fit(f"process ~ {RIGHT}", frame, family="logit")
    stacked = suest([product, process], frame)
    assert stacked.overlap.sizes == {"product": 1200, "process": 1050}
    assert stacked.overlap.n_union == 1200 and stacked.overlap.n_common == 1050
    assert "samples differ" in str(stacked.overlap)
    expected = hand_stacked(frame, ["product", "process"], [product.row_ids, process.row_ids])
    np.testing.assert_allclose(stacked.vcov.to_numpy(), expected, rtol=1e-7, atol=1e-12)


def test_equality_across_models_detects_a_difference_and_accepts_equality(data):
    same = suest(
        [
            fit(f"product ~ {RIGHT}", data, family="logit"),
            fit(f"process ~ {RIGHT}", data, family="logit"),
        ],
        data,
    )
    test = same.test_equal("breadth_international")
    b = same.params
    difference = b["product:breadth_international"] - b["process:breadth_international"]
    names = ["product:breadth_international", "process:breadth_international"]
    V = same.vcov.loc[names, names].to_numpy()
    variance = V[0, 0] + V[1, 1] - 2 * V[0, 1]
    assert test.statistic == pytest.approx(difference**2 / variance, rel=1e-10)
    assert test.p_value == pytest.approx(stats.chi2.sf(difference**2 / variance, 1), rel=1e-10)
    assert test.p_value > 0.05  # equal effects (0.6 and 0.6) by construction
    combination = lincom(same, f"{names[0]} - {names[1]}")
    assert combination.se == pytest.approx(np.sqrt(variance), rel=1e-12)
    different = firms(21, process_international=-0.2)
    apart = suest(
        [
            fit(f"product ~ {RIGHT}", different, family="logit"),
            fit(f"process ~ {RIGHT}", different, family="logit"),
        ],
        different,
    )
    assert apart.test_equal("breadth_international").p_value < 1e-4


def test_mixed_families_and_labels(data):
    frame = data.assign(novelty=data["product"] + (data["process"] > 0))
    stacked = suest(
        [
            fit(f"product ~ {RIGHT}", frame, family="probit"),
            fit(f"novelty ~ {RIGHT}", frame, family="ologit"),
        ],
        frame,
        names=["product_probit", "novelty"],
    )
    assert "novelty:cut2" in stacked.params.index
    assert np.all(np.linalg.eigvalsh(stacked.vcov.to_numpy()) > 0)
    with pytest.raises(InputError, match="robust or cluster"):
        suest([fit(f"product ~ {RIGHT}", frame)], frame, vcov="classical")
    with pytest.raises(InputError, match="unique"):
        suest([fit(f"product ~ {RIGHT}", frame)] * 2, frame, names=["a", "a"])


EQUALITY_SEEDS = 450
EQUALITY_SIZE = Claim(
    "5% equality tests rejecting a true equality",
    two_sided(EQUALITY_SEEDS, 0.05),
    0.05,
    (("size 10%", 0.10), ("size 1%", 0.01)),
)
EQUALITY_POWER = Claim(
    "5% equality tests rejecting 0.6 against 0 (measured power 0.998)",
    at_least(EQUALITY_SEEDS, 0.99),
    0.99,
    (("power 0.80", 0.80),),
)


@pytest.mark.slow
@states(EQUALITY_SIZE, EQUALITY_POWER)
def test_equality_test_has_its_nominal_size_and_power():
    """450 seeds: the cross-model equality test rejects a true equality at about 5% and a real
    difference (0.6 against 0) nearly always.

    5% equality tests rejecting a true equality: 12 to 35 of 450; correct (0.05) passes with
    probability 0.990; size 10% fails with probability 0.936; size 1% fails with probability 0.997.
    5% equality tests rejecting 0.6 against 0 (measured power 0.998): at least 440 of 450; correct
    (0.99) passes with probability 0.993; power 0.80 fails with probability 1.000.
    """
    seeds = np.random.SeedSequence(77).spawn(EQUALITY_SEEDS)
    rejections = {0.6: 0, 0.0: 0}
    for seed in seeds:
        for process_effect in rejections:
            frame = firms(seed, n=800, process_international=process_effect)
            stacked = suest(
                [
                    fit(f"product ~ {RIGHT}", frame, family="logit"),
                    fit(f"process ~ {RIGHT}", frame, family="logit"),
                ],
                frame,
            )
            rejections[process_effect] += stacked.test_equal("breadth_international").p_value < 0.05
    EQUALITY_SIZE.band.check(rejections[0.6], "rejected a true equality")
    EQUALITY_POWER.band.check(rejections[0.0], "rejected a false equality")


def test_weighted_one_model_reduces_to_its_robust_covariance(data):
    frame = data.assign(weight=np.random.default_rng(9).uniform(0.5, 4.0, len(data)))
    model = fit(f"process ~ {RIGHT}", frame, family="logit", vcov="robust", weights="weight")
    alone = suest([model], frame)
    np.testing.assert_allclose(alone.vcov.to_numpy(), model.vcov.to_numpy(), rtol=1e-10)


def test_common_sample_option_refits_every_model_on_shared_firms(data):
    frame = data.copy()
    frame.loc[frame.index[:100], "process"] = np.nan
    frame.loc[frame.index[-80:], "product"] = np.nan
    product = fit(f"product ~ {RIGHT}", frame, family="logit")
    process = fit(f"process ~ {RIGHT}", frame, family="probit")
    common = suest([product, process], frame, sample="common")
    assert common.overlap.refitted_on_common and common.nobs == 1020
    assert "refitted on the 1020 firms" in str(common.overlap)
    shared = frame.dropna(subset=["product", "process"])
    by_hand = suest(
        [
            fit(f"product ~ {RIGHT}", shared, family="logit"),
            fit(f"process ~ {RIGHT}", shared, family="probit"),
        ],
        shared,
    )
    np.testing.assert_allclose(common.params.to_numpy(), by_hand.params.to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(common.vcov.to_numpy(), by_hand.vcov.to_numpy(), rtol=1e-10)
    union = suest([product, process], frame)
    assert union.nobs == 1200 and not union.overlap.refitted_on_common
