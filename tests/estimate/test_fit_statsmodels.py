"""fit() against statsmodels: coefficients and log-likelihood to 1e-8, covariances to 1e-6 after
undoing statsmodels' different small-sample factors explicitly (DESIGN.md's conventions table)."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from formulaic import model_matrix
from survey_builders import logit_firms

from buzzpipe.estimate import fit

FORMULA = "y ~ x1 + x2 + log(employees) + C(industry)"


def firms(seed: int, n: int = 800) -> pd.DataFrame:
    """Synthetic firms with a logit outcome, four industries, 40 regions and weights."""

    def index(data: pd.DataFrame) -> pd.Series:
        eta = -0.3 + 0.8 * data.x1 - 0.5 * data.x2 + 0.2 * np.log(data.employees)
        return eta + 0.5 * (data.industry == "retail")

    industries = ("ict", "manufacturing", "services", "retail")
    return logit_firms(seed, n, index, industries=industries, weight=True)


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return firms(7)


def design(data: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[str]]:
    matrices = model_matrix(FORMULA, data)
    return matrices.lhs.to_numpy()[:, 0], matrices.rhs.to_numpy(), list(matrices.rhs.columns)


def assert_close(ours, theirs, rtol, atol=0.0):
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=rtol, atol=atol)


MODELS = {"logit": sm.Logit, "probit": sm.Probit}


@pytest.mark.parametrize("family", ["logit", "probit"])
def test_binary_classical_matches_statsmodels(data, family):
    y, X, names = design(data)
    theirs = MODELS[family](y, X).fit(disp=0, method="newton", tol=1e-14, maxiter=200)
    ours = fit(FORMULA, data, family=family)
    assert list(ours.params.index) == names
    assert_close(ours.params, theirs.params, 1e-8)
    assert ours.llf == pytest.approx(theirs.llf, rel=1e-8)
    assert ours.llnull == pytest.approx(theirs.llnull, rel=1e-8)
    assert ours.pseudo_r2 == pytest.approx(theirs.prsquared, rel=1e-8)
    assert ours.aic == pytest.approx(theirs.aic, rel=1e-8)
    assert ours.bic == pytest.approx(theirs.bic, rel=1e-8)
    assert_close(ours.vcov, theirs.cov_params(), 1e-6)
    assert_close(ours.pvalues, theirs.pvalues, 1e-6)
    assert_close(ours.conf_int(), theirs.conf_int(), 1e-6)
    assert ours.converged and ours.nobs == len(data) and ours.df_model == len(names) - 1


@pytest.mark.parametrize("family", ["logit", "probit"])
def test_binary_robust_is_hc0_times_n_over_n_minus_1(data, family):
    y, X, _ = design(data)
    n = len(y)
    theirs = MODELS[family](y, X).fit(disp=0, method="newton", tol=1e-14, cov_type="HC0")
    ours = fit(FORMULA, data, family=family, vcov="robust")
    assert_close(ours.vcov, theirs.cov_params() * n / (n - 1), 1e-6)
    assert ours.vcov_type == "robust"


@pytest.mark.parametrize("family", ["logit", "probit"])
def test_binary_cluster_undoes_statsmodels_n_minus_k_factor(data, family):
    y, X, _ = design(data)
    n, k = X.shape
    theirs = MODELS[family](y, X).fit(
        disp=0,
        method="newton",
        tol=1e-14,
        cov_type="cluster",
        cov_kwds={"groups": data.region.to_numpy()},
    )
    ours = fit(FORMULA, data, family=family, vcov={"cluster": "region"})
    # statsmodels: G/(G-1) (N-1)/(N-K); Stata after ML: G/(G-1)
    assert_close(ours.vcov, theirs.cov_params() * (n - k) / (n - 1), 1e-6)
    assert ours.n_clusters == 40 and ours.cluster_var == "region"
    assert ours.cluster_score_sums.shape == (40, k)
    # the stored pieces rebuild the covariance
    rebuilt = ours.vcov_factor * ours.bread @ ours.meat @ ours.bread
    assert_close(ours.vcov, rebuilt, 1e-10)


def test_lpm_matches_ols_classical_hc1_and_cluster(data):
    y, X, _ = design(data)
    classical = sm.OLS(y, X).fit()
    ours = fit(FORMULA, data, family="lpm")
    assert_close(ours.params, classical.params, 1e-8)
    assert ours.llf == pytest.approx(classical.llf, rel=1e-8)
    assert ours.r2 == pytest.approx(classical.rsquared, rel=1e-8)
    assert_close(ours.vcov, classical.cov_params(), 1e-6)
    assert_close(ours.pvalues, classical.pvalues, 1e-6)  # t(N-K)
    assert ours.uses_t and np.isnan(ours.pseudo_r2)
    assert ours.model_test().statistic == pytest.approx(classical.fvalue, rel=1e-6)

    robust = sm.OLS(y, X).fit(cov_type="HC1")
    ours_robust = fit(FORMULA, data, family="lpm", vcov="robust")
    assert_close(ours_robust.vcov, robust.cov_params(), 1e-6)

    cluster = sm.OLS(y, X).fit(
        cov_type="cluster", cov_kwds={"groups": data.region.to_numpy()}, use_t=True
    )
    ours_cluster = fit(FORMULA, data, family="lpm", vcov={"cluster": "region"})
    # for OLS statsmodels' cluster factor G/(G-1) (N-1)/(N-K) is Stata's
    assert_close(ours_cluster.vcov, cluster.cov_params(), 1e-6)
    assert ours_cluster.df_inference == 39
    assert_close(ours_cluster.pvalues, cluster.pvalues, 1e-6)  # t(G-1)


@pytest.mark.parametrize("vcov", ["robust", "cluster"])
def test_sampling_weights_match_glm_var_weights(data, vcov):
    y, X, _ = design(data)
    n = len(y)
    groups = data.region.to_numpy()
    model = sm.GLM(y, X, family=sm.families.Binomial(), var_weights=data.weight.to_numpy())
    if vcov == "robust":
        theirs = model.fit(cov_type="HC0", tol=1e-13)
        expected = theirs.cov_params() * n / (n - 1)
        ours = fit(FORMULA, data, vcov="robust", weights="weight")
    else:
        theirs = model.fit(
            cov_type="cluster", cov_kwds={"groups": groups, "use_correction": False}, tol=1e-13
        )
        expected = theirs.cov_params() * 40 / 39
        ours = fit(FORMULA, data, vcov={"cluster": "region"}, weights="weight")
    assert_close(ours.params, theirs.params, 1e-8)
    assert ours.llf == pytest.approx(theirs.llf, rel=1e-8)
    assert_close(ours.vcov, expected, 1e-6)


def test_weights_with_classical_covariance_are_refused(data):
    from buzzpipe.errors import InputError

    with pytest.raises(InputError, match="robust or cluster"):
        fit(FORMULA, data, weights="weight")


def test_offset_matches_statsmodels(data):
    y, X, _ = design(data)
    offset = 0.3 * data.x2.to_numpy()
    theirs = sm.Logit(y, X, offset=offset).fit(disp=0, method="newton", tol=1e-14)
    ours = fit(FORMULA, data.assign(off=offset), offset="off")
    assert_close(ours.params, theirs.params, 1e-8)
    assert ours.llf == pytest.approx(theirs.llf, rel=1e-8)
    assert_close(ours.vcov, theirs.cov_params(), 1e-6)
    same = fit(FORMULA, data, offset=offset)
    assert_close(same.params, ours.params, 1e-12)


def test_predict_and_scores_on_new_data(data):
    ours = fit(FORMULA, data, vcov={"cluster": "region"})
    y, X, _ = design(data)
    theirs = sm.Logit(y, X).fit(disp=0, method="newton", tol=1e-14)
    assert_close(ours.predict(data), theirs.predict(X), 1e-8)
    assert_close(ours.predict(data, which="linear"), X @ theirs.params, 1e-8, atol=1e-10)
    scores = ours.scores(data)
    assert_close(scores, theirs.model.score_obs(theirs.params), 1e-6, atol=1e-10)
    sums = scores.groupby(data.loc[ours.row_ids, "region"].to_numpy()).sum().to_numpy()
    assert_close(sums, ours.cluster_score_sums, 1e-10, atol=1e-12)
    # a perturbed copy goes through the same specification (log, factor levels)
    doubled = data.assign(employees=data.employees * 2)
    assert_close(
        ours.design_matrix(doubled)[:, ours.x_names.index("log(employees)")],
        np.log(data.employees * 2),
        1e-12,
    )
    one_industry = data.iloc[:5].assign(industry="retail")
    assert ours.design_matrix(one_industry).shape == (5, len(ours.x_names))


def test_scores_read_the_frame_in_every_order_and_outcome_type(data):
    """Scores on the fitted frame itself (every row, in order: no copy made), on a shuffled
    frame with extra rows (the estimation rows selected by label) and with the outcome held
    as an integer or boolean column are the same numbers."""
    from buzzpipe.estimate.design import FORMULA_CONTEXT

    ours = fit(FORMULA, data, vcov="robust")
    direct = ours.scores(data)
    shuffled = pd.concat([data, data.iloc[:3].set_axis([-1, -2, -3])]).sample(
        frac=1.0, random_state=7
    )
    assert np.array_equal(ours.scores(shuffled).to_numpy(), direct.to_numpy())
    for kind in ("Int8", "int64", "bool"):
        typed = data.assign(y=data["y"].astype(kind))
        rows = typed.loc[ours.row_ids]
        spec = np.asarray(
            ours.outcome_spec.get_model_matrix(rows, na_action="ignore", context=FORMULA_CONTEXT),
            dtype=np.float64,
        )[:, 0]
        assert np.array_equal(ours._outcome_values(rows), spec), kind
        assert np.array_equal(ours.scores(typed).to_numpy(), direct.to_numpy()), kind


def test_odds_ratios_are_statas_eform(data):
    ours = fit(FORMULA, data, vcov="robust")
    table = ours.odds_ratios()
    assert_close(table["odds_ratio"], np.exp(ours.params), 1e-12)
    assert_close(table["std_err"], np.exp(ours.params) * ours.bse, 1e-12)
    assert_close(table["lower"], np.exp(ours.conf_int()["lower"]), 1e-12)
    assert "Robust" in ours.summary() and "Number of obs" in ours.summary()


def test_to_dict_is_json_ready_and_matches_the_fit(data):
    import json

    ours = fit(FORMULA, data, family="lpm", vcov={"cluster": "region"})
    record = json.loads(json.dumps(ours.to_dict()))
    assert record["reference"] == "t(39)" and record["nobs"] == ours.nobs
    assert record["pseudo_r2"] is None  # NaN for the LPM becomes null
    terms = {term["term"]: term for term in record["terms"]}
    assert terms["x1"]["coef"] == ours.params["x1"] and terms["x1"]["p"] == ours.pvalues["x1"]
    np.testing.assert_array_equal(np.array(record["vcov"]), ours.vcov.to_numpy())
