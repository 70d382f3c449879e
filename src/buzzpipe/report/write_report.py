"""Render every output of the report from ``results.json`` data and write them atomically.

Everything is rendered in memory first, so a failure while rendering writes nothing; the files
are then written as one folder through ``output_folder``: the new report whole, or the earlier
one untouched. ``report_from_file``
re-renders a whole report from a saved ``results.json`` alone (``buzzpipe report``).
"""

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from buzzpipe.output_folder import check_output_folder, write_folder
from buzzpipe.report.figures import all_figures, figure_ids
from buzzpipe.report.html_check import check_report_html
from buzzpipe.report.html_report import build_html
from buzzpipe.report.table_formats import table_csv, table_latex
from buzzpipe.report.tables import DEFAULT_STYLE, TableStyle, all_tables
from buzzpipe.report.tidy import tidy_files
from buzzpipe.report.view import as_results, report_view
from buzzpipe.report.view_schema import validate_view
from buzzpipe.report.word_table import table_docx
from buzzpipe.results import StudyResults, dumps_results, read_results

REPORT_FILE = "report.html"
RESULTS_FILE = "results.json"
WORD_TABLE_SUFFIX = "-main"  # the models tables (odds ratios) are also written for Word


def render_view(view: Mapping[str, Any], style: TableStyle = DEFAULT_STYLE) -> dict[str, bytes]:
    """The report's files from a report view: path relative to the output folder -> bytes;
    ``style`` chooses what the models tables print under each estimate and whether logit
    columns are odds ratios (``--statistic``, ``--eform``/``--no-eform``).

    The HTML is checked before anything is returned (no external URL, every table and figure
    present); a failed check is a bug in the report, so it raises ``AssertionError``.
    """
    validate_view(view)
    tables = all_tables(view, style)
    figures = all_figures(view)
    html = build_html(view, tables, figures)
    problems = check_report_html(html, [t.id for t in tables], [f.id for f in figures])
    if problems:
        raise AssertionError("the rendered report fails its own check: " + "; ".join(problems))
    files: dict[str, bytes] = {REPORT_FILE: html.encode("utf-8")}
    for table in tables:
        files[f"tables/{table.id}.csv"] = table_csv(table).encode("utf-8")
        files[f"tables/{table.id}.tex"] = table_latex(table).encode("utf-8")
        if table.id.endswith(WORD_TABLE_SUFFIX):
            files[f"tables/{table.id}.docx"] = table_docx(table)
    for figure in figures:
        files[f"figures/{figure.id}.png"] = figure.png
        files[f"figures/{figure.id}.svg"] = figure.svg
    return files


def render_report(
    results: StudyResults | Mapping[str, Any], style: TableStyle = DEFAULT_STYLE
) -> dict[str, bytes]:
    """``results.json`` (checked once, as it is encoded) and every file of the report, from
    the study's results (typed, or JSON data)."""
    results = as_results(results)
    files = {RESULTS_FILE: dumps_results(results).encode("utf-8")}
    files.update(tidy_files(results))  # every model term, as broom::tidy names the columns
    files.update(render_view(report_view(results), style))
    return files


def write_files(files: Mapping[str, bytes], out_dir: str | os.PathLike) -> list[Path]:
    """Write rendered files into out_dir as one report: all of them or none (an earlier report
    there is replaced whole, see ``buzzpipe.output_folder``)."""
    return write_folder(out_dir, files, kind="report")


def write_report(
    results: StudyResults | Mapping[str, Any],
    out_dir: str | os.PathLike,
    style: TableStyle = DEFAULT_STYLE,
) -> list[Path]:
    """Write the report of a study: results.json, report.html, tables and figures.

    Parameters
    ----------
    results : StudyResults or dict
        The study's results (``run_study(...)`` or :func:`buzzpipe.read_results`), or JSON data
        in ``results.json``'s structure (checked; a format-1 structure is converted).
    out_dir : str or os.PathLike
        The folder to write into (created if missing).
    style : TableStyle, optional
        What the models tables print under each estimate (``statistic``: ``se`` in
        parentheses, the default; ``t``; ``ci`` in brackets) and whether logit and
        ordered-logit columns are odds ratios (``eform``, the default) or coefficients.

    Returns
    -------
    list of pathlib.Path
        The files written.

    Notes
    -----
    The report is made from the results alone (nothing is re-estimated): a self-contained
    ``report.html`` (findings in words from the verdicts, paper-style tables, figures; nothing
    fetched from the network), ``tidy.csv`` and ``tidy.parquet`` (every model term with
    broom's column names, numbers at full precision), ``tidy_verdicts.csv`` and
    ``tidy_verdicts.parquet`` (every verdict with its adjusted p and the inference read), every
    table as CSV and LaTeX (models
    tables also as Word) and every figure as PNG and SVG. Everything is rendered before
    anything is written; ``results.json`` is checked once, as it is encoded.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import buzzpipe as bp
    >>> survey = bp.synthesize("norway2010", seed=1, firms=400)
    >>> results = bp.run_study(survey, seed=1, outcomes=["product"], sensitivity=False,
    ...                        heterogeneity=False, bootstrap_replications=0, scenarios=())
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> written = bp.write_report(results, folder)
    >>> (folder / "report.html").exists(), (folder / "results.json").exists()
    (True, True)
    """
    return write_files(render_report(results, style), out_dir)


def report_from_file(
    results_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    style: TableStyle = DEFAULT_STYLE,
) -> list[Path]:
    """Re-render every file of the report from a saved ``results.json`` alone.

    The file is read and checked first (a bad one raises one ``InputError`` line) and the whole
    report is rendered before anything is written, so a failure leaves the folder untouched.
    """
    check_output_folder(out_dir)
    return write_report(read_results(results_path), out_dir, style)


def expected_contents(view: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Ids of the tables and figures a report of this view must contain."""
    return [table.id for table in all_tables(view)], figure_ids(view)
