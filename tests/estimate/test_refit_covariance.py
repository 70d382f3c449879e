"""``refit_covariance``: a fit under another covariance without estimating it again equals the
refit bit for bit (estimates, covariance, its pieces, notes) where the refit uses the same rows,
and declines (None) where it would not."""

import warnings

import numpy as np
import pandas as pd
import pytest

from buzzpipe.estimate import fit
from buzzpipe.estimate.fitting import refit_covariance


def firms(seed: int, n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.poisson(2.0, n).astype(float),
            "employees": rng.integers(5, 500, n).astype(float),
            "industry": pd.Categorical(rng.choice(["ict", "manufacturing", "services"], n)),
            "region": rng.choice(["Oslo", "Bergen", "Trondheim", "Stavanger", "Tromso"], n),
            "weight": rng.uniform(0.5, 2.0, n),
        }
    )
    latent = 0.6 * data.x1 - 0.3 * data.x2 + 0.4 * (data.industry == "ict") + rng.logistic(size=n)
    data["product"] = (latent > 0.2).astype(float)
    data["novelty"] = np.digitize(latent, [-0.5, 0.7, 1.8]).astype(float)
    data["x1_again"] = 2.0 * data.x1  # collinear with x1: dropped by the fit
    return data


FORMULA = "{y} ~ x1 + x2 + np.log(employees) + C(industry) + C(region)"
CASES = [
    ("product", "logit", None, FORMULA),
    ("product", "probit", None, FORMULA),
    ("product", "logit", "weight", FORMULA),
    ("novelty", "ologit", None, FORMULA),
    ("product", "logit", None, FORMULA + " + x1_again"),  # a column left out: column-major X
]


@pytest.mark.parametrize(("outcome", "family", "weights", "formula"), CASES)
@pytest.mark.parametrize("vcov", [{"cluster": "region"}, "robust"])
def test_equals_the_refit_bit_for_bit(outcome, family, weights, formula, vcov):
    data = firms(3)
    formula = formula.format(y=outcome)
    first = "classical" if vcov == "robust" and weights is None else "robust"
    fitted = fit(formula, data, family=family, vcov=first, weights=weights)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        refit = fit(formula, data, family=family, vcov=vcov, weights=weights)
        found = refit_covariance(fitted, data, fitted.design_matrix(data), vcov)
    assert found is not None
    np.testing.assert_array_equal(found.params.to_numpy(), refit.params.to_numpy())
    np.testing.assert_array_equal(found.vcov.to_numpy(), refit.vcov.to_numpy())
    assert list(found.vcov.index) == list(refit.vcov.index)
    for name in ("meat", "cluster_score_sums", "bread"):
        mine, theirs = getattr(found, name), getattr(refit, name)
        assert (mine is None) == (theirs is None)
        if mine is not None:
            np.testing.assert_array_equal(mine, theirs)
    for name in ("vcov_type", "cluster_var", "n_clusters", "vcov_factor", "notes", "nobs"):
        assert getattr(found, name) == getattr(refit, name), name
    assert found.joint_tests_possible == refit.joint_tests_possible
    np.testing.assert_array_equal(found.bse.to_numpy(), refit.bse.to_numpy())
    assert fitted.vcov_type == first  # the fit given is left as it was


def test_declines_where_the_refit_would_use_other_rows():
    data = firms(4)
    formula = FORMULA.format(y="product")
    fitted = fit(formula, data, vcov="robust")
    design = fitted.design_matrix(data)
    missing_cluster = data.assign(region=data.region.where(data.index != 7))
    assert refit_covariance(fitted, missing_cluster, design, {"cluster": "region"}) is None
    fewer = data.iloc[:-1]
    assert refit_covariance(fitted, fewer, design[:-1], {"cluster": "region"}) is None
    gaps = data.assign(x1=data.x1.where(data.index != 3))
    left_out = fit(formula, gaps, vcov="robust")  # one row left out for a missing value
    assert refit_covariance(left_out, gaps, left_out.design_matrix(gaps), "robust") is None
    lpm = fit(formula, data, family="lpm", vcov="robust")
    assert refit_covariance(lpm, data, lpm.design_matrix(data), {"cluster": "region"}) is None
