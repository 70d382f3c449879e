"""A study that survives a failing model: what cannot be estimated is named (outcome, model,
term) in the notes, the rest goes on, and nothing ends in an internal error."""

import pandas as pd

from buzzpipe.study.battery import run_study
from buzzpipe.survey import Survey
from buzzpipe.synth import synthesize

QUICK = {"sensitivity": False, "heterogeneity": False, "scenarios": ()}


def _frame() -> pd.DataFrame:
    return synthesize("norway2010", 11, firms=500, edge_list=False).firms.copy()


def test_an_outcome_without_variation_is_skipped_and_the_others_go_on():
    frame = _frame().assign(product=0, new_to_market=0)
    results = run_study(Survey.from_frame(frame), **QUICK)
    notes = results.meta.not_assessed()
    assert any(
        n.text.startswith("product: not assessed: the controls logit model of 'product'")
        and n.outcome == "product"
        and "does not vary" in str(n.reason)
        for n in notes
    )
    outcomes = set(results.models)
    assert "process" in outcomes and "product" not in outcomes
    assert {v.verdict for v in results.verdicts} == {"not_assessed"}


def test_a_term_dropped_for_collinearity_is_named_not_a_key_error():
    """An edge-list survey without a single link: pipeline exposure is constant, so the
    spill-over term is dropped; before, KeyError 'pipeline_share_leave_one_out' (exit 3)."""
    from buzzpipe.synth import generate
    from buzzpipe.synth.generate import edge_list_firms

    firms, links = generate("norway2010", 11, firms=500)
    firms = edge_list_firms(firms, "NO")
    empty = Survey.from_frame(firms, links.head(0))
    results = run_study(empty, **QUICK)
    notes = " ".join(note.text for note in results.meta.notes)
    assert "spill-over not estimated" in notes
    assert "dropped from the logit model of 'product'" in notes
    assert "controls" in results.models["product"]


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
    (programme,) = results.counterfactuals
    (note,) = [note for note in programme.notes if note.kind == "all_eligible_treated"]
    assert note.firms_treated == 100_000 and note.eligible < 500 and note.regions is None


def test_a_study_with_no_estimable_outcome_is_one_line_naming_each():
    import pytest

    from buzzpipe.errors import EstimationError

    frame = _frame().assign(product=0, process=0, new_to_market=0)
    with pytest.raises(
        EstimationError, match="no model of any outcome could be estimated: product"
    ):
        run_study(Survey.from_frame(frame), **QUICK)
