"""The battery's main models: shared samples, Stata's robust errors and eform, via statsmodels."""

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from buzzpipe.results import Estimate, Interval, Term
from buzzpipe.study.models import (
    NESTED_MODELS,
    control_terms,
    estimation_sample,
    fit_outcome_models,
    is_nested,
    main_specifications,
    model_result,
    odds_ratios,
)


@pytest.fixture(scope="module")
def frame(synthetic_frame) -> pd.DataFrame:
    data = synthetic_frame("norway2010", 11)
    # a few unknown answers so that listwise deletion matters
    data.loc[[3, 50, 700], "foreign_share"] = np.nan
    data.loc[[9, 80], "breadth_international_with_group"] = pd.NA
    return data


@pytest.fixture(scope="module")
def product_models(frame):
    return fit_outcome_models(frame, "product")


def test_nested_models_share_one_sample_complete_on_all_their_variables(frame, product_models):
    sample, fits = product_models
    assert len(sample) == len(frame) - 5
    for name in (*NESTED_MODELS, "regional_alone", "national_alone", "international_alone"):
        assert fits[name][1].nobs == len(sample)
    assert set(sample.index).isdisjoint({3, 50, 700, 9, 80})
    assert fits["breadth"][0].formula == (
        "product ~ breadth_regional + breadth_national + breadth_international"
    )
    assert "C(region)" in fits["controls"][0].formula
    assert "breadth_international_with_group" in fits["controls_with_group"][0].formula


@pytest.mark.parametrize("employees", ["Int64", "float64"])
def test_estimation_sample_is_the_frames_rows_complete_on_every_variable(frame, employees):
    """The rows kept are those pandas' own test keeps (every column not missing, employees
    positive), whatever the columns' types: nullable, categorical, float, a weight."""
    data = frame.copy()
    data["employees"] = data["employees"].astype(employees)
    data.loc[[5, 6], "employees"] = pd.NA if employees == "Int64" else np.nan
    data.loc[7, "employees"] = 0
    data.loc[[11, 12], "region"] = np.nan
    data["weight"] = 1.0
    data.loc[13, "weight"] = np.nan
    specifications = [s for s in main_specifications(data, "product") if is_nested(s.name)]
    columns = list(dict.fromkeys(v for spec in specifications for v in spec.variables))
    expected = data[[*columns, "weight"]].notna().all(axis=1) & (data["employees"] > 0)
    kept = estimation_sample(data, specifications)
    assert list(kept.index) == list(data.index[expected.to_numpy(dtype=bool)])
    assert set(kept.index).isdisjoint({3, 5, 6, 7, 9, 11, 12, 13, 50, 80, 700})
    pd.testing.assert_frame_equal(kept, data.loc[expected.to_numpy(dtype=bool)])
    every = data.dropna(subset=[*columns, "weight"])
    every = every[every["employees"] > 0]
    assert estimation_sample(every, specifications).index.equals(every.index)


def test_controls_model_matches_statsmodels_with_statas_robust_factor(product_models):
    sample, fits = product_models
    specification, fitted = fits["controls"]
    data = sample.copy()
    for column in data.columns:
        if pd.api.types.is_integer_dtype(data[column].dtype):
            data[column] = data[column].astype(float)
    reference = smf.logit(specification.formula, data).fit(disp=0, cov_type="HC0", tol=1e-12)
    n = reference.nobs
    for name in reference.params.index:
        assert fitted.params[name] == pytest.approx(reference.params[name], rel=1e-6, abs=1e-8)
        assert fitted.bse[name] == pytest.approx(
            reference.bse[name] * math.sqrt(n / (n - 1)), rel=1e-5
        )
    result = model_result(specification, fitted, "robust")
    assert result.nobs == n
    assert result.log_likelihood == pytest.approx(reference.llf, rel=1e-9)
    term = result.terms["breadth_international"]
    assert term.interval.low == pytest.approx(term.estimate - 1.959964 * term.std_error, rel=1e-6)
    ratio = result.odds_ratios["breadth_international"]
    assert ratio.estimate == pytest.approx(math.exp(term.estimate))
    assert ratio.std_error == pytest.approx(math.exp(term.estimate) * term.std_error)
    assert ratio.interval.high == pytest.approx(math.exp(term.interval.high))
    assert "Intercept" not in result.odds_ratios


def test_ordered_novelty_model_uses_ologit_and_keeps_cut_points_out_of_odds_ratios(frame):
    specifications = main_specifications(frame, "product_novelty")
    assert {spec.family for spec in specifications} == {"ologit"}
    sample = estimation_sample(frame, [s for s in specifications if is_nested(s.name)])
    _, fits = fit_outcome_models(frame, "product_novelty")
    result = model_result(fits["controls"][0], fits["controls"][1], "robust")
    assert result.nobs == len(sample)
    assert any(name.startswith("cut") for name in result.terms)
    assert not any(name.startswith("cut") for name in result.odds_ratios)


def test_survey_without_regional_scale_and_optional_controls(frame):
    cis_like = frame.drop(
        columns=[c for c in frame if "regional" in c] + ["openness", "regime"], errors="ignore"
    )
    specifications = main_specifications(cis_like, "product")
    formulas = {spec.name: spec.formula for spec in specifications}
    assert formulas["breadth"] == "product ~ breadth_national + breadth_international"
    assert formulas["national_alone"] == "product ~ breadth_national"
    assert "regional_alone" not in formulas
    terms, columns = control_terms(cis_like)
    assert "openness" not in terms and "openness" in control_terms(frame)[0]
    assert columns[:4] == ["employees", "foreign_share", "industry", "region"]


def test_odds_ratios_follow_statas_eform_for_a_hand_made_term():
    term = Estimate(0.2, 0.05, 1e-4, "robust", interval=Interval.bounded(0.1, 0.3))
    kinds = {"x": Term("continuous", "x"), "Intercept": Term("intercept"), "cut1": Term("cut")}
    ratio = odds_ratios({"x": term, "Intercept": term, "cut1": term}, kinds)
    assert list(ratio) == ["x"]
    assert ratio["x"].estimate == pytest.approx(math.exp(0.2))
    assert ratio["x"].interval.low == pytest.approx(math.exp(0.1))
