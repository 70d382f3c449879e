"""Size of the spill-over tests and their placebo under the generator's confounders (issue 16).

No true spill-over anywhere (norway2010: ``outcomes.*.pipeline_exposure`` = 0). Settings:

- without links (``synthesize(..., edge_list=False)``: the leave-one-out share of pipeline firms
  in the region x industry cell, tested between cells): unconfounded; a cell shock of weight
  gamma in the pipeline propensity and delta in the outcome (0.25 / 0.15 and 0.5 / 0.3);
- with links (the share of local partners with pipelines, firm-level robust): partners drawn
  uniformly (homophily 0) and chosen on latent openness with homophily 0.5 and 1; and, with a
  capability stronger than norway2010's (openness 2.0 in international partners, 1.0 in product
  innovation), homophily 0 and 1.

For each: the share of seeds in which the spill-over test (``spillover_exposure``, the
verdict's) rejects at 5% with its Monte Carlo error, its mean estimate, the share in which the
placebo (``spillover_placebo``: the kinds of international partner clustering by cell without
links; own pipeline status on partners' pipelines with links) rejects at 5%, and the mean
confounding bound (``spillover_confounding_bound``, delta x rho to explain the estimate).

Run (one process, BLAS on one thread, niced):
``OPENBLAS_NUM_THREADS=1 nice -n 10 python bench/spillover_confounders.py --seeds 300``
(``--settings 0 1`` picks settings; ``--records FILE`` appends each seed's test p, estimate,
placebo p and bound; ``--placebo-only`` computes the placebo alone, for its size over more
seeds: ``--placebo-only --settings 0 --seeds 1000 --first 81000``).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from threadpoolctl import threadpool_limits

from buzzpipe.results import StudyResults
from buzzpipe.study.models import breadth_terms, control_terms
from buzzpipe.study.spillover import BOUND, PLACEBO, assess_spillover
from buzzpipe.synth import synthesize
from buzzpipe.synth.preset import load_preset

ALPHA = 0.05
STRONG = {"collaboration.openness_slope.international": 2.0, "outcomes.product.openness": 1.0}
SETTINGS = (
    # (label, links?, overrides)
    ("no links, unconfounded", False, {}),
    (
        "no links, cell shock gamma 0.25 / delta 0.15",
        False,
        {"confounding.cell_shock_pipeline": 0.25, "confounding.cell_shock_outcome": 0.15},
    ),
    (
        "no links, cell shock gamma 0.5 / delta 0.3",
        False,
        {"confounding.cell_shock_pipeline": 0.5, "confounding.cell_shock_outcome": 0.3},
    ),
    ("links, homophily 0 (uniform partners)", True, {}),
    ("links, homophily 0.5", True, {"links.homophily": 0.5}),
    ("links, homophily 1", True, {"links.homophily": 1.0}),
    # a capability stronger than norway2010's (openness 4x as strong in pipelines, 3.3x in
    # product innovation), where partner choice on it can confound the links test at all
    ("links, strong capability, homophily 0", True, STRONG),
    ("links, strong capability, homophily 1", True, {**STRONG, "links.homophily": 1.0}),
)


def one(
    preset, seed: int, links: bool, placebo_only: bool = False
) -> tuple[float, float, float, float]:
    """(test p, test estimate, placebo p, bound) of one survey's product outcome; with
    ``placebo_only`` the placebo alone (the others NaN)."""
    frame = synthesize(preset, seed, edge_list=links).analysis_frame()
    controls, control_columns = control_terms(frame)
    results = StudyResults()
    assess_spillover(
        results,
        "product",
        frame,
        breadth_terms(frame),
        controls,
        control_columns,
        "logit",
        primary_only=True,
        placebo_only=placebo_only,
    )
    tests = results.tests.get("product", {})
    test = tests.get("spillover_exposure")
    placebo = tests.get(PLACEBO)
    bound = results.descriptions.get("product", {}).get(BOUND)
    return (
        math.nan if test is None else test.p_value,
        math.nan if test is None else test.estimate,
        math.nan if placebo is None else placebo.p_value,
        math.nan if bound is None else bound.estimate,
    )


def rate(hits: np.ndarray) -> str:
    n = hits.size
    share = float(hits.mean())
    return f"{share:.3f} (MC error {math.sqrt(max(share * (1 - share), 1e-12) / n):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=300)
    parser.add_argument("--first", type=int, default=80_000)
    parser.add_argument("--settings", type=int, nargs="*", help="indices of SETTINGS")
    parser.add_argument("--records", help="append each seed's numbers to this file")
    parser.add_argument(
        "--placebo-only", action="store_true", help="the placebo alone (no spill-over test)"
    )
    args = parser.parse_args()
    chosen = args.settings if args.settings else range(len(SETTINGS))
    with threadpool_limits(limits=1):
        for index in chosen:
            label, links, overrides = SETTINGS[index]
            preset = load_preset("norway2010", overrides or None)
            started = time.perf_counter()
            rows = []
            for seed in range(args.first, args.first + args.seeds):
                rows.append(one(preset, seed, links, args.placebo_only))
                if args.records:  # each seed's (test p, estimate, placebo p, bound)
                    with open(args.records, "a", encoding="utf-8") as records:
                        print(index, seed, *rows[-1], file=records)
            rows = np.array(rows)
            p, estimate, placebo, bound = rows.T
            assessed = ~np.isnan(p)
            placebo_assessed = ~np.isnan(placebo)
            seconds = (time.perf_counter() - started) / args.seeds
            if args.placebo_only:
                print(
                    f"{label}: {args.seeds} seeds from {args.first} ({seconds:.2f} s a seed)\n"
                    f"  placebo rejects {rate(placebo[placebo_assessed] < ALPHA)} of "
                    f"{int(placebo_assessed.sum())}",
                    flush=True,
                )
                continue
            print(
                f"{label}: {args.seeds} seeds from {args.first} "
                f"({seconds:.2f} s a seed)\n"
                f"  test rejects {rate(p[assessed] < ALPHA)} of {int(assessed.sum())}; mean "
                f"estimate {np.nanmean(estimate):+.3f} (sd {np.nanstd(estimate):.3f})\n"
                f"  placebo rejects {rate(placebo[placebo_assessed] < ALPHA)} of "
                f"{int(placebo_assessed.sum())}; both reject "
                f"{rate((p < ALPHA) & (placebo < ALPHA))}; mean bound {np.nanmean(bound):.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
