"""Register scale: bp.fit from a DataFrame, streamed from Parquet and on Dask, beside scikit-learn.

1. ``bp.fit`` (formula, whole fit) on an n x 25 DataFrame (24 standard normal regressors and an
   intercept) against scikit-learn's newton-cholesky on the bare arrays, each in its best BLAS
   thread setting (1 thread and the default, interleaved; min and median), and the peak memory
   the fit allocates beyond the data (numpy reports to tracemalloc), beside the design's size;
   each one's Newton iterations, and its fastest one-thread whole fit per iteration.
2. One Newton step (log-likelihood, gradient, Hessian over all rows) for each engine: in memory
   (the fused kernel on the design), streamed from a Parquet file (row groups of 131,072 rows read
   and turned into designs through formulaic on every step: the design cache is switched off, so
   memory stays bounded by one row group) and on Dask (a LocalCluster of 2 single-threaded
   workers, designs persisted on the workers), beside the bound measured in the same run (one
   read of X plus the Hessian's n p(p+1) flops at the one-core dgemm rate). Peak memory of the
   in-memory and streamed steps is tracemalloc's peak during the step; the Dask workers' is
   their resident sets (and the nannies'), sampled every 0.2 s while its steps run (the designs
   built too), with the CPU per step of the cluster's processes and of this one.

glum's binomial GLM (no penalty) runs beside scikit-learn where it is installed. With ``--cpu``
the whole fits print the wall clock beside the CPU time (a default-threads row's CPU time sums
its threads). The load average is printed before each part.

Measured (docs/scale.md, "Measured here"): eighth session, 10,000,000 x 25 steps (CPU, load
8-12): bound 252-275 ms, in memory 416-440 ms, streamed 3.6-3.7 s (peak 57 MiB), Dask 2.7-3.4 s
wall with 1.16 s of the workers' CPU (their peak 5.5-5.7 GiB); whole fits at 10,000,000 x 25
(load 10-2, CPU, minima in each one's best setting): bp.fit 5,283 ms (peak 1.011 designs beyond
the data), scikit-learn 10,447 ms, glum 10,411 ms; at 2,000,000 x 25 (load 24-26): 1,156,
2,094 and 2,082 ms.

Run: nice -n 10 PYTHONPATH=src python bench/bench_scale.py [--rows N] [--cpu]
(no OPENBLAS_NUM_THREADS=1: the bench sets each contender's BLAS threads itself, and the variable
would make its "default threads" one thread too)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import tracemalloc

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(__file__))
import bench_fit  # noqa: E402
from bench_fit import (  # noqa: E402
    _min_median,
    glum_binomial,
    measured_bound,
    simulate,
    sklearn_newton_cholesky,
)

import buzzpipe as bp  # noqa: E402
from buzzpipe.estimate import streamed  # noqa: E402
from buzzpipe.estimate.families import get_family  # noqa: E402


def frame_of(X: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame(X[:, 1:], columns=[f"x{j}" for j in range(1, X.shape[1])])
    frame["y"] = y
    return frame


def formula_of(frame: pd.DataFrame) -> str:
    return "y ~ " + " + ".join(c for c in frame.columns if c != "y")


def whole_fit(
    frame: pd.DataFrame, X: np.ndarray, y: np.ndarray, repeats: int, clock=time.perf_counter
) -> None:
    formula = formula_of(frame)
    contenders = {
        "buzzpipe bp.fit (DataFrame)": lambda: bp.fit(formula, frame).params.to_numpy(),
        "scikit-learn newton-cholesky (arrays)": lambda: sklearn_newton_cholesky(X, y),
    }
    if _has_glum():
        contenders["glum (arrays)"] = lambda: glum_binomial(X, y)
    settings = [(name, threads) for name in contenders for threads in (1, None)]
    times: dict = {s: [] for s in settings}
    walls: dict = {s: [] for s in settings}  # the wall clock beside, whatever --cpu says
    params = {}
    for setting in settings:
        with threadpool_limits(limits=setting[1]):
            params[setting] = contenders[setting[0]]()
    for _ in range(repeats):
        for setting in settings:
            with threadpool_limits(limits=setting[1]):
                time.sleep(0.02)
                start, wall = clock(), time.perf_counter()
                contenders[setting[0]]()
                times[setting].append(clock() - start)
                walls[setting].append(time.perf_counter() - wall)
    reference = params[settings[0]]
    best: dict = {"min": {}, "median": {}}
    for (name, threads), measured in times.items():
        gap = float(np.max(np.abs(params[(name, threads)] - reference)))
        label = "1 thread" if threads == 1 else "default threads"
        wall = "" if clock is time.perf_counter else f"; wall {_min_median(walls[(name, threads)])}"
        print(f"  {name:<40} {label:<16} {_min_median(measured)}{wall}  max |b - ours| {gap:.1e}")
        for statistic, value in (("min", min(measured)), ("median", statistics.median(measured))):
            if value < best[statistic].get(name, (np.inf, ""))[0]:
                best[statistic][name] = (value, label)
    for statistic, chosen in best.items():  # each in its best thread setting
        ours = chosen["buzzpipe bp.fit (DataFrame)"]
        for peer_name in [name for name in contenders if not name.startswith("buzzpipe")]:
            peer = chosen[peer_name]
            print(
                f"  ratio {peer_name.split(' (')[0]} ({peer[1]}) / bp.fit ({ours[1]}), "
                f"{statistic}s: {peer[0] / ours[0]:.2f}x"
            )
    tracemalloc.start()
    with threadpool_limits(limits=1):
        fitted = bp.fit(formula, frame)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    with threadpool_limits(limits=1):
        peer_iterations = sklearn_iterations(X, y)
    for name, iterations in (
        ("buzzpipe bp.fit (DataFrame)", fitted.iterations),
        ("scikit-learn newton-cholesky (arrays)", peer_iterations),
    ):
        fastest = min(times[(name, 1)])
        print(
            f"  {name}: {iterations} Newton iterations; whole fit (1 thread, min) / iterations "
            f"= {fastest / iterations * 1e3:.1f} ms"
        )
    design = frame.shape[0] * X.shape[1] * 8
    print(
        f"  bp.fit peak allocation beyond the data: {peak / 2**20:.0f} MiB "
        f"(one design: {design / 2**20:.0f} MiB; ratio {peak / design:.3f}; tracemalloc's peak "
        "over one bp.fit after the timed ones, 1 thread)"
    )


def _has_glum() -> bool:
    try:
        import glum  # noqa: F401
    except ImportError:
        return False
    return True


def sklearn_iterations(X: np.ndarray, y: np.ndarray) -> int:
    """The Newton iterations scikit-learn's newton-cholesky takes (``sklearn_newton_cholesky``'s
    settings)."""
    import warnings

    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(
        solver="newton-cholesky", penalty=None, tol=1e-10, max_iter=100, fit_intercept=False
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, y)
    return int(np.max(model.n_iter_))


def step_times(
    source,
    formula: str,
    repeats: int,
    disable_cache: bool,
    clock=time.perf_counter,
    cpu=None,
) -> tuple[list, float]:
    """Times of ``repeats`` Newton steps after the specification's passes and one warm step,
    then one more step under tracemalloc for the peak. ``cpu``: a list that gets the CPU seconds
    of ``sampled.cpu``-like callables' readings around the timed steps only (the cluster's)."""
    family = get_family("logit")
    roles = {"weights": None, "cluster": None, "offset": None}
    spec, summary = streamed._specification(formula, source, roles)
    spec, family, _notes, summary = streamed._prepare(spec, summary, family, source)
    if disable_cache:
        source.cache_bytes = 0
    sums = streamed._sums(family, source, spec)
    params = streamed._start(family, spec, summary)
    sums(params)  # warm: Dask persists the designs here
    times = []
    counted = None if cpu is None else (cpu[0](), time.process_time())
    for _ in range(repeats):  # timed without tracemalloc (it slows every allocation)
        start = clock()
        sums(params)
        times.append(clock() - start)
    if counted is not None:  # the timed steps' CPU only (not the passes before them)
        cpu.extend([cpu[0]() - counted[0], time.process_time() - counted[1]])
    tracemalloc.start()  # then one more step for the peak
    sums(params)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return times, peak


class ChildrenPeak:
    """The peak resident set of this process's children (the LocalCluster's worker and nanny
    processes), their sum and each process's, sampled every 0.2 s while the block runs."""

    def __init__(self, every: float = 0.2) -> None:
        self.every, self.total, self.each = every, 0, {}

    def _sample(self) -> None:
        import psutil

        while not self._stop.wait(self.every):
            total = 0
            for child in psutil.Process().children(recursive=True):
                try:
                    rss = child.memory_info().rss
                except psutil.Error:
                    continue
                total += rss
                name = " ".join(child.cmdline()[-2:])[-40:]
                self.each[(child.pid, name)] = max(self.each.get((child.pid, name), 0), rss)
            self.total = max(self.total, total)

    def __enter__(self) -> ChildrenPeak:
        import threading

        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def cpu(self) -> float:
        """The user + system seconds of this process's children so far."""
        import psutil

        total = 0.0
        for child in psutil.Process().children(recursive=True):
            try:
                times = child.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
        return total

    def report(self) -> str:
        largest = sorted(self.each.values(), reverse=True)
        return (
            f"peak resident set of the cluster's processes, summed {self.total / 2**20:,.0f} MiB; "
            f"largest processes {', '.join(f'{v / 2**20:,.0f}' for v in largest[:4])} MiB"
        )


def steps(
    frame: pd.DataFrame, X: np.ndarray, repeats: int, workers: int, clock=time.perf_counter
) -> None:
    from buzzpipe.estimate.dask_engine import DaskSource
    from buzzpipe.estimate.kernel import block_sums
    from buzzpipe.estimate.sources import parquet_source

    n, p = X.shape
    read, rate, bound = measured_bound(X, repeats)
    print(
        f"  bound (1 core, now): read of X {read * 1e3:.1f} ms + Hessian "
        f"{n * p * (p + 1) / 1e9:.2f} GFLOP at {rate / 1e9:.1f} GFLOP/s = {bound * 1e3:.1f} ms"
    )
    family = get_family("logit")
    beta = np.zeros(p)
    y = frame["y"].to_numpy()
    with threadpool_limits(limits=1):
        memory = []
        for _ in range(repeats):
            start = clock()
            block_sums(family, beta, X, y)
            memory.append(clock() - start)
        tracemalloc.start()  # one more step for the peak (not timed)
        block_sums(family, beta, X, y)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    print(
        f"  in memory, one step (1 thread):           {_min_median(memory)}; "
        f"peak allocation {peak / 2**20:.0f} MiB"
    )
    formula = formula_of(frame)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "firms.parquet")
        frame.to_parquet(path, row_group_size=131_072)
        with threadpool_limits(limits=1):
            times, peak = step_times(
                parquet_source(path), formula, repeats, disable_cache=True, clock=clock
            )
        print(
            f"  streamed Parquet, one step (read + designs + kernel, 1 thread): "
            f"{_min_median(times)}; peak allocation {peak / 2**20:.0f} MiB"
        )
        from distributed import Client, LocalCluster

        with (
            LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
                env={"OPENBLAS_NUM_THREADS": "1"},
            ) as cluster,
            Client(cluster) as client,
            ChildrenPeak() as sampled,
        ):
            source = DaskSource(path, client)
            step_times(source, formula, 1, False)  # the designs built and persisted
            counted = [sampled.cpu]
            times, _ = step_times(source, formula, repeats, False, cpu=counted)
            on_workers, here = counted[1] / repeats, counted[2] / repeats
        print(
            f"  Dask ({workers} workers x 1 thread, designs persisted), one step (wall): "
            f"{_min_median(times)}; CPU per step {on_workers * 1e3:.0f} ms on the cluster's "
            f"processes, {here * 1e3:.0f} ms here; {sampled.report()}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-fit", action="store_true")
    parser.add_argument("--fit-only", action="store_true", help="the whole fit, no steps")
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="time the whole fits and the in-memory and streamed steps in the process's CPU "
        "time (steadier on a busy machine; with default threads it sums the BLAS threads' "
        "time); Dask's steps are timed by the wall clock, with the cluster's CPU beside",
    )
    args = parser.parse_args()
    X, y = simulate(args.rows, 25, 20260101)
    frame = frame_of(X, y)
    print(f"{args.rows:,} x 25 logit")
    clock = time.process_time if args.cpu else time.perf_counter
    bench_fit.CLOCK = clock  # the bound's read and GEMM rate on the same clock
    if not args.skip_fit:
        print(f"whole fit; load average {os.getloadavg()[0]:.1f}")
        whole_fit(frame, X, y, args.repeats, clock)
    if not args.fit_only:
        print(f"one Newton step; load average {os.getloadavg()[0]:.1f}")
        steps(frame, X, args.repeats, args.workers, clock)
    print(f"end; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
