"""External references (R, a headless browser, pdflatex) that a test needs: skip where absent,
fail where they are required.

A test that compares with R or looks at the report in Chromium calls ``require_rscript`` or
``require_browser``. Where the tool is missing the test is skipped with its reason (``-rs`` in
pytest's options lists every skip). With ``BUZZPIPE_REQUIRE_REFERENCES=1`` in the environment,
as ``.ci/run`` sets it wherever it could install R, Chromium and TeX, a missing reference is a
failure instead: a reference can then never vanish from CI without a red run.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REQUIRE_VARIABLE = "BUZZPIPE_REQUIRE_REFERENCES"


def references_required() -> bool:
    """True where the environment says a missing reference must fail the run."""
    return os.environ.get(REQUIRE_VARIABLE, "").strip() not in ("", "0")


def _calling_test() -> str:
    """The name of the test (or fixture) that asked for the reference, for the skip line."""
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_code.co_name
        if name.startswith("test_") or frame.f_code.co_filename.endswith("conftest.py"):
            return f"{Path(frame.f_code.co_filename).name}::{name}: "
        frame = frame.f_back
    return ""


def missing_reference(reason: str) -> None:
    """Skip the calling test with ``reason``, or fail it where references are required."""
    reason = _calling_test() + reason
    if references_required():
        pytest.fail(f"{reason} ({REQUIRE_VARIABLE} is set: a missing reference is a failure)")
    pytest.skip(reason)


@functools.cache
def _r_problem(packages: tuple[str, ...]) -> str | None:
    if shutil.which("Rscript") is None:
        return "Rscript is not installed"
    if not packages:
        return None
    loads = "; ".join(f"library({name})" for name in packages)
    try:
        probe = subprocess.run(["Rscript", "-e", loads], capture_output=True, timeout=120)
    except subprocess.TimeoutExpired:
        return f"Rscript did not load {', '.join(packages)} within 120 s"
    if probe.returncode != 0:
        return f"R cannot load {', '.join(packages)}"
    return None


def require_rscript(*packages: str) -> None:
    """Skip (or fail, where required) unless Rscript runs and loads every package named."""
    problem = _r_problem(tuple(packages))
    if problem is not None:
        install = " ".join(["r-base-core", *(f"r-cran-{name.lower()}" for name in packages)])
        missing_reference(
            f"{problem}: the comparison with R did not run (apt-get install {install})"
        )


def require_browser() -> str:
    """The headless browser's path; skip (or fail, where required) where none is installed."""
    from browser_view import find_browser

    path = find_browser()
    if path is None:
        missing_reference(
            "no headless browser (chromium) found: the report was not checked as a reader sees "
            "it; install Debian's chromium (as .ci/run does) to run this check"
        )
    return path


def require_pdflatex() -> str:
    """pdflatex's path, where it and booktabs and tabularx are installed; skip (or fail, where
    required) otherwise."""
    path = shutil.which("pdflatex")
    if path is None:
        missing_reference(
            "pdflatex is not installed: the LaTeX tables were not compiled (apt-get install "
            "texlive-latex-base texlive-latex-recommended, as .ci/run does)"
        )
    kpsewhich = shutil.which("kpsewhich")
    for package in ("booktabs.sty", "tabularx.sty"):
        found = (
            kpsewhich
            and subprocess.run(
                [kpsewhich, package], capture_output=True, text=True, timeout=60
            ).stdout.strip()
        )
        if not found:
            missing_reference(
                f"{package} is not installed: the LaTeX tables were not compiled (apt-get "
                "install texlive-latex-recommended)"
            )
    return path
