"""Margins against statsmodels' get_margeff on plain columns, and against an independent
hand computation (finite differences of the core's own predictions, numerical Jacobians in the
parameters) where formulas transform variables, for factors, at(), by() and ordered logit."""

import importlib
import subprocess

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from references import require_rscript
from scipy import stats

from buzzpipe.errors import InputError
from buzzpipe.estimate import fit
from buzzpipe.estimate.hypothesis_tests import wald_test
from buzzpipe.estimate.margins import margins

margins_module = importlib.import_module("buzzpipe.estimate.margins")


def firms(seed: int, n: int = 1500) -> pd.DataFrame:
    """Synthetic firms: breadth counts per scale, size, foreign share, industry, region."""
    rng = np.random.default_rng(seed)
    data = pd.DataFrame(
        {
            "breadth_regional": rng.poisson(1.2, n).astype(float),
            "breadth_international": rng.poisson(0.8, n).astype(float),
            "employees": np.exp(rng.normal(3.5, 1.0, n)),
            "foreign_share": rng.uniform(0, 1, n),
            "exporter": rng.integers(0, 2, n).astype(float),
            "industry": pd.Categorical(
                rng.choice(["manufacturing", "ict", "services"], n),
                categories=["manufacturing", "ict", "services"],
            ),
            "region": rng.integers(0, 12, n),
        }
    )
    index = (
        -1.2
        + 0.15 * data.breadth_regional
        + 0.45 * data.breadth_international
        + 0.2 * np.log(data.employees)
        + 0.5 * data.exporter
        + 0.6 * data.foreign_share * data.breadth_international
        + 0.4 * (data.industry == "ict")
    )
    data["product"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-index))).astype(float)
    latent = index + rng.logistic(size=n)
    data["product_novelty"] = np.digitize(latent, [-0.5, 1.0]).astype(float)
    data.index = pd.Index(np.arange(n) * 3 + 100, name="firm_id")  # ids are not positions
    return data


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return firms(11)


# ---- an independent hand computation --------------------------------------------------------


def averaging(model, frame: pd.DataFrame):
    """A function of the parameters: the mean predicted probability on ``frame`` (per category
    for ordered logit), by the core's own family code; the design is built once."""
    X = model.design_matrix(frame)
    weights = np.ones(len(frame)) if model.weights is None else frame[model.weights].to_numpy()

    def function(params: np.ndarray) -> np.ndarray:
        predicted = model.family_model.predict(params, X, None)
        return np.atleast_1d(np.average(predicted, axis=0, weights=weights))

    return function


def params_jacobian(function, params: np.ndarray, step: float = 1e-5) -> np.ndarray:
    columns = []
    for j in range(params.size):
        up, down = params.copy(), params.copy()
        up[j] += step
        down[j] -= step
        columns.append((function(up) - function(down)) / (2 * step))
    return np.column_stack(columns)


def hand_margin(model, function, step: float = 1e-4):
    """(estimate, delta-method covariance) of function(params) by numerical differentiation."""
    params = model.params.to_numpy()
    jacobian = params_jacobian(function, params, step)
    return function(params), jacobian @ model.vcov.to_numpy() @ jacobian.T


def derivative_function(model, sample: pd.DataFrame, variable: str, relative_h: float = 1e-4):
    h = relative_h * sample[variable].std()
    up = averaging(model, sample.assign(**{variable: sample[variable] + h}))
    down = averaging(model, sample.assign(**{variable: sample[variable] - h}))
    return lambda params: (up(params) - down(params)) / (2 * h)


def change_function(model, sample: pd.DataFrame, variable: str, new, old):
    def frame_with(value):
        values = value(sample[variable]) if callable(value) else value
        if isinstance(sample[variable].dtype, pd.CategoricalDtype):
            categories = sample[variable].cat.categories
            values = pd.Categorical(np.broadcast_to(values, len(sample)), categories=categories)
        return sample.assign(**{variable: values})

    changed, base = averaging(model, frame_with(new)), averaging(model, frame_with(old))
    return lambda params: changed(params) - base(params)


# ---- statsmodels on plain columns -----------------------------------------------------------

PLAIN = "product ~ breadth_regional + breadth_international + foreign_share + exporter"
PLAIN_COLUMNS = ["breadth_regional", "breadth_international", "foreign_share", "exporter"]


def statsmodels_fit(data: pd.DataFrame, family: str):
    X = sm.add_constant(data[PLAIN_COLUMNS])
    model = sm.Logit if family == "logit" else sm.Probit
    return model(data["product"], X).fit(disp=0, tol=1e-12, maxiter=100)


@pytest.mark.parametrize("family", ["logit", "probit"])
def test_ame_equals_statsmodels_get_margeff(data, family):
    model = fit(PLAIN, data, family=family)
    ours = margins(model, data, PLAIN_COLUMNS[:3])
    theirs = statsmodels_fit(data, family).get_margeff()
    np.testing.assert_allclose(ours.estimate.to_numpy(), theirs.margeff[:3], rtol=1e-6)
    np.testing.assert_allclose(ours.se.to_numpy(), theirs.margeff_se[:3], rtol=1e-6)
    np.testing.assert_allclose(ours["p"].to_numpy(), theirs.pvalues[:3], rtol=1e-5, atol=1e-12)
    assert list(ours["contrast"]) == ["dy/dx"] * 3


@pytest.mark.parametrize("family", ["logit", "probit"])
def test_effects_at_means_equal_get_margeff_at_mean(data, family):
    model = fit(PLAIN, data, family=family)
    ours = margins(model, data, PLAIN_COLUMNS, at_means=True)
    theirs = statsmodels_fit(data, family).get_margeff(at="mean")
    np.testing.assert_allclose(ours.estimate.to_numpy(), theirs.margeff, rtol=1e-6)
    np.testing.assert_allclose(ours.se.to_numpy(), theirs.margeff_se, rtol=1e-6)


def test_discrete_and_plus_one_changes_equal_statsmodels(data):
    """Dummy changes equal get_margeff(dummy=True). Its count=True is centred, (F(x+1) -
    F(x-1))/2, not Stata's +1 change, so the +1 change is checked against statsmodels'
    predictions at x+1 and x with a numerical Jacobian in its parameters."""
    model = fit(PLAIN, data, family="logit")
    results = statsmodels_fit(data, "logit")
    dummy = results.get_margeff(dummy=True)
    exporter = margins(model, data, "exporter", kind="discrete")
    assert exporter["contrast"].iloc[0] == "1 vs 0"
    assert exporter.estimate.iloc[0] == pytest.approx(dummy.margeff[3], rel=1e-6)
    assert exporter.se.iloc[0] == pytest.approx(dummy.margeff_se[3], rel=1e-6)
    plus_one = margins(model, data, ["breadth_regional", "breadth_international"], kind="plus_one")
    exog = results.model.exog
    for row, column in enumerate([1, 2]):
        shifted = exog.copy()
        shifted[:, column] += 1

        def change(params, shifted=shifted):
            predict = results.model.predict
            return np.atleast_1d(np.mean(predict(params, shifted) - predict(params, exog)))

        params = results.params.to_numpy()
        jacobian = params_jacobian(change, params)
        se = np.sqrt(jacobian @ results.cov_params().to_numpy() @ jacobian.T)[0, 0]
        assert plus_one.estimate.iloc[row] == pytest.approx(change(params)[0], rel=1e-6)
        assert plus_one.se.iloc[row] == pytest.approx(se, rel=1e-5)


@pytest.mark.filterwarnings("ignore:only 12 clusters")
def test_lpm_effects_are_coefficients_with_t_reference(data):
    model = fit(PLAIN, data, family="lpm", vcov={"cluster": "region"})
    ours = margins(model, data, PLAIN_COLUMNS[:2])
    np.testing.assert_allclose(ours.estimate.to_numpy(), model.params[PLAIN_COLUMNS[:2]], rtol=1e-9)
    np.testing.assert_allclose(ours.se.to_numpy(), model.bse[PLAIN_COLUMNS[:2]], rtol=1e-9)
    assert ours.df == 11.0 and "t" in ours.table.columns
    np.testing.assert_allclose(ours["p"].to_numpy(), model.pvalues[PLAIN_COLUMNS[:2]], rtol=1e-8)


# ---- transformed variables, factors, at(), by(), weights: against the hand computation -------

TRANSFORMED = (
    "product ~ breadth_regional + breadth_international + breadth_international:foreign_share"
    " + foreign_share + log(employees) + exporter + C(industry)"
)


@pytest.fixture(scope="module")
def transformed(data):
    return fit(TRANSFORMED, data, family="logit", vcov="robust")


@pytest.mark.parametrize("variable", ["employees", "breadth_international", "foreign_share"])
def test_derivatives_flow_through_log_and_interactions(data, transformed, variable):
    ours = margins(transformed, data, variable)
    function = derivative_function(transformed, data, variable)
    estimate, covariance = hand_margin(transformed, function)
    assert ours.estimate.iloc[0] == pytest.approx(estimate[0], rel=1e-6)
    assert ours.se.iloc[0] == pytest.approx(np.sqrt(covariance[0, 0]), rel=1e-5)


def test_design_column_derivative_would_differ(data, transformed):
    """The effect of employees is not the coefficient-of-log derivative (get_margeff's answer)."""
    ours = margins(transformed, data, "employees").estimate.iloc[0]
    X = transformed.design_matrix(data)
    p = transformed.predict(data).to_numpy()
    column_effect = np.mean(p * (1 - p)) * transformed.params["log(employees)"]
    assert abs(ours - column_effect) > 0.5 * abs(column_effect)
    assert X.shape[0] == len(data)


def test_factor_discrete_changes_from_lowest_level(data, transformed):
    ours = margins(transformed, data, "industry")
    assert list(ours["contrast"]) == ["ict vs manufacturing", "services vs manufacturing"]
    for row, level in enumerate(["ict", "services"]):
        function = change_function(transformed, data, "industry", level, "manufacturing")
        estimate, covariance = hand_margin(transformed, function)
        assert ours.estimate.iloc[row] == pytest.approx(estimate[0], rel=1e-8)
        assert ours.se.iloc[row] == pytest.approx(np.sqrt(covariance[0, 0]), rel=1e-5)


def test_predictions_at_values_and_plus_one_with_interactions(data, transformed):
    ours = margins(transformed, data, at={"breadth_international": [0, 2]})
    for row, value in enumerate([0, 2]):
        frame = data.copy()
        frame["breadth_international"] = float(value)
        estimate, covariance = hand_margin(transformed, averaging(transformed, frame))
        assert ours.estimate.iloc[row] == pytest.approx(estimate[0], rel=1e-10)
        assert ours.se.iloc[row] == pytest.approx(np.sqrt(covariance[0, 0]), rel=1e-6)
    assert list(ours["at"]) == ["breadth_international=0", "breadth_international=2"]
    plus_one = margins(transformed, data, "breadth_international", kind="plus_one")
    function = change_function(
        transformed, data, "breadth_international", lambda x: x + 1, lambda x: x
    )
    estimate, covariance = hand_margin(transformed, function)
    assert plus_one.estimate.iloc[0] == pytest.approx(estimate[0], rel=1e-8)
    assert plus_one.se.iloc[0] == pytest.approx(np.sqrt(covariance[0, 0]), rel=1e-5)


def test_effects_at_chosen_values_of_a_moderator(data, transformed):
    """dydx(breadth_international) at foreign_share 0 and 1 (the interaction at work)."""
    ours = margins(transformed, data, "breadth_international", at={"foreign_share": [0.0, 1.0]})
    for row, share in enumerate([0.0, 1.0]):
        frame = data.copy()
        frame["foreign_share"] = share
        function = derivative_function(transformed, frame, "breadth_international")
        estimate, covariance = hand_margin(transformed, function)
        assert ours.estimate.iloc[row] == pytest.approx(estimate[0], rel=1e-6)
        assert ours.se.iloc[row] == pytest.approx(np.sqrt(covariance[0, 0]), rel=1e-5)


def test_by_groups_and_their_contrasts(data, transformed):
    groups = pd.Series(np.where(data["region"] < 6, "north", "south"), index=data.index)
    frame = data.assign(part=groups)
    ours = margins(transformed, frame, "breadth_international", by="part")
    assert list(ours["group"]) == ["north", "south"]
    # nested finite differences: larger steps keep their rounding noise below 1e-6
    functions = [
        derivative_function(transformed, frame[frame.part == part], "breadth_international", 1e-3)
        for part in ["north", "south"]
    ]
    estimate, covariance = hand_margin(
        transformed, lambda params: np.concatenate([f(params) for f in functions]), step=1e-4
    )
    np.testing.assert_allclose(ours.estimate.to_numpy(), estimate, rtol=1e-6)
    np.testing.assert_allclose(ours.vcov.to_numpy(), covariance, rtol=1e-4)
    contrast = ours.group_contrasts()
    assert contrast.estimate.iloc[0] == pytest.approx(estimate[1] - estimate[0], rel=1e-6)
    _, difference_variance = hand_margin(
        transformed, lambda params: functions[1](params) - functions[0](params), step=1e-4
    )
    assert contrast.se.iloc[0] == pytest.approx(np.sqrt(difference_variance[0, 0]), rel=1e-5)
    # the same contrast as a Wald test on the posted margins (Stata: margins, post; test)
    test = wald_test(ours, f"{ours.table.index[0]} = {ours.table.index[1]}")
    assert test.statistic == pytest.approx((contrast.table["z"].iloc[0]) ** 2, rel=1e-9)


def test_weighted_margins_use_sampling_weights(data):
    frame = data.assign(weight=np.random.default_rng(5).uniform(0.5, 3.0, len(data)))
    model = fit(TRANSFORMED, frame, family="probit", vcov="robust", weights="weight")
    ours = margins(model, frame, "employees")
    estimate, covariance = hand_margin(model, derivative_function(model, frame, "employees"))
    assert ours.estimate.iloc[0] == pytest.approx(estimate[0], rel=1e-6)
    assert ours.se.iloc[0] == pytest.approx(np.sqrt(covariance[0, 0]), rel=1e-5)


def test_estimation_sample_is_used_when_rows_were_dropped(data, transformed):
    frame = data.copy()
    frame.loc[frame.index[:40], "foreign_share"] = np.nan
    model = fit(TRANSFORMED, frame, family="logit")
    assert model.nobs == len(data) - 40
    ours = margins(model, frame, "employees")
    sample = frame.loc[model.row_ids]
    estimate, _ = hand_margin(model, derivative_function(model, sample, "employees"))
    assert ours.estimate.iloc[0] == pytest.approx(estimate[0], rel=1e-6)


# ---- ordered logit --------------------------------------------------------------------------

ORDERED = "product_novelty ~ breadth_regional + breadth_international + log(employees)"


def test_ordered_logit_predictions_and_effects_per_category(data):
    model = fit(ORDERED, data, family="ologit")
    predictions = margins(model, data)
    assert list(predictions["outcome"]) == ["0", "1", "2"]
    assert predictions.estimate.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(
        predictions.estimate.to_numpy(), model.predict(data).mean().to_numpy(), rtol=1e-12
    )
    estimate, covariance = hand_margin(model, averaging(model, data))
    np.testing.assert_allclose(predictions.vcov.to_numpy(), covariance, rtol=1e-5, atol=1e-14)
    effects = margins(model, data, ["breadth_international", "employees"])
    for variable in ["breadth_international", "employees"]:
        rows = effects.table[effects["term"] == variable]
        assert rows["estimate"].sum() == pytest.approx(0.0, abs=1e-12)
        estimate, covariance = hand_margin(model, derivative_function(model, data, variable))
        # the middle category's effect nearly cancels: tolerance relative to the largest
        scale = np.abs(estimate).max()
        np.testing.assert_allclose(rows["estimate"].to_numpy(), estimate, atol=1e-6 * scale)
        np.testing.assert_allclose(
            rows["se"].to_numpy(), np.sqrt(np.diag(covariance)), rtol=1e-5, atol=1e-5 * scale
        )
    # a +1 change in ordered logit: per-category differences
    plus_one = margins(model, data, "breadth_international", kind="plus_one")
    function = change_function(model, data, "breadth_international", lambda x: x + 1, lambda x: x)
    estimate, covariance = hand_margin(model, function)
    np.testing.assert_allclose(plus_one.estimate.to_numpy(), estimate, rtol=1e-8)
    np.testing.assert_allclose(plus_one.se.to_numpy(), np.sqrt(np.diag(covariance)), rtol=1e-5)


# ---- refusals -------------------------------------------------------------------------------


def test_bad_requests_are_refused_with_a_clear_line(data, transformed):
    with pytest.raises(InputError, match="not a variable on the right-hand side"):
        margins(transformed, data, "region")
    with pytest.raises(InputError, match=r"\+1 change needs a numeric"):
        margins(transformed, data, "industry", kind="plus_one")
    with pytest.raises(InputError, match="needs a continuous variable"):
        margins(transformed, data, "industry", kind="eyex")
    with pytest.raises(InputError, match="unknown margins kind"):
        margins(transformed, data, "employees", kind="elasticity")
    with pytest.raises(InputError, match="level the factor does not have"):
        margins(transformed, data, at={"industry": "mining"})
    with pytest.raises(InputError, match="lacks 10 rows of the estimation sample"):
        margins(transformed, data.iloc[10:], "employees")


# ---- R (holdout-style computation), when Rscript is present --------------------------------

R_SCRIPT = r"""
d <- read.csv(commandArgs(TRUE)[1])
m <- glm(product ~ breadth_regional + breadth_international + foreign_share + exporter,
         family = binomial, data = d)
b <- coef(m); V <- vcov(m); X <- model.matrix(m)
ame <- function(b) mean(dlogis(X %*% b)) * b["breadth_international"]
plus <- function(b) { X1 <- X; X1[, "breadth_international"] <- X1[, "breadth_international"] + 1
  mean(plogis(X1 %*% b) - plogis(X %*% b)) }
jac <- function(f) sapply(seq_along(b), function(j) { h <- 1e-6; u <- b; l <- b
  u[j] <- u[j] + h; l[j] <- l[j] - h; (f(u) - f(l)) / (2 * h) })
for (f in list(ame, plus)) { J <- jac(f); cat(sprintf("%.12g %.12g\n", f(b), sqrt(J %*% V %*% J))) }
"""


def test_logit_ame_and_plus_one_equal_r(data, tmp_path):
    require_rscript()
    path = tmp_path / "firms.csv"
    data.to_csv(path, index=False)
    script = tmp_path / "margins.R"
    script.write_text(R_SCRIPT)
    output = subprocess.run(
        ["Rscript", str(script), str(path)], capture_output=True, text=True, check=True
    ).stdout.split()
    r_values = np.array(output, dtype=float).reshape(2, 2)
    model = fit(PLAIN, data, family="logit")
    ame = margins(model, data, "breadth_international")
    plus = margins(model, data, "breadth_international", kind="plus_one")
    assert ame.estimate.iloc[0] == pytest.approx(r_values[0, 0], rel=1e-6)
    assert ame.se.iloc[0] == pytest.approx(r_values[0, 1], rel=1e-5)
    assert plus.estimate.iloc[0] == pytest.approx(r_values[1, 0], rel=1e-6)
    assert plus.se.iloc[0] == pytest.approx(r_values[1, 1], rel=1e-5)


def test_normal_reference_for_maximum_likelihood(data):
    model = fit(PLAIN, data, family="logit")
    ours = margins(model, data, "breadth_international")
    z = ours.estimate.iloc[0] / ours.se.iloc[0]
    assert ours["z"].iloc[0] == pytest.approx(z)
    assert ours["ci_upper"].iloc[0] == pytest.approx(
        ours.estimate.iloc[0] + stats.norm.ppf(0.975) * ours.se.iloc[0]
    )


def test_effects_at_means_with_factor_shares_equal_get_margeff(data):
    """atmeans puts factor indicators at their sample shares, as statsmodels' at='mean' does
    with the same indicators given as plain columns."""
    model = fit("product ~ breadth_regional + foreign_share + C(industry)", data, family="probit")
    ours = margins(model, data, ["breadth_regional", "foreign_share"], at_means=True)
    X = sm.add_constant(
        data[["breadth_regional", "foreign_share"]].assign(
            ict=(data.industry == "ict").astype(float),
            services=(data.industry == "services").astype(float),
        )
    )
    theirs = sm.Probit(data["product"], X).fit(disp=0, tol=1e-12).get_margeff(at="mean")
    np.testing.assert_allclose(ours.estimate.to_numpy(), theirs.margeff[:2], rtol=1e-6)
    np.testing.assert_allclose(ours.se.to_numpy(), theirs.margeff_se[:2], rtol=1e-6)


def test_offsets_enter_the_predictions(data):
    frame = data.assign(exposure=np.log(np.random.default_rng(4).uniform(0.5, 2.0, len(data))))
    model = fit(PLAIN, frame, family="logit", offset="exposure")
    ours = margins(model, frame)
    assert ours.estimate.iloc[0] == pytest.approx(model.predict(frame).mean(), rel=1e-12)
    effect = margins(model, frame, "foreign_share")
    p = model.predict(frame).to_numpy()
    expected = np.mean(p * (1 - p)) * model.params["foreign_share"]
    assert effect.estimate.iloc[0] == pytest.approx(expected, rel=1e-7)


def test_effects_at_group_means_with_by(data, transformed):
    """atmeans with by(): numeric variables at their group's means, factor shares per group."""
    frame = data.assign(part=np.where(data["region"] < 4, "coast", "inland"))
    ours = margins(transformed, frame, "breadth_international", by="part", at_means=True)
    numeric = ["breadth_regional", "breadth_international", "foreign_share", "employees"]
    numeric.append("exporter")
    h = 1e-3
    for row, part in enumerate(["coast", "inland"]):
        group = frame[frame.part == part]
        at_means = group.assign(**{v: group[v].mean() for v in numeric})

        def mean_design(shift, at_means=at_means):
            shifted = at_means.assign(breadth_international=at_means.breadth_international + shift)
            return transformed.design_matrix(shifted).mean(axis=0, keepdims=True)

        up, down = mean_design(h), mean_design(-h)

        def effect(params, up=up, down=down):
            predict = transformed.family_model.predict
            return (predict(params, up, None) - predict(params, down, None)) / (2 * h)

        estimate, covariance = hand_margin(transformed, effect)
        assert ours.estimate.iloc[row] == pytest.approx(estimate[0], rel=1e-6)
        assert ours.se.iloc[row] == pytest.approx(np.sqrt(covariance[0, 0]), rel=1e-5)


def test_at_contrasts_give_the_predicted_change_between_scenarios(data, transformed):
    ours = margins(transformed, data, at={"breadth_international": [0, 2]}).at_contrasts()
    assert list(ours["at"]) == ["(breadth_international=2) - (breadth_international=0)"]
    change = change_function(transformed, data, "breadth_international", 2.0, 0.0)
    estimate, covariance = hand_margin(transformed, change)
    assert ours.estimate.iloc[0] == pytest.approx(estimate[0], rel=1e-9)
    assert ours.se.iloc[0] == pytest.approx(np.sqrt(covariance[0, 0]), rel=1e-6)
    with pytest.raises(InputError, match="several at="):
        margins(transformed, data).at_contrasts()


def test_derivatives_flow_through_factor_interactions_and_leave_data_untouched(data):
    formula = "product ~ breadth_regional * C(industry) + breadth_international + log(employees)"
    model = fit(formula, data, family="logit")
    before = data.copy(deep=True)
    ours = margins(model, data, ["breadth_regional", "industry"])
    pd.testing.assert_frame_equal(data, before)
    function = derivative_function(model, data, "breadth_regional")
    estimate, covariance = hand_margin(model, function)
    assert ours.estimate.iloc[0] == pytest.approx(estimate[0], rel=1e-6)
    assert ours.se.iloc[0] == pytest.approx(np.sqrt(covariance[0, 0]), rel=1e-5)
    # the factor's discrete change carries its interaction with breadth_regional
    change = change_function(model, data, "industry", "services", "manufacturing")
    estimate, covariance = hand_margin(model, change)
    row = ours.table[ours["contrast"] == "services vs manufacturing"].iloc[0]
    assert row["estimate"] == pytest.approx(estimate[0], rel=1e-8)
    assert row["se"] == pytest.approx(np.sqrt(covariance[0, 0]), rel=1e-6)


@pytest.mark.parametrize("kind", ["eydx", "eyex"])
def test_ordered_logit_elasticities_through_cut_points(data, kind):
    """d log P_k / dx per firm (times x for eyex), averaged: the cut points enter the error."""
    model = fit(ORDERED, data, family="ologit")
    ours = margins(model, data, "employees", kind=kind)
    x = data["employees"].to_numpy()
    h = 1e-4 * x.std()
    up = model.design_matrix(data.assign(employees=x + h))
    down = model.design_matrix(data.assign(employees=x - h))
    scale = x[:, None] if kind == "eyex" else 1.0

    def elasticity(params):
        predict = model.family_model.predict
        change = np.log(predict(params, up, None)) - np.log(predict(params, down, None))
        return np.mean(change / (2 * h) * scale, axis=0)

    estimate, covariance = hand_margin(model, elasticity)
    scale = np.abs(estimate).max()  # the middle category nearly cancels
    np.testing.assert_allclose(ours.estimate.to_numpy(), estimate, atol=1e-6 * scale)
    np.testing.assert_allclose(
        ours.se.to_numpy(), np.sqrt(np.diag(covariance)), rtol=1e-5, atol=1e-5 * scale
    )
    assert list(ours["contrast"]) == [kind[:2] + "/" + kind[2:]] * 3


@pytest.mark.parametrize("family", ["logit", "probit", "ologit"])
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"kind": "plus_one"},
        {"kind": "eyex"},
        {"at_means": True},
        {"by": "industry"},
        {"at": {"exporter": [0.0, 1.0]}},
    ],
)
def test_own_column_analytic_path_equals_the_perturbed_designs(data, family, options):
    """A variable that is its own design column is differentiated analytically; I(x + 0) is the
    same regressor through designs rebuilt from perturbed data: the margins agree."""
    outcome = "product_novelty" if family == "ologit" else "product"
    variable = "breadth_regional" if options.get("kind") == "plus_one" else "foreign_share"
    rest = "breadth_international + np.log(employees) + exporter + C(industry)"
    own_model = fit(f"{outcome} ~ {variable} + {rest}", data, family=family)
    other_model = fit(f"{outcome} ~ I({variable} + 0) + {rest}", data, family=family)
    own = margins(own_model, data, [variable], **options)
    other = margins(other_model, data, [variable], **options)
    np.testing.assert_allclose(own.estimate, other.estimate, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(own.se, other.se, rtol=1e-6, atol=1e-9)


def test_given_design_equals_the_rebuilt_one(data):
    model = fit("product ~ foreign_share + np.log(employees) + C(industry)", data, vcov="robust")
    rebuilt = margins(model, data, "*")
    given = margins(model, data, "*", design=model.design_matrix(data))
    pd.testing.assert_frame_equal(given.table, rebuilt.table)
    with pytest.raises(InputError, match="wrong shape"):
        margins(model, data, "*", design=np.zeros((3, 3)))


@pytest.mark.parametrize("family", ["logit", "ologit"])
@pytest.mark.parametrize(
    "terms",
    [
        "np.log(employees) + foreign_share + exporter + C(industry)",
        "np.log(employees) + np.sqrt(foreign_share) + foreign_share + C(industry)",
        "np.log(employees) + np.log(employees):foreign_share + C(industry)",  # rebuilt
    ],
)
@pytest.mark.parametrize("options", [{}, {"by": "exporter"}, {"at": {"exporter": [0.0, 1.0]}}])
def test_derivatives_from_the_given_design_equal_the_rebuilt_ones(
    data, family, terms, options, monkeypatch
):
    """The designs at x + h and x - h of a variable that enters only as itself or a log, exp
    or sqrt of it are the given design with those columns written anew: the same numbers as
    rebuilding the changed data through the formula, bit for bit."""
    outcome = "product_novelty" if family == "ologit" else "product"
    model = fit(f"{outcome} ~ {terms}", data, family=family, vcov="robust")
    chosen = ["employees", "foreign_share"]
    rebuilt = margins(model, data, chosen, **options)
    edited = []
    original = margins_module._edited_design

    def counted(*arguments):
        found = original(*arguments)
        edited.append(found is not None)
        return found

    monkeypatch.setattr(margins_module, "_edited_design", counted)
    given = margins(model, data, chosen, design=model.design_matrix(data), **options)
    pd.testing.assert_frame_equal(given.table, rebuilt.table, check_exact=True)
    # rebuilt: the interaction's designs, and those of frames at= changed (where the model
    # reads the variable it sets)
    changed_by_at = "at" in options and "exporter" in terms
    assert any(edited) == (":" not in terms and not changed_by_at)


@pytest.mark.parametrize("family", ["logit", "ologit"])
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"by": "exporter"},
        {"at": {"exporter": [0.0, 1.0]}},
        {"base": {"industry": "services", "region_name": "r7"}},
        {"levels": {"industry": ["ict", "services"]}},
    ],
)
def test_factor_contrasts_from_the_given_design_equal_the_rebuilt_ones(data, family, options):
    """Each level's columns of a factor's own term are read from the given design's rows at
    that level (a categorical and a text factor), and the base level's prediction is evaluated
    once per factor: the table is the rebuilt designs' bit for bit."""
    data = data.assign(region_name="r" + data.region.astype(str))
    outcome = "product_novelty" if family == "ologit" else "product"
    model = fit(
        f"{outcome} ~ foreign_share + np.log(employees) + C(industry) + C(region_name)",
        data,
        family=family,
        vcov="robust",
    )
    chosen = ["industry", "region_name"]
    rebuilt = margins(model, data, chosen, **options)
    given = margins(model, data, chosen, design=model.design_matrix(data), **options)
    pd.testing.assert_frame_equal(given.table, rebuilt.table, check_exact=True)
    assert len(rebuilt.table) >= (1 if "levels" in options else 13)


@pytest.mark.parametrize("family", ["logit", "ologit"])
@pytest.mark.parametrize(
    "options", [{}, {"at_means": True}, {"by": "exporter"}, {"at": {"exporter": [0.0, 1.0]}}]
)
def test_factor_levels_and_capped_changes_from_the_design_equal_rebuilt_designs(
    data, family, options, monkeypatch
):
    """A factor read by its own term alone (a categorical and a numeric one) changes level by
    that term's columns, and a capped +1 change of an own column by that column: the same
    numbers as designs rebuilt from data set to each level or shifted (the path before)."""
    import buzzpipe.estimate.margins as module

    outcome = "product_novelty" if family == "ologit" else "product"
    model = fit(
        f"{outcome} ~ breadth_regional + np.log(employees) + C(industry) + C(region)"
        " + foreign_share:exporter",
        data,
        family=family,
        vcov="robust",
    )
    variables = ["industry", "region"]
    fast = margins(model, data, variables, **options)
    capped = margins(model, data, ["breadth_regional"], kind="plus_one",
                     cap={"breadth_regional": 2}, **options)  # fmt: skip
    assert module._own_terms(model, module._ModelView(model, data), variables, variables)
    monkeypatch.setattr(module, "_own_terms", lambda *args: {})
    monkeypatch.setattr(module, "_own_columns", lambda *args: {})
    pd.testing.assert_frame_equal(
        fast.table, margins(model, data, variables, **options).table, rtol=1e-12, atol=1e-14
    )
    rebuilt = margins(model, data, ["breadth_regional"], kind="plus_one",
                      cap={"breadth_regional": 2}, **options)  # fmt: skip
    pd.testing.assert_frame_equal(capped.table, rebuilt.table, rtol=1e-12, atol=1e-14)


def test_a_factor_in_an_interaction_goes_through_rebuilt_designs(data):
    import buzzpipe.estimate.margins as module

    model = fit("product ~ foreign_share * C(industry) + C(region)", data)
    view = module._ModelView(model, data)
    variables = ["industry", "region"]
    assert module._own_terms(model, view, variables, ["foreign_share", *variables]) == {
        "region": [view.names.index(n) for n in model.x_names if n.startswith("C(region)")]
    }


@pytest.mark.parametrize("family", ["logit", "ologit"])
@pytest.mark.parametrize(
    "options",
    [
        {"variables": "*"},
        {"variables": ["breadth_international"], "kind": "plus_one", "cap": {"x": 2}},
        {"variables": "*", "by": "exporter"},
        {"variables": None, "at": {"exporter": [0.0, 1.0]}},
    ],
)
def test_margin_rows_are_the_table_rows(data, family, options):
    """``margin_rows`` (the study's rows, without the tables) gives each row of the margins
    table, its label and every column, the same numbers."""
    from buzzpipe.estimate.margins import margin_rows, table_rows

    model = fit(
        "product_novelty ~ breadth_international + np.log(employees) + C(industry) + exporter"
        if family == "ologit"
        else "product ~ breadth_international + np.log(employees) + C(industry) + exporter",
        data,
        family=family,
        vcov="robust",
    )
    options = dict(options)
    if "cap" in options:
        options["cap"] = {"breadth_international": 2}
    variables = options.pop("variables")
    table = margins(model, data, variables, **options).table
    rows = margin_rows(model, data, variables, **options)
    assert rows == table_rows(table)
    assert [label for label, _ in rows] == list(table.index)
    assert set(rows[0][1]) == set(table.columns)


@pytest.mark.parametrize("family", ["logit", "ologit"])
def test_plus_one_changes_share_the_observed_prediction(data, family, monkeypatch):
    """+1 changes of several own columns take the observed data's average prediction once
    (one prediction for it, one per shifted design) and give what each variable alone gives,
    and what the designs rebuilt through the formula give."""
    import buzzpipe.estimate.margins as module

    outcome = "product_novelty" if family == "ologit" else "product"
    model = fit(f"{outcome} ~ {PLAIN.split('~', 1)[1]}", data, family=family)
    variables = ["breadth_regional", "breadth_international", "foreign_share"]
    cap = {"breadth_regional": 2}
    calls = []
    original = module._prediction_terms
    monkeypatch.setattr(
        module, "_prediction_terms", lambda *args: calls.append(1) or original(*args)
    )
    together = margins(model, data, variables, kind="plus_one", cap=cap)
    assert len(calls) == 1 + len(variables)
    for variable in variables:
        alone = margins(model, data, variable, kind="plus_one", cap=cap)
        rows = together.table[together.table["term"] == variable]
        np.testing.assert_array_equal(rows.estimate.to_numpy(), alone.estimate.to_numpy())
        np.testing.assert_allclose(rows.se.to_numpy(), alone.se.to_numpy(), rtol=1e-14)
    monkeypatch.setattr(module, "_own_columns", lambda *args: {})
    rebuilt = margins(model, data, variables, kind="plus_one", cap=cap)
    pd.testing.assert_frame_equal(together.table, rebuilt.table, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("family", ["logit", "ologit"])
def test_margins_calls_inside_reading_share_one_preparation(data, family, monkeypatch):
    """Several margins calls on one fit and sample inside ``chunks.reading`` (the study's dy/dx,
    +1 and other regressors' calls) prepare the fit on the sample once and give the rows of
    separate calls, bit for bit; another fit, or another design, gets its own preparation."""
    import buzzpipe.estimate.margins as module
    from buzzpipe.estimate.chunks import reading
    from buzzpipe.estimate.margins import margin_rows

    outcome = "product_novelty" if family == "ologit" else "product"
    right = "breadth_international + np.log(employees) + C(industry) + exporter"
    model = fit(f"{outcome} ~ {right}", data, family=family, vcov="robust")
    other = fit(f"{outcome} ~ breadth_international + exporter", data, family=family)
    design = np.asarray(model.design_matrix(data), dtype=float)
    requests = [
        (["breadth_international"], {}),
        (["breadth_international"], {"kind": "plus_one", "cap": {"breadth_international": 2}}),
        (["employees", "exporter"], {}),
        (["industry"], {}),
    ]
    alone = [margin_rows(model, data, chosen, design=design, **o) for chosen, o in requests]
    made = []
    original = module._Prepared
    monkeypatch.setattr(module, "_Prepared", lambda *args: made.append(1) or original(*args))
    with reading(data):
        together = [margin_rows(model, data, chosen, design=design, **o) for chosen, o in requests]
        assert len(made) == 1
        other_rows = margin_rows(other, data, ["exporter"])
        rebuilt = margin_rows(model, data, ["industry"])  # no design: a preparation of its own
        assert len(made) == 3
    assert together == alone
    assert other_rows == margin_rows(other, data, ["exporter"])
    assert rebuilt == margin_rows(model, data, ["industry"])
