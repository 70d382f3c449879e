"""Monte Carlo checks of the covariance conventions (slow: ``scripts/test.sh --slow``).

Each check runs many seeds and states its pass rate with a binomial tolerance (4 standard
deviations), and each "no effect" check is paired with one where the effect exists.
"""

import numpy as np
import pandas as pd
import pytest

from buzzpipe.estimate import fit

pytestmark = pytest.mark.slow

SEEDS = 300


def binomial_band(rate: float, trials: int, sds: float = 4.0) -> tuple[float, float]:
    spread = sds * np.sqrt(rate * (1 - rate) / trials)
    return rate - spread, rate + spread


def logit_sample(seed: int, slope: float, n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n)})
    eta = -0.2 + slope * data.x + 0.5 * data.z
    data["y"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(float)
    return data


@pytest.mark.parametrize("vcov", ["classical", "robust"])
def test_logit_interval_coverage_and_power(vcov):
    """95% intervals cover the true slope at the nominal rate; a real effect is detected."""
    covered = rejected_null = detected = 0
    for seed in np.random.SeedSequence(41).generate_state(SEEDS):
        result = fit("y ~ x + z", logit_sample(int(seed), 0.4), vcov=vcov)
        low, high = result.conf_int().loc["x"]
        covered += low <= 0.4 <= high
        detected += result.pvalues["x"] < 0.05
        null = fit("y ~ x + z", logit_sample(int(seed) + 1, 0.0), vcov=vcov)
        rejected_null += null.pvalues["x"] < 0.05
    low, high = binomial_band(0.95, SEEDS)
    assert low <= covered / SEEDS <= high
    low, high = binomial_band(0.05, SEEDS)
    assert low <= rejected_null / SEEDS <= high
    assert detected / SEEDS > 0.9  # n = 400, slope 0.4: power measured 0.96


def clustered_lpm_sample(seed: int, clusters: int = 40, size: int = 20) -> pd.DataFrame:
    """A correctly specified LPM whose regressor and errors share a cluster component."""
    rng = np.random.default_rng(seed)
    region = np.repeat(np.arange(clusters), size)
    x = rng.normal(size=clusters)[region] + 0.5 * rng.normal(size=clusters * size)
    shock = rng.uniform(-0.25, 0.25, size=clusters)[region]
    probability = np.clip(0.5 + 0.08 * x + shock, 0.0, 1.0)
    y = (rng.uniform(size=clusters * size) < probability).astype(float)
    return pd.DataFrame({"y": y, "x": x, "region": region})


def test_cluster_errors_cover_where_classical_errors_do_not():
    """With within-cluster correlation, classical intervals under-cover and cluster ones do not.

    The slope of the clipped probability is not exactly 0.08, so the target is the slope the
    model converges to, estimated once on a very large sample from the same process.
    """
    big = pd.concat(
        [clustered_lpm_sample(10_000 + s, clusters=200) for s in range(10)], ignore_index=True
    )
    target = fit("y ~ x", big, family="lpm").params["x"]
    covered = {"classical": 0, "cluster": 0}
    for seed in np.random.SeedSequence(43).generate_state(SEEDS):
        data = clustered_lpm_sample(int(seed))
        for name, vcov in (("classical", "classical"), ("cluster", {"cluster": "region"})):
            low, high = fit("y ~ x", data, family="lpm", vcov=vcov).conf_int().loc["x"]
            covered[name] += low <= target <= high
    low, high = binomial_band(0.95, SEEDS)
    # the target itself is estimated (its error is about 1/7 of one sample's): allow 0.01 more
    assert low - 0.01 <= covered["cluster"] / SEEDS <= high
    assert covered["classical"] / SEEDS < 0.85
