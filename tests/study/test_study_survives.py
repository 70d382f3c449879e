"""A study that survives a failing model: what cannot be estimated is a ``not_assessed`` note
(outcome, part, model or term, the cause in one word, the estimator's line), the rest goes on,
and nothing ends in an internal error."""

import pandas as pd
import pytest

from buzzpipe.errors import EstimationError
from buzzpipe.estimate import fitting
from buzzpipe.results import StudyResults
from buzzpipe.results.vocabulary import NotAssessedReason, StudyPart, VerdictState
from buzzpipe.study.battery import run_study
from buzzpipe.survey import Survey
from buzzpipe.synth import synthesize

QUICK = {"sensitivity": False, "heterogeneity": False, "scenarios": ()}


def _frame() -> pd.DataFrame:
    return synthesize("norway2010", 11, firms=500, edge_list=False).firms.copy()


def test_an_outcome_without_variation_is_skipped_and_the_others_go_on():
    frame = _frame().assign(product=0, new_to_market=0)
    results = run_study(Survey.from_frame(frame), **QUICK)
    (product,) = [r for r in results.meta.not_assessed() if r.outcome == "product"]
    assert (product.part, product.model) == (StudyPart.MODEL, "controls")
    assert product.cause == NotAssessedReason.NO_VARIATION
    assert product.reason.startswith("the controls logit model of 'product' cannot be estimated")
    assert "does not vary" in product.reason
    outcomes = set(results.models)
    assert "process" in outcomes and "product" not in outcomes
    assert {v.verdict for v in results.verdicts} == {"not_assessed"}
    assert {v.reason for v in results.verdicts} == {NotAssessedReason.NO_VARIATION}
    # the outcome is in the verdicts by outcome, not assessed with its reason, not missing
    assert {v.verdict for v in results.verdicts_by_outcome["product"]} == {"not_assessed"}
    assert set(results.verdicts_by_outcome) == {"product", "process", "new_to_market"}
    back = StudyResults.from_json(results.to_json())  # the records survive results.json
    assert back.meta.not_assessed() == results.meta.not_assessed()
    assert back.verdicts[0].reason == NotAssessedReason.NO_VARIATION


def test_a_term_dropped_for_collinearity_is_named_not_a_key_error():
    """An edge-list survey without a single link: pipeline exposure is constant, so the
    spill-over term is dropped; before, KeyError 'pipeline_share_leave_one_out' (exit 3)."""
    from buzzpipe.synth import generate
    from buzzpipe.synth.generate import edge_list_firms

    firms, links = generate("norway2010", 11, firms=500)
    firms = edge_list_firms(firms, "NO")
    empty = Survey.from_frame(firms, links.head(0))
    results = run_study(empty, **QUICK)
    spill = [
        r for r in results.meta.not_assessed() if r.outcome == "product" and r.part == "spillover"
    ]
    assert spill and spill[0].cause == NotAssessedReason.COLLINEARITY
    assert "dropped from the logit model of 'product'" in spill[0].reason
    assert "controls" in results.models["product"]
    (verdict,) = [v for v in results.verdicts if v.finding == "spillover"]
    assert verdict.verdict == VerdictState.NOT_ASSESSED
    assert verdict.reason == NotAssessedReason.COLLINEARITY


def test_a_breadth_term_the_controls_model_drops_is_recorded_with_its_verdict():
    frame = _frame()
    for column in [c for c in frame if c.startswith("collab_regional_")]:  # collinear answers
        frame[column.replace("_regional_", "_national_")] = frame[column]
    results = run_study(Survey.from_frame(frame), outcomes=["product"], **QUICK)
    dropped = [r for r in results.meta.not_assessed() if r.term == "breadth_national"]
    assert dropped and dropped[0].cause == NotAssessedReason.COLLINEARITY
    (national,) = [v for v in results.verdicts if v.finding == "national_effect"]
    assert national.verdict == VerdictState.NOT_ASSESSED
    assert national.reason == NotAssessedReason.COLLINEARITY
    assert "collinearity" in national.reason_detail


def _not_converging(monkeypatch, term: str) -> None:
    """Fits whose design holds ``term`` stop after one Newton step: a maximisation that did not
    converge where nothing separates the outcomes (the data overlap)."""
    run_newton = fitting._run_newton

    def one_step(family, design, X, start, tol, max_iter, initial=None):
        if term in design.names and X.shape[1] == len(design.names):
            max_iter = 1
        return run_newton(family, design, X, start, tol, max_iter, initial)

    monkeypatch.setattr(fitting, "_run_newton", one_step)


def test_a_model_that_does_not_converge_is_skipped_with_its_own_reason(monkeypatch):
    """Not separation, not a crash, not the numbers where the maximisation stopped."""
    _not_converging(monkeypatch, "collab_international_universities")
    results = run_study(Survey.from_frame(_frame()), outcomes=["product"], **QUICK)
    (record,) = results.meta.not_assessed()
    assert (record.part, record.model) == (StudyPart.MODEL, "partner_types")
    assert record.cause == NotAssessedReason.NON_CONVERGENCE
    assert "did not converge" in record.reason and "separation:" not in record.reason
    assert "partner_types" not in results.models["product"]
    assert "controls" in results.models["product"]


def test_a_counterfactual_model_that_does_not_converge_leaves_the_study_standing(monkeypatch):
    """Before, the programmes' model was fitted unguarded: its EstimationError stopped the
    whole study (no results, no report)."""
    _not_converging(monkeypatch, "breadth_regional:breadth_international")
    scenarios = ({"programme": "pipeline", "firms_treated": 10},)
    results = run_study(
        Survey.from_frame(_frame()),
        outcomes=["product"],
        sensitivity=False,
        heterogeneity=False,
        scenarios=scenarios,
        bootstrap_replications=0,
    )
    (record,) = [r for r in results.meta.not_assessed() if r.part == StudyPart.COUNTERFACTUALS]
    assert record.cause == NotAssessedReason.NON_CONVERGENCE
    assert record.reason.startswith("the counterfactual model product ~ breadth_regional *")
    # the interaction model is the sensitivity column (issue 16): its programmes are not
    # assessed, the primary (controls) model's programme stands
    assert [programme.model for programme in results.counterfactuals] == ["controls"]
    assert "controls" in results.models["product"]


def test_separation_keeps_its_own_reason():
    frame = _frame()
    # firm size alone splits the outcomes: complete separation on log employees
    frame["process"] = (frame["employees"] > frame["employees"].median()).astype(int)
    results = run_study(Survey.from_frame(frame), outcomes=["product", "process"], **QUICK)
    (record,) = [r for r in results.meta.not_assessed() if r.outcome == "process"]
    assert record.cause == NotAssessedReason.SEPARATION
    assert "predicts data perfectly" in record.reason


def test_firms_left_out_of_the_sample_get_a_note_with_the_reason():
    frame = _frame()
    frame.loc[frame.index[:7], "openness"] = None
    frame.loc[frame.index[5:9], "product"] = None
    results = run_study(Survey.from_frame(frame), outcomes=["product"], **QUICK)
    assert (
        "product: 9 of 500 firms left out of the estimation sample: product missing (4), "
        "openness missing (7)" in [note.text for note in results.meta.notes]
    )


def test_a_programme_larger_than_the_eligible_firms_is_noted():
    frame = _frame()
    scenarios = ({"programme": "pipeline", "firms_treated": 100_000, "targeting": "random",
                  "allocation": "total"},)  # fmt: skip
    results = run_study(
        Survey.from_frame(frame),
        outcomes=["product"],
        sensitivity=False,
        heterogeneity=False,
        scenarios=scenarios,
        bootstrap_replications=5,
    )
    # the programme under the primary model and under the interaction model (sensitivity)
    assert [programme.model for programme in results.counterfactuals] == [
        "controls",
        "controls_with_interaction",
    ]
    for programme in results.counterfactuals:
        (note,) = [note for note in programme.notes if note.kind == "all_eligible_treated"]
        assert note.firms_treated == 100_000 and note.eligible < 500 and note.regions is None


def test_a_study_with_no_estimable_outcome_is_one_line_naming_each():
    frame = _frame().assign(product=0, process=0, new_to_market=0)
    with pytest.raises(
        EstimationError, match="no model of any outcome could be estimated: product"
    ):
        run_study(Survey.from_frame(frame), **QUICK)


def test_one_industry_leaves_the_sector_differences_not_assessed_with_the_reason():
    """Before, the by-sector model was skipped without a word and its verdict was not assessed
    with nothing to say why (a simulated economy has one industry)."""
    frame = _frame().assign(industry="manufacturing")
    results = run_study(
        Survey.from_frame(frame), outcomes=["product"], sensitivity=False, scenarios=()
    )
    (record,) = [r for r in results.meta.not_assessed() if r.part == StudyPart.HETEROGENEITY]
    assert record.model == "by_sector" and record.cause == NotAssessedReason.NO_VARIATION
    verdicts = {v.finding: v for v in results.verdicts}
    assert verdicts["heterogeneity_sector"].reason == NotAssessedReason.NO_VARIATION
    assert "by_region" in results.models["product"]  # the regional slopes go on


def test_a_heterogeneity_model_that_cannot_be_estimated_is_named(monkeypatch):
    """The regional-slopes model stops without converging: its note names the part and the
    model (``by_region``), the report's list says which model, and the sector model goes on."""
    run_newton = fitting._run_newton

    def one_step(family, design, X, start, tol, max_iter, initial=None):
        if any(":C(region)" in name for name in design.names):
            max_iter = 1
        return run_newton(family, design, X, start, tol, max_iter, initial)

    monkeypatch.setattr(fitting, "_run_newton", one_step)
    quick = dict(QUICK, heterogeneity=True)
    results = run_study(Survey.from_frame(_frame()), outcomes=["product"], **quick)
    (record,) = results.meta.not_assessed()
    assert (record.part, record.model) == (StudyPart.HETEROGENEITY, "by_region")
    assert record.cause == NotAssessedReason.NON_CONVERGENCE
    assert record.subject() == "heterogeneity: the by region model"
    assert record.text.startswith("product: heterogeneity: the by region model not assessed")
    assert "by_sector" in results.models["product"]
