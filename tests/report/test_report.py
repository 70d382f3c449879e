"""The report's tables, formats, findings and file writing, on hand-made results structures."""

import csv
import io
import json
import math

import numpy as np
import pytest
import statsmodels.api as sm
from test_report_samples import make_results, make_study_results

from buzzpipe.errors import InputError
from buzzpipe.report import figures as figures_module
from buzzpipe.report import formatting
from buzzpipe.report.findings import findings
from buzzpipe.report.table_formats import latex_escape, table_csv, table_html, table_latex
from buzzpipe.report.tables import TableStyle, all_tables, displayed_estimate, model_tables
from buzzpipe.report.write_report import render_report, render_view, write_report
from buzzpipe.results import read_results, results_to_dict, write_results


def _csv_rows(table) -> list[list[str]]:
    return list(csv.reader(io.StringIO(table_csv(table))))


def _statsmodels_logit_results(seed: int = 11) -> tuple[dict, object]:
    """A results structure whose one model is a statsmodels logit on simulated firms."""
    rng = np.random.default_rng(seed)
    n = 1604
    breadth = rng.integers(0, 7, size=(n, 3)).astype(float)
    eta = -1.0 + breadth @ np.array([0.03, 0.05, 0.23])
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    design = sm.add_constant(breadth)
    fit = sm.Logit(y, design).fit(disp=0, cov_type="HC0")
    names = ["_cons", "breadth_regional", "breadth_national", "breadth_international"]
    intervals = fit.conf_int()
    terms = {}
    for index, name in enumerate(names):
        terms[name] = {
            "estimate": float(fit.params[index]),
            "se": float(fit.bse[index]),
            "interval": [float(intervals[index, 0]), float(intervals[index, 1])],
            "p": float(fit.pvalues[index]),
            "kind": "intercept" if name == "_cons" else "coefficient",
        }
    results = make_results()
    results["outcomes"] = {
        "product": {
            "label": "Product innovation",
            "models": {
                "breadth": {
                    "label": "Breadth",
                    "family": "logit",
                    "inference": "robust (HC0) standard errors",
                    "stats": {"n": n, "pseudo_r2": float(fit.prsquared), "llf": float(fit.llf)},
                    "terms": terms,
                }
            },
        }
    }
    return results, fit


def test_odds_ratio_columns_match_statsmodels_by_statas_eform_rule():
    results, fit = _statsmodels_logit_results()
    (table,) = model_tables(results)
    rows = _csv_rows(table)
    by_label = {row[0]: row for row in rows if row}
    names = ["breadth_regional", "breadth_national", "breadth_international", "_cons"]
    for name in names:
        index = ["_cons", "breadth_regional", "breadth_national", "breadth_international"].index(
            name
        )
        position = next(i for i, row in enumerate(rows) if row and row[0] == name)
        shown = rows[position][1].rstrip("*")
        error = rows[position + 1][1]
        odds_ratio = math.exp(fit.params[index])
        assert float(shown) == pytest.approx(odds_ratio, abs=5e-4)
        assert float(error.strip("()")) == pytest.approx(odds_ratio * fit.bse[index], abs=5e-4)
        stars = rows[position][1][len(shown) :]
        assert stars == formatting.stars(fit.pvalues[index])
    assert by_label["Observations"][1] == "1604"  # CSV numbers: no thousands separator
    assert float(by_label["Pseudo R²"][1]) == pytest.approx(fit.prsquared, abs=5e-4)
    assert float(by_label["Log likelihood"][1]) == pytest.approx(  # an ASCII minus
        fit.llf, abs=0.05
    )
    # the interval is exponentiated end by end, as Stata's eform does
    shown = displayed_estimate(
        results["outcomes"]["product"]["models"]["breadth"]["terms"]["breadth_international"],
        True,
    )
    np.testing.assert_allclose(shown["interval"], np.exp(fit.conf_int()[3]), rtol=1e-12)


@pytest.mark.parametrize("eform", [True, False])
@pytest.mark.parametrize("statistic", ["se", "t", "ci"])
def test_statistic_and_eform_options_match_statsmodels(statistic, eform):
    """esttab's se/t/ci and eform on a statsmodels logit: with eform the error is exp(b) x se
    (delta method) and the interval's ends are exponentiated; t is b / se either way."""
    results, fit = _statsmodels_logit_results()
    (table,) = model_tables(results, TableStyle(statistic=statistic, eform=eform))
    rows = _csv_rows(table)
    names = ["_cons", "breadth_regional", "breadth_national", "breadth_international"]
    intervals = fit.conf_int()
    for index, name in enumerate(names):
        position = next(i for i, row in enumerate(rows) if row and row[0] == name)
        shown = float(rows[position][1].rstrip("*"))
        under = rows[position + 1][1]
        scale = math.exp if eform else (lambda value: value)
        assert shown == pytest.approx(scale(fit.params[index]), abs=5e-4)
        if statistic == "se":
            expected = scale(fit.params[index]) * fit.bse[index] if eform else fit.bse[index]
            assert under.startswith("(") and under.endswith(")")
            assert float(under.strip("()")) == pytest.approx(expected, abs=5e-4)
        elif statistic == "t":
            assert float(under.strip("()")) == pytest.approx(fit.tvalues[index], abs=5e-3)
        else:
            assert under.startswith("[") and under.endswith("]")
            low, high = (float(end) for end in under.strip("[]").split(", "))
            assert low == pytest.approx(scale(intervals[index, 0]), abs=5e-4)
            assert high == pytest.approx(scale(intervals[index, 1]), abs=5e-4)
    notes = " ".join(table.notes)
    assert ("show odds ratios" in notes) == eform
    assert {"se": "standard errors", "t": "z statistics", "ci": "confidence intervals"}[
        statistic
    ] in notes


def test_a_statistic_the_tables_do_not_know_is_refused():
    with pytest.raises(ValueError, match="se, t, ci"):
        TableStyle(statistic="brackets")


def test_slopes_come_before_the_constant_and_cut_points_last():
    results = make_results()
    labels = [row[0] for row in _csv_rows(model_tables(results)[0]) if row and row[0]]
    assert labels.index("Breadth, international") < labels.index("Employees (log)")
    assert labels.index("Foreign share") < labels.index("Constant")
    novelty = next(t for t in model_tables(results) if t.id == "table-product-novelty-main")
    novelty_labels = [row.label for row in novelty.rows if row.label]
    assert novelty_labels.index("Foreign share") < novelty_labels.index("Cut 1")


@pytest.mark.parametrize(
    "p, expected",
    [
        (0.0099, "***"),
        (0.01, "**"),
        (0.049, "**"),
        (0.05, "*"),
        (0.0999, "*"),
        (0.1, ""),
        (None, ""),
    ],
)
def test_star_thresholds(p, expected):
    assert formatting.stars(p) == expected


def test_cut_points_and_linear_probability_columns_are_not_exponentiated():
    results = make_results()
    product = next(t for t in model_tables(results) if t.id == "table-product-main")
    constant = next(row for row in product.rows if row.label == "Constant")
    # logit constant exp(-0.9) = 0.407; the linear probability column keeps -0.900
    assert [cell.text for cell in constant.cells] == ["0.407", "0.407", "-0.900"]
    novelty = next(t for t in model_tables(results) if t.id == "table-product-novelty-main")
    cut = next(row for row in novelty.rows if row.label == "Cut 2")
    assert cut.cells[0].text == "2.100"
    breadth = next(row for row in novelty.rows if row.label == "Breadth, international")
    assert breadth.cells[0].text == f"{math.exp(0.23):.3f}"


def test_factor_terms_collapse_to_one_dummies_row_per_factor():
    rows = {row[0]: row[1:] for row in _csv_rows(model_tables(make_results())[0]) if row}
    assert rows["Industry dummies"] == ["No", "Yes", "Yes"]
    assert rows["Region dummies"] == ["No", "Yes", "Yes"]
    assert not any(label.startswith("industry[") for label in rows)


def test_notes_name_the_inference_per_column_when_columns_differ():
    product = model_tables(make_results())[0]
    notes = " ".join(product.notes)
    assert "Inference in (1), (2): firm-level robust standard errors" in notes
    assert "Inference in (3): HC1 robust standard errors" in notes
    assert formatting.STAR_NOTE in notes
    process = next(t for t in model_tables(make_results()) if t.id == "table-process-main")
    assert any(note.startswith("Inference: firm-level robust") for note in process.notes)


def test_latex_is_escaped_and_every_row_has_one_cell_per_column():
    for table in all_tables(make_results()):
        latex = table_latex(table)
        body = latex.split(r"\midrule", 1)[1].split(r"\bottomrule")[0]
        for line in body.splitlines():
            if line.startswith(r"\multicolumn"):  # a heading row across the table
                assert line.startswith(f"\\multicolumn{{{len(table.header)}}}"), line
            elif line.endswith(r"\\"):
                assert line.count(" & ") == len(table.header) - 1, (table.id, line)
        assert r"\begin{tabular" in latex and r"\end{table}" in latex
    assert latex_escape("b_x & 5% {a} ~ #1 $") == r"b\_x \& 5\% \{a\} \textasciitilde{} \#1 \$"


def test_html_table_escapes_text_and_marks_stars_as_superscripts():
    results = make_results()
    results["outcomes"]["product"]["label"] = "Product <b>innovation</b> & more"
    table = model_tables(results)[0]
    html = table_html(table)
    assert "<b>" not in html and "&lt;b&gt;" in html and "&amp; more" in html
    assert "<sup>***</sup>" in html


def test_sensitivity_table_shows_primary_and_bootstrap_p_values_on_the_odds_ratio_scale():
    tables = {table.id: table for table in all_tables(make_results())}
    table = tables["table-product-controls-sensitivity"]
    assert "region-clustered wild score bootstrap" in table.header[3]
    row = next(r for r in table.rows if r.label == "Breadth, international")
    assert row.cells[2].text == f"0.120 [{math.exp(-0.1):.3f}, {math.exp(0.5):.3f}]"


def test_unbounded_fieller_interval_prints_infinity():
    tests = next(t for t in all_tables(make_results()) if t.id == "table-tests")
    ratio = next(row for row in tests.rows if row.label.startswith("Ratio"))
    assert ratio.cells[3].text == "7.700 [2.100, \u221e]"


def test_findings_are_written_from_verdicts_and_opposite_worlds_read_opposite():
    pipelines = dict((v["finding"], s) for v, s in findings(make_results("pipelines")))
    buzz = dict((v["finding"], s) for v, s in findings(make_results("buzz")))
    assert pipelines["international_effect"].startswith("Firms with more kinds of international")
    assert buzz["international_effect"].startswith("More kinds of international partner do not")
    assert buzz["regional_effect"].startswith("Firms with more kinds of partner in their own")
    assert "p < 0.001" in pipelines["international_effect"]
    assert pipelines["heterogeneity"].startswith("Not assessed: the study could not produce")
    # the sentences depend on the verdicts alone, never on the survey's name
    renamed = make_results("buzz")
    renamed["source"]["name"] = "norway2010"
    renamed["title"] = "norway2010"
    assert dict((v["finding"], s) for v, s in findings(renamed)) == buzz


def test_report_files_are_written_and_results_round_trip(tmp_path):
    results = make_study_results()
    written = write_report(results, tmp_path / "out")
    names = {path.relative_to(tmp_path / "out").as_posix() for path in written}
    assert {"results.json", "report.html"} <= names
    assert "tables/table-product-main.csv" in names and "tables/table-product-main.tex" in names
    for figure_id, _, _ in figures_module.FIGURES:
        if figure_id.startswith("figure-simulation-"):  # replicate --simulate only: its own test
            assert f"figures/{figure_id}.png" not in names
            continue
        assert f"figures/{figure_id}.png" in names and f"figures/{figure_id}.svg" in names
        assert (tmp_path / "out" / "figures" / f"{figure_id}.png").read_bytes()[:8] == (
            b"\x89PNG\r\n\x1a\n"
        )
    assert results_to_dict(read_results(tmp_path / "out" / "results.json")) == results
    assert not list((tmp_path / "out").rglob("*.tmp"))
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert '<figure id="figure-region-slopes">' in html  # the regional slopes, descriptive
    assert "Slopes by city-region (descriptive, no test)" in html
    assert "Differences by city-region size" not in html


def test_same_results_give_the_same_bytes():
    first = render_report(make_study_results())
    second = render_report(make_study_results())
    assert first.keys() == second.keys()
    different = [name for name in first if first[name] != second[name]]
    assert different == []


def test_a_failure_while_rendering_writes_nothing(tmp_path, monkeypatch):
    out = tmp_path / "out"
    write_results(make_study_results(), out / "results.json")
    before = (out / "results.json").read_bytes()

    def broken(results):
        raise RuntimeError("drawing failed")

    monkeypatch.setattr(figures_module, "FIGURES", (("figure-x", "x", broken),))
    with pytest.raises(RuntimeError):
        write_report(make_study_results("buzz"), out)
    assert sorted(path.name for path in out.iterdir()) == ["results.json"]
    assert (out / "results.json").read_bytes() == before


def test_bad_results_file_is_one_line_naming_the_file_and_entry(tmp_path):
    path = tmp_path / "results.json"
    path.write_text("{ not json", encoding="utf-8")
    with pytest.raises(InputError, match=r"results.json.*not valid JSON at line 1"):
        read_results(path)
    results = make_study_results()
    results["models"]["process"]["controls"]["nobs"] = -3
    path.write_text(json.dumps(results), encoding="utf-8")
    with pytest.raises(InputError) as caught:
        read_results(path)
    message = str(caught.value)
    assert "$.models.process.controls.nobs" in message and "-3" in message
    assert "\n" not in message


def test_missing_parts_leave_out_their_tables_and_figures():
    results = make_results()
    for key in ("descriptives", "regimes", "counterfactuals", "tests"):
        del results[key]
    files = render_view(results)
    assert "figures/figure-regimes.svg" not in files
    assert "figures/figure-counterfactuals.svg" not in files
    assert "tables/table-tests.csv" not in files
    assert "figures/figure-odds-ratios.svg" in files


def test_latex_has_no_character_outside_ascii():
    """pdflatex without extra packages: every sign the tables use has a LaTeX spelling."""
    from buzzpipe.report.view import report_view

    tables = all_tables(make_results()) + all_tables(report_view(make_study_results()))
    assert any(t.id == "table-descriptions" for t in tables)  # Fieller unions, chi-squared
    for table in tables:
        latex = table_latex(table)
        assert latex.isascii(), (table.id, [c for c in latex if not c.isascii()])


def test_the_report_names_what_was_not_assessed_and_why():
    """A skipped model and a skipped part are records in results.json; the report lists them
    with their reason, the verdicts they explain say "not assessed (reason)" in the tables, and
    an outcome whose models all failed keeps its column rather than silently missing."""
    from buzzpipe.errors import NonConvergenceError, SeparationError
    from buzzpipe.results import StudyResults
    from buzzpipe.results.vocabulary import StudyPart
    from buzzpipe.study.skipped import record_not_assessed
    from buzzpipe.study.verdicts import decide_verdicts, decide_verdicts_by_outcome

    results = StudyResults.from_dict(make_study_results())
    for name in [n for n in results.tests["product"] if n.startswith("supermodularity")]:
        del results.tests["product"][name]
    did_not_converge = NonConvergenceError(
        "the logit model of 'product' did not converge after 100 iterations (iteration limit)"
    )
    record_not_assessed(results, "product", StudyPart.COMPLEMENTARITY, did_not_converge)
    separated = SeparationError(
        "the controls logit model of 'new_to_market' cannot be estimated: quasi-complete "
        "separation: 230 failures and 0 successes are perfectly predicted"
    )
    record_not_assessed(results, "new_to_market", StudyPart.MODEL, separated, model="controls")
    results.verdicts = decide_verdicts(results, "product")
    results.verdicts_by_outcome = decide_verdicts_by_outcome(results)
    files = render_report(results)
    html = files["report.html"].decode()
    assert 'id="not-assessed"' in html
    assert "New-to-market innovation: the controls model: not assessed (separation)." in html
    assert "complementarity: not assessed (did not converge)" in html
    by_outcome = list(
        csv.reader(io.StringIO(files["tables/table-findings-by-outcome.csv"].decode()))
    )
    header = by_outcome[1]
    assert "New-to-market innovation" in header  # a column, not silently missing
    column = header.index("New-to-market innovation")
    assert {row[column] for row in by_outcome[2:-1]} == {"not assessed (separation)"}
    complementarity = next(row for row in by_outcome if row[0] == "Complements in the odds")
    assert complementarity[header.index("Product innovation")] == "not assessed (did not converge)"
    verdicts = files["tables/table-verdicts.csv"].decode()
    assert "did not converge after 100 iterations" in verdicts
    back = read_results_text(files["results.json"].decode())
    assert back.meta.not_assessed() == results.meta.not_assessed()


def read_results_text(text):
    from buzzpipe.results import StudyResults

    return StudyResults.from_json(text)
