"""The whole battery on a CIS-style survey (no regional scale: "local" is the own country).

The survey is a Stata file in the harmonised CIS layout (co<partner type><location>), read
through the shipped CIS mapping, so the study sees exactly what a user's CIS file gives it.
"""

import numpy as np
import pandas as pd
import pyreadstat
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

from buzzpipe.cli import main
from buzzpipe.results import StudyResults
from buzzpipe.study.battery import run_study
from buzzpipe.study.counterfactuals import DEFAULT_CAP, programme_scale
from buzzpipe.study.verdicts import NOT_ASSESSED, verdict_table
from buzzpipe.survey import read_survey
from buzzpipe.survey.mapping import SHIPPED_MAPPINGS

CIS = SHIPPED_MAPPINGS["cis"]
PARTNER_CODES = range(1, 8)  # 1 group, 2 suppliers, ... 7 research institutes (the CIS grid)
ABROAD = (2, 3, 4, 5)
QUICK = dict(wild_bootstrap_draws=199, bootstrap_replications=20)


def cis_survey_frame(n: int, seed: int) -> pd.DataFrame:
    """A CIS-style raw file whose product innovation rises with international breadth only."""
    rng = np.random.default_rng(seed)
    employees = np.exp(rng.normal(4.0, 1.0, n)).round() + 10
    frame = pd.DataFrame(
        {
            "id": np.arange(1, n + 1),
            "nuts": rng.choice([11, 12, 13, 14], n),
            "nace": rng.choice([10, 25, 62, 72], n),
            "emp": employees,
            "foreign_share": rng.choice([0.0, 0.0, 0.0, 0.5, 1.0], n),
            "weight": rng.uniform(1, 10, n).round(3),
        }
    )
    openness = rng.normal(0.0, 1.0, n)
    home = np.zeros(n)
    abroad = np.zeros(n)
    for partner_type in PARTNER_CODES:
        at_home = rng.random(n) < 1 / (1 + np.exp(-(-1.0 + 0.5 * openness)))
        frame[f"co{partner_type}1"] = at_home.astype(int)
        foreign = rng.random(n) < 1 / (1 + np.exp(-(-2.0 + 0.5 * openness)))
        where = rng.choice(ABROAD, n)
        for location in ABROAD:
            frame[f"co{partner_type}{location}"] = (foreign & (where == location)).astype(int)
        if partner_type != 1:  # the own group does not count in breadth
            home += at_home
            abroad += foreign
    eta = -0.9 + 0.45 * abroad + 0.0 * home + 0.2 * np.log(employees / 50)
    product = rng.random(n) < 1 / (1 + np.exp(-eta))
    goods = product & (rng.random(n) < 0.7)
    frame["inpdgd"] = goods.astype(int)
    frame["inpdsv"] = (product & (~goods | (rng.random(n) < 0.3))).astype(int)
    process = rng.random(n) < 1 / (1 + np.exp(-(-0.5 + 0.2 * home)))
    logistics = process & (rng.random(n) < 0.5)
    frame["inpspd"] = (process & ~logistics).astype(int)
    frame["inpslg"] = logistics.astype(int)
    frame["inpssu"] = 0
    frame["newmkt"] = (product & (rng.random(n) < 0.4)).astype(int)
    return frame


@pytest.fixture(scope="module")
def cis_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cis") / "cis.dta"
    raw = cis_survey_frame(900, seed=5)
    labels = {"nuts": {11: "NO01", 12: "NO02", 13: "NO03", 14: "NO04"}}
    pyreadstat.write_dta(raw, path, variable_value_labels=labels)
    return path


@pytest.fixture(scope="module")
def cis_study(cis_file):
    survey = read_survey(cis_file, mapping=CIS)
    assert survey.local_scale == "national" and "regional" not in survey.scales
    return survey, run_study(survey, seed=3, **QUICK)


def test_every_part_of_the_battery_runs_on_a_survey_without_the_regional_scale(cis_study):
    survey, results = cis_study
    assert set(results.models) == {"product", "process", "new_to_market", "product_novelty"}
    controls = results.models["product"]["controls"]
    assert not any("regional" in term for term in controls.terms)
    assert set(controls.sensitivity) == {"cluster", "wild_score_bootstrap"}
    assert "breadth_national" in controls.sensitivity["wild_score_bootstrap"]
    assert {"by_region", "by_sector", "partner_types"} <= set(results.models["product"])
    tests = results.tests["product"]
    expected = {
        "international_minus_national",
        "supermodularity",
        "interaction_national_international",
        "spillover_exposure",
        "heterogeneity_sector",
        "partner_types_national",
        "partner_types_international",
        "international_minus_national_cluster_region",
        "international_minus_national_wild_bootstrap",
        "spillover_exposure_wild_bootstrap",
    }
    assert expected <= set(tests)
    assert not any("regional" in name for name in tests)
    assert tests["spillover_exposure"].inference.kind == "between_cells"
    clustered = tests["spillover_exposure_cell_clustered"].inference
    assert clustered.kind == "cluster" and clustered.by == "region_industry_cell"
    assert "equal_breadth_national" in results.tests["across_outcomes"]
    programmes = {
        (cf.programme, cf.targeting, cf.allocation): cf
        for cf in results.counterfactuals
        if cf.model == "controls"  # the primary model's (the interaction model's: sensitivity)
    }
    assert len(programmes) == 6  # every default scenario, the cluster ones included
    assert len(results.counterfactuals) == 12
    cluster = programmes[("cluster", "random", "total")]
    assert cluster.scale == "national" and programmes[("pipeline", "random", "total")].scale == (
        "international"
    )
    assert any(
        (note.kind, note.scale, note.wanted_scale) == ("scale_substituted", "national", "regional")
        for note in cluster.notes
    )
    assert cluster.cell("all").extra_innovators_interval is not None
    assert any("no regional scale" in note.text for note in results.meta.notes)
    assert not any("not computed" in note.text for note in results.meta.notes)
    verdicts = {v.finding: v for v in results.verdicts}
    assert verdicts["regional_effect"].verdict == NOT_ASSESSED
    # the common-support difference of the national scale (no regional scale), by the region
    # bootstrap (the headline rule)
    assert verdicts["pipelines_stronger"].quantity == (
        "tests/product/first_partner_international_minus_national_wild_bootstrap"
    )
    assessed = set(verdict_table(results.verdicts)) - {"regional_effect"}
    assert all(verdicts[finding].verdict != NOT_ASSESSED for finding in assessed)
    assert set(results.verdicts_by_outcome) == {"product", "process", "new_to_market"}
    assert verdict_table(results.verdicts_by_outcome["product"]) == verdict_table(results.verdicts)
    process = {v.finding: v for v in results.verdicts_by_outcome["process"]}
    assert process["pipelines_stronger"].quantity == (
        "tests/process/first_partner_international_minus_national_wild_bootstrap"
    )
    assert process["pipelines_stronger"].family == "other_outcomes"
    back = StudyResults.from_json(results.to_json())
    assert back.to_json() == results.to_json()


def test_the_cluster_programme_adds_a_national_partner_as_direct_re_prediction_says(cis_study):
    """The cluster programme's point figures against a statsmodels refit and a hand-made change
    (one more national partner type below the cap, random targeting's exact expectation with
    population weights)."""
    survey, results = cis_study
    cluster = next(
        cf
        for cf in results.counterfactuals
        if cf.programme == "cluster"
        and cf.targeting == "random"
        and cf.allocation == "total"
        and cf.model == "controls_with_interaction"  # the sensitivity column's model
    )
    frame = survey.analysis_frame()
    sample = frame.loc[frame[["product", "employees", "foreign_share"]].notna().all(axis=1)]
    formula = results.meta.counterfactual_sensitivity_model
    assert "breadth_national:breadth_international" in formula.replace(" * ", ":") or (
        "breadth_national * breadth_international" in formula
    )
    model = smf.glm(
        formula, sample, family=sm.families.Binomial(), var_weights=sample["weight"]
    ).fit()
    weights = sample["weight"].to_numpy()
    treated = sample.copy()
    eligible = (sample["breadth_national"] < DEFAULT_CAP).to_numpy()
    treated["breadth_national"] = sample["breadth_national"] + eligible
    baseline = model.predict(sample).to_numpy()
    changed = model.predict(treated).to_numpy()
    share = min(1.0, cluster.firms_treated / weights[eligible].sum())
    extra = (weights * eligible * share * (changed - baseline)).sum()
    assert cluster.cell("all").extra_innovators == pytest.approx(extra, rel=1e-6)
    assert cluster.cell("all").baseline_rate == pytest.approx(
        (weights * baseline).sum() / weights.sum(), rel=1e-7
    )


def test_programme_scale_follows_the_survey():
    regional = pd.DataFrame(columns=["breadth_regional", "breadth_international"])
    national = pd.DataFrame(columns=["breadth_national", "breadth_international"])
    assert programme_scale("cluster", regional) == "regional"
    assert programme_scale("cluster", national) == "national"
    assert programme_scale("pipeline", national) == "international"
    assert programme_scale("cluster") == "regional"


def test_analyze_command_runs_on_a_cis_file(cis_file, tmp_path, capsys):
    out = tmp_path / "report"
    code = main(
        ["analyze", str(cis_file), "--mapping", "cis", "--out", str(out)]
        + ["--replications", "30", "--wild-draws", "99", "--seed", "2"]
    )
    assert code == 0, capsys.readouterr().err
    assert (out / "report.html").exists()
    results = StudyResults.from_json((out / "results.json").read_text())
    assert {cf.scale for cf in results.counterfactuals} == {"national", "international"}
