"""The whole battery on synthetic surveys: structure, JSON, verdicts from files without names."""

import pandas as pd
import pytest

from buzzpipe.study.battery import run_study
from buzzpipe.study.results import StudyResults
from buzzpipe.study.verdicts import NOT_ASSESSED, VERDICT_RULES, decide_verdicts, verdict_table
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
    assert set(controls.sensitivity) == {"cluster(region)", "wild score bootstrap"}
    assert "breadth_international" in controls.sensitivity["wild score bootstrap"]
    assert study.models["product_novelty"]["controls"].family == "ologit"
    product_tests = study.tests["product"]
    for name in ("international_minus_regional", "supermodularity", "spillover_exposure"):
        assert name in product_tests
    assert "international_minus_regional" in study.tests["product_novelty"]
    assert "supermodularity" not in study.tests.get("product_novelty", {})
    assert len(study.counterfactuals) == 1
    assert study.counterfactuals[0].cell("all").extra_innovators_interval is not None
    assert [v.finding for v in study.verdicts] == [rule.finding for rule in VERDICT_RULES]
    assert all(v.verdict != NOT_ASSESSED for v in study.verdicts)
    assert study.meta["seed"] == 4 and "vce(robust)" in study.meta["inference_policy"]
    nested = {study.models["product"][m].nobs for m in ("breadth", "controls")}
    assert nested == {study.meta["estimation_sample"]["product"]}


def test_results_round_trip_through_json_and_give_the_same_verdicts(study):
    text = study.to_json()
    back = StudyResults.from_json(text)
    assert back.to_json() == text
    assert verdict_table(decide_verdicts(back)) == verdict_table(study.verdicts)


def test_a_survey_read_from_files_without_a_preset_name_gets_the_same_verdicts(
    tables, study, tmp_path
):
    firms, links, country = tables
    firms_path, links_path = tmp_path / "firms.csv", tmp_path / "links.csv"
    firms.assign(country=country).to_csv(firms_path, index=False)
    links.to_csv(links_path, index=False)
    assert "norway" not in firms_path.read_text().lower()
    survey = read_edge_list(firms_path, links_path)
    from_file = run_study(survey, outcomes=["product"], seed=4, **{**QUICK, "scenarios": ()})
    assert verdict_table(from_file.verdicts) == verdict_table(study.verdicts)


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
    assert verdicts["pipelines_stronger"].quantity == "tests/product/international_minus_national"
    assert verdicts["complementarity"].verdict != NOT_ASSESSED
    assert "interaction_national_international" in results.tests["product"]
    assert any("no regional scale" in note for note in results.meta["notes"])
    assert results.tests["product"]["spillover_exposure"].inference == (
        "cluster(region_industry_cell)"
    )
