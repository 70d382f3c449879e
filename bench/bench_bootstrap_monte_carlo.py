"""The few-clusters Monte Carlo: size and power of four tests of a logit coefficient.

Run: PYTHONPATH=src /work/main/.venv/bin/python bench/bench_bootstrap_monte_carlo.py \
        --replications 5000 --clusters 5 10 30 100 --output mc.json
This is ``buzzpipe few-clusters-mc`` (same options: --beta, --null, --balanced, --seed). The
design is in buzzpipe.estimate.few_clusters_monte_carlo and docs/few_clusters.md.
"""

import sys

from buzzpipe.cli import main

if __name__ == "__main__":
    sys.exit(main(["few-clusters-mc", *sys.argv[1:]]))
