"""The always-on HTML check: the report fetches nothing and has every table and figure.

Each kind of fault the check looks for is planted in a copy of a good report and must be found.
"""

import base64

import pytest
from test_report_samples import make_results

from buzzpipe.report.html_check import check_report_html
from buzzpipe.report.write_report import REPORT_FILE, expected_contents, render_view


@pytest.fixture(scope="module")
def report():
    results = make_results("buzz")
    html = render_view(results)[REPORT_FILE].decode("utf-8")
    tables, figures = expected_contents(results)
    return html, tables, figures


def test_report_passes_the_check_and_mentions_no_url_at_all(report):
    html, tables, figures = report
    assert check_report_html(html, tables, figures) == []
    assert "http:" not in html and "https:" not in html
    assert len(tables) == 14 and len(figures) == 4
    assert html.count("<figure ") == len(figures)
    assert html.count('<table id="table-') == len(tables)


def test_every_outcome_and_verdict_appears(report):
    html, _, _ = report
    for label in ("Product innovation", "Process innovation", "New-to-market innovation"):
        assert label in html
    assert html.count('<li class="found">') == 2  # regional effect and spill-over, in buzz
    assert html.count('<li class="not_found">') == 3
    assert html.count('<li class="not_assessed">') == 1


_SVG_WITH_OUTSIDE_IMAGE = base64.b64encode(
    b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
    b'<image xlink:href="https://tiles.example.org/a.png"/></svg>'
).decode()


@pytest.mark.parametrize(
    "plant, found",
    [
        ("<img src='https://example.org/logo.png'>", "external URL"),
        ('<link rel="stylesheet" href="https://fonts.example.org/a.css">', "<link> element"),
        ("<script src='//cdn.example.org/x.js'></script>", "external URL"),
        ("<style>body { background: url(https://example.org/bg.png); }</style>", "is external"),
        ("<style>@import 'theme.css';</style>", "@import"),
        ("<p style=\"background-image: url('paper.jpg')\">x</p>", "is external"),
        ("<iframe srcdoc='x'></iframe>", "<iframe> element"),
        (f"<img src='data:image/svg+xml;base64,{_SVG_WITH_OUTSIDE_IMAGE}'>", "refers outside"),
        ("<a href='http://example.org'>more</a>", "external URL"),
    ],
)
def test_planted_outside_references_are_found(report, plant, found):
    html, tables, figures = report
    broken = html.replace("</main>", plant + "</main>")
    problems = check_report_html(broken, tables, figures)
    assert any(found in problem for problem in problems), problems


def test_a_missing_table_an_empty_figure_and_a_dead_contents_link_are_found(report):
    html, tables, figures = report
    without_table = html.replace('id="table-tests"', 'id="table-gone"')
    assert "table 'table-tests' is missing" in check_report_html(without_table, tables, figures)
    start = html.index('<figure id="figure-regimes">')
    source = html.index('src="', start) + len('src="')
    end = html.index('"', source)
    empty_figure = html[:source] + html[end:]
    assert "figure 'figure-regimes' has no inline image" in check_report_html(
        empty_figure, tables, figures
    )
    dead_link = html.replace('href="#tests"', 'href="#nowhere"')
    assert any("'#nowhere'" in p for p in check_report_html(dead_link, tables, figures))
    no_rows = html.replace('<tr class="plain"><th scope="row">Pipelines versus buzz', "<xr>")
    no_rows = no_rows.replace('<tr class="plain"><th scope="row">Ratio', "<xr>")
    no_rows = no_rows.replace('<tr class="plain"><th scope="row">Complementarity', "<xr>")
    assert "table 'table-tests' has no body rows" in check_report_html(no_rows, tables, figures)
