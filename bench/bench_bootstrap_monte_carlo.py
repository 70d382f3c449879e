"""The few-clusters Monte Carlo: size and power of four tests of a logit coefficient.

Run: PYTHONPATH=src /work/main/.venv/bin/python bench/bench_bootstrap_monte_carlo.py \
        --replications 5000 --clusters 5 10 30 100 --output mc.json
This is ``buzzpipe few-clusters-mc`` (same options: --beta, --null, --balanced, --seed). The
design is in buzzpipe.estimate.few_clusters_monte_carlo and docs/few_clusters.md.

    ... bench/bench_bootstrap_monte_carlo.py --wald-diagnostics [--replications 5000]
runs instead the contrasts that explain the cluster-robust Wald test's size at G = 100 (about
two minutes on one core).
"""

import argparse
import sys

from buzzpipe.cli import main

if __name__ == "__main__":
    if "--wald-diagnostics" in sys.argv[1:]:
        from buzzpipe.estimate.few_clusters_monte_carlo import wald_diagnostics

        parser = argparse.ArgumentParser(description=__doc__)
        parser.add_argument("--wald-diagnostics", action="store_true")
        parser.add_argument("--replications", type=int, default=5000)
        parser.add_argument("--seed", type=int, default=20110601)
        args = parser.parse_args()
        wald_diagnostics(args.replications, args.seed)
        sys.exit(0)
    sys.exit(main(["few-clusters-mc", *sys.argv[1:]]))
