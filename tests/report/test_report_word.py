"""The models table as a Word document, read back with python-docx: same cells as the CSV and
HTML layout, odds ratios equal to statsmodels' exp(b), stars as superscripts, notes kept, and
the same bytes from the same results."""

import io
import math
import zipfile

import docx
import pytest
from test_report import _statsmodels_logit_results
from test_report_samples import make_study_results

from buzzpipe.report import formatting
from buzzpipe.report.tables import model_tables
from buzzpipe.report.view import report_view
from buzzpipe.report.word_table import FIXED_ZIP_TIME, table_docx
from buzzpipe.report.write_report import render_report, render_view

NAMES = ["_cons", "breadth_regional", "breadth_national", "breadth_international"]


def _read(data: bytes) -> docx.document.Document:
    return docx.Document(io.BytesIO(data))


def _grid(document) -> list[list[str]]:
    (table,) = document.tables
    return [[cell.text for cell in row.cells] for row in table.rows]


def test_word_table_reads_back_as_the_odds_ratios_statsmodels_gives():
    results, fit = _statsmodels_logit_results()
    (table,) = model_tables(results)
    document = _read(table_docx(table))
    assert document.paragraphs[0].text == table.title
    grid = _grid(document)
    assert grid[0] == list(table.header)
    assert grid[1:] == [[row.label, *(c.text + c.stars for c in row.cells)] for row in table.rows]
    labels = [row[0] for row in grid]
    for index, name in enumerate(NAMES):
        position = labels.index(name)
        shown, error = grid[position][1], grid[position + 1][1]
        odds_ratio = math.exp(fit.params[index])
        expected_stars = formatting.stars(fit.pvalues[index])
        assert shown.endswith(expected_stars)
        assert float(shown.rstrip("*")) == pytest.approx(odds_ratio, abs=5e-4)
        assert float(error.strip("()")) == pytest.approx(odds_ratio * fit.bse[index], abs=5e-4)
    observations = grid[labels.index("Observations")][1]
    assert observations == "1,604"


def test_stars_are_superscript_runs_and_the_notes_follow_the_table():
    results, fit = _statsmodels_logit_results()
    (table,) = model_tables(results)
    document = _read(table_docx(table))
    runs = [
        run
        for row in document.tables[0].rows
        for cell in row.cells
        for paragraph in cell.paragraphs
        for run in paragraph.runs
    ]
    starred = [run for run in runs if run.text.startswith("*")]
    assert starred and all(run.font.superscript for run in starred)
    assert not any(run.font.superscript for run in runs if not run.text.startswith("*"))
    assert fit.pvalues[3] < 0.01  # the planted international effect is starred ***
    text = "\n".join(paragraph.text for paragraph in document.paragraphs[1:])
    assert text.startswith("Notes: ")
    for note in table.notes:
        assert note in text
    assert "robust (HC0)" in text  # the inference is named
    assert document.core_properties.title == table.title


def test_rules_above_and_below_the_header_and_at_the_foot_only():
    results, _ = _statsmodels_logit_results()
    (table,) = model_tables(results)
    document = _read(table_docx(table))
    rows = document.tables[0].rows

    def edges(row) -> set[str]:
        found = set()
        for cell in row.cells:
            for element in cell._tc.iter():
                tag = element.tag.rsplit("}", 1)[-1]
                if tag in ("top", "bottom"):
                    found.add(tag)
        return found

    assert edges(rows[0]) == {"top", "bottom"}
    assert edges(rows[-1]) == {"bottom"}
    assert all(edges(row) == set() for row in rows[1:-1])


def test_same_table_same_bytes_and_a_changed_number_changes_them():
    results, _ = _statsmodels_logit_results()
    (table,) = model_tables(results)
    first, second = table_docx(table), table_docx(table)
    assert first == second
    stamps = {entry.date_time for entry in zipfile.ZipFile(io.BytesIO(first)).infolist()}
    assert stamps == {FIXED_ZIP_TIME}
    term = results["outcomes"]["product"]["models"]["breadth"]["terms"]["breadth_regional"]
    term["estimate"] += 0.5
    (changed,) = model_tables(results)
    assert table_docx(changed) != first
    assert _grid(_read(table_docx(changed))) != _grid(_read(first))


def test_report_writes_the_models_tables_as_word_and_nothing_else_as_word():
    view = report_view(make_study_results("pipelines"))
    files = render_view(view)
    word = sorted(name for name in files if name.endswith(".docx"))
    main_tables = sorted(
        f"tables/{table.id}.docx" for table in model_tables(view) if table.id.endswith("-main")
    )
    assert word == main_tables and "tables/table-product-main.docx" in word
    grid = _grid(_read(files["tables/table-product-main.docx"]))
    csv_text = files["tables/table-product-main.csv"].decode("utf-8")
    assert grid[0][1] in csv_text and len(grid) >= 10
    assert render_report(make_study_results("pipelines")) == render_report(
        make_study_results("pipelines")
    )
