"""What importing the study's path costs: no ``scipy.stats`` (0.6 s of CPU in a fresh process;
the study needs only distribution functions, which ``estimate/reference.py`` takes from
``scipy.special``) and no ``scipy.optimize`` (the separation linear program imports it when
it runs); parsing the commands' options imports no estimation machinery; the collector does not
pass over what the battery's and the report's imports make; and the normal functions of
``reference.py`` equal scipy.stats' bit for bit."""

import gc
import subprocess
import sys
from unittest import mock

import numpy as np
from scipy import stats

from buzzpipe.end_to_end import _imports_not_collected
from buzzpipe.estimate.reference import normal_cdf, normal_pdf

STUDY_PATH = (
    "buzzpipe.cli",
    "buzzpipe.end_to_end",
    "buzzpipe.study.battery",
    "buzzpipe.estimate.fitting",
    "buzzpipe.estimate.margins",
    "buzzpipe.estimate.diagnostics",
    "buzzpipe.report.write_report",
)


def test_the_study_path_does_not_import_scipy_stats_or_optimize():
    code = (
        "import importlib, sys\n"
        f"for name in {STUDY_PATH!r}: importlib.import_module(name)\n"
        "print(sorted(m for m in ('scipy.stats', 'scipy.optimize') if m in sys.modules))"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert found == "[]"


# what the study commands import to parse their options (``cli._engine`` and ``_specification``
# read the study file's rules: ``study.specification`` and, through it, ``study.verdicts``)
OPTIONS_PATH = ("buzzpipe.cli", "buzzpipe.end_to_end", "buzzpipe.study.specification")


def test_parsing_the_options_imports_no_estimation_machinery():
    """A command that stops at a bad option or input (``replicate --firms 10``) answers before
    numba, scipy and formulaic load (0.5-0.7 s of CPU in a fresh process): the battery imports
    them when it runs."""
    code = (
        "import importlib, sys\n"
        f"for name in {OPTIONS_PATH!r}: importlib.import_module(name)\n"
        "heavy = ('numba', 'scipy', 'formulaic', 'buzzpipe.estimate.wild_bootstrap')\n"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert found == "[]"


def test_normal_functions_are_scipy_stats_bit_for_bit():
    x = np.concatenate([np.linspace(-40, 40, 20_001), [np.inf, -np.inf, np.nan, 0.0, -0.0]])
    for ours, theirs in ((normal_cdf, stats.norm.cdf), (normal_pdf, stats.norm.pdf)):
        assert np.array_equal(ours(x), theirs(x), equal_nan=True)
        assert np.array_equal(ours(np.arange(-5, 6)), theirs(np.arange(-5, 6)))
        for value in (1.5, 3, np.float64(-2.0), np.array(0.3)):
            got, expected = ours(value), theirs(value)
            assert got == expected and type(got) is type(expected)


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_imports_go_to_the_oldest_generation_unscanned():
    """Inside ``_imports_not_collected`` the collector is off; at its end what was made is in
    the oldest generation and nothing is left frozen; a cycle made inside is still found by a
    full pass."""
    assert gc.isenabled() and gc.get_freeze_count() == 0
    with _imports_not_collected():
        assert not gc.isenabled()
        made = _Cycle()
        cycle_id = id(made)
        del made
    assert gc.isenabled() and gc.get_freeze_count() == 0
    assert any(id(o) == cycle_id for o in gc.get_objects(generation=2))
    assert not any(id(o) == cycle_id for o in gc.get_objects(generation=0))
    assert gc.collect() >= 1


def test_imports_not_collected_leaves_a_callers_freeze_and_a_disabled_collector():
    gc.freeze()
    try:
        with mock.patch("gc.freeze") as freeze, mock.patch("gc.unfreeze") as unfreeze:
            with _imports_not_collected():
                assert gc.isenabled()
        assert freeze.call_count == 0 and unfreeze.call_count == 0
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
    gc.disable()
    try:
        with mock.patch("gc.freeze") as freeze, _imports_not_collected():
            pass
        assert freeze.call_count == 0 and not gc.isenabled()
    finally:
        gc.enable()


def test_imports_not_collected_turns_the_collector_back_on_after_an_error():
    try:
        with _imports_not_collected():
            raise KeyError("x")
    except KeyError:
        pass
    assert gc.isenabled() and gc.get_freeze_count() == 0
