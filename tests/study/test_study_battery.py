"""The whole battery on synthetic surveys: structure, JSON, verdicts from files without names."""

import numpy as np
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


def test_the_pipelines_difference_carries_the_set_its_region_bootstrap_does_not_reject(
    study, tables
):
    """The first-partner difference the verdict reads (international minus regional) carries
    the 95% set of the test it reads, inverted: at each end the region bootstrap's own test of
    g(b) = c (``restriction_test``) has p above 5% just inside and at most 5% just outside, 0
    is in the set exactly when the verdict's p is above 5%, and the delta-method interval stays
    on the test without the suffix; the national difference (not read) has no set."""
    from buzzpipe.study.common_support import GLOBAL_SCALE, set_breadth
    from buzzpipe.study.probability_changes import change_difference
    from buzzpipe.study.sensitivity import memory_wild_bootstrap

    tests = study.tests["product"]
    name = "first_partner_international_minus_regional"
    bootstrap, delta = tests[name + "_wild_bootstrap"], tests[name]
    assert bootstrap.interval is not None and delta.interval is not None
    assert bootstrap.interval.segments != delta.interval.segments
    assert tests["first_partner_international_minus_national_wild_bootstrap"].interval is None
    (lower, upper) = bootstrap.interval.segments[0]
    assert lower < bootstrap.estimate < upper
    assert (lower < 0.0 < upper) == (bootstrap.p_value > 0.05)
    assert "its test of g(b) = c inverted" in bootstrap.note
    # the region bootstrap rebuilt as the study built it, its test at each end
    firms, links, country = tables
    captured = {}
    import buzzpipe.study.battery as battery

    original = battery.first_partner_bootstrap

    def capture(results, outcome, fitted, sample, family, **keywords):
        if outcome == "product":
            captured.update(fitted=fitted, sample=sample, family=family, **keywords)

    battery.first_partner_bootstrap = capture
    try:
        run_study(
            Survey.from_frame(firms, links, home_country=country),
            outcomes=["product"],
            seed=4,
            **{**QUICK, "scenarios": ()},
        )
    finally:
        battery.first_partner_bootstrap = original
    fitted, sample, family = captured["fitted"], captured["sample"], captured["family"]
    wild = memory_wild_bootstrap(
        fitted, sample, "product", family, captured["seed"], captured["draws"]
    )
    restriction = change_difference(
        fitted,
        sample,
        family,
        (set_breadth(GLOBAL_SCALE, 1), set_breadth(GLOBAL_SCALE, 0)),
        (set_breadth("regional", 1), set_breadth("regional", 0)),
    )
    assert wild.restriction_test(restriction).p_value == bootstrap.p_value
    gradient = restriction(wild.estimate)[1]
    step = 1e-7 * float((gradient @ wild._cluster_robust_vcov() @ gradient) ** 0.5)
    for inside, outside in ((lower + step, lower - step), (upper - step, upper + step)):
        assert wild.restriction_test(restriction, null_value=inside).p_value > 0.05
        assert wild.restriction_test(restriction, null_value=outside).p_value <= 0.05


def test_the_counterfactuals_take_complementaritys_interaction_fit_only_for_the_same_model():
    """The interaction model complementarity fitted is the counterfactuals' sensitivity model
    where it is a logit of the same terms on the whole sample (formulaic's parse, however the
    formula spells them), and its coefficients are those of fitting that formula afresh."""
    from buzzpipe.study.battery import _fits_formula, counterfactual_formula
    from buzzpipe.study.complementarity import assess_complementarity
    from buzzpipe.study.models import PRIMARY_INFERENCE, control_terms, fit_model, inference_of
    from buzzpipe.synth import synthesize

    frame = synthesize("norway2010", 4, firms=500).analysis_frame()
    controls, columns = control_terms(frame)
    sample = frame.dropna(subset=["product", *columns]).reset_index(drop=True)
    interaction = assess_complementarity(
        StudyResults(),
        "product",
        sample,
        controls,
        "logit",
        PRIMARY_INFERENCE,
        inference_of(PRIMARY_INFERENCE),
    )
    formula = counterfactual_formula("product", sample, controls)
    assert formula != interaction.formula  # spelt otherwise, the same terms
    assert _fits_formula(interaction, formula, sample)
    afresh = fit_model(formula, sample, "logit", PRIMARY_INFERENCE)
    assert list(afresh.x_names) == list(interaction.x_names)
    assert np.array_equal(afresh.params.to_numpy(), interaction.params.to_numpy())
    assert not _fits_formula(interaction, formula.replace(" + openness", ""), sample)
    assert not _fits_formula(interaction, formula.replace("product ~", "process ~"), sample)
    assert not _fits_formula(interaction, formula, sample.iloc[:-1])
    probit = fit_model(interaction.formula, sample, "probit", PRIMARY_INFERENCE)
    assert not _fits_formula(probit, formula, sample)


@pytest.mark.parametrize("firms, limit", [(400, 1), (300_000, None)])
def test_a_survey_sized_battery_runs_with_blas_pinned_once(monkeypatch, firms, limit):
    """Below fitting.PIN_THREADS_BELOW_ROWS firms the battery runs inside one
    kernel.blas_threads(1) (its fits' own pins then cost nothing); above, the threads are left
    to each kernel; the pin ends with the battery."""
    from buzzpipe.estimate import kernel
    from buzzpipe.study import battery

    class Stop(Exception):
        pass

    seen = []

    def first_models(*arguments, **keywords):
        seen.append(getattr(kernel._PINNED, "limit", None))
        raise Stop

    class Source:  # a survey of ``firms`` firms whose frame is a small one
        def __init__(self, frame):
            self.frame = frame

        def analysis_frame(self):
            return self.frame

        def __len__(self):
            return firms

    frame = pd.DataFrame({"product": [0, 1], "breadth_regional": [0, 1]})
    monkeypatch.setattr(battery, "fit_outcome_models", first_models)
    with pytest.raises(Stop):
        battery.run_study(Source(frame), outcomes=["product"])
    assert seen == [limit]
    assert getattr(kernel._PINNED, "limit", None) is None
