"""The whole battery on synthetic surveys: structure, JSON, verdicts from files without names."""

import pandas as pd
import pytest

from buzzpipe.results import StudyResults
from buzzpipe.study.battery import run_study
from buzzpipe.study.verdicts import (
    FOUND,
    NOT_ASSESSED,
    VERDICT_RULES,
    decide_verdicts,
    verdict_table,
)
from buzzpipe.survey import Survey, read_edge_list
from buzzpipe.synth.generate import generate
from buzzpipe.synth.preset import load_preset

QUICK = dict(
    wild_bootstrap_draws=999,
    bootstrap_replications=30,
    scenarios=({"programme": "pipeline", "firms_treated": 100, "targeting": "random"},),
)


def synthetic_tables(preset: str, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(firms without collaboration columns, links, the survey's country) from a preset."""
    loaded = load_preset(preset)
    firms, links = generate(loaded, seed)
    firms = firms.drop(columns=[c for c in firms if c.startswith("collab_")])
    return firms, links, loaded["survey.country"]


@pytest.fixture(scope="module")
def tables():
    return synthetic_tables("norway2010", 21)


@pytest.fixture(scope="module")
def study(tables):
    firms, links, country = tables
    survey = Survey.from_frame(firms, links, home_country=country)
    return run_study(survey, outcomes=["product", "product_novelty"], seed=4, **QUICK)


def test_battery_fills_every_part_of_the_results(study):
    assert set(study.models) == {"product", "product_novelty"}
    models = set(study.models["product"])
    assert {"breadth", "controls", "controls_with_group", "by_sector"} <= models
    controls = study.models["product"]["controls"]
    assert set(controls.sensitivity) == {"cluster", "wild_score_bootstrap"}
    assert "breadth_international" in controls.sensitivity["wild_score_bootstrap"]
    assert study.models["product_novelty"]["controls"].family == "ologit"
    product_tests = study.tests["product"]
    for name in ("international_minus_regional", "supermodularity", "spillover_exposure"):
        assert name in product_tests
    assert "international_minus_regional" in study.tests["product_novelty"]
    for scale in ("regional", "national"):  # the difference's sensitivity columns
        clustered = product_tests[f"international_minus_{scale}_cluster_region"]
        wild = product_tests[f"international_minus_{scale}_wild_bootstrap"]
        primary = product_tests[f"international_minus_{scale}"]
        assert clustered.estimate == pytest.approx(primary.estimate, rel=1e-6)
        assert wild.estimate == pytest.approx(primary.estimate, rel=1e-6)
        assert clustered.inference.short() == "cluster(region)"
        assert wild.inference.kind == "wild_score_bootstrap" and wild.inference.by == "region"
    novelty_tests = study.tests["product_novelty"]
    assert "international_minus_regional_cluster_region" in novelty_tests
    assert "international_minus_regional_wild_bootstrap" not in novelty_tests  # binary only
    assert "supermodularity" not in study.tests.get("product_novelty", {})
    # the programme under the primary model (intervals) and, as a sensitivity column, under the
    # interaction model (point predictions)
    assert [c.model for c in study.counterfactuals] == ["controls", "controls_with_interaction"]
    assert study.counterfactuals[0].cell("all").extra_innovators_interval is not None
    assert study.meta.counterfactual_model == study.models["product"]["controls"].formula
    assert [v.finding for v in study.verdicts] == [rule.finding for rule in VERDICT_RULES]
    assert all(v.verdict != NOT_ASSESSED for v in study.verdicts)
    assert list(study.verdicts_by_outcome) == ["product"]  # the ordered ladder has none
    assert verdict_table(study.verdicts_by_outcome["product"]) == verdict_table(study.verdicts)
    assert study.meta.seed == 4 and "vce(robust)" in study.meta.inference_policy
    assert study.descriptives is None  # the orchestration describes the survey, once
    assert study.models["product"]["controls"].marginal_effects["breadth_international: +1"]
    nested = {study.models["product"][m].nobs for m in ("breadth", "controls")}
    assert nested == {study.meta.estimation_sample["product"]}


def test_results_round_trip_through_json_and_give_the_same_verdicts(study):
    text = study.to_json()
    back = StudyResults.from_json(text)
    assert back.to_json() == text
    assert verdict_table(decide_verdicts(back)) == verdict_table(study.verdicts)


def test_a_buzz_survey_read_from_files_without_a_preset_name_finds_buzz(tmp_path):
    firms, links, country = synthetic_tables("buzz", 8)
    firms_path, links_path = tmp_path / "firms.csv", tmp_path / "links.csv"
    firms.assign(country=country).to_csv(firms_path, index=False)
    links.to_csv(links_path, index=False)
    for path in (firms_path, links_path):
        assert "buzz" not in path.read_text().lower()
    options = dict(outcomes=["product"], seed=4, sensitivity=False, scenarios=())
    from_file = verdict_table(run_study(read_edge_list(firms_path, links_path), **options).verdicts)
    in_memory = Survey.from_frame(firms, links, home_country=country)
    assert from_file == verdict_table(run_study(in_memory, **options).verdicts)
    assert from_file["regional_effect"] == FOUND
    assert from_file["spillover"] == FOUND


def test_survey_without_regional_scale_compares_national_with_international(tables):
    firms, links, country = tables
    frame = Survey.from_frame(firms, links, home_country=country).analysis_frame()
    cis_like = frame.drop(
        columns=[c for c in frame if "regional" in c or "pipeline_exposure" in c] + ["regime"]
    )
    cis_like["regime"] = pd.Categorical(
        [
            ["none", "local_only", "global_only", "both"][int(n > 0) + 2 * int(i > 0)]
            for n, i in zip(cis_like.breadth_national, cis_like.breadth_international, strict=True)
        ],
        categories=["none", "local_only", "global_only", "both"],
    )
    results = run_study(
        cis_like, outcomes=["product"], sensitivity=False, scenarios=(), heterogeneity=False
    )
    verdicts = {v.finding: v for v in results.verdicts}
    assert verdicts["regional_effect"].verdict == NOT_ASSESSED
    assert verdicts["pipelines_stronger"].quantity == (
        "tests/product/first_partner_international_minus_national"
    )
    assert verdicts["complementarity"].verdict != NOT_ASSESSED
    assert "interaction_national_international" in results.tests["product"]
    assert any("no regional scale" in note.text for note in results.meta.notes)
    assert results.tests["product"]["spillover_exposure"].inference.kind == "between_cells"
    assert "spillover_exposure_cell_clustered" in results.tests["product"]


def test_sampling_weights_reach_the_models_and_make_population_totals(tables):
    import numpy as np
    import statsmodels.api as sm

    firms, links, country = tables
    frame = Survey.from_frame(firms, links, home_country=country).analysis_frame()
    frame["weight"] = np.random.default_rng(2).uniform(5.0, 40.0, len(frame))
    results = run_study(
        frame,
        outcomes=["product"],
        sensitivity=False,
        heterogeneity=False,
        bootstrap_replications=10,
        scenarios=({"programme": "cluster", "firms_treated": 2000, "targeting": "random"},),
    )
    controls = results.models["product"]["controls"]
    sample = frame.loc[frame[["product", "foreign_share", "openness"]].notna().all(axis=1)]
    design = pd.get_dummies(sample[["industry", "region"]], drop_first=True, dtype=float)
    columns = ["breadth_regional", "breadth_national", "breadth_international", "foreign_share"]
    x = pd.concat(
        [sample[columns].astype(float), np.log(sample["employees"]), sample["openness"], design],
        axis=1,
    )
    reference = sm.GLM(
        sample["product"].astype(float),
        sm.add_constant(x),
        family=sm.families.Binomial(),
        freq_weights=sample["weight"],
    ).fit(tol=1e-12)
    assert controls.terms["breadth_international"].estimate == pytest.approx(
        reference.params["breadth_international"], rel=1e-6
    )
    scenario = results.counterfactuals[0]
    assert scenario.weighted
    assert scenario.cell("all").firms == pytest.approx(sample["weight"].sum(), rel=1e-12)
