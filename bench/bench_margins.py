"""Margins speed and memory against statsmodels' get_margeff, measured in the same run.

Run: PYTHONPATH=src python bench/bench_margins.py [rows ...]. BLAS is pinned to one thread
(the fairer setting for both on a small machine). Prints medians and the ratio ours/theirs;
no assertion: timings on a shared machine are noisy.
"""

from __future__ import annotations

import sys
import time
import tracemalloc

import numpy as np
import pandas as pd
import statsmodels.api as sm
from threadpoolctl import threadpool_limits

from buzzpipe.estimate import fit
from buzzpipe.estimate.margins import margins

COLUMNS = [f"x{i}" for i in range(8)]


def firms(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = pd.DataFrame(rng.normal(size=(n, len(COLUMNS))), columns=COLUMNS)
    index = -0.5 + data.to_numpy() @ np.linspace(0.4, -0.4, len(COLUMNS))
    data["y"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-index))).astype(float)
    return data


def median_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def peak_mib(function) -> float:
    tracemalloc.start()
    function()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def main(sizes: list[int]) -> None:
    print("rows, ours_s, statsmodels_s, ratio, ours_peak_MiB, statsmodels_peak_MiB, max_se_gap")
    for n in sizes:
        data = firms(n)
        model = fit("y ~ " + " + ".join(COLUMNS), data, family="logit")
        results = sm.Logit(data["y"], sm.add_constant(data[COLUMNS])).fit(disp=0, tol=1e-12)

        def ours(model=model, data=data):
            return margins(model, data, COLUMNS)

        def theirs(results=results):
            return results.get_margeff()

        repeats = 5 if n <= 100_000 else 3
        ours_time = median_seconds(ours, repeats)
        theirs_time = median_seconds(theirs, repeats)
        gap = np.max(np.abs(ours().se.to_numpy() / theirs().margeff_se - 1))
        print(
            f"{n}, {ours_time:.4f}, {theirs_time:.4f}, {ours_time / theirs_time:.2f}, "
            f"{peak_mib(ours):.1f}, {peak_mib(theirs):.1f}, {gap:.1e}"
        )


if __name__ == "__main__":
    with threadpool_limits(1):
        main([int(arg) for arg in sys.argv[1:]] or [2_000, 100_000])
