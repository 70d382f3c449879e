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
    no_rows = no_rows.replace('<tr class="section">', "<xr>")  # the outcome headings
    assert "table 'table-tests' has no body rows" in check_report_html(no_rows, tables, figures)


@pytest.mark.parametrize(
    "text, kept",
    [
        ("0.123 [-0.009, 0.255]", "0.123 [-0.009,\u00a00.255]"),
        ("< 0.001", "<\u00a00.001"),
        ("\u03c7\u00b2(6) = 3.17", "\u03c7\u00b2(6)\u00a0=\u00a03.17"),
        ("46.9% [44.4%, 49.5%]", "46.9% [44.4%,\u00a049.5%]"),
        ("no partner type at the regional scale", "no partner type at the regional scale"),
    ],
)
def test_numbers_keep_their_interval_and_sign_on_one_line_in_html(text, kept):
    from buzzpipe.report.table_formats import keep_together

    assert keep_together(text) == kept


def test_html_only_changes_spaces_and_the_csv_keeps_plain_ones(report):
    from buzzpipe.report.table_formats import table_csv, table_html
    from buzzpipe.report.tables import all_tables

    tests = next(t for t in all_tables(make_results("buzz")) if t.id == "table-tests")
    assert "\u00a0" in table_html(tests) and "\u00a0" not in table_csv(tests)
    html, _, _ = report
    assert '<td colspan="6" class="notes"><div>Notes: ' in html  # notes wrap, never widen


def test_verdict_rules_read_in_words_without_json_paths():
    from buzzpipe.report.wording import rule_text

    regional = ["models/{outcome}/controls/breadth_regional"]
    quantity = "models/product/controls/breadth_regional"
    assert rule_text("two_sided", regional, 0.05, "product", quantity) == (
        "two-sided test of regional breadth in the breadth and controls model at 0.05"
    )
    assert rule_text("one_sided", [], 0.05, "product", quantity).endswith(
        "(used: regional breadth in the breadth and controls model)"
    )
    either = [
        "tests/{outcome}/international_minus_regional",
        "tests/{outcome}/international_minus_national",
    ]
    assert rule_text(
        "two_sided", either, 0.05, "process", "tests/process/international_minus_national"
    ) == (
        "two-sided test of international = regional breadth, else international = national "
        "breadth at 0.05 (used: international = national breadth)"
    )
    supermodularity = ["tests/{outcome}/supermodularity"]
    assert (
        rule_text("one_sided", supermodularity, 0.05, "product", "tests/product/supermodularity")
        == "one-sided test of supermodularity of local and global collaboration (log-odds "
        "scale) at 0.05"
    )
    first = "tests/{outcome}/first_partner_international_minus_regional"
    used = "tests/product/first_partner_international_minus_regional_wild_bootstrap"
    assert rule_text(
        "two_sided", [first + "_wild_bootstrap", first], 0.05, "product", used
    ).endswith(
        "(used: the first international = the first regional kind of partner (probability "
        "scale, controls model), wild bootstrap)"
    )


def test_findings_list_each_scale_apart_under_a_heading_naming_it():
    from buzzpipe.report.html_report import scale_groups

    def results(family: str) -> dict:
        model = {"family": family, "terms": {}}
        return {"outcomes": {"product": {"label": "Product", "models": {"controls": model}}}}

    verdicts = [
        ({"outcome": "product", "scale": "odds_ratio"}, "international"),
        ({"outcome": "product", "scale": None}, "pipelines stronger"),
        ({"outcome": "product", "scale": "odds_ratio"}, "regional"),
        ({"outcome": "product", "scale": "probability"}, "Ai-Norton"),
        ({"outcome": "product", "scale": "joint"}, "sector"),
        ({"outcome": "product", "scale": None}, "spill-over"),
    ]
    groups = scale_groups(results("logit"), verdicts)
    assert [(heading.split(" (")[0], [s for _, s in items]) for heading, items in groups] == [
        ("Odds ratios per additional kind of partner", ["international", "regional"]),
        (
            "Differences and interactions on the log-odds scale",
            ["pipelines stronger", "spill-over"],
        ),
        ("On the probability scale", ["Ai-Norton"]),
        ("Joint tests", ["sector"]),
    ]
    missing = ({"outcome": "product", "scale": None, "state": "not_assessed"}, "spill-over")
    assert [h for h, _ in scale_groups(results("logit"), [missing])] == [
        "Not assessed (no estimate to show)"
    ]
    (heading, _), *_ = scale_groups(results("probit"), verdicts[1:2])
    assert heading == "Differences and interactions on the probit index scale (0 = none)"


def test_a_set_unbounded_both_ways_is_shown_without_its_point_estimate():
    from buzzpipe.report.tables import _estimate_text

    rays = [[None, -2.049], [1.874, None]]
    assert (
        _estimate_text(405.482, rays)
        == "not bounded: [\u2212\u221e, -2.049] \u222a [1.874, \u221e]"
    )
    assert _estimate_text(1.0, [None, None]).startswith("not bounded: ")
    # a one-sided bound and a bounded interval keep their estimate
    assert _estimate_text(0.441, [-0.287, None]) == "0.441 [-0.287, \u221e]"
    assert _estimate_text(0.042, [0.016, 0.069]) == "0.042 [0.016, 0.069]"
