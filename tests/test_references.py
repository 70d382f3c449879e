"""The reference switch: a missing R or browser skips with its reason, or fails where required."""

import browser_view
import pytest
import references


@pytest.fixture
def no_tools(monkeypatch):
    """As on a machine without Rscript or Chromium."""
    monkeypatch.setattr(references.shutil, "which", lambda name: None)
    monkeypatch.setattr(browser_view, "find_browser", lambda: None)
    references._r_problem.cache_clear()
    yield
    references._r_problem.cache_clear()


def test_without_the_switch_a_missing_reference_is_a_skip_with_its_reason(no_tools, monkeypatch):
    monkeypatch.delenv(references.REQUIRE_VARIABLE, raising=False)
    with pytest.raises(pytest.skip.Exception, match="Rscript is not installed.*r-cran-sandwich"):
        references.require_rscript("sandwich")
    with pytest.raises(pytest.skip.Exception, match="no headless browser"):
        references.require_browser()
    with pytest.raises(pytest.skip.Exception, match="pdflatex is not installed"):
        references.require_pdflatex()


@pytest.mark.parametrize("value", ["1", "yes"])
def test_with_the_switch_a_missing_reference_fails(no_tools, monkeypatch, value):
    monkeypatch.setenv(references.REQUIRE_VARIABLE, value)
    with pytest.raises(pytest.fail.Exception, match="a missing reference is a failure"):
        references.require_rscript("sandwich", "MASS")
    with pytest.raises(pytest.fail.Exception, match="no headless browser"):
        references.require_browser()
    with pytest.raises(pytest.fail.Exception, match="pdflatex is not installed"):
        references.require_pdflatex()


def test_the_switch_off_values(monkeypatch):
    for value in ("", "0"):
        monkeypatch.setenv(references.REQUIRE_VARIABLE, value)
        assert not references.references_required()
    monkeypatch.setenv(references.REQUIRE_VARIABLE, "1")
    assert references.references_required()


def test_ci_sets_the_switch_where_it_can_install_the_references():
    from pathlib import Path

    script = (Path(__file__).parents[1] / ".ci" / "run").read_text()
    assert "export BUZZPIPE_REQUIRE_REFERENCES=1" in script
    assert "bash scripts/test.sh --slow" in script
    assert "texlive-latex-base texlive-latex-recommended" in script
