"""``bench/memory_peaks.py``, the measuring code of the memory benchmarks and of the slow memory
test: a part's peak is exact (the kernel's high-water mark), so an array held for a moment is
charged to the part that held it and to no other; a child process's peak is its own mark."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
MIB = 2**20


@pytest.fixture(scope="module")
def peaks():
    spec = importlib.util.spec_from_file_location("memory_peaks", BENCH / "memory_peaks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _hold(mib: int) -> None:
    held = np.ones(mib * MIB // 8)  # written, so resident
    del held


def test_a_moments_array_is_charged_to_the_part_that_held_it(peaks):
    ledger = peaks.Ledger()
    if not ledger.exact:
        pytest.skip("no high-water mark to reset here (not Linux)")
    ledger.wrap("quiet", lambda: None)()
    ledger.wrap("outer", lambda: (ledger.wrap("inner", _hold)(160), _hold(40)))()
    ledger.wrap("after", lambda: None)()
    ledger.finish()
    rows = ledger.rows
    assert rows["inner"]["grew"] >= 150 * MIB  # no sampler ran: the mark saw it
    assert rows["outer"]["grew"] >= rows["inner"]["grew"]  # nested parts count in the outer
    assert rows["quiet"]["grew"] < 20 * MIB and rows["after"]["grew"] < 20 * MIB
    assert ledger.peak >= rows["inner"]["max"] >= rows["inner"]["first"] + 150 * MIB


def test_a_childs_peak_is_its_own_high_water_mark(peaks):
    if peaks.high_water() is None:
        pytest.skip("no high-water marks here (not Linux)")
    child = (
        "import subprocess, sys; subprocess.run([sys.executable, '-c', "
        "'import time, numpy; a = numpy.ones(30 * 2**20); del a; time.sleep(1.0)'], check=True)"
    )
    _, measures, code = peaks.run_measured([sys.executable, "-c", child])
    assert code == 0 and measures["child_count"] >= 1
    assert measures["largest_child"] >= 240 * MIB  # 240 MiB held for a moment, then freed
    assert measures["children_high_water"] >= measures["largest_child"]
