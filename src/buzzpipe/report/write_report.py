"""Render every output of the report from a results structure and write them atomically.

Everything is rendered in memory first, so a failure while rendering writes nothing; each file
is then written through ``atomic_write`` so none is ever half-written.
"""

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from buzzpipe.atomic_write import write_bytes
from buzzpipe.report.figures import all_figures, figure_ids
from buzzpipe.report.html_check import check_report_html
from buzzpipe.report.html_report import build_html
from buzzpipe.report.results_schema import dumps_results, validate_results
from buzzpipe.report.table_formats import table_csv, table_latex
from buzzpipe.report.tables import all_tables

REPORT_FILE = "report.html"
RESULTS_FILE = "results.json"


def render_report(results: Mapping[str, Any]) -> dict[str, bytes]:
    """Every output file, path relative to the output folder -> bytes.

    The HTML is checked before anything is returned (no external URL, every table and figure
    present); a failed check is a bug in the report, so it raises ``AssertionError``.
    """
    validate_results(results)
    tables = all_tables(results)
    figures = all_figures(results)
    html = build_html(results, tables, figures)
    problems = check_report_html(html, [t.id for t in tables], [f.id for f in figures])
    if problems:
        raise AssertionError("the rendered report fails its own check: " + "; ".join(problems))
    files: dict[str, bytes] = {RESULTS_FILE: dumps_results(results).encode("utf-8")}
    files[REPORT_FILE] = html.encode("utf-8")
    for table in tables:
        files[f"tables/{table.id}.csv"] = table_csv(table).encode("utf-8")
        files[f"tables/{table.id}.tex"] = table_latex(table).encode("utf-8")
    for figure in figures:
        files[f"figures/{figure.id}.png"] = figure.png
        files[f"figures/{figure.id}.svg"] = figure.svg
    return files


def write_report(results: Mapping[str, Any], out_dir: str | os.PathLike) -> list[Path]:
    """Write results.json, report.html, tables (CSV, LaTeX) and figures (PNG, SVG) to out_dir."""
    out_dir = Path(out_dir)
    files = render_report(results)
    written = []
    for relative, data in files.items():
        target = out_dir / relative
        write_bytes(target, data)
        written.append(target)
    return written


def expected_contents(results: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Ids of the tables and figures a report of these results must contain."""
    tables = [table.id for table in all_tables(results)]
    return tables, figure_ids(results)
