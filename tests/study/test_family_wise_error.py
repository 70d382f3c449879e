"""The primary verdict family's family-wise error over 2,000 seeds (issue 15's slow check).

``bench/family_wise_error.py`` runs the study's own code path for the product outcome's eight
verdict rules (Holm-adjusted) on norway2010's design under a complete null (every product
effect of collaboration zero) and a partial null (the international effect kept, the other six
hypotheses true), with the parts no verdict reads switched off. Its per-seed results are stored
(``data/family_wise_error.csv``: which findings the rule rejects and which have an unadjusted p
below 5%); the docs' table (docs/few_clusters.md) and ``inference_rule.FAMILY_WISE_ERROR`` are
their counts. The family measured is the one whose pipelines-versus-buzz rule reads the region
bootstrap of the common-support difference (issue 16); the lean run's equality with the full
study (below) is what ties the stored rows to the code a rerun of the slow test uses.

- fast: the lean run gives the full study's verdicts, p-values and adjusted p-values exactly
  (so the Monte Carlo measures the study's rule, not a copy of it); a family-wise error counts
  only the world's true nulls;
- slow: the stored counts are the docs' and the code's, the rule's rate is at most 5% plus two
  Monte Carlo errors in both worlds, and a rerun of the first ten seeds of each world reproduces
  the stored rows.
"""

import importlib.util
import math
from pathlib import Path

import pytest
from bands import Claim, at_most, states

from buzzpipe.estimate.inference_rule import FAMILY_WISE_ERROR

ROOT = Path(__file__).resolve().parents[2]
STORED = Path(__file__).parent / "data" / "family_wise_error.csv"
DOCS = ROOT / "docs" / "few_clusters.md"


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


SEEDS = FAMILY_WISE_ERROR["complete_null"][0]  # per world: the 2,000
FWER = Claim(
    f"family-wise errors of the rule at 5% over {SEEDS} seeds",
    at_most(SEEDS, 0.05),
    0.05,
    (("a family-wise error rate of 10%", 0.10),),
)


@pytest.mark.slow
@states(FWER)
def test_the_rule_holds_the_family_wise_error_rate_under_a_complete_and_a_partial_null():
    """The stored seeds of each world (2,000, seeds 21-2020): the counts are the docs' table and
    ``FAMILY_WISE_ERROR``; the rule's family-wise rate is at most 5% plus two Monte Carlo errors
    (the issue's bound) and inside the claim's band, the unadjusted rate recorded beside it; the
    first seeds of each world rerun give the stored rows.

    family-wise errors of the rule at 5% over 2000 seeds: at most 123 of 2000; correct (0.05)
    passes with probability 0.990; a family-wise error rate of 10% fails with probability 0.999.
    """
    bench = _bench()
    rows = bench.read_summary(STORED)
    counted = bench.counts(rows)
    assert counted == FAMILY_WISE_ERROR
    text = DOCS.read_text()
    for world, (seeds, adjusted, raw) in counted.items():
        assert seeds == FWER.band.trials
        assert sorted(r["seed"] for r in rows if r["world"] == world) == list(range(21, 21 + seeds))
        assert adjusted / seeds <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / seeds)
        FWER.band.check(adjusted, f"{world}: family-wise errors of the rule")
        assert raw > adjusted  # the adjustment is what holds it
        line = next(r for r in text.splitlines() if r.startswith(f"| {world.replace('_', ' ')} |"))
        assert f"| {seeds} | {adjusted}/{seeds} = " in line and f"| {raw}/{seeds} = " in line
    rerun = []
    with bench._recovery().lean():
        for seed in range(21, 31):
            for world in bench.WORLDS:
                verdicts = bench.primary_verdicts(world, seed)
                rerun.append(bench.record(world, seed, verdicts, 0.0))
    stored = {(r["world"], r["seed"]): r for r in rows}
    for row in bench.summary_rows(rerun):
        assert row == stored[(row["world"], row["seed"])]
