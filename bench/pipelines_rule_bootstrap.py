"""Size and power of the pipelines-versus-buzz rule under the headline rule (issue 16, decision 2
of the third closing note): the region wild cluster score bootstrap of the common-support
difference, the first international minus the first regional kind of partner (breadth 0 -> 1
for every firm at one scale, the controls model, probability scale), the null g(b) = 0 imposed
by a restricted fit (``WildScoreBootstrap.restriction_test``, as ``study/common_support.py``
runs it), beside, on the same draws:

- the firm-level delta-method p of the same difference (the rule before this change);
- the wild cluster score bootstrap of the coefficients' difference b_int - b_reg (a linear g).

Worlds (``bench/pipelines_rule_size.py``'s): the clean equal-effects null (both effects 0.19,
openness out of the outcome, so nothing confounds the comparison), norway2010 (pipelines
stronger) and buzz (buzz stronger). The design is the study's controls model built from the
drawn arrays (``synth.specification.named_design``: region and industry effects), the clusters
the five city-regions, Webb weights, every one of the 6^5 = 7,776 draws enumerated (the study's
default of 9,999 draws enumerates them), so every test here uses the same weight vectors.

Each row: the share of seeds rejected two-sided at 5% unadjusted (found + opposite) with its
Monte Carlo error and 95% Clopper-Pearson interval, and how many were found and opposite.

Run: ``OPENBLAS_NUM_THREADS=1 nice -n 10 python bench/pipelines_rule_bootstrap.py --seeds N
[--worlds 0 1 2]``; each world ends with the CPU time a seed took (measure it on a few seeds
first).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from scipy import stats
from threadpoolctl import threadpool_limits

from buzzpipe.errors import EstimationError
from buzzpipe.estimate.wild_bootstrap import WildScoreBootstrap
from buzzpipe.study.probability_changes import ChangeDifference
from buzzpipe.synth.generate import GeneratingParameters, draw_block, survey_cell_shocks
from buzzpipe.synth.power import binomial_interval
from buzzpipe.synth.preset import load_preset
from buzzpipe.synth.specification import first_partner_difference, fit_logit, named_design

INTERNATIONAL = 0.189925  # norway2010's calibrated international effect
WORLDS = (
    (
        "clean null: equal effects 0.19, openness out of the outcome",
        "norway2010",
        {"outcomes.product.breadth_regional": INTERNATIONAL, "outcomes.product.openness": 0.0},
    ),
    ("norway2010 (international 0.19, regional 0)", "norway2010", {}),
    ("buzz (regional stronger)", "buzz", {}),
)
TESTS = (
    ("bootstrap", "region bootstrap of the first-partner difference (the verdict)"),
    ("delta", "firm-level delta method, same difference (before)"),
    ("coefficients", "region bootstrap of b_int - b_reg (tests table)"),
)
ALPHA = 0.05


def first_partner_restriction(design: np.ndarray, names: list[str]) -> ChangeDifference:
    """g(b): mean F with breadth_international 1 rather than 0, minus the same for regional."""

    def pair(term: str) -> tuple[np.ndarray, np.ndarray]:
        high, low = design.copy(), design.copy()
        high[:, names.index(term)], low[:, names.index(term)] = 1.0, 0.0
        return high, low

    weights = np.full(design.shape[0], 1.0 / design.shape[0])
    return ChangeDifference(
        pair("breadth_international"), pair("breadth_regional"), weights, "logit"
    )


def one_seed(parameters: GeneratingParameters, seed: int, firms: int) -> dict[str, tuple]:
    """(estimate, p) of each test on one drawn survey (the power module's draw of ``seed``)."""
    stream = np.random.SeedSequence(seed).spawn(1)[0]
    block = draw_block(
        parameters,
        firms,
        np.random.default_rng(stream),
        first_external_id=firms + 1,
        cell_shocks=survey_cell_shocks(parameters, seed),
    )
    design, names, rows = named_design(block, parameters)
    y = block.outcomes["product"][rows].astype(float)
    fit = fit_logit(design, y, names)
    difference, error = first_partner_difference(
        fit, design, "breadth_international", "breadth_regional"
    )
    delta_p = 2.0 * float(stats.norm.sf(abs(difference / error)))
    wild = WildScoreBootstrap(design, y, block.region[rows], names=names, draws=9999)
    test = wild.restriction_test(first_partner_restriction(design, names))
    direction = np.zeros(len(names))
    direction[names.index("breadth_international")] = 1.0
    direction[names.index("breadth_regional")] = -1.0
    coefficients = wild.restriction_test(lambda b: (float(direction @ b), direction))
    gap = fit.coefficient("breadth_international") - fit.coefficient("breadth_regional")
    return {
        "bootstrap": (difference, test.p_value, test.rounds),
        "delta": (difference, delta_p, 0),
        "coefficients": (gap, coefficients.p_value, coefficients.rounds),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=1000)
    parser.add_argument("--first", type=int, default=70_000)
    parser.add_argument("--worlds", type=int, nargs="*", help="indices of WORLDS (default all)")
    args = parser.parse_args()
    chosen = args.worlds if args.worlds else range(len(WORLDS))
    for label, name, overrides in (WORLDS[i] for i in chosen):
        preset = load_preset(name, overrides or None)
        parameters = GeneratingParameters.from_preset(preset)
        firms = int(preset["survey.firms"])
        found = {key: [0, 0] for key, _ in TESTS}
        failed, rounds, times = 0, [], []
        with threadpool_limits(limits=1):
            for seed in range(args.first, args.first + args.seeds):
                started = time.process_time()
                try:
                    outcome = one_seed(parameters, seed, firms)
                except EstimationError:
                    failed += 1
                    continue
                times.append(time.process_time() - started)
                rounds.append(outcome["bootstrap"][2])
                for key, (estimate, p, _) in outcome.items():
                    if p < ALPHA:
                        found[key][0 if estimate > 0 else 1] += 1
        n = args.seeds - failed
        print(f"{label}: {n} seeds from {args.first} ({failed} failed)", flush=True)
        for key, words in TESTS:
            plus, minus = found[key]
            rate = (plus + minus) / n
            low, high = binomial_interval(plus + minus, n)
            print(
                f"  {words:64s} found {plus}, opposite {minus}: rejects {rate:.4f} "
                f"(MC error {math.sqrt(rate * (1 - rate) / n):.4f}; 95% [{low:.4f}, {high:.4f}])",
                flush=True,
            )
        print(
            f"  restricted-fit rounds: median {np.median(rounds):.0f}, max {max(rounds)}; CPU per "
            f"seed min {min(times):.3f} s, median {np.median(times):.3f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
