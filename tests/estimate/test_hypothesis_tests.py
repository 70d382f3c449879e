"""Wald tests, lincom and nlcom against statsmodels' own tests on the same estimates."""

import re

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from buzzpipe.errors import EstimationError, InputError
from buzzpipe.estimate.hypothesis_tests import (
    Estimates,
    _substitute_names,
    lincom,
    linear_restriction,
    nlcom,
    wald_test,
)

NAMES = ["Intercept", "breadth_regional", "breadth_international", "np.log(employees)"]


@pytest.fixture(scope="module")
def logit_results():
    rng = np.random.default_rng(7)
    n = 1500
    X = np.column_stack(
        [
            np.ones(n),
            rng.poisson(1.5, n),
            rng.poisson(1.0, n),
            np.log(rng.lognormal(3.0, 1.0, n)),
        ]
    )
    beta = np.array([-1.0, 0.1, 0.6, 0.1])
    y = rng.binomial(1, 1.0 / (1.0 + np.exp(-X @ beta)))
    return sm.Logit(y, pd.DataFrame(X, columns=NAMES)).fit(disp=0)


@pytest.fixture(scope="module")
def ols_results():
    rng = np.random.default_rng(8)
    n = 300
    X = np.column_stack([np.ones(n), rng.normal(size=(n, 3))])
    y = X @ np.array([0.5, 0.3, 0.3, 0.0]) + rng.normal(size=n)
    return sm.OLS(y, pd.DataFrame(X, columns=NAMES)).fit()


def as_estimates(results, df=None):
    return Estimates(results.params, results.cov_params(), df)


def test_parser_handles_formulaic_names_and_stata_spelling():
    names = ["Intercept", "np.log(employees)", "C(industry)[T.2]", "x", "x:z", "x2"]
    r, q = linear_restriction("2*np.log(employees) - _b[C(industry)[T.2]] = 1", names)
    assert r.tolist() == [0, 2, -1, 0, 0, 0] and q == 1.0
    r, q = linear_restriction("x - x2 + (x:z)/2", names)
    assert r.tolist() == [0, 0, 0, 1, 0.5, -1] and q == 0.0
    with pytest.raises(InputError, match="not linear"):
        linear_restriction("x * x2 = 0", names)
    with pytest.raises(InputError, match="unknown"):
        linear_restriction("xx = 0", names)


def _substituted_by_one_pattern(expression, names):
    """The names' placeholders as one regular expression of every name finds them (longest
    first, the parser's rule before it scanned for the names that occur): the reference."""
    order = sorted(range(len(names)), key=lambda i: -len(names[i]))
    escaped = {i: re.escape(names[i]) for i in order}
    stata = re.compile(
        r"_b\[\s*(?:" + "|".join(f"(?P<n{i}>{escaped[i]})" for i in order) + r")\s*\]"
    )
    edge = r"A-Za-z0-9_."
    bare = re.compile(
        "|".join(rf"(?<![{edge}])(?P<n{i}>{escaped[i]})(?![{edge}\[(])" for i in order)
    )

    def placeholder(match):
        return f"__coef_{int(match.lastgroup[1:])}__"

    text = stata.sub(placeholder, expression)
    if re.search(r"_b\[\s*([^\]]+?)\s*\]", text):
        return None  # an unknown _b[] name: the parser refuses it
    return bare.sub(placeholder, text)


def test_names_are_found_as_one_pattern_of_all_names_finds_them():
    """Random lists of names that are prefixes, suffixes and parts of one another (brackets,
    dots, colons, parentheses) and random expressions over them, with Stata's spelling, names
    run together and unknown names: the placeholders are those of the reference, and an
    unknown _b[] name is refused where the reference refuses it."""
    rng = np.random.default_rng(18)
    pieces = ["x", "x2", "a.b", "b", "C(s)[T.1]", "C(s)", "x:z", "z", "np.log(x)", "_x", "2"]
    glue = [" + ", "-", "*", " = ", "(", ")", "", " ", "[", "_b[", "]", ".", "__"]
    refused = found = 0
    for _ in range(3000):
        names = list(dict.fromkeys(rng.choice(pieces, size=rng.integers(1, 7)).tolist()))
        parts = []
        for _ in range(rng.integers(1, 8)):
            parts.append(str(rng.choice(glue)))
            parts.append(str(rng.choice(pieces + names)))
        expression = "".join(parts)
        expected = _substituted_by_one_pattern(expression, names)
        if expected is None:
            refused += 1
            with pytest.raises(InputError, match="unknown coefficient in _b"):
                _substitute_names(expression, names)
        else:
            found += expected != expression
            assert _substitute_names(expression, names) == expected, (expression, names)
    assert refused > 100 and found > 1000


def test_parser_follows_each_list_of_names_when_the_patterns_are_kept():
    """The name patterns are kept per list of names: the same names in another order, one more
    or one fewer name, each give the positions of their own list, and an unknown _b[] name
    still fails after its list's patterns were kept."""
    names = ["x", "x2", "C(industry)[T.2]", "x:z"]
    for order in (names, names[::-1], [*names, "np.log(x)"], names[1:]):
        r, q = linear_restriction("x2 - _b[C(industry)[T.2]] + 2*x:z = 3", order)
        expected = np.zeros(len(order))
        expected[order.index("x2")] = 1.0
        expected[order.index("C(industry)[T.2]")] = -1.0
        expected[order.index("x:z")] = 2.0
        assert r.tolist() == expected.tolist() and q == 3.0
    with pytest.raises(InputError, match="unknown coefficient"):
        linear_restriction("_b[x3] = 0", names)
    with pytest.raises(InputError, match="unknown coefficient"):
        linear_restriction("_b[x] = 0", names[1:])


def test_joint_wald_equals_statsmodels_chi2(logit_results):
    ours = wald_test(
        as_estimates(logit_results), "breadth_regional = breadth_international; np.log(employees)"
    )
    R = np.array([[0, 1, -1, 0], [0, 0, 0, 1]])
    theirs = logit_results.wald_test(R, use_f=False, scalar=True)
    assert ours.distribution == "chi2" and ours.df_numerator == 2
    assert ours.statistic == pytest.approx(float(theirs.statistic), rel=1e-10)
    assert ours.p_value == pytest.approx(float(theirs.pvalue), rel=1e-8)
    # the same test given as a matrix
    by_matrix = wald_test(as_estimates(logit_results), R)
    assert by_matrix.statistic == pytest.approx(ours.statistic, rel=1e-12)


def test_wald_detects_a_real_difference_and_not_a_false_one(logit_results):
    # breadth effects 0.1 vs 0.6 by construction: the difference is detected ...
    detected = wald_test(as_estimates(logit_results), "breadth_regional = breadth_international")
    assert detected.p_value < 0.01
    # ... while a true restriction (the international effect is 0.6) is not rejected
    true_value = wald_test(as_estimates(logit_results), "breadth_international = 0.6")
    assert true_value.p_value > 0.05


def test_f_test_under_t_reference_equals_statsmodels(ols_results):
    estimates = as_estimates(ols_results, df=ols_results.df_resid)
    ours = wald_test(estimates, ["breadth_regional", "np.log(employees)"])
    theirs = ols_results.f_test("breadth_regional = 0, np.log(employees) = 0")
    assert ours.distribution == "F" and ours.df_denominator == ols_results.df_resid
    assert ours.statistic == pytest.approx(float(theirs.fvalue), rel=1e-10)
    assert ours.p_value == pytest.approx(float(theirs.pvalue), rel=1e-8)
    assert "F(2, 296)" in str(ours)


def test_lincom_equals_statsmodels_t_test(ols_results, logit_results):
    estimates = as_estimates(ols_results, df=ols_results.df_resid)
    ours = lincom(estimates, "breadth_international - breadth_regional")
    theirs = ols_results.t_test("breadth_international - breadth_regional = 0")
    assert ours.estimate == pytest.approx(float(theirs.effect[0]), rel=1e-12)
    assert ours.se == pytest.approx(float(theirs.sd[0, 0]), rel=1e-12)
    assert ours.p_value == pytest.approx(float(theirs.pvalue), rel=1e-8)
    low, high = theirs.conf_int()[0]
    assert ours.ci == pytest.approx((low, high), rel=1e-10)
    assert "t" in ours.table.columns
    normal = lincom(as_estimates(logit_results), "2*breadth_international")
    assert "z" in normal.table.columns
    assert normal.se == pytest.approx(2 * logit_results.bse["breadth_international"], rel=1e-12)


def test_rank_deficient_joint_test_is_refused_with_reason():
    rng = np.random.default_rng(3)
    names = [f"x{i}" for i in range(6)]
    scores = rng.normal(size=(5, 6))  # five cluster score sums: rank at most 5 (4 after centring)
    scores -= scores.mean(axis=0)
    vcov = pd.DataFrame(scores.T @ scores, index=names, columns=names)
    estimates = Estimates(pd.Series(rng.normal(size=6), index=names), vcov)
    with pytest.raises(EstimationError, match="rank 4"):
        wald_test(estimates, names)
    assert wald_test(estimates, names[:4]).df_numerator == 4
    with pytest.raises(EstimationError, match="linearly dependent"):
        wald_test(estimates, ["x0 = x1", "x1 = x0"])


def test_nlcom_ratio_and_exp_against_analytic_delta_method(logit_results):
    b = logit_results.params
    V = logit_results.cov_params()
    result = nlcom(
        as_estimates(logit_results),
        {
            "ratio": "breadth_international / breadth_regional",
            "odds_ratio": "exp(breadth_international)",
            "function": lambda p: p["breadth_international"] ** 2,
        },
    )
    i, r = "breadth_international", "breadth_regional"
    gradient = np.array([-b[i] / b[r] ** 2, 1.0 / b[r]])
    block = V.loc[[r, i], [r, i]].to_numpy()
    assert result.table.loc["ratio", "estimate"] == pytest.approx(b[i] / b[r], rel=1e-12)
    assert result.table.loc["ratio", "se"] == pytest.approx(
        np.sqrt(gradient @ block @ gradient), rel=1e-7
    )
    assert result.table.loc["odds_ratio", "se"] == pytest.approx(
        np.exp(b[i]) * np.sqrt(V.loc[i, i]), rel=1e-7
    )
    assert result.table.loc["function", "se"] == pytest.approx(
        2 * abs(b[i]) * np.sqrt(V.loc[i, i]), rel=1e-7
    )
    # covariance between the ratio and the odds ratio, from the joint Jacobian
    jac_ratio = np.zeros(4)
    jac_ratio[[1, 2]] = [-b[i] / b[r] ** 2, 1.0 / b[r]]
    jac_odds = np.zeros(4)
    jac_odds[2] = np.exp(b[i])
    assert result.vcov.loc["ratio", "odds_ratio"] == pytest.approx(
        jac_ratio @ V.to_numpy() @ jac_odds, rel=1e-6
    )
    assert result.table.loc["ratio", "p"] == pytest.approx(
        2 * stats.norm.sf(abs(b[i] / b[r]) / result.table.loc["ratio", "se"]), rel=1e-10
    )


def test_nlcom_rejects_unsafe_expressions(logit_results):
    with pytest.raises(InputError):
        nlcom(as_estimates(logit_results), "__import__('os')")
    with pytest.raises(InputError):
        nlcom(as_estimates(logit_results), "breadth_regional.real")


# ---- on the core's fits ---------------------------------------------------------------------


def survey(seed: int, n: int = 600, n_regions: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = pd.DataFrame(
        {
            "breadth_regional": rng.poisson(1.5, n).astype(float),
            "breadth_international": rng.poisson(1.0, n).astype(float),
            "employees": np.exp(rng.normal(3.0, 1.0, n)),
            "foreign_share": rng.uniform(size=n),
            "exporter": rng.integers(0, 2, n).astype(float),
            "region": rng.integers(0, n_regions, n),
        }
    )
    index = -1.0 + 0.1 * data.breadth_regional + 0.6 * data.breadth_international
    index += 0.1 * np.log(data.employees)
    data["product"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-index))).astype(float)
    return data


FORMULA = "product ~ breadth_regional + breadth_international + log(employees) + foreign_share"


def test_tests_on_a_logit_fit_equal_statsmodels():
    from buzzpipe.estimate import fit

    data = survey(1)
    model = fit(FORMULA, data, family="logit")
    X = sm.add_constant(
        data[["breadth_regional", "breadth_international"]].assign(
            log_employees=np.log(data.employees), foreign_share=data.foreign_share
        )
    )
    results = sm.Logit(data["product"], X).fit(disp=0, tol=1e-12)
    ours = wald_test(model, "breadth_regional = breadth_international; log(employees)")
    R = np.zeros((2, 5))
    R[0, 1], R[0, 2], R[1, 3] = 1, -1, 1
    theirs = results.wald_test(R, use_f=False, scalar=True)
    assert ours.distribution == "chi2"
    assert ours.statistic == pytest.approx(float(theirs.statistic), rel=1e-7)
    combination = lincom(model, "breadth_international - breadth_regional")
    theirs = results.t_test(np.array([0, -1, 1, 0, 0]))
    assert combination.se == pytest.approx(float(theirs.sd[0, 0]), rel=1e-7)
    assert "z" in combination.table.columns


def test_tests_on_an_lpm_fit_use_f_and_t_with_stata_degrees_of_freedom():
    from buzzpipe.estimate import fit

    data = survey(2)
    model = fit(FORMULA, data, family="lpm", vcov="robust")
    X = sm.add_constant(
        data[["breadth_regional", "breadth_international"]].assign(
            log_employees=np.log(data.employees), foreign_share=data.foreign_share
        )
    )
    results = sm.OLS(data["product"], X).fit(cov_type="HC1", use_t=True)
    ours = wald_test(model, ["breadth_regional", "foreign_share"])
    theirs = results.f_test("breadth_regional = 0, foreign_share = 0")
    assert ours.distribution == "F" and ours.df_denominator == model.nobs - 5
    assert ours.statistic == pytest.approx(float(theirs.fvalue), rel=1e-7)
    assert ours.p_value == pytest.approx(float(theirs.pvalue), rel=1e-6)
    combination = lincom(model, "breadth_international - breadth_regional")
    assert combination.df == model.nobs - 5 and "t" in combination.table.columns


@pytest.mark.filterwarnings("ignore:only 5 clusters")
def test_five_clusters_support_at_most_four_joint_restrictions():
    from buzzpipe.estimate import fit

    data = survey(3, n_regions=5)
    formula = FORMULA + " + exporter"
    model = fit(formula, data, family="lpm", vcov={"cluster": "region"})
    slopes = [name for name in model.params.index if name != "Intercept"]
    assert len(slopes) == 5
    with pytest.raises(EstimationError, match="rank 4"):
        wald_test(model, slopes)
    four = wald_test(model, slopes[:4])
    assert four.df_denominator == 4.0
