"""The few-clusters Monte Carlo: size and power of four tests of a logit coefficient.

Run: PYTHONPATH=src /work/main/.venv/bin/python bench/bench_bootstrap_monte_carlo.py \
        --replications 5000 --clusters 5 10 30 100 --output mc.json
(the same as ``buzzpipe few-clusters-mc``). The design is in
buzzpipe.estimate.few_clusters_monte_carlo and docs/few_clusters.md.
"""

from __future__ import annotations

import argparse
import json

from buzzpipe.atomic_write import write_text
from buzzpipe.estimate import few_clusters_monte_carlo as mc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--replications", type=int, default=5000)
    parser.add_argument("--clusters", type=int, nargs="+", default=[5, 10, 30, 100])
    parser.add_argument("--beta", type=float, default=0.0, help="true slope")
    parser.add_argument("--null", type=float, default=0.0, help="tested value (= beta: size)")
    parser.add_argument("--balanced", action="store_true", help="equal region shares instead")
    parser.add_argument("--seed", type=int, default=20110601)
    parser.add_argument("--output", help="JSON file for the results (written atomically)")
    args = parser.parse_args()
    record = mc.run_study(
        args.replications,
        args.clusters,
        args.beta,
        args.seed,
        report=lambda line: print(line, flush=True),
        null_value=args.null,
        balanced=args.balanced,
    )
    if args.output:
        write_text(args.output, json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
