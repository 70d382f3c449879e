"""Recovery of the published pattern on norway2010 under the headline rule (slow; issue 15).

The rule (docs/few_clusters.md, ``estimate/inference_rule.py``) was fixed before the run. Over the
scored seeds 21-320 the verdict battery of the product outcome (bench/recovery_norway2010.py,
confidence sets skipped: no verdict reads them) must reproduce the docs' table exactly (the
seeds fix every draw), and the "not found" items must read "not found" at a rate whose 95%
interval reaches 1 minus the nominal 5%: the adjusted family cannot claim them more often.
About 11 s per seed on one thread: an hour, so it is its own tier (marker ``recovery``,
``bash scripts/test.sh --recovery``), outside the slow tier that CI runs within its 90 minutes.
The docs' table was measured with a family of nine rules; issue 16 removed the city-region size
rule, and the Holm-adjusted counts for the family of eight were recomputed from the stored
per-seed p-values (the other p-values do not depend on the removed rule: bit-identical on seeds
21-24 rerun); this test, which reruns every seed, has not been run since.
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
