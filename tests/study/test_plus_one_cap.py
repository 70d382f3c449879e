"""One definition of a +1 change (issue 16, item 5): a firm at the cap of six partner types at a
scale is held there, in the margins' +1 rows, the probability changes and the counterfactuals
alike; checked against statsmodels' re-prediction."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from buzzpipe.results import Inference
from buzzpipe.results.vocabulary import InferenceKind
from buzzpipe.study.counterfactuals import counterfactual
from buzzpipe.study.models import fit_model, marginal_effects
from buzzpipe.study.probability_changes import (
    BREADTH_CAP,
    apply_programme,
    average_change,
    plus_one,
)

ROBUST = Inference(InferenceKind.ROBUST)
FORMULA = "product ~ breadth_regional + breadth_national + breadth_international"


@pytest.fixture(scope="module")
def capped(synthetic_frame):
    """A survey where one firm in eight collaborates with every regional partner type."""
    frame = synthetic_frame("norway2010", 5)
    at_cap = np.arange(len(frame)) % 8 == 0
    frame.loc[at_cap, "breadth_regional"] = BREADTH_CAP
    return frame, at_cap


def _statsmodels_change(frame: pd.DataFrame, scale: str) -> float:
    data = frame[["product", "breadth_regional", "breadth_national", "breadth_international"]]
    fit = smf.logit(FORMULA, data.astype(float)).fit(disp=0, tol=1e-12)
    column = f"breadth_{scale}"
    changed = data.astype(float).copy()
    changed[column] = np.where(data[column] < BREADTH_CAP, data[column] + 1, data[column])
    return float(np.mean(fit.predict(changed)) - np.mean(fit.predict(data.astype(float))))


def test_the_cap_holds_firms_at_six_and_the_margins_agree(capped):
    frame, at_cap = capped
    changed = apply_programme(frame, "regional")
    assert (changed.loc[at_cap, "breadth_regional"] == BREADTH_CAP).all()
    below = frame["breadth_regional"] < BREADTH_CAP
    assert (
        changed.loc[below, "breadth_regional"] == frame.loc[below, "breadth_regional"] + 1
    ).all()
    fitted = fit_model(FORMULA, frame, "logit", "robust")
    expected = _statsmodels_change(frame, "regional")
    change = average_change(fitted, frame, "logit", plus_one("regional"))
    assert change.value == pytest.approx(expected, rel=1e-6)
    terms = ["breadth_regional", "breadth_international"]
    effects = marginal_effects(fitted, frame, terms, ROBUST)
    assert effects["breadth_regional: +1"].estimate == pytest.approx(expected, rel=1e-6)
    # the delta-method error of the margins' row equals the probability change's
    from buzzpipe.study.probability_changes import change_estimate

    assert effects["breadth_regional: +1"].std_error == pytest.approx(
        change_estimate(fitted, change, ROBUST).std_error, rel=1e-6
    )
    uncapped = frame.assign(breadth_regional=frame["breadth_regional"] + 1)
    plain = float(np.mean(fitted.predict(uncapped)) - np.mean(fitted.predict(frame)))
    assert abs(plain - expected) > 1e-4  # the cap matters here: the test can fail


def test_a_programme_reaching_every_firm_adds_the_plus_one_change_times_n(capped):
    """The counterfactual that treats every eligible firm adds, in expectation, N times the +1
    change of the same model: the same definition of one more kind of partner."""
    frame, _ = capped
    fitted = fit_model(FORMULA, frame, "logit", "robust")
    change = average_change(fitted, frame, "logit", plus_one("regional"))
    result = counterfactual(fitted, frame, "cluster", len(frame), bootstrap_replications=0)
    assert result.cell("all").extra_innovators == pytest.approx(change.value * len(frame), rel=1e-9)
