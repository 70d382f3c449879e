"""Calibration by simulated moments: the moments read the same survey the data layer builds."""

import math

import numpy as np
import pytest

from buzzpipe.simulate.calibration import (
    TARGETS,
    Space,
    logit,
    objective,
    run_survey,
    simulated_moments,
    survey_moments,
)
from buzzpipe.simulate.network import Cities
from buzzpipe.simulate.parameters import ModelParameters
from buzzpipe.simulate.run import simulate
from buzzpipe.simulate.survey_output import survey_frame, to_survey

CITIES = {"Oslo": 150, "Bergen": 60, "Kristiansand": 20}
PARAMETERS = ModelParameters(world_size=60, innovation_threshold=0.01, pipeline_activity=0.1)


def test_moments_equal_those_of_the_survey_the_data_layer_builds():
    model, outcomes = run_survey(PARAMETERS, Cities.from_mapping(CITIES), 48, 3)
    moments = survey_moments(model, outcomes)
    frame = to_survey(survey_frame(simulate(PARAMETERS, CITIES, 48, 3))).analysis_frame()
    assert moments["regional_share"] == (frame["breadth_regional_with_group"] > 0).mean()
    assert moments["international_share"] == (frame["breadth_international_with_group"] > 0).mean()
    assert moments["product_share"] == frame["product"].mean()
    assert moments["new_to_market_share"] == frame["new_to_market"].mean()
    # the controls model's coefficients, as the study's estimator fits them
    from buzzpipe.study.models import fit_model

    fitted = fit_model(
        "product ~ breadth_regional + breadth_national + breadth_international"
        " + log(employees) + foreign_share + C(region)",
        frame,
    )
    for scale in ("regional", "national", "international"):
        assert abs(moments[f"log_or_{scale}"] - fitted.params[f"breadth_{scale}"]) < 1e-6


def test_newton_logit_matches_statsmodels():
    import statsmodels.api as sm

    rng = np.random.default_rng(0)
    x = np.column_stack([np.ones(500), rng.normal(size=(500, 2))])
    y = (rng.random(500) < 1 / (1 + np.exp(-(x @ [0.2, 0.8, -0.5])))).astype(float)
    beta, se = logit(y, x)
    theirs = sm.Logit(y, x).fit(disp=0)
    np.testing.assert_allclose(beta, theirs.params, atol=1e-8)
    np.testing.assert_allclose(se, theirs.bse, rtol=1e-6)


def test_objective_is_zero_at_the_targets_and_counts_sampling_errors():
    at_targets = {m.name: m.target for m in TARGETS}
    assert objective(at_targets) == 0
    one_off = dict(at_targets, product_share=TARGETS[2].target + 2 * TARGETS[2].se)
    assert objective(one_off) == pytest.approx(4.0)
    assert TARGETS[2].interval[0] < 0.476 < TARGETS[2].interval[1]
    assert math.isclose(TARGETS[2].se, math.sqrt(0.476 * 0.524 / 1604))


def test_space_round_trips_and_keeps_shares_in_the_unit_interval():
    space = Space(("regional_partners", "pipeline_share"))
    values = space.to_values(space.to_internal([0.8, 0.45]))
    assert values == pytest.approx({"regional_partners": 0.8, "pipeline_share": 0.45})
    assert 0 < space.to_values([50.0, -50.0])["pipeline_share"] < 1


def test_common_seeds_make_the_objective_a_function():
    seeds = [1, 2]
    first = simulated_moments(PARAMETERS, CITIES, 36, seeds)
    again = simulated_moments(PARAMETERS, CITIES, 36, seeds)
    assert first.equals(again)
