"""Time the study battery on a synthetic norway2010 survey (N = 1,604), and the counterfactual
bootstrap batched (all replicates refitted together by Newton steps) against a loop that
resamples the firms and refits each replicate through ``buzzpipe.fit``, measured in the same run.

BLAS threads are pinned to one (small problems on two cores run slower with two threads).
Run: ``PYTHONPATH=src python bench/bench_study.py [--replications 199] [--repeat 3]``.
Prints medians and ratios; timings on a shared machine are noisy, so compare ratios.
"""

import argparse
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

from buzzpipe.estimate import fit
from buzzpipe.study.battery import counterfactual_formula, run_study
from buzzpipe.study.counterfactuals import (
    counterfactual,
    expected_innovation,
    stratified_counts,
)
from buzzpipe.study.models import control_terms, fit_outcome_models
from buzzpipe.synth import synthesize

CPU_TIMES: dict[str, float] = {}


def median_time(function, repeat: int, label: str = "") -> float:
    """Median wall time; the median CPU time of the process is kept under ``label`` (on a shared
    machine CPU time is the steadier figure)."""
    times, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        function()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    CPU_TIMES[label] = statistics.median(cpu)
    return statistics.median(times)


def loop_bootstrap(formula, sample, replications, seed):
    """The peer: resample firms within regions, refit, recompute, one replicate at a time."""
    counts = stratified_counts(sample["region"].to_numpy(), replications, seed).astype(int)
    totals = []
    for b in range(replications):
        resampled = sample.loc[sample.index.repeat(counts[:, b])].reset_index(drop=True)
        refitted = fit(formula, resampled, family="logit", vcov="classical")
        cells = expected_innovation(refitted, resampled, "pipeline", 100)
        totals.append(cells[-1][4])
    return np.quantile(totals, [0.025, 0.975])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--replications", type=int, default=199)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    survey = synthesize("norway2010", 1)
    frame = survey.analysis_frame()
    sample, _ = fit_outcome_models(frame, "product")
    controls, _ = control_terms(sample)
    formula = counterfactual_formula("product", sample, controls)
    model = fit(formula, sample.reset_index(drop=True), family="logit", vcov="robust")
    with threadpool_limits(1):
        batched = median_time(
            lambda: counterfactual(
                model, sample, "pipeline", 100, bootstrap_replications=args.replications, seed=1
            ),
            args.repeat,
            "batched",
        )
        looped = median_time(
            lambda: loop_bootstrap(formula, sample.reset_index(drop=True), args.replications, 1),
            max(1, args.repeat // 2),
            "looped",
        )
        verdict_core = median_time(
            lambda: run_study(
                survey,
                outcomes=["product"],
                sensitivity=False,
                scenarios=(),
                heterogeneity=False,
            ),
            args.repeat,
            "core",
        )
        full = median_time(
            lambda: run_study(survey, bootstrap_replications=args.replications), 1, "full"
        )
    print(f"N = {len(frame)}, B = {args.replications}, BLAS threads pinned to 1")
    cpu = CPU_TIMES
    print("                                           wall        CPU")
    print(f"counterfactual bootstrap, batched Newton : {batched:8.3f} s {cpu['batched']:8.3f} s")
    print(f"counterfactual bootstrap, loop of fits   : {looped:8.3f} s {cpu['looped']:8.3f} s")
    print(
        f"  ratio loop / batched                   : {looped / batched:8.1f}x "
        f"{cpu['looped'] / cpu['batched']:8.1f}x"
    )
    print(f"verdict core (product, no extras)        : {verdict_core:8.3f} s {cpu['core']:8.3f} s")
    print(f"full battery (4 outcomes, 6 scenarios)   : {full:8.3f} s {cpu['full']:8.3f} s")


if __name__ == "__main__":
    main()
