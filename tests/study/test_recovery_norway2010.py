"""Recovery of the published pattern on norway2010 under the headline rule (slow; issue 15).

The rule (docs/few_clusters.md, ``estimate/inference_rule.py``) was fixed before the run. Over the
scored seeds 21-320 the verdict battery of the product outcome (bench/recovery_norway2010.py,
confidence sets skipped: no verdict reads them) must reproduce the docs' table exactly (the
seeds fix every draw), and the "not found" items must read "not found" at a rate whose 95%
interval reaches 1 minus the nominal 5%: the adjusted family cannot claim them more often.
It is its own tier (marker ``recovery``, ``bash scripts/test.sh --recovery``), outside the slow
tier that CI runs. The docs' table was rerun whole in the current family of eight (4e09b02, the
bench's lean mode: about 0.3-0.6 s of CPU a seed), and the whole recovery tier passed on 53e52c6
(4 passed in 5 min 32 s at load 4).
"""

import importlib.util
import json
from pathlib import Path

import pytest

from buzzpipe.estimate.inference_rule import RECOVERY_NORWAY2010, RECOVERY_SEEDS
from buzzpipe.synth.power import binomial_interval

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _bench(name: str = "recovery_norway2010"):
    """A bench script as a module (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.recovery
def test_recovery_over_300_seeds_is_the_docs_table(tmp_path):
    bench = _bench()
    bench._no_sets()
    out = tmp_path / "recovery.jsonl"
    bench.run(list(range(21, 21 + RECOVERY_SEEDS)), out, "norway2010")
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == RECOVERY_SEEDS >= 300
    for finding, (adjusted, raw) in RECOVERY_NORWAY2010.items():
        found = sum(r["verdicts"][finding]["state"] == "found" for r in records)
        below = sum(r["verdicts"][finding]["p"] < 0.05 for r in records)
        assert (found, below) == (adjusted, raw), finding
    for finding, published in bench.PUBLISHED.items():
        if published != "not_found":
            continue
        kept = sum(r["verdicts"][finding]["state"] == "not_found" for r in records)
        low, high = binomial_interval(kept, len(records))
        assert high >= 0.95, (finding, kept)
