"""Size and power of the pipelines-versus-buzz rule (issue 16): the common-support difference.

The verdict reads the difference between the first international and the first regional kind
of partner (breadth 0 -> 1 for every firm at one scale, the controls model, probability scale,
delta-method p, firm-level robust; ``study/common_support.py``); before issue 16 it read the
Wald test of b_international = b_regional. Both are measured here on the same draws with the
fast fits of ``buzzpipe.synth.power`` (equal to ``run_study``'s statistics, tests/synth):

- null worlds, where the international and the regional effect are equal in the generator: both
  zero; both 0.19 (the calibrated international effect); both 0.19 with openness out of the
  outcome (so the noisily measured openness, which drives international partners more than
  regional ones, confounds nothing);
- the shipped worlds: norway2010 (pipelines stronger) and buzz (buzz stronger).

Each row gives the share of seeds found (estimate > 0 and two-sided p < 0.05) and opposite, the
two-sided rejection rate with its Monte Carlo error, and, for the null worlds, the rule's
estimand at N = 40,000 (mean over a few large draws), which a misspecified model need not put
at zero even when the generator's coefficients are equal.

Run: ``OPENBLAS_NUM_THREADS=1 nice -n 10 python bench/pipelines_rule_size.py [--seeds N]``.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from threadpoolctl import threadpool_limits

from buzzpipe.synth.generate import GeneratingParameters, draw_block
from buzzpipe.synth.power import TWO_SIDED, binomial_interval, measure_power
from buzzpipe.synth.preset import load_preset
from buzzpipe.synth.specification import first_partner_difference, fit_logit, named_design

INTERNATIONAL = 0.189925  # norway2010's calibrated international effect
WORLDS = (
    # (label, preset, overrides, null?)
    (
        "equal effects, both 0",
        "norway2010",
        {"outcomes.product.breadth_international": 0.0},
        True,
    ),
    (
        "equal effects, both 0.19",
        "norway2010",
        {"outcomes.product.breadth_regional": INTERNATIONAL},
        True,
    ),
    (
        "equal effects, both 0.19, openness out of the outcome",
        "norway2010",
        {"outcomes.product.breadth_regional": INTERNATIONAL, "outcomes.product.openness": 0.0},
        True,
    ),
    ("norway2010 (international 0.19, regional 0)", "norway2010", {}, False),
    ("buzz (regional stronger)", "buzz", {}, False),
)
RULES = (
    ("pipelines_stronger", "common-support difference (the verdict)"),
    ("pipelines_stronger_coefficients", "Wald b_int = b_reg (before)"),
)


def estimand(preset, firms: int, seeds: range) -> tuple[float, float]:
    """Mean and Monte Carlo error of the first-partner difference over large draws."""
    parameters = GeneratingParameters.from_preset(preset)
    values = []
    with threadpool_limits(limits=1):
        for seed in seeds:
            rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
            block = draw_block(parameters, firms, rng, first_external_id=firms + 1)
            design, names, rows = named_design(block, parameters)
            fit = fit_logit(design, block.outcomes["product"][rows], names)
            values.append(
                first_partner_difference(fit, design, "breadth_international", "breadth_regional")[
                    0
                ]
            )
    values = np.array(values)
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(len(values)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=2000)
    parser.add_argument("--power-seeds", type=int, default=1000)
    parser.add_argument("--first", type=int, default=70_000)
    parser.add_argument("--large-draws", type=int, default=10)
    parser.add_argument("--worlds", type=int, nargs="*", help="indices of WORLDS (default all)")
    args = parser.parse_args()
    chosen = args.worlds if args.worlds else range(len(WORLDS))
    for label, name, overrides, null in (WORLDS[i] for i in chosen):
        started = time.perf_counter()
        preset = load_preset(name, overrides or None)
        n = args.seeds if null else args.power_seeds
        summary = measure_power(preset, range(args.first, args.first + n))
        print(f"{label}: {n} seeds from {args.first}", flush=True)
        for finding, words in RULES:
            z = summary.z[finding]
            found, opposite = int((z > TWO_SIDED).sum()), int((z < -TWO_SIDED).sum())
            rate = (found + opposite) / n
            error = math.sqrt(rate * (1 - rate) / n)
            low, high = binomial_interval(found + opposite, n)
            print(
                f"  {words:42s} found {found}, opposite {opposite}: rejects {rate:.4f} "
                f"(MC error {error:.4f}; 95% [{low:.4f}, {high:.4f}]); mean z {z.mean():+.3f}",
                flush=True,
            )
        if null:
            mean, error = estimand(preset, 40_000, range(90_000, 90_000 + args.large_draws))
            print(f"  estimand at N = 40,000: {mean:+.5f} (MC error {error:.5f})", flush=True)
        print(f"  ({time.perf_counter() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
