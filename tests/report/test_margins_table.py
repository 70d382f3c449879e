"""The average-marginal-effects table (Stata's margins, dydx(); R's avg_slopes) of a real study,
against statsmodels' get_margeff on the same logit, and its place in every output."""

import math

import numpy as np  # noqa: F401  (the formulas' np.log is evaluated in this namespace)
import pytest
import statsmodels.formula.api as smf

import buzzpipe as bp
from buzzpipe.report.tables import TableStyle, all_tables, margins_tables
from buzzpipe.report.view import report_view
from buzzpipe.report.write_report import render_report
from buzzpipe.study.battery import analysis_frame_of

BREADTH = ("breadth_regional", "breadth_national", "breadth_international")
LABELS = ("Breadth, regional", "Breadth, national", "Breadth, international")


@pytest.fixture(scope="module")
def study():
    survey = bp.synthesize("norway2010", seed=1, firms=400)
    results = bp.run_study(
        survey,
        seed=1,
        outcomes=["product"],
        sensitivity=False,
        heterogeneity=False,
        bootstrap_replications=0,
        scenarios=(),
    )
    return survey, results


@pytest.fixture(scope="module")
def statsmodels_fit(study):
    survey, results = study
    model = results.models["product"]["controls"]
    fit = smf.logit(model.formula, data=analysis_frame_of(survey)).fit(
        disp=0, cov_type="HC0", tol=1e-12
    )
    assert fit.nobs == model.nobs
    return fit


def _rows(table, section):
    """{label: (estimate cell, cell under it)} of one section of the table."""
    rows, inside = {}, False
    for index, row in enumerate(table.rows):
        if row.kind == "section":
            inside = row.label == section
        elif inside and row.kind == "estimate":
            rows[row.label] = (row.cells[0], table.rows[index + 1].cells[0])
    return rows


def test_the_derivatives_are_statsmodels_get_margeff(study, statsmodels_fit):
    _, results = study
    (table,) = margins_tables(report_view(results))
    assert table.id == "table-product-margins"
    effects = statsmodels_fit.get_margeff()  # average over the sample, delta method
    names = list(statsmodels_fit.params.index[1:])
    n = statsmodels_fit.nobs
    # the study's robust covariance is Stata's (n / (n - 1) on HC0), statsmodels' HC0 has none
    correction = math.sqrt(n / (n - 1))
    rows = _rows(table, "Average marginal effect, dy/dx")
    assert list(rows) == list(LABELS)
    model = results.models["product"]["controls"]
    for term, label in zip(BREADTH, LABELS, strict=True):
        index = names.index(term)
        record = model.marginal_effects[f"{term}: dy/dx"]
        assert record.estimate == pytest.approx(effects.margeff[index], rel=1e-8)
        assert record.std_error == pytest.approx(effects.margeff_se[index] * correction, rel=1e-6)
        estimate, under = rows[label]
        assert float(estimate.text) == pytest.approx(effects.margeff[index], abs=5e-4)
        assert float(under.text.strip("()")) == pytest.approx(
            effects.margeff_se[index] * correction, abs=5e-4
        )


def test_the_plus_one_change_is_statsmodels_repredicted(study, statsmodels_fit):
    survey, results = study
    (table,) = margins_tables(report_view(results))
    frame = analysis_frame_of(survey)
    rows = _rows(table, "One more kind of partner (x to x + 1)")
    model = results.models["product"]["controls"]
    for term, label in zip(BREADTH, LABELS, strict=True):
        base = statsmodels_fit.predict(frame).mean()
        changed = statsmodels_fit.predict(frame.assign(**{term: frame[term] + 1})).mean()
        assert model.marginal_effects[f"{term}: +1"].estimate == pytest.approx(
            changed - base, rel=1e-8
        )
        assert float(rows[label][0].text) == pytest.approx(changed - base, abs=5e-4)


def test_intervals_and_statistics_under_the_effects(study):
    _, results = study
    model = results.models["product"]["controls"]
    record = model.marginal_effects["breadth_international: dy/dx"]
    view = report_view(results)
    (ci,) = margins_tables(view, TableStyle(statistic="ci"))
    under = _rows(ci, "Average marginal effect, dy/dx")["Breadth, international"][1].text
    low, high = (float(end) for end in under.strip("[]").split(", "))
    assert (low, high) == pytest.approx((record.interval.low, record.interval.high), abs=5e-4)
    (t,) = margins_tables(view, TableStyle(statistic="t", eform=False))
    under = _rows(t, "Average marginal effect, dy/dx")["Breadth, international"][1].text
    assert float(under.strip("()")) == pytest.approx(record.estimate / record.std_error, abs=5e-3)


def test_the_report_writes_the_table_in_every_format(study):
    _, results = study
    files = render_report(results)
    for suffix in ("csv", "tex"):
        assert f"tables/table-product-margins.{suffix}" in files
    assert b'id="table-product-margins"' in files["report.html"]
    csv_text = files["tables/table-product-margins.csv"].decode("utf-8")
    assert "avg_slopes" in csv_text and "Covariance,Robust" in csv_text
    ids = [table.id for table in all_tables(report_view(results))]
    assert ids.index("table-product-margins") > ids.index("table-product-main")
