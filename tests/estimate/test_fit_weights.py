"""Sampling weights (Stata's pweight) checked by replication, for every family.

An integer weight w_i is the same as repeating row i w_i times: coefficients and log
pseudolikelihood must equal the unweighted fit on the expanded data, and the pweight robust
covariance, N/(N-1) x sandwich over the N original rows, must equal the cluster-robust covariance
of the expanded data clustered by original row (G = N clusters, factor G/(G-1)). For the LPM the
factors differ by Stata's convention, undone here explicitly.
"""

import numpy as np
import pandas as pd
import pytest

from buzzpipe.estimate import fit


def weighted_firms(seed: int = 17, n: int = 250) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n),
            "industry": rng.choice(["ict", "manufacturing", "services"], n),
            "weight": rng.integers(1, 5, n).astype(float),
        }
    )
    latent = 0.9 * data.x1 - 0.6 * data.x2 + rng.logistic(size=n)
    data["y"] = (latent > 0).astype(float)
    data["novelty"] = np.digitize(latent, [-0.8, 0.9])
    return data


@pytest.mark.parametrize(
    ("family", "outcome"),
    [("logit", "y"), ("probit", "y"), ("ologit", "novelty"), ("lpm", "y")],
)
def test_integer_weights_equal_replicated_rows(family, outcome):
    data = weighted_firms()
    formula = f"{outcome} ~ x1 + x2 + C(industry)"
    weighted = fit(formula, data, family=family, vcov="robust", weights="weight")
    expanded = data.loc[data.index.repeat(data.weight.astype(int))].copy()
    expanded["firm"] = expanded.index  # cluster = original row
    expanded = expanded.reset_index(drop=True)
    replicated = fit(formula, expanded, family=family, vcov={"cluster": "firm"})
    np.testing.assert_allclose(weighted.params, replicated.params, rtol=1e-9, atol=1e-12)
    n, k = len(data), weighted.n_params
    if family == "lpm":
        # pweight HC1: N/(N-K); expanded cluster: G/(G-1) (M-1)/(M-K), M expanded rows
        m = len(expanded)
        ratio = (n / (n - k)) / (n / (n - 1) * (m - 1) / (m - k))
    else:
        assert weighted.llf == pytest.approx(replicated.llf, rel=1e-10)
        ratio = 1.0
    np.testing.assert_allclose(
        weighted.vcov.to_numpy(), replicated.vcov.to_numpy() * ratio, rtol=1e-8, atol=1e-14
    )


def test_weights_change_estimates_when_they_matter():
    """The paired case: unequal weights do move the coefficients (the check above can fail)."""
    data = weighted_firms()
    weighted = fit("y ~ x1 + x2", data, vcov="robust", weights="weight")
    unweighted = fit("y ~ x1 + x2", data, vcov="robust")
    assert np.max(np.abs(weighted.params - unweighted.params)) > 1e-3
