"""What the study computes beyond the primary outcome, as the report shows it: verdicts for
every outcome, the difference tests under each inference, the programmes' scales, the tests
across outcomes, and hypotheses and rules in words."""

import copy
import re

import pytest
from test_report_samples import make_study_results

from buzzpipe.report import formatting
from buzzpipe.report.html_report import build_html
from buzzpipe.report.tables import all_tables
from buzzpipe.report.view import report_view
from buzzpipe.report.view_schema import validate_view
from buzzpipe.report.wording import hypothesis_words, programme_note_words
from buzzpipe.report.write_report import render_view
from buzzpipe.results import Hypothesis, ProgrammeNote, Term
from buzzpipe.results.version_2 import hypothesis_record, programme_note_record
from buzzpipe.results.vocabulary import HypothesisKind, ProgrammeNoteKind, TermKind
from buzzpipe.results.walk import Walker


def _breadth(scale: str) -> Term:
    return Term(TermKind.CONTINUOUS, variable=f"breadth_{scale}")


def _with_everything() -> dict:
    """Hand-made study results plus what the study gained: verdicts by outcome (the process
    model without an international effect), sensitivity variants of the difference test, a
    test across outcomes, a naive spill-over description and programmes with their scale."""
    from buzzpipe.results import Estimate, Inference, Interval, ProgrammeNote, StudyResults
    from buzzpipe.study.verdicts import decide_verdicts

    terms = [_breadth("international"), _breadth("regional")]
    difference = Hypothesis(HypothesisKind.DIFFERENCE, terms=terms)

    data = make_study_results("pipelines")
    process = data["models"]["process"]["controls"]["terms"]["breadth_international"]
    process.update(estimate=0.0, p_value=0.97, interval={"segments": [[-0.1, 0.1]], "level": 0.95})
    study = StudyResults.from_dict(data)
    study.verdicts_by_outcome = {
        outcome: decide_verdicts(study, outcome) for outcome in ("product", "process")
    }
    for outcome in ("product", "process"):
        primary = study.tests[outcome]["international_minus_regional"]
        study.add_test(
            outcome,
            "international_minus_regional_cluster_region",
            Estimate(
                primary.estimate,
                0.2,
                0.21,
                Inference("cluster", by="region", clusters=5),
                interval=Interval.bounded(-0.1, 0.6),
                hypothesis=difference,
            ),
        )
        study.add_test(
            outcome,
            "international_minus_regional_wild_bootstrap",
            Estimate(
                primary.estimate,
                None,
                0.34,
                Inference("wild_score_bootstrap", by="region", clusters=5, weights="webb"),
                hypothesis=difference,
            ),
        )
    # the study's test of equal +1 probability changes, and a file before issue 16 that
    # tested the coefficients under the same name
    for scale, kind, p_value in (
        ("international", HypothesisKind.PLUS_ONE_EQUAL_ACROSS_OUTCOMES, 0.04),
        ("national", HypothesisKind.EQUAL_ACROSS_OUTCOMES, 0.5),
    ):
        scales = [scale] if kind == HypothesisKind.PLUS_ONE_EQUAL_ACROSS_OUTCOMES else []
        hypothesis = Hypothesis(
            kind, terms=[_breadth(scale)], scales=scales, outcomes=["product", "process"]
        )
        study.add_test(
            "across_outcomes",
            f"equal_breadth_{scale}",
            Estimate(
                None,
                None,
                p_value,
                Inference("robust", method="suest"),
                statistic=4.2,
                df=1,
                hypothesis=hypothesis,
            ),
        )
    study.add_description(
        "product",
        "spillover_exposure_naive",
        Estimate(
            -0.7,
            0.3,
            0.02,
            Inference("cluster", by="region_industry_cell", clusters=98),
            hypothesis=Hypothesis(
                HypothesisKind.ZERO,
                terms=[Term(TermKind.CONTINUOUS, variable="pipeline_share_leave_one_out")],
                firms=1604,
            ),
        ),
    )
    for programme in study.counterfactuals:
        programme.scale = "international" if programme.programme == "pipeline" else "regional"
        programme.notes = [
            ProgrammeNote(ProgrammeNoteKind.NOT_CAUSED),
            ProgrammeNote(ProgrammeNoteKind.ELIGIBILITY, scale=programme.scale, cap=6),
        ]
    return study.to_dict()


@pytest.fixture(scope="module")
def results() -> dict:
    return _with_everything()


@pytest.fixture(scope="module")
def view(results) -> dict:
    view = report_view(results)
    validate_view(view)
    return view


@pytest.fixture(scope="module")
def tables(view) -> dict:
    return {table.id: table for table in all_tables(view)}


def _cells(table, label: str) -> list[str]:
    row = next(row for row in table.rows if row.label == label)
    return [cell.text for cell in row.cells]


def test_findings_by_outcome_show_each_outcomes_own_verdict(results, tables):
    table = tables["table-findings-by-outcome"]
    assert table.header == ("Finding", "Product innovation", "Process innovation")
    by_outcome = {
        outcome: {verdict["finding"]: verdict for verdict in verdicts}
        for outcome, verdicts in results["verdicts_by_outcome"].items()
    }
    # the study decided differently for the two outcomes, and the table says so
    assert by_outcome["product"]["international_effect"]["verdict"] == "found"
    assert by_outcome["process"]["international_effect"]["verdict"] == "not_found"
    product, process = _cells(table, "International partners")
    assert product.startswith("found (p ") and process == "not found (p = 0.970; Holm = 1.000)"
    for label, finding in (
        ("Regional partners", "regional_effect"),
        ("Complements in the odds", "complementarity"),
    ):
        for cell, outcome in zip(_cells(table, label), ("product", "process"), strict=True):
            verdict = by_outcome[outcome][finding]
            assert cell.startswith(verdict["verdict"].replace("_", " "))
            assert formatting.p_value(verdict["p_value"]) in cell


def test_each_verdict_is_stated_once_and_the_rules_follow_in_their_own_section(view):
    tables = all_tables(view)
    html = build_html(view, tables, [])
    start = html.index('<section id="findings">')
    findings = html[start : html.index("</section>", start)]
    # the other outcomes' verdicts in the findings, without the primary column (its verdicts
    # are the lists above); the rules after the findings, without the verdicts again
    others = findings[findings.index('id="table-findings-by-outcome"') :]
    assert "Process innovation" in others and "Product innovation" not in others
    assert 'id="table-verdicts"' not in findings
    rules_start = html.index('<section id="rules">')
    rules = html[rules_start : html.index("</section>", rules_start)]
    assert 'id="table-verdicts"' in rules and rules_start > start
    assert ">Holds<" not in rules and ">Evidence<" not in rules
    for verdict in view["verdicts"]:
        assert html.count(f'<li class="{verdict["state"]}">') >= 1
    assert html.count("<li class=") == len(view["verdicts"])
    without = copy.deepcopy(view)
    del without["verdicts_by_outcome"]["process"]
    assert "table-findings-by-outcome" not in {t.id for t in all_tables(without)}


def test_difference_tests_show_each_inference_side_by_side(tables):
    compared = tables["table-tests-compared"]
    assert compared.header[2:] == (
        "p, primary",
        "p [interval], region-clustered",
        "p [interval], wild bootstrap",
    )
    rows = [row for row in compared.rows if row.kind == "plain"]
    assert [row.label for row in rows] == [
        "Pipelines versus buzz: international \u2212 regional"
    ] * 2
    _, primary, clustered, wild = (cell.text for cell in rows[0].cells)
    assert primary.startswith("0.")
    assert clustered == "0.210 [-0.100, 0.600]"
    assert wild == "0.340"  # the bootstrap computed no confidence set: p alone
    notes = " ".join(compared.notes)
    assert "wild cluster score bootstrap over regions (Webb weights)" in notes
    assert "region-clustered standard errors" in notes
    # the variants are not repeated as rows of the main tests table
    labels = [row.label for row in tables["table-tests"].rows]
    assert not any("region-clustered" in label or "wild" in label for label in labels)


def test_tests_across_outcomes_and_the_naive_spillover_are_shown_in_words(tables):
    tests = tables["table-tests"]
    headings = [row.label for row in tests.rows if row.kind == "section"]
    assert headings[-1].startswith("Across outcomes")
    label = (
        "Same effect of one more international kind of partner across outcomes (probability "
        "scale, joint)"
    )
    assert _cells(tests, label)[0] == (
        "change in probability from one more international kind of partner equal for product, "
        "process"
    )
    older = (
        "Same coefficient of national breadth across outcomes (log-odds, whose scales differ "
        "between outcomes; sensitivity)"
    )
    assert _cells(tests, older)[0] == "national breadth equal for product, process"
    naive = _cells(
        tables["table-descriptions"],
        "Association with local pipelines: naive leave-one-out estimate (biased by exclusion)",
    )
    assert naive[0].startswith(
        "leave-one-out share of pipeline firms in the region \u00d7 industry"
    )


def test_programmes_name_their_scale_and_the_table_says_not_caused_once(tables, view):
    table = tables["table-counterfactuals"]
    sections = [row.label for row in table.rows if row.kind == "section"]
    assert sections == [
        "Pipeline: one more kind of international partner (100 in total, random firms)",
        "Cluster: one more kind of regional partner (100 in total, random firms)",
    ]
    notes = " ".join(table.notes)
    assert len(re.findall("not caused", notes, flags=re.IGNORECASE)) == 1
    assert "Firms' own rows only, no effects through partners." in table.notes
    assert notes.count("not eligible") == 1 and "at the programme's scale" in notes
    html = render_view(view)["report.html"].decode("utf-8")
    start = html.index('id="table-counterfactuals"')
    table_html = html[start : html.index("</table>", start)]
    assert len(re.findall("not caused", table_html, flags=re.IGNORECASE)) == 1


def test_programmes_of_older_files_without_a_scale_keep_their_label():
    data = make_study_results("pipelines")
    for programme in data["counterfactuals"]:
        programme.pop("scale", None)
    labels = [programme["label"] for programme in report_view(data)["counterfactuals"]]
    assert labels == [
        "Pipeline (100 in total, random firms)",
        "Cluster (100 in total, random firms)",
    ]


@pytest.mark.parametrize(
    "hypothesis, name, words",
    [
        (
            "breadth_international - breadth_national = 0",
            "international_minus_national",
            "international = national breadth",
        ),
        (
            "breadth_international / breadth_regional",
            "ratio_international_regional",
            "international breadth / regional breadth",
        ),
        (
            "b_both - b_local_only - b_global_only <= 0 (complements if rejected)",
            "supermodularity",
            "effect of both \u2264 local only + global only (log-odds); complements if rejected",
        ),
        ("", "interaction_national_international", "national \u00d7 international breadth = 0"),
        (
            "b[pipeline_exposure] = 0 (923 firms)",
            "spillover_exposure",
            "pipeline exposure through local partners = 0 (923 firms)",
        ),
        (
            "all 15 breadth x C(industry) interactions = 0",
            "heterogeneity_sector",
            "all 15 breadth \u00d7 sector interactions = 0",
        ),
        (
            "all 3 breadth x region_size interactions = 0",
            "heterogeneity_region_size",
            "all 3 breadth \u00d7 city-region size interactions = 0",
        ),
        (
            "no partner type at the regional scale matters (6 terms)",
            "partner_types_regional",
            "no partner type at the regional scale matters (6 terms)",
        ),
    ],
)
def test_format_2_hypotheses_become_records_that_read_in_the_same_words(hypothesis, name, words):
    """The sentences format 2 wrote convert to records (``results/version_2.py``), and the
    report words the records as it worded the sentences."""
    record = hypothesis_record(hypothesis)
    typed = None if record is None else Walker(None).record(Hypothesis, record, "$")
    assert hypothesis_words(typed, name) == words


@pytest.mark.parametrize(
    "hypothesis, words",
    [
        (
            Hypothesis(
                HypothesisKind.ZERO,
                terms=[Term(TermKind.CONTINUOUS, variable="pipeline_exposure")],
                firms=923,
                cells=98,
            ),
            "pipeline exposure through local partners = 0 (923 firms in 98 cells)",
        ),
        (
            Hypothesis(
                HypothesisKind.ZERO,
                terms=[
                    Term(
                        TermKind.INTERACTION, parts=[_breadth(s) for s in ("regional", "national")]
                    )
                ],
            ),
            "regional \u00d7 national breadth = 0",
        ),
        (
            Hypothesis(HypothesisKind.PLUS_ONE_RATIO, scales=["international", "national"]),
            "change from one more international / one more national kind of partner",
        ),
        (
            Hypothesis(HypothesisKind.PLUS_ONE, terms=[_breadth("national")], scales=["national"]),
            "one more kind of partner",
        ),
        (
            Hypothesis(
                HypothesisKind.EQUAL_ACROSS_OUTCOMES,
                terms=[_breadth("regional")],
                outcomes=["product", "new_to_market"],
            ),
            "regional breadth equal for product, new-to-market",
        ),
        (Hypothesis(HypothesisKind.TEXT, text="as a study wrote it"), "as a study wrote it"),
    ],
)
def test_hypothesis_records_read_in_words(hypothesis, words):
    assert hypothesis_words(hypothesis, "any") == words


@pytest.mark.parametrize(
    "sentence, words",
    [
        (
            "One more kind of regional partner; firms already at the cap of 6 partner types at "
            "that scale are not eligible.",
            "Firms already at the cap of 6 partner types at the programme's scale are not "
            "eligible.",
        ),
        (
            "1,200 firms treated is more than the 900 eligible firms in 2 of the regions: every "
            "eligible firm there is treated.",
            "1,200 firms treated is more than the 900 eligible firms in 2 of the regions: every "
            "eligible firm there is treated.",
        ),
        (
            "3 of 199 bootstrap replicates dropped (not converged, a design column lost, or "
            "separated).",
            "3 of 199 bootstrap replicates dropped (not converged, a design column lost, or "
            "separated).",
        ),
        ("Something a later study said.", "Something a later study said."),
    ],
)
def test_format_2_programme_notes_become_records_that_read_in_the_same_words(sentence, words):
    record = Walker(None).record(ProgrammeNote, programme_note_record(sentence), "$")
    assert record.kind != ProgrammeNoteKind.TEXT or sentence.startswith("Something")
    assert programme_note_words(record, "cluster") == words
