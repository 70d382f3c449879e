"""Verdicts from the written rule table, on hand-made result sets."""

import math

import pytest
from scipy import stats

from buzzpipe.results import Estimate, Meta, ModelResult, Source, StudyResults
from buzzpipe.results.contract import encode
from buzzpipe.results.vocabulary import SourceKind
from buzzpipe.study.verdicts import (
    FOUND,
    NOT_ASSESSED,
    NOT_FOUND,
    OPPOSITE,
    VERDICT_RULES,
    VerdictRule,
    decide,
    decide_verdicts,
    decide_verdicts_by_outcome,
    one_sided_p_values,
    rule_table_markdown,
    verdict_rules,
    verdict_table,
)


def _z_estimate(value: float, se: float, alternative: str = "two-sided") -> Estimate:
    """An estimate with the p-value a normal z test gives for its alternative."""
    z = value / se
    p = {
        "two-sided": 2 * stats.norm.sf(abs(z)),
        "greater": stats.norm.sf(z),
        "less": stats.norm.cdf(z),
    }[alternative]
    return Estimate(value, se, p, "robust", statistic=z, alternative=alternative)


def _joint(p: float) -> Estimate:
    return Estimate(None, None, p, "robust", statistic=stats.chi2.isf(p, 4), df=4)


def _result_set(
    international,
    regional,
    national,
    difference,
    supermodularity,
    spillover,
    size,
    sector,
    outcome="product",
    results=None,
    probability_interaction=(0.004, 0.02),
):
    results = results or StudyResults(meta=Meta(title="this must never matter"))
    terms = {}
    for name, value in (
        ("breadth_international", international),
        ("breadth_regional", regional),
        ("breadth_national", national),
    ):
        if value is not None:
            terms[name] = _z_estimate(*value)
    results.add_model(
        ModelResult(outcome, "controls", "product ~ ...", "logit", "robust", 1604, terms)
    )
    if difference is not None:
        # pipelines versus buzz on common support: the first kind of partner at each scale
        results.add_test(
            outcome, "first_partner_international_minus_regional", _z_estimate(*difference)
        )
    results.add_test(outcome, "supermodularity", _z_estimate(*supermodularity, "greater"))
    results.add_test(
        outcome,
        "interaction_probability_regional_international",
        _z_estimate(*probability_interaction),
    )
    if spillover is not None:
        results.add_test(outcome, "spillover_exposure", _z_estimate(*spillover))
    results.add_test(outcome, "heterogeneity_region_size", _joint(size))  # no rule reads it
    results.add_test(outcome, "heterogeneity_sector", _joint(sector))
    return results


NORWAY_LIKE = dict(
    international=(0.23, 0.05),
    regional=(0.03, 0.05),
    national=(0.02, 0.05),
    difference=(0.20, 0.07),
    supermodularity=(-0.05, 0.20),
    spillover=(0.10, 0.30),
    size=0.40,
    sector=0.60,
)
BUZZ_LIKE = dict(
    international=(0.02, 0.05),
    regional=(0.25, 0.05),
    national=(0.01, 0.05),
    difference=(-0.23, 0.07),
    supermodularity=(0.05, 0.20),
    spillover=(0.9, 0.25),
    size=0.20,
    sector=0.001,
)


def test_norway_like_numbers_give_pipelines_without_buzz_complements_or_spillover():
    table = verdict_table(decide_verdicts(_result_set(**NORWAY_LIKE)))
    assert table == {
        "international_effect": FOUND,
        "regional_effect": NOT_FOUND,
        "national_effect": NOT_FOUND,
        "pipelines_stronger": FOUND,
        "complementarity": NOT_FOUND,
        "complementarity_probability": NOT_FOUND,
        "spillover": NOT_FOUND,
        "heterogeneity_sector": NOT_FOUND,
    }


def test_buzz_like_numbers_give_buzz_stronger_and_spillover():
    table = verdict_table(decide_verdicts(_result_set(**BUZZ_LIKE)))
    assert table["international_effect"] == NOT_FOUND
    assert table["regional_effect"] == FOUND
    assert table["pipelines_stronger"] == OPPOSITE
    assert table["spillover"] == FOUND
    assert table["heterogeneity_sector"] == FOUND


def test_complementarity_is_a_one_sided_test_at_five_percent_with_no_opposite():
    complements = _result_set(**{**NORWAY_LIKE, "supermodularity": (0.6, 0.2)})
    substitutes = _result_set(**{**NORWAY_LIKE, "supermodularity": (-0.6, 0.2)})
    assert verdict_table(decide_verdicts(complements))["complementarity"] == FOUND
    # the lower tail is not a verdict: calling it too made the rule a 10% test
    assert verdict_table(decide_verdicts(substitutes))["complementarity"] == NOT_FOUND
    # z = 1.8: one-sided p = 0.036 rejects, a two-sided test at 5% would not (the rule alone:
    # a family of one, so Holm leaves its p as it is)
    alone = [rule for rule in VERDICT_RULES if rule.finding == "complementarity"]
    borderline = _result_set(**{**NORWAY_LIKE, "supermodularity": (0.36, 0.2)})
    verdicts = {v.finding: v for v in decide_verdicts(borderline, rules=alone)}
    assert verdicts["complementarity"].verdict == FOUND
    assert "complements in the odds" in verdicts["complementarity"].statement
    assert "log-odds scale" in verdicts["complementarity"].rule
    # z = 1.6: one-sided p = 0.055 does not
    short = _result_set(**{**NORWAY_LIKE, "supermodularity": (0.32, 0.2)})
    assert verdict_table(decide_verdicts(short, rules=alone))["complementarity"] == NOT_FOUND
    # in the whole family (eight rules) the same p = 0.036 is adjusted by Holm and not enough
    family = {v.finding: v for v in decide_verdicts(borderline)}["complementarity"]
    assert family.verdict == NOT_FOUND
    assert family.p_value == pytest.approx(stats.norm.sf(1.8))
    assert family.p_adjusted > 0.05 and family.family_size == len(VERDICT_RULES)
    assert decide(_z_estimate(-5.0, 1.0, "greater"), "one_sided", 0.05) == NOT_FOUND


def test_complementarity_on_the_probability_scale_is_its_own_two_sided_row():
    results = _result_set(**NORWAY_LIKE)
    name = "interaction_probability_regional_international"
    del results.tests["product"][name]
    for value, expected in ((0.08, FOUND), (-0.08, OPPOSITE), (0.01, NOT_FOUND)):
        results.add_test("product", name, _z_estimate(value, 0.02, "two-sided"))
        verdicts = {v.finding: v for v in decide_verdicts(results)}
        assert verdicts["complementarity_probability"].verdict == expected
        assert verdicts["complementarity_probability"].quantity == f"tests/product/{name}"
        assert "probability scale" in verdicts["complementarity_probability"].rule
    # a survey without the regional scale reads the national one
    national = _result_set(**NORWAY_LIKE)
    del national.tests["product"]["interaction_probability_regional_international"]
    national.add_test(
        "product",
        "interaction_probability_national_international",
        _z_estimate(0.08, 0.02, "two-sided"),
    )
    verdicts = {v.finding: v for v in decide_verdicts(national)}
    assert verdicts["complementarity_probability"].verdict == FOUND
    assert verdicts["complementarity_probability"].quantity.endswith("national_international")
    scales = {rule.finding: rule.scale for rule in VERDICT_RULES}
    assert scales["complementarity"] == "log-odds"
    assert scales["complementarity_probability"] == "probability"
    assert "| probability |" in rule_table_markdown()


def test_verdicts_ignore_meta_and_survive_a_json_round_trip():
    results = _result_set(**NORWAY_LIKE)
    other = StudyResults.from_json(results.to_json())
    other.meta = Meta(title="buzz", source=Source(SourceKind.FILE, "buzz.csv"))
    assert [encode(v) for v in decide_verdicts(results)] == [
        encode(v) for v in decide_verdicts(other)
    ]


def test_missing_numbers_are_not_assessed_and_fallback_paths_are_used():
    no_regional = _result_set(**{**NORWAY_LIKE, "regional": None, "difference": None})
    no_regional.add_test(
        "product", "first_partner_international_minus_national", _z_estimate(0.21, 0.07)
    )
    no_regional.add_test("product", "international_minus_national", _z_estimate(-0.3, 0.07))
    no_regional.tests["product"].pop("spillover_exposure")
    verdicts = {v.finding: v for v in decide_verdicts(no_regional)}
    assert verdicts["regional_effect"].verdict == NOT_ASSESSED
    assert "Not assessed" in verdicts["regional_effect"].statement
    assert verdicts["pipelines_stronger"].verdict == FOUND
    assert (
        verdicts["pipelines_stronger"].quantity
        == "tests/product/first_partner_international_minus_national"
    )  # the coefficients' Wald test (here the opposite sign) is not what the verdict reads
    assert verdicts["spillover"].verdict == NOT_ASSESSED
    nan_p = Estimate(0.3, 0.1, math.nan, "robust")
    assert decide(nan_p, "two_sided", 0.05) == NOT_ASSESSED


def test_threshold_is_strict_and_direction_matters():
    at_threshold = Estimate(0.5, 0.1, 0.05, "robust")
    assert decide(at_threshold, "two_sided", 0.05) == NOT_FOUND
    assert decide(Estimate(0.5, 0.1, 0.0499, "robust"), "two_sided", 0.05) == FOUND
    assert decide(Estimate(-0.5, 0.1, 0.0499, "robust"), "two_sided", 0.05) == OPPOSITE
    assert decide(Estimate(None, None, 0.01, "robust", df=3), "joint", 0.05) == FOUND
    assert decide(Estimate(None, None, 0.2, "robust", df=3), "joint", 0.05) == NOT_FOUND


@pytest.mark.parametrize("z", [-2.5, -0.4, 0.0, 1.1, 3.0])
def test_one_sided_p_values_agree_with_the_normal_distribution(z):
    two_sided = Estimate(z, 1.0, 2 * stats.norm.sf(abs(z)), "robust")
    greater = Estimate(z, 1.0, stats.norm.sf(z), "robust", alternative="greater")
    for estimate in (two_sided, greater):
        p_greater, p_less = one_sided_p_values(estimate)
        assert p_greater == pytest.approx(stats.norm.sf(z), abs=1e-12)
        assert p_less == pytest.approx(stats.norm.cdf(z), abs=1e-12)


def test_a_one_sided_estimate_used_two_sided_doubles_its_smaller_tail():
    greater = _z_estimate(0.4, 0.2, "greater")  # z = 2, one-sided p = 0.0228
    assert decide(greater, "two_sided", 0.05) == FOUND
    assert decide(greater, "two_sided", 0.045) == NOT_FOUND  # two-sided p = 0.0455


def test_rule_table_is_complete_and_renders():
    findings = [rule.finding for rule in VERDICT_RULES]
    assert len(findings) == len(set(findings))
    for needed in ("international_effect", "regional_effect", "pipelines_stronger"):
        assert needed in findings
    for needed in ("complementarity", "spillover", "heterogeneity_sector"):
        assert needed in findings
    markdown = rule_table_markdown()
    assert markdown.count("\n") == len(VERDICT_RULES) + 1
    with pytest.raises(ValueError, match="decision"):
        VerdictRule("x", ("tests/a/b",), "sometimes", 0.05)
    with pytest.raises(ValueError, match="threshold"):
        VerdictRule("x", ("tests/a/b",), "joint", 5)


def test_readme_shows_the_rule_table_the_code_applies():
    from pathlib import Path

    readme = Path(__file__).resolve().parents[2] / "README.md"
    assert rule_table_markdown() in readme.read_text(encoding="utf-8")


def test_verdicts_per_outcome_apply_the_same_rules_to_each_outcome():
    results = _result_set(**NORWAY_LIKE)
    _result_set(**BUZZ_LIKE, outcome="process", results=results)
    by_outcome = decide_verdicts_by_outcome(results)
    assert set(by_outcome) == {"product", "process"}  # new_to_market was not estimated
    assert verdict_table(by_outcome["product"]) == verdict_table(decide_verdicts(results))
    process = {verdict.finding: verdict for verdict in by_outcome["process"]}
    assert process["regional_effect"].verdict == FOUND
    assert process["pipelines_stronger"].verdict == OPPOSITE
    assert process["spillover"].quantity == "tests/process/spillover_exposure"
    assert all(verdict.outcome == "process" for verdict in by_outcome["process"])
    results.verdicts_by_outcome = by_outcome
    back = StudyResults.from_json(results.to_json())
    assert {
        outcome: verdict_table(verdicts) for outcome, verdicts in back.verdicts_by_outcome.items()
    } == {outcome: verdict_table(verdicts) for outcome, verdicts in by_outcome.items()}


def _bootstrap(value: float, p: float, alternative: str = "two-sided") -> Estimate:
    """An estimate under the headline rule's inference (wild score bootstrap by region)."""
    inference = {
        "kind": "wild_score_bootstrap",
        "by": "region",
        "clusters": 5,
        "weights": "webb",
        "draws": 7776,
    }
    from buzzpipe.results import Inference

    return Estimate(value, None, p, Inference(**inference), alternative=alternative)


def test_verdicts_read_the_headline_rule_where_the_study_computed_it():
    """The breadth terms and supermodularity read the wild cluster score
    bootstrap by region when it is there (docs/few_clusters.md's rule), the firm-level robust
    p only when it is not; every verdict records the inference it read."""
    results = _result_set(**NORWAY_LIKE)
    controls = results.models["product"]["controls"]
    controls.sensitivity["wild_score_bootstrap"] = {
        "breadth_international": _bootstrap(0.23, 0.09),
        "breadth_regional": _bootstrap(0.03, 0.7),
    }
    results.add_test("product", "international_minus_regional_wild_bootstrap", _bootstrap(0.2, 0.3))
    results.add_test("product", "supermodularity_wild_bootstrap", _bootstrap(-0.05, 0.6, "greater"))
    verdicts = {v.finding: v for v in decide_verdicts(results)}
    international = verdicts["international_effect"]
    # firm-level robust p is 4e-6 (found); the rule's bootstrap p = 0.09 is not
    assert international.quantity.endswith("sensitivity/wild_score_bootstrap/breadth_international")
    assert international.inference.kind == "wild_score_bootstrap"
    assert international.p_value == 0.09 and international.verdict == NOT_FOUND
    # pipelines versus buzz reads the common-support difference (issue 16); without its region
    # bootstrap, the delta-method p: the coefficients' bootstrap stays in the tests table
    pipelines = verdicts["pipelines_stronger"]
    assert pipelines.quantity == "tests/product/first_partner_international_minus_regional"
    assert pipelines.inference.kind == "robust"
    assert verdicts["complementarity"].quantity.endswith("supermodularity_wild_bootstrap")
    # national has no bootstrap here: the firm-level term, named as such
    national = verdicts["national_effect"]
    assert national.quantity == "models/product/controls/breadth_national"
    assert national.inference.kind == "robust"
    assert encode(international)["inference"]["kind"] == "wild_score_bootstrap"


def test_holm_adjusts_each_family_and_the_verdict_reads_the_adjusted_p():
    from buzzpipe.estimate.multiple_testing import holm

    results = _result_set(**NORWAY_LIKE)
    _result_set(**BUZZ_LIKE, outcome="process", results=results)
    # the difference at z = 2.5 (p = 0.012): below 5% alone, not after Holm over the 16 verdicts
    weaker = {**NORWAY_LIKE, "difference": (0.20, 0.08)}
    _result_set(**weaker, outcome="new_to_market", results=results)
    primary = decide_verdicts(results)
    raw = [v.p_value for v in primary]
    assert [v.p_adjusted for v in primary] == pytest.approx(list(holm(raw)), rel=1e-12)
    assert {v.family for v in primary} == {"primary"}
    assert {v.family_size for v in primary} == {len(VERDICT_RULES)}
    by_outcome = decide_verdicts_by_outcome(results)
    assert verdict_table(by_outcome["product"]) == verdict_table(primary)
    others = by_outcome["process"] + by_outcome["new_to_market"]
    assert {v.family for v in others} == {"other_outcomes"}
    assert {v.family_size for v in others} == {2 * len(VERDICT_RULES)}
    other_raw = [v.p_value for v in others]
    assert [v.p_adjusted for v in others] == pytest.approx(list(holm(other_raw)), rel=1e-12)
    for verdict in primary + others:
        assert verdict.p_adjusted >= verdict.p_value
        if verdict.p_adjusted >= verdict.threshold:
            assert verdict.verdict == NOT_FOUND
    # a p below 5% alone but not after Holm: the verdict reads the adjusted p
    assert any(v.p_value < 0.05 <= v.p_adjusted for v in others)


def test_pipelines_versus_buzz_reads_the_region_bootstrap_of_the_first_partner_difference():
    """Decision 2 of the third closing note: the common-support difference under the headline
    rule (its restricted score bootstrap by region), the delta-method p only where the bootstrap
    was not run or the study file asks for firm-level or clustered inference."""
    results = _result_set(**NORWAY_LIKE)
    name = "first_partner_international_minus_regional"
    delta = results.tests["product"][name]
    results.add_test("product", name + "_wild_bootstrap", _bootstrap(delta.estimate, 0.157))
    pipelines = {v.finding: v for v in decide_verdicts(results)}["pipelines_stronger"]
    assert pipelines.quantity == f"tests/product/{name}_wild_bootstrap"
    assert pipelines.inference.kind == "wild_score_bootstrap"
    assert pipelines.p_value == 0.157 and pipelines.verdict == NOT_FOUND
    assert delta.p_value < 0.01  # the firm-level delta p finds it (after Holm, below)
    for inference in ("robust", "cluster"):
        rules = verdict_rules(inference)
        chosen = {v.finding: v for v in decide_verdicts(results, rules=rules)}
        assert chosen["pipelines_stronger"].quantity == f"tests/product/{name}"
        assert chosen["pipelines_stronger"].verdict == FOUND
    rule = {r.finding: r for r in VERDICT_RULES}["pipelines_stronger"]
    assert "wild cluster score bootstrap by region" in rule.inference
    assert "wild cluster score bootstrap by region" in rule_table_markdown()
