"""Scales compared on common support (issue 16, item 4), checked against statsmodels: the
categories model's coefficients, each step's average change by re-prediction, and the
delta-method errors of the steps and their differences from statsmodels' own design of the
changed data and its logistic density, under Stata's robust covariance (statsmodels' HC0 times
n/(n-1))."""

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels_design import float_columns, statsmodels_exog

from buzzpipe.results import Inference, StudyResults
from buzzpipe.results.vocabulary import InferenceKind
from buzzpipe.study.common_support import (
    categories_formula,
    category_column,
    compare_on_common_support,
    with_categories,
)
from buzzpipe.study.models import control_terms, fit_outcome_models

ROBUST = Inference(InferenceKind.ROBUST)
SCALES = ("regional", "national", "international")


@pytest.fixture(scope="module")
def compared(synthetic_frame):
    frame = synthetic_frame("norway2010", 5)
    sample, fits = fit_outcome_models(frame, "product")
    controls, _ = control_terms(sample)
    results = StudyResults()
    compare_on_common_support(
        results, "product", fits["controls"][1], sample, controls, "logit", "robust", ROBUST
    )
    return sample, controls, fits["controls"][1], results


def _statsmodels(formula: str, data: pd.DataFrame):
    fit = smf.logit(formula, data).fit(disp=0, cov_type="HC0", tol=1e-12, maxiter=200)
    n = fit.nobs
    return fit, fit.cov_params().to_numpy() * n / (n - 1)


def _step(fit, data: pd.DataFrame, scale: str, low: int, high: int, categories: bool):
    """(mean change, its gradient) of setting breadth at scale to high rather than low,
    by statsmodels' own prediction from changed data."""

    def at(value: int) -> pd.DataFrame:
        changed = data.copy()
        changed[f"breadth_{scale}"] = float(value)
        if categories:
            changed[category_column(scale)] = float(min(value, 3))
        return changed

    params = fit.params.to_numpy()
    x_high, x_low = statsmodels_exog(fit, at(high)), statsmodels_exog(fit, at(low))
    value = float(
        np.mean(fit.model.predict(params, x_high)) - np.mean(fit.model.predict(params, x_low))
    )
    # the gradient of the mean change, f(x'b) x averaged, with statsmodels' density and design
    gradient = (
        fit.model.pdf(x_high @ params) @ x_high - fit.model.pdf(x_low @ params) @ x_low
    ) / len(data)
    return value, gradient


@pytest.mark.parametrize("categories", [True, False])
def test_steps_and_their_differences_equal_statsmodels_re_prediction(compared, categories):
    sample, controls, _, results = compared
    data = float_columns(with_categories(sample, SCALES))
    for scale in SCALES:
        data[category_column(scale)] = data[category_column(scale)].astype(int)
    if categories:
        formula = categories_formula("product", SCALES, controls)
    else:
        formula = "product ~ " + " + ".join([f"breadth_{s}" for s in SCALES] + list(controls))
    fit, cov = _statsmodels(formula, data)
    prefix = "categories_" if categories else ""
    descriptions, tests = results.descriptions["product"], results.tests["product"]
    for step, low, high in (("first_partner", 0, 1), ("second_partner", 1, 2)):
        changes = {}
        for scale in SCALES:
            changes[scale] = _step(fit, data, scale, low, high, categories)
            value, gradient = changes[scale]
            record = descriptions[f"{prefix}{step}_{scale}"]
            assert record.estimate == pytest.approx(value, rel=1e-6, abs=1e-9)
            assert record.std_error == pytest.approx(math.sqrt(gradient @ cov @ gradient), rel=1e-4)
        for scale in ("regional", "national"):
            value = changes["international"][0] - changes[scale][0]
            gradient = changes["international"][1] - changes[scale][1]
            se = math.sqrt(gradient @ cov @ gradient)
            test = tests[f"{prefix}{step}_international_minus_{scale}"]
            assert test.estimate == pytest.approx(value, rel=1e-6, abs=1e-9)
            assert test.std_error == pytest.approx(se, rel=1e-4)
            assert test.p_value == pytest.approx(2 * stats.norm.sf(abs(value / se)), rel=1e-3)


def test_the_categories_model_equals_statsmodels(compared):
    sample, controls, _, results = compared
    data = float_columns(with_categories(sample, SCALES))
    for scale in SCALES:
        data[category_column(scale)] = data[category_column(scale)].astype(int)
    fit, cov = _statsmodels(categories_formula("product", SCALES, controls), data)
    model = results.models["product"]["breadth_categories"]
    for scale in SCALES:
        for level in (1, 2, 3):
            name = f"C({category_column(scale)})[T.{level}]"
            assert model.terms[name].estimate == pytest.approx(fit.params[name], rel=1e-6)
            index = list(fit.params.index).index(name)
            assert model.terms[name].std_error == pytest.approx(
                math.sqrt(cov[index, index]), rel=1e-5
            )


def test_standardised_effects_are_the_coefficient_times_the_standard_deviation(compared):
    sample, _, fitted, results = compared
    for scale in SCALES:
        term = f"breadth_{scale}"
        deviation = float(np.std(sample[term].to_numpy(dtype=float)))
        record = results.descriptions["product"][f"standardised_{scale}"]
        assert record.estimate == pytest.approx(fitted.params[term] * deviation, rel=1e-12)
        assert record.std_error == pytest.approx(fitted.bse[term] * deviation, rel=1e-12)


def test_a_concave_return_is_seen_by_the_categories_model_not_the_linear_one(synthetic_frame):
    """Built so that the first international kind of partner adds 1.0 to the log-odds and the
    others nothing: the categories model's first-partner step is far above its second, while
    the linear model's steps are almost equal (it cannot bend)."""
    frame = synthetic_frame("norway2010", 6)
    rng = np.random.default_rng(6)
    eta = -1.0 + 1.0 * (frame["breadth_international"] >= 1) + 0.1 * frame["breadth_regional"]
    frame["product"] = (rng.random(len(frame)) < 1 / (1 + np.exp(-eta))).astype(int)
    sample, fits = fit_outcome_models(frame, "product")
    controls, _ = control_terms(sample)
    results = StudyResults()
    compare_on_common_support(
        results, "product", fits["controls"][1], sample, controls, "logit", "robust", ROBUST
    )
    described = results.descriptions["product"]
    first, second = (
        described[f"categories_{s}_partner_international"].estimate for s in ("first", "second")
    )
    assert first > 0.15 and abs(second) < 0.06
    linear = [described[f"{s}_partner_international"].estimate for s in ("first", "second")]
    assert abs(linear[0] - linear[1]) < 0.03
    tests = results.tests["product"]
    assert tests["categories_first_partner_international_minus_regional"].p_value < 0.01


def test_the_parts_sharing_the_controls_fits_designs_record_what_each_alone_does(compared):
    """One ChangeDesigns of the controls fit shared by the pipelines-versus-buzz comparison and
    the common-support steps (as the battery shares it) records every number each part records
    with its own designs, and the steps edit no design the shared one already holds."""
    from buzzpipe.results.contract import encode
    from buzzpipe.study.pipelines_vs_buzz import compare_pipelines_and_buzz
    from buzzpipe.study.probability_changes import ChangeDesigns

    sample, controls, fitted, alone = compared
    shared = ChangeDesigns(fitted, sample)
    together = StudyResults()
    compare_pipelines_and_buzz(together, "product", fitted, sample, "logit", ROBUST, designs=shared)
    built = dict(shared._built)
    compare_on_common_support(
        together, "product", fitted, sample, controls, "logit", "robust", ROBUST, designs=shared
    )
    assert all(shared._built[key] is design for key, design in built.items())
    assert len(shared._built) == len(built) + 3 * 3  # breadth set to 0, 1, 2 at three scales
    separate = StudyResults()
    compare_pipelines_and_buzz(separate, "product", fitted, sample, "logit", ROBUST)
    compare_on_common_support(
        separate, "product", fitted, sample, controls, "logit", "robust", ROBUST
    )
    assert encode(together) == encode(separate)
    assert encode(alone)["tests"]["product"].items() <= encode(together)["tests"]["product"].items()


@pytest.mark.parametrize("dtype", ["Int8", "Int16", "UInt8", "Int64", "int64", "int8", "float64"])
@pytest.mark.parametrize("value", [0, 1, 2, 5])
def test_breadth_set_to_a_value_is_pandas_arithmetic(dtype, value):
    """The breadth a step sets, made without pandas' arithmetic, is ``observed * 0 + value``
    (and its category column that clipped at 3) as pandas computes it: dtype, missing values,
    index and name; other dtypes go through pandas itself."""
    from buzzpipe.study.common_support import TOP_CATEGORY, constant_like

    observed = pd.Series([3, 0, 1, 6, 2], dtype=dtype, index=[10, 4, 7, 2, 9], name="breadth_x")
    if dtype[0] in "IU":
        observed.iloc[1] = pd.NA
    if dtype == "float64":
        observed.iloc[[1, 3]] = [np.nan, np.inf]
    pd.testing.assert_series_equal(constant_like(observed, value), observed * 0 + value)
    pd.testing.assert_series_equal(
        constant_like(observed, min(value, TOP_CATEGORY)),
        (observed * 0 + value).clip(upper=TOP_CATEGORY),
    )
    boolean = pd.Series([True, False], name="flag")
    pd.testing.assert_series_equal(constant_like(boolean, value), boolean * 0 + value)
