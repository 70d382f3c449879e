"""Monte Carlo checks of the covariance conventions (slow: ``scripts/test.sh --slow``).

Each check counts over 450 seeds and accepts the count in an exact binomial band sized to a
stated wrong implementation (tests/bands.py; the docstrings give both probabilities, checked by
tests/test_monte_carlo_claims.py); each "no effect" check is paired with one where the effect
exists.
"""

import numpy as np
import pandas as pd
import pytest
from bands import Claim, at_least, at_most, states, two_sided

from buzzpipe.estimate import fit

pytestmark = pytest.mark.slow

SEEDS = 450
COVERAGE = Claim(
    "95% intervals covering the true slope",
    two_sided(SEEDS, 0.95),
    0.95,
    (("coverage 0.90", 0.90), ("coverage 0.99", 0.99)),
)
SIZE = Claim(
    "5% tests rejecting a true null",
    two_sided(SEEDS, 0.05),
    0.05,
    (("size 10%", 0.10), ("size 1%", 0.01)),
)
POWER = Claim(
    "5% tests detecting a slope of 0.4 (measured power 0.96)",
    at_least(SEEDS, 0.96),
    0.96,
    (("power 0.90", 0.90),),
)


def logit_sample(seed: int, slope: float, n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n)})
    eta = -0.2 + slope * data.x + 0.5 * data.z
    data["y"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(float)
    return data


@pytest.mark.parametrize("vcov", ["classical", "robust"])
@states(COVERAGE, SIZE, POWER)
def test_logit_interval_coverage_and_power(vcov):
    """95% intervals cover the true slope at the nominal rate; a real effect is detected.

    95% intervals covering the true slope: 415 to 438 of 450; correct (0.95) passes with
    probability 0.990; coverage 0.90 fails with probability 0.936; coverage 0.99 fails with
    probability 0.997.
    5% tests rejecting a true null: 12 to 35 of 450; correct (0.05) passes with probability 0.990;
    size 10% fails with probability 0.936; size 1% fails with probability 0.997.
    5% tests detecting a slope of 0.4 (measured power 0.96): at least 422 of 450; correct (0.96)
    passes with probability 0.991; power 0.90 fails with probability 0.996.
    """
    covered = rejected_null = detected = 0
    for seed in np.random.SeedSequence(41).generate_state(SEEDS):
        result = fit("y ~ x + z", logit_sample(int(seed), 0.4), vcov=vcov)
        low, high = result.conf_int().loc["x"]
        covered += low <= 0.4 <= high
        detected += result.pvalues["x"] < 0.05
        null = fit("y ~ x + z", logit_sample(int(seed) + 1, 0.0), vcov=vcov)
        rejected_null += null.pvalues["x"] < 0.05
    COVERAGE.band.check(covered, "covered")
    SIZE.band.check(rejected_null, "rejected a true null")
    POWER.band.check(detected, "detected")


def clustered_lpm_sample(seed: int, clusters: int = 40, size: int = 20) -> pd.DataFrame:
    """A correctly specified LPM whose regressor and errors share a cluster component."""
    rng = np.random.default_rng(seed)
    region = np.repeat(np.arange(clusters), size)
    x = rng.normal(size=clusters)[region] + 0.5 * rng.normal(size=clusters * size)
    shock = rng.uniform(-0.25, 0.25, size=clusters)[region]
    probability = np.clip(0.5 + 0.08 * x + shock, 0.0, 1.0)
    y = (rng.uniform(size=clusters * size) < probability).astype(float)
    return pd.DataFrame({"y": y, "x": x, "region": region})


CLUSTER_COVERAGE = Claim(
    "cluster-robust 95% intervals covering the target slope",
    two_sided(SEEDS, 0.95),
    0.95,
    (("coverage 0.90", 0.90), ("coverage 0.99", 0.99)),
)
CLASSICAL_COVERAGE = Claim(
    "classical 95% intervals covering it (measured 0.83)",
    at_most(SEEDS, 0.83),
    0.83,
    (("classical errors that cover as the cluster ones do", 0.95),),
)


@states(CLUSTER_COVERAGE, CLASSICAL_COVERAGE)
def test_cluster_errors_cover_where_classical_errors_do_not():
    """With within-cluster correlation, classical intervals under-cover and cluster ones do not.

    The slope of the clipped probability is not exactly 0.08, so the target is the slope the
    model converges to, estimated once on a sample 2,500 times one sample's size (its error is
    1/50 of one sample's, which moves a 95% interval's coverage by less than 0.001).

    cluster-robust 95% intervals covering the target slope: 415 to 438 of 450; correct (0.95)
    passes with probability 0.990; coverage 0.90 fails with probability 0.936; coverage 0.99 fails
    with probability 0.997.
    classical 95% intervals covering it (measured 0.83): at most 392 of 450; correct (0.83) passes
    with probability 0.993; classical errors that cover as the cluster ones do fails with
    probability 0.999.
    """
    big = pd.concat(
        [clustered_lpm_sample(10_000 + s, clusters=1000) for s in range(100)], ignore_index=True
    )
    target = fit("y ~ x", big, family="lpm").params["x"]
    covered = {"classical": 0, "cluster": 0}
    for seed in np.random.SeedSequence(43).generate_state(SEEDS):
        data = clustered_lpm_sample(int(seed))
        for name, vcov in (("classical", "classical"), ("cluster", {"cluster": "region"})):
            low, high = fit("y ~ x", data, family="lpm", vcov=vcov).conf_int().loc["x"]
            covered[name] += low <= target <= high
    CLUSTER_COVERAGE.band.check(covered["cluster"], "cluster-robust intervals covering")
    CLASSICAL_COVERAGE.band.check(covered["classical"], "classical intervals covering")
