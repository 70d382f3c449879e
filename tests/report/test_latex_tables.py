"""Every LaTeX table compiles with pdflatex in an article (10pt, its default text width) with no
overfull box: the golden norway2010 report's tables under each ``--statistic`` and
``--eform``/``--no-eform``, and the hand-made results' tables. Skipped with its reason where
pdflatex, booktabs or tabularx is missing; a failure where references are required (.ci/run
installs Debian's texlive-latex-base and texlive-latex-recommended)."""

import re
import subprocess
from pathlib import Path

import pytest
from references import require_pdflatex
from test_report_samples import make_results, make_study_results

from buzzpipe.report.table_formats import table_latex
from buzzpipe.report.tables import Table, TableStyle, all_tables
from buzzpipe.report.view import report_view
from buzzpipe.results import read_results

GOLDEN = Path(__file__).parents[1] / "results" / "golden" / "norway2010" / "results_format1.json"
STYLES = (TableStyle(), TableStyle("ci"), TableStyle("t", eform=False), TableStyle("ci", False))
MARK = "BUZZPIPE-TABLE:"


def _every_table() -> dict[str, Table]:
    tables: dict[str, Table] = {}
    golden = report_view(read_results(GOLDEN))
    for style in STYLES:
        for table in all_tables(golden, style):
            tables[f"norway2010 {style.statistic} eform={style.eform} {table.id}"] = table
    for name, view in (
        ("hand-made", make_results()),
        ("hand-made study", report_view(make_study_results("buzz"))),
    ):
        for table in all_tables(view):
            tables[f"{name} {table.id}"] = table
    return tables


def _compile(tables: dict[str, Table], folder: Path) -> str:
    """One article holding every table, each after a mark in the log; the log's text."""
    body = []
    for index, (name, table) in enumerate(tables.items()):
        (folder / f"t{index}.tex").write_text(table_latex(table), encoding="ascii")
        body += [f"\\typeout{{{MARK}{name}}}", f"\\input{{t{index}}}", "\\clearpage"]
    document = "\n".join(
        [
            r"\documentclass{article}",
            r"\usepackage{booktabs}",
            r"\usepackage{tabularx}",
            r"\begin{document}",
            *body,
            r"\end{document}",
        ]
    )
    (folder / "tables.tex").write_text(document, encoding="ascii")
    run = subprocess.run(
        [require_pdflatex(), "-interaction=nonstopmode", "-halt-on-error", "tables.tex"],
        cwd=folder,
        capture_output=True,
        timeout=300,
    )
    log = (folder / "tables.log").read_text(encoding="latin-1")
    assert run.returncode == 0, log[-3000:]
    return log


def _boxes_by_table(log: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for part in log.split(MARK)[1:]:
        name, _, rest = part.partition("\n")
        boxes = re.findall(r"Overfull \\hbox \([0-9.]+pt too wide\)[^\n]*", rest)
        if boxes:
            found[name] = boxes
    return found


def test_every_latex_table_fits_an_articles_text_width(tmp_path):
    require_pdflatex()
    tables = _every_table()
    assert len(tables) > 100
    log = _compile(tables, tmp_path)
    assert log.count(MARK) >= len(tables)  # every table was typeset
    assert _boxes_by_table(log) == {}


def test_the_check_finds_an_overfull_table(tmp_path):
    """The pair: a table wider than the page does show up as an overfull box."""
    require_pdflatex()
    table = next(iter(_every_table().values()))
    latex = table_latex(table).replace(
        r"\end{table}", r"\noindent\rule{1.5\linewidth}{1pt}\par" "\n" r"\end{table}"
    )
    (tmp_path / "wide.tex").write_text(latex, encoding="ascii")
    wide = Table(id="wide", title="wide", header=("",), rows=())
    log = _compile({"wide": wide}, tmp_path)
    assert _boxes_by_table(log) == {}
    document = (tmp_path / "tables.tex").read_text(encoding="ascii").replace("{t0}", "{wide}")
    (tmp_path / "tables.tex").write_text(document, encoding="ascii")
    subprocess.run(
        [require_pdflatex(), "-interaction=nonstopmode", "tables.tex"],
        cwd=tmp_path,
        capture_output=True,
        timeout=300,
    )
    log = (tmp_path / "tables.log").read_text(encoding="latin-1")
    assert list(_boxes_by_table(log)) == ["wide"]


@pytest.mark.parametrize("statistic", ["se", "ci"])
def test_numbered_model_headers_are_abbreviated_with_a_key(statistic):
    golden = report_view(read_results(GOLDEN))
    table = next(t for t in all_tables(golden, TableStyle(statistic)) if t.id.endswith("main"))
    latex = table_latex(table)
    assert " & (1) & (2) & (3)" in latex
    assert "Columns: (1) Regional alone; (2) National alone" in latex
    assert r"\toprule" in latex and r"\bottomrule" in latex  # booktabs
