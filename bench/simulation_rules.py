"""The pipelines result under default and symmetric rules, in the calibrated world (not CI).

Arms, each on the same replicate seeds (common random numbers): the default rules (pipelines
always exchange, the world pool learns freely); pipelines under the local barter rule; the
referee's placebo (``ModelParameters.symmetric``: pipelines and the world pool under the cities'
rules, so only the world's diversity and distance differ); a world without new knowledge. Per arm:
the mean log odds ratio of product innovation per international (and regional) partner type in
the study's controls model (Newton logit, model-based errors), its standard error over
replicates, how often it is significant and positive at 5% (Wilson interval), and the product
innovators' share.

    PYTHONPATH=src nice -n 10 python bench/simulation_rules.py [--replicates 30]
"""

from __future__ import annotations

import argparse
import time

from threadpoolctl import threadpool_limits

from buzzpipe.report.replica import wilson
from buzzpipe.simulate.calibration import simulated_moments
from buzzpipe.simulate.run import replicate_seeds
from buzzpipe.simulate.scenario import builtin_scenario


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=30)
    parser.add_argument("--scenario", default="norway")
    args = parser.parse_args()
    scenario = builtin_scenario(args.scenario)
    base = scenario.parameters
    arms = {
        "default rules": base,
        "pipelines under the local barter rule": base.replace(pipeline_exchange="barter"),
        "referee's placebo (pipelines and world under the cities' rules)": base.symmetric(),
        "world without new knowledge": base.replace(world_novelty="none"),
    }
    seeds = replicate_seeds(scenario.seed, args.replicates)
    print("| arm | log odds ratio, international (sd over replicates) | significant and positive "
          "(95% interval) | log odds ratio, regional | product innovators |")  # fmt: skip
    print("|---|---|---|---|---|")
    with threadpool_limits(1):
        start = time.process_time()
        for name, parameters in arms.items():
            table = simulated_moments(parameters, scenario.cities, scenario.steps, seeds)
            coef, se = table["log_or_international"], table["se_international"]
            hits = int((coef / se > 1.959964).sum())
            low, high = wilson(hits / len(table), len(table))
            print(f"| {name} | {coef.mean():.3f} ({coef.std(ddof=1):.3f}) | {hits}/{len(table)} "
                  f"[{low:.2f}, {high:.2f}] | {table['log_or_regional'].mean():.3f} | "
                  f"{table['product_share'].mean():.3f} |")  # fmt: skip
        print(f"\n{len(arms)} arms x {args.replicates} replicates: "
              f"{time.process_time() - start:.0f} s CPU")  # fmt: skip


if __name__ == "__main__":
    main()
