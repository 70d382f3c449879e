"""The report as a reader sees it: opened in headless Chromium (driven by Playwright, see
``tests/browser_view.py``), with no console errors, no request leaving the file, every table and
figure visible, and a screenshot saved.

Where no browser is installed the tests are skipped with their reason (the parse check in
``test_html.py`` still runs), or fail where ``BUZZPIPE_REQUIRE_REFERENCES=1``. Set
BUZZPIPE_SCREENSHOT_DIR to keep the screenshots.
"""

import os
import shutil
from pathlib import Path

import pytest
from browser_view import BrowserError, view_page
from references import require_browser
from report_contents import check_rendered, expected_report_contents
from test_report_samples import make_study_results

from buzzpipe.report.write_report import REPORT_FILE, write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def browser() -> str:
    return require_browser()


def _keep(screenshot: Path) -> None:
    folder = os.environ.get("BUZZPIPE_SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(screenshot, Path(folder) / screenshot.name)


def test_report_in_headless_browser_shows_everything_without_errors(browser, tmp_path):
    results = make_study_results("pipelines")
    write_report(results, tmp_path)
    # what the report must show, counted from the results (not from the view that renders it)
    contents = expected_report_contents(results)
    tables, figures = contents.tables, contents.figures
    check_rendered((tmp_path / REPORT_FILE).read_text(encoding="utf-8"), contents)
    view = view_page(tmp_path / REPORT_FILE, tables + figures, browser=browser)
    screenshot = tmp_path / "report-screenshot.png"
    screenshot.write_bytes(view.screenshot)
    _keep(screenshot)
    assert view.console_errors == []
    assert view.requests == []
    assert view.invisible() == []
    assert view.elements["table-verdicts"]["rows"] == contents.findings
    for figure_id in figures:
        assert view.elements[figure_id]["image_decoded"]
        assert view.elements[figure_id]["image_width"] > 300
    width, height = view.page_size
    assert width >= 800 and height > 3000  # the whole report, not one screen
    assert view.screenshot.startswith(PNG_SIGNATURE) and len(view.screenshot) > 100_000


def test_browser_view_catches_errors_hidden_parts_and_outside_requests(browser, tmp_path):
    page = tmp_path / "faulty.html"
    page.write_text(
        "<!DOCTYPE html><html><head><title>faulty</title></head><body>"
        '<table id="shown"><tbody><tr><td>1</td></tr></tbody></table>'
        '<table id="hidden" style="display:none"><tbody><tr><td>1</td></tr></tbody></table>'
        '<figure id="broken"><img src="data:image/png;base64,AAAA"></figure>'
        '<img src="http://127.0.0.1:9/tile.png">'
        "<script>console.error('drawing failed'); undefinedFunction();</script>"
        "</body></html>",
        encoding="utf-8",
    )
    view = view_page(page, ["shown", "hidden", "broken", "absent"], browser=browser)
    assert sorted(view.invisible()) == ["absent", "broken", "hidden"]
    errors = " | ".join(view.console_errors)
    assert "drawing failed" in errors and "undefinedFunction" in errors
    assert view.requests == ["http://127.0.0.1:9/tile.png"]


def test_a_browser_that_dies_is_an_error_not_a_hang(tmp_path):
    page = tmp_path / "page.html"
    page.write_text("<!DOCTYPE html><title>x</title>", encoding="utf-8")
    with pytest.raises(BrowserError, match="did not start"):
        view_page(page, [], browser="/bin/false", timeout=20)
