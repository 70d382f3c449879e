"""The models tables as esttab and modelsummary print them, on the golden norway2010 run (seed
2010): standard errors in parentheses, a row naming the covariance, the number of clusters,
AIC and BIC, and no stars on ordered-logit cut points."""

import math
from pathlib import Path

import pytest

from buzzpipe.report.tables import TableStyle, all_tables
from buzzpipe.report.view import report_view
from buzzpipe.results import Inference, read_results
from buzzpipe.results.vocabulary import InferenceKind, TermKind

GOLDEN = Path(__file__).parents[1] / "results" / "golden" / "norway2010" / "results_format1.json"


@pytest.fixture(scope="module")
def results():
    return read_results(GOLDEN)


def _table(results, table_id, style=None):
    tables = {table.id: table for table in all_tables(report_view(results), style or TableStyle())}
    return tables[table_id]


def _rows(table):
    return {row.label: [cell.text + cell.stars for cell in row.cells] for row in table.rows}


def test_errors_in_parentheses_and_the_covariance_row(results):
    assert results.meta.seed == 2010
    table = _table(results, "table-product-main")
    errors = [cell.text for row in table.rows if row.kind == "error" for cell in row.cells]
    shown = [text for text in errors if text]
    assert shown and all(text.startswith("(") and text.endswith(")") for text in shown)
    assert not any("[" in text for text in shown)
    rows = _rows(table)
    assert set(rows["Covariance"]) == {"Robust"}
    assert any("parentheses" in note for note in table.notes)


def test_aic_and_bic_as_estat_ic(results):
    model = results.models["product"]["controls"]
    k = len(model.terms)
    table = _table(results, "table-product-main")
    column = list(results.models["product"]).index("controls")
    rows = _rows(table)
    aic = -2 * model.log_likelihood + 2 * k
    bic = -2 * model.log_likelihood + k * math.log(model.nobs)
    assert float(rows["AIC"][column].replace("\u2212", "-")) == pytest.approx(aic, abs=0.05)
    assert float(rows["BIC"][column].replace("\u2212", "-")) == pytest.approx(bic, abs=0.05)


def test_clustered_columns_name_the_clustering_and_count_the_clusters(results):
    model = results.models["product"]["controls"]
    model.inference = Inference(InferenceKind.CLUSTER, by="region", clusters=5)
    try:
        table = _table(results, "table-product-main")
    finally:
        model.inference = Inference(InferenceKind.ROBUST)
    rows = _rows(table)
    column = list(results.models["product"]).index("controls")
    assert rows["Covariance"][column] == "Clustered by region (5 clusters)"
    assert rows["Clusters"][column] == "5"


def test_cut_points_carry_no_stars(results):
    ordered = [
        (outcome, name, model)
        for outcome, models in results.models.items()
        for name, model in models.items()
        if any(kind.kind == TermKind.CUT for kind in model.term_kinds.values())
    ]
    assert ordered, "the golden run has an ordered model"
    view = report_view(results)
    checked = 0
    for table in all_tables(view):
        for row in table.rows:
            if row.label.startswith("Cut") or row.label.startswith("cut"):
                assert all(cell.stars == "" for cell in row.cells), (table.id, row.label)
                checked += 1
    assert checked


def test_statistic_ci_without_eform_gives_intervals_of_coefficients(results):
    """``--statistic ci --no-eform``: the row under each coefficient is its 95% interval on the
    log-odds scale, the estimate the coefficient itself; the covariance row stays."""
    model = results.models["product"]["controls"]
    column = list(results.models["product"]).index("controls")
    table = _table(results, "table-product-main", TableStyle(statistic="ci", eform=False))
    rows = table.rows
    position = next(i for i, row in enumerate(rows) if row.label == "Breadth, international")
    term = model.terms["breadth_international"]
    shown = float(rows[position].cells[column].text.replace("\u2212", "-"))
    assert shown == pytest.approx(term.estimate, abs=5e-4)
    interval = rows[position + 1].cells[column].text
    assert interval.startswith("[") and interval.endswith("]")
    low, high = (float(end.replace("\u2212", "-")) for end in interval.strip("[]").split(", "))
    assert low == pytest.approx(term.interval.low, abs=5e-4)
    assert high == pytest.approx(term.interval.high, abs=5e-4)
    assert set(_rows(table)["Covariance"]) == {"Robust"}
    assert any("not odds ratios" in note for note in table.notes)
