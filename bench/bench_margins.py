"""Margins (AME of every continuous regressor with delta-method errors) against statsmodels'
``get_margeff``, measured in the same run, interleaved.

Ours is timed twice: building the design through the formula (``margins(fit, data, columns)``)
and with the estimation design handed over (``design=X``: no design is built, as statsmodels
keeps its ``exog``). Each contender runs with BLAS on one thread and with the default threads;
its best setting (named) gives the ratio. Min and median of ``--repeats``; the machine is shared,
so only ratios within one run mean anything. No assertion.

Run: PYTHONPATH=src python bench/bench_margins.py [--rows 1604 1000000] [--columns 24]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd
import statsmodels.api as sm
from threadpoolctl import threadpool_limits

from buzzpipe.estimate import fit
from buzzpipe.estimate.margins import margins


def firms(n: int, columns: list[str], seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = pd.DataFrame(rng.normal(size=(n, len(columns))), columns=columns)
    index = -0.5 + data.to_numpy() @ np.linspace(0.4, -0.4, len(columns))
    data["y"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-index))).astype(float)
    return data


def compare(n: int, columns: list[str], repeats: int, thread_settings=(1, None)) -> None:
    """Time the contenders on n rows (BLAS on one thread and on the default threads, or the
    ``thread_settings`` given) and print min, median and the ratios."""
    data = firms(n, columns)
    with threadpool_limits(limits=1):
        model = fit("y ~ " + " + ".join(columns), data, family="logit")
        X = model.design_matrix(data)
        results = sm.Logit(data["y"], sm.add_constant(data[columns])).fit(disp=0, tol=1e-12)
    contenders = {
        "buzzpipe, building the design": lambda: margins(model, data, columns),
        "buzzpipe, design given": lambda: margins(model, data, columns, design=X),
        "statsmodels get_margeff": lambda: results.get_margeff(),
    }
    times: dict[tuple[str, int | None], list[float]] = {}
    cpu: dict[tuple[str, int | None], list[float]] = {}
    for _ in range(repeats):
        for name, function in contenders.items():
            for threads in thread_settings:
                with threadpool_limits(limits=threads):
                    start, start_cpu = time.perf_counter(), time.process_time()
                    function()
                    times.setdefault((name, threads), []).append(time.perf_counter() - start)
                    cpu.setdefault((name, threads), []).append(time.process_time() - start_cpu)
    ours = margins(model, data, columns, design=X)
    theirs = results.get_margeff()
    se_gap = np.max(np.abs(ours.se.to_numpy() / theirs.margeff_se - 1))
    value_gap = np.max(np.abs(ours.estimate.to_numpy() - theirs.margeff))
    print(f"\n{n:,} rows x {len(columns)} continuous regressors, {repeats} repeats")
    for clock, measurements in (("wall", times), ("CPU", cpu)):
        # each contender's best setting by its median; on a loaded machine the process's CPU
        # time is the steadier clock (with two BLAS threads it counts both threads' time)
        best: dict[str, tuple[float, float, str]] = {}
        for (name, threads), measured in measurements.items():
            label = "1 thread" if threads == 1 else "default threads"
            median = statistics.median(measured)
            print(
                f"  {clock:<4} {name:<32} {label:<16} min {min(measured) * 1e3:9.2f} ms  "
                f"median {median * 1e3:9.2f} ms"
            )
            if median < best.get(name, (np.inf, np.inf, ""))[1]:
                best[name] = (min(measured), median, label)
        reference_min, reference, reference_label = best["statsmodels get_margeff"]
        for name in contenders:
            if name.startswith("buzzpipe"):
                fastest, seconds, label = best[name]
                print(
                    f"  {clock}: statsmodels ({reference_label}) / {name} ({label}): "
                    f"{reference_min / fastest:.2f}x on minima, {reference / seconds:.2f}x on "
                    "medians"
                )
    print(f"  agreement: max |AME gap| {value_gap:.1e}, max relative SE gap {se_gap:.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_604, 1_000_000])
    parser.add_argument("--columns", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=0, help="default 15 small, 3 large")
    parser.add_argument(
        "--one-thread", action="store_true", help="only BLAS on one thread (the best here)"
    )
    args = parser.parse_args()
    columns = [f"x{i}" for i in range(args.columns)]
    for n in args.rows:
        settings = (1,) if args.one_thread else (1, None)
        compare(n, columns, args.repeats or (15 if n <= 100_000 else 3), settings)


if __name__ == "__main__":
    main()
