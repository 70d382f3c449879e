"""Benchmark one logit fit against its peers in the same run, and print ratios.

Large: 1,000,000 x 25 float64 against scikit-learn (newton-cholesky, no penalty) and glum.
Small: 1,604 x 25 (a survey-sized model) against statsmodels Logit.
Each contender runs with BLAS pinned to 1 thread and with the default (2 threads here); the
table shows both, with min and median, and each contender's ratio uses its best setting (the
setting is named). Timings are interleaved across contenders so that a busy machine slows them
alike; coefficients must agree to 1e-6 or the script says so.

The Newton step (one fused pass of ``kernel.block_sums``: eta, weights, gradient and the
Hessian's upper triangle) is set against the bound measured IN THE SAME RUN on one core: one
read of X (``X.T @ v``) plus the Hessian's n p(p+1) flops at the measured one-core dgemm rate
(a 2000 x 2000 product). The machine is shared, so every figure is a min and a median of
repeats and only ratios within one run mean anything.

Run: PYTHONPATH=src python bench/bench_fit.py [--rows 1000000] [--repeats 3] [--small-repeats 50]
     PYTHONPATH=src python bench/bench_fit.py --step-only --rows 10000000   # the step at 10M
     ... --cpu   # CPU time throughout (steadier on a busy machine; two threads count twice)
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

from buzzpipe.estimate.design import Design
from buzzpipe.estimate.families import get_family
from buzzpipe.estimate.fitting import fit_design, prepare_design
from buzzpipe.estimate.kernel import block_sums, weighted_gram

CLOCK = time.perf_counter  # the step report's clock (--cpu: the process's CPU time)


def simulate(rows: int, columns: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """An intercept and columns-1 standard normal regressors; a logit outcome."""
    rng = np.random.default_rng(seed)
    X = np.empty((rows, columns))
    X[:, 0] = 1.0
    X[:, 1:] = rng.standard_normal((rows, columns - 1))
    beta = rng.normal(scale=0.15, size=columns)
    y = (rng.uniform(size=rows) < 1.0 / (1.0 + np.exp(-(X @ beta)))).astype(np.float64)
    return X, y


def ours(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The whole buzzpipe fit: checks, Newton, covariance, constant-only model."""
    names = ["Intercept"] + [f"x{j}" for j in range(1, X.shape[1])]
    design, family, notes = prepare_design(Design.from_arrays(X, y, names), get_family("logit"))
    return fit_design(design, family, "classical", notes=notes).params.to_numpy()


def sklearn_newton_cholesky(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(
        solver="newton-cholesky", penalty=None, tol=1e-10, max_iter=100, fit_intercept=False
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, y)
    return model.coef_.ravel()


def glum_binomial(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    from glum import GeneralizedLinearRegressor

    model = GeneralizedLinearRegressor(
        family="binomial", alpha=0, fit_intercept=False, gradient_tol=1e-10, max_iter=100
    )
    model.fit(X, y)
    return model.coef_.ravel()


def statsmodels_logit(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    import statsmodels.api as sm

    return sm.Logit(y, X).fit(disp=0, method="newton", tol=1e-10).params


def _min_median(values: list[float]) -> str:
    return f"min {min(values) * 1e3:9.2f} ms  median {statistics.median(values) * 1e3:9.2f} ms"


def compare(title: str, X, y, contenders: dict, repeats: int) -> None:
    """Time every contender in every thread setting, interleaved repeat by repeat, so that a
    busy machine slows them alike; report min and median and each peer's best over ours."""
    clock = "CPU" if CLOCK is time.process_time else "wall-clock"
    print(
        f"\n{title}: {X.shape[0]:,} x {X.shape[1]} float64, {repeats} repeats, interleaved, "
        f"{clock} time"
    )
    settings = [(name, threads) for name in contenders for threads in (1, None)]
    times: dict[tuple, list[float]] = {setting: [] for setting in settings}
    params: dict[tuple, np.ndarray] = {}
    for setting in settings:  # warm up (imports, caches) and keep the coefficients
        with threadpool_limits(limits=setting[1]):
            params[setting] = np.asarray(contenders[setting[0]](X, y))
    for _ in range(repeats):
        for setting in settings:
            with threadpool_limits(limits=setting[1]):
                time.sleep(0.02)  # let BLAS threads of the previous contender stop spinning
                start = CLOCK()
                contenders[setting[0]](X, y)
                times[setting].append(CLOCK() - start)
    reference = params[settings[0]]
    best: dict[str, tuple[float, float, str]] = {}
    for (name, threads), measured in times.items():
        gap = float(np.max(np.abs(params[(name, threads)] - reference)))
        label = "1 thread" if threads == 1 else "default threads"
        flag = "" if gap < 1e-6 else "  <-- coefficients differ"
        print(f"  {name:<28} {label:<16} {_min_median(measured)}  max |b - ours| {gap:.1e}{flag}")
        median = statistics.median(measured)
        if median < best.get(name, (np.inf, np.inf, ""))[1]:
            best[name] = (min(measured), median, label)
    ours_min, ours_best, ours_label = best["buzzpipe"]
    for name, (fastest, seconds, label) in best.items():
        if name != "buzzpipe":
            print(
                f"  ratio {name} ({label}) / buzzpipe ({ours_label}): "
                f"{fastest / ours_min:.2f}x on minima, {seconds / ours_best:.2f}x on medians"
            )


def measured_bound(X: np.ndarray, repeats: int) -> tuple[float, float, float]:
    """(one read of X, one-core dgemm rate in flop/s, the step bound) measured now, one thread."""
    n, p = X.shape
    v = np.ones(n)
    square = np.random.default_rng(0).standard_normal((2000, 2000))
    reads, rates = [], []
    with threadpool_limits(limits=1):
        for _ in range(repeats):
            start = CLOCK()
            X.T @ v
            reads.append(CLOCK() - start)
            start = CLOCK()
            square @ square
            rates.append(2 * 2000**3 / (CLOCK() - start))
    read, rate = min(reads), max(rates)
    return read, rate, read + n * p * (p + 1) / rate


def newton_step_report(X: np.ndarray, y: np.ndarray, repeats: int) -> None:
    """The fused Newton step (log-likelihood, gradient, Hessian) against the measured bound,
    with its two parts alone: the gradient-only pass and the weighted Gram (one thread)."""
    n, p = X.shape
    family = get_family("logit")
    beta = np.zeros(p)
    beta[0] = 0.1
    clock = "CPU" if CLOCK is time.process_time else "wall-clock"
    for threads in (1, None):
        read, rate, bound = measured_bound(X, repeats)
        with threadpool_limits(limits=threads):
            times = []
            for _ in range(repeats):
                start = CLOCK()
                block_sums(family, beta, X, y)
                times.append(CLOCK() - start)
        label = "1 thread" if threads == 1 else "default threads"
        print(
            f"  one fused Newton step ({label}, {clock} time): {_min_median(times)}; bound "
            f"measured now (1 core): read of X {read * 1e3:.1f} ms + Hessian "
            f"{n * p * (p + 1) / 1e9:.2f} GFLOP at {rate / 1e9:.1f} GFLOP/s = {bound * 1e3:.1f} ms "
            f"-> {min(times) / bound:.2f}x (min) / {statistics.median(times) / bound:.2f}x "
            "(median) the bound"
        )
    curvature = np.full(n, 0.25)
    with threadpool_limits(limits=1):
        gradient_only, hessian_only = [], []
        for _ in range(repeats):
            start = CLOCK()
            block_sums(family, beta, X, y, hessian=False)
            gradient_only.append(CLOCK() - start)
            start = CLOCK()
            weighted_gram(X, curvature)
            hessian_only.append(CLOCK() - start)
    print(
        f"  its parts (1 thread): gradient-only pass {_min_median(gradient_only)}; "
        f"X' diag(h) X by weighted_gram alone {_min_median(hessian_only)} "
        f"({n * p * (p + 1) / min(hessian_only) / 1e9:.1f} GFLOP/s)"
    )


def memory_report(X: np.ndarray, y: np.ndarray) -> None:
    """Peak memory one whole fit allocates beyond the data (numpy reports to tracemalloc)."""
    import tracemalloc

    tracemalloc.start()
    with threadpool_limits(limits=1):
        ours(X, y)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"  peak memory allocated by one fit: {peak / 2**20:.0f} MiB "
        f"(the design itself: {X.nbytes / 2**20:.0f} MiB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--columns", type=int, default=25)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--small-rows", type=int, default=1_604)
    parser.add_argument("--small-repeats", type=int, default=50)
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument("--skip-large", action="store_true", help="only the 1,604-row case")
    parser.add_argument("--step-only", action="store_true", help="only the Newton step")
    parser.add_argument(
        "--cpu", action="store_true", help="CPU time (with two threads: both threads' time)"
    )
    args = parser.parse_args()
    global CLOCK
    if args.cpu:
        CLOCK = time.process_time

    if args.step_only:
        X, y = simulate(args.rows, args.columns, args.seed + 1)
        print(f"Newton step at {args.rows:,} x {args.columns}, {args.repeats} repeats")
        newton_step_report(X, y, args.repeats)
        return

    X, y = simulate(args.small_rows, args.columns, args.seed)
    compare(
        "Small logit",
        X,
        y,
        {"buzzpipe": ours, "statsmodels Logit": statsmodels_logit},
        args.small_repeats,
    )

    if args.skip_large:
        return
    X, y = simulate(args.rows, args.columns, args.seed + 1)
    compare(
        "Large logit",
        X,
        y,
        {
            "buzzpipe": ours,
            "scikit-learn newton-cholesky": sklearn_newton_cholesky,
            "glum": glum_binomial,
        },
        args.repeats,
    )
    newton_step_report(X, y, args.repeats)
    memory_report(X, y)


if __name__ == "__main__":
    main()
