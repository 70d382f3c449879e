"""The lean Monte Carlo of the primary verdict family (issue 15's family-wise error check).

``bench/family_wise_error.py`` runs the study's own code path for the product outcome's eight
verdict rules (Holm-adjusted) on norway2010's design under a complete null (every product
effect of collaboration zero) and a partial null (the international effect kept, the other six
hypotheses true), with the parts no verdict reads switched off. Here: the lean run gives the full
study's verdicts, p-values and adjusted p-values exactly (so the Monte Carlo measures the study's
rule, not a copy of it), and a family-wise error counts only the world's true nulls.
"""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _bench():
    spec = importlib.util.spec_from_file_location(
        "family_wise_error", ROOT / "bench" / "family_wise_error.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fields(verdicts) -> list[tuple]:
    return [
        (v.finding, v.verdict, v.p_value, v.p_adjusted, v.family_size, v.quantity) for v in verdicts
    ]


def test_the_lean_run_decides_the_primary_family_as_the_full_study():
    bench = _bench()
    from buzzpipe.study import battery

    original = battery.fit_outcome_models
    full = bench.primary_verdicts("partial_null", 21)
    with bench._recovery().lean():
        lean = bench.primary_verdicts("partial_null", 21)
        assert battery.fit_outcome_models is not original
    assert battery.fit_outcome_models is original  # restored
    assert len(full) == 8
    assert _fields(lean) == _fields(full)


def test_family_wise_errors_count_only_true_nulls():
    bench = _bench()
    findings = ["international_effect", "regional_effect", *(f"f{i}" for i in range(6))]
    row = {"world": "partial_null", "findings": findings, "rule": "10000000", "raw": "11000000"}
    assert bench.errors(row) == (False, True)
    assert bench.errors({**row, "world": "complete_null"}) == (True, True)
    record = {
        "world": "partial_null",
        "findings": findings,
        "states": "onnnnnnn",
        "p": [0.001, 0.2, *([0.5] * 6)],
    }
    assert bench.errors(record) == (False, False)
    assert bench.errors({**record, "states": "nnnnnnno"}) == (True, False)
