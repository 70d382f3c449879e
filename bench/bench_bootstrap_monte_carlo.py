"""The few-clusters Monte Carlo: size and power of four tests of a logit coefficient.

Run: PYTHONPATH=src /work/main/.venv/bin/python bench/bench_bootstrap_monte_carlo.py \
        --replications 5000 --clusters 5 10 30 100 --output mc.json
The design is in buzzpipe.estimate.few_clusters_monte_carlo and docs/few_clusters.md.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

from threadpoolctl import threadpool_limits

from buzzpipe.atomic_write import write_text
from buzzpipe.estimate import few_clusters_monte_carlo as mc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--replications", type=int, default=5000)
    parser.add_argument("--clusters", type=int, nargs="+", default=[5, 10, 30, 100])
    parser.add_argument("--beta", type=float, default=0.0, help="true slope (0: size)")
    parser.add_argument("--seed", type=int, default=20110601)
    parser.add_argument("--output", help="JSON file for the results (written atomically)")
    args = parser.parse_args()
    design = replace(mc.MonteCarloDesign(), beta=args.beta)
    with threadpool_limits(1):
        correlations = mc.intracluster_correlations(100, args.seed, design)
        print(
            "intra-cluster correlations (G = 100): "
            + ", ".join(f"{name} {value:.3f}" for name, value in correlations.items())
        )
        cells = []
        for n_clusters in args.clusters:
            cell = mc.run_cell(n_clusters, args.replications, args.seed, design, progress=False)
            cells.append(cell)
            print(
                f"G = {n_clusters}: "
                + ", ".join(
                    f"{test} {cell.rejection[test]:.4f} ({cell.mc_se[test]:.4f})"
                    for test in mc.TESTS
                )
                + f"  [{cell.seconds:.0f} s]",
                flush=True,
            )
    print(f"\nbeta = {args.beta}: rejection rate at 5% (Monte Carlo s.e.); coverage = 1 - rate")
    print(mc.table(cells))
    if args.output:
        record = {
            "design": vars(design) | {"region_shares": list(design.region_shares)},
            "seed": args.seed,
            "intracluster_correlations": correlations,
            "cells": mc.as_records(cells),
        }
        write_text(args.output, json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
