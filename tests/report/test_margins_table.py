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
    assert list(rows)[:3] == list(LABELS)  # the breadth terms, then the controls
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
    capped = 0
    for term, label in zip(BREADTH, LABELS, strict=True):
        base = statsmodels_fit.predict(frame).mean()
        # one definition of +1 (issue 16): a firm at the cap of six partner types is held there
        at_cap = frame[term] >= 6
        capped += int(at_cap.sum())
        shifted = frame[term].where(at_cap, frame[term] + 1)
        changed = statsmodels_fit.predict(frame.assign(**{term: shifted})).mean()
        assert model.marginal_effects[f"{term}: +1"].estimate == pytest.approx(
            changed - base, rel=1e-8
        )
        assert float(rows[label][0].text) == pytest.approx(changed - base, abs=5e-4)
    assert capped > 0  # the cap is exercised by this survey


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


def _delta_se(function, fit, correction):
    """The delta-method error of a function of the statsmodels fit's parameters (central
    differences), under its HC0 covariance with the study's n / (n - 1)."""
    params = fit.params.to_numpy()
    gradient = np.empty(len(params))
    for index in range(len(params)):
        step = 1e-6 * max(1.0, abs(params[index]))
        up, down = params.copy(), params.copy()
        up[index] += step
        down[index] -= step
        gradient[index] = (function(up) - function(down)) / (2 * step)
    covariance = fit.cov_params().to_numpy() * correction**2
    return math.sqrt(gradient @ covariance @ gradient)


def test_every_regressor_has_its_average_marginal_effect(study, statsmodels_fit):
    """Stata's margins, dydx(*): the controls too, against statsmodels (get_margeff for the
    variables that are their own column; the chain rule through the log for employees;
    re-prediction with every firm set to a level for the factors), errors by the delta method
    under the same covariance."""
    survey, results = study
    fit = statsmodels_fit
    model = results.models["product"]["controls"]
    effects = model.marginal_effects
    n = fit.nobs
    correction = math.sqrt(n / (n - 1))
    margeff = fit.get_margeff()
    names = list(fit.params.index[1:])
    own_columns = [name for name in ("foreign_share", "openness") if name in names]
    assert own_columns
    for name in own_columns:  # a column of its own: statsmodels' derivative exactly
        record = effects[f"{name}: dy/dx"]
        assert record.estimate == pytest.approx(margeff.margeff[names.index(name)], rel=1e-8)
        assert record.std_error == pytest.approx(
            margeff.margeff_se[names.index(name)] * correction, rel=1e-6
        )
        assert record.hypothesis.kind == "marginal_effect"
    frame = analysis_frame_of(survey).loc[fit.model.data.row_labels]
    design = fit.model.exog
    log_column = list(fit.params.index).index("np.log(employees)")
    employees = frame["employees"].to_numpy(dtype=float)

    def employees_effect(params):  # d Pr / d employees = Lambda'(xb) b_log / employees
        probability = 1 / (1 + np.exp(-(design @ params)))
        return float(np.mean(probability * (1 - probability) * params[log_column] / employees))

    record = effects["employees: dy/dx"]
    assert record.estimate == pytest.approx(employees_effect(fit.params.to_numpy()), rel=1e-8)
    assert record.std_error == pytest.approx(_delta_se(employees_effect, fit, correction), rel=1e-7)
    columns = list(fit.params.index)
    factors = {"region": sorted(frame["region"].astype(str).unique()),
               "industry": sorted(frame["industry"].astype(str).unique())}  # fmt: skip
    checked = 0
    for variable in factors:
        keys = [key for key in effects if key.startswith(f"{variable}: ")]
        assert keys, variable
        dummies = [i for i, name in enumerate(columns) if name.startswith(f"C({variable})[T.")]
        for key in keys:
            record = effects[key]
            level, base = (term.level for term in record.hypothesis.terms)
            at = {}
            for value in (level, base):  # every firm set to the level: its dummy alone on
                x = design.copy()
                x[:, dummies] = 0.0
                if value != base:
                    x[:, columns.index(f"C({variable})[T.{value}]")] = 1.0
                at[value] = x

            def change(params, at=at, level=level, base=base):
                high, low = (1 / (1 + np.exp(-(at[value] @ params))) for value in (level, base))
                return float(np.mean(high) - np.mean(low))

            assert key == f"{variable}: {level} vs {base}"
            assert record.hypothesis.kind == "discrete_change"
            assert record.estimate == pytest.approx(change(fit.params.to_numpy()), rel=1e-9)
            assert record.std_error == pytest.approx(_delta_se(change, fit, correction), rel=1e-7)
            checked += 1
    assert checked == len(factors["region"]) - 1 + len(factors["industry"]) - 1
    (table,) = margins_tables(report_view(results))
    changes = _rows(table, "Change from the base level (every firm set to the level)")
    assert len(changes) == checked and "Region: Bergen vs Oslo" in changes, list(changes)
    derivatives = _rows(table, "Average marginal effect, dy/dx")
    assert {"Employees", "Foreign ownership share"} <= set(derivatives)
