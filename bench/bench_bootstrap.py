"""Benchmark: wild score bootstrap and batched pairs bootstrap against peers in the same run.

Run: PYTHONPATH=src /work/main/.venv/bin/python bench/bench_bootstrap.py [--replicates 1000]
Prints medians (min and median where said) and ratios (peer time / ours); timings on a shared
machine are noisy, so compare
only numbers from one run. BLAS is pinned to one thread unless a line says otherwise.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
import tracemalloc

import numpy as np
import statsmodels.api as sm
from threadpoolctl import threadpool_limits

from buzzpipe.estimate.bootstrap import run_bootstrap
from buzzpipe.estimate.random_weights import poisson_weights
from buzzpipe.estimate.wild_bootstrap import WildScoreBootstrap


def survey_like_design(seed: int = 0, n: int = 1604, p: int = 25, n_clusters: int = 5):
    """1,604 firms, 25 columns, five city-regions of unequal size (as the Norwegian survey)."""
    rng = np.random.default_rng(seed)
    shares = np.array([0.46, 0.19, 0.15, 0.12, 0.08])[:n_clusters]
    clusters = rng.choice(n_clusters, size=n, p=shares / shares.sum())
    X = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1))])
    X[:, 1] += 0.5 * rng.normal(size=n_clusters)[clusters]
    index = X @ rng.normal(scale=0.15, size=p) + 0.3 * rng.normal(size=n_clusters)[clusters]
    y = (rng.random(n) < 1 / (1 + np.exp(-index))).astype(float)
    return X, y, clusters


def median_time(function, repeats: int) -> float:
    return statistics.median(times_of(function, repeats))


def times_of(function, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def min_median(times: list[float]) -> str:
    return f"min {min(times) * 1e3:.2f} ms, median {statistics.median(times) * 1e3:.2f} ms"


def plain_wild_score_loop(X, y, clusters, k, points):
    """Peer: statsmodels restricted fit, scores and Hessian, then a Python loop over the draws."""
    keep = [j for j in range(X.shape[1]) if j != k]
    restricted = sm.Logit(y, X[:, keep], offset=np.zeros(len(y))).fit(disp=0, method="newton")
    params = np.insert(restricted.params, k, 0.0)
    model = sm.Logit(y, X)
    partialled = model.score_obs(params) @ np.linalg.solve(
        -model.hessian(params), np.eye(X.shape[1])[:, k]
    )
    labels = np.unique(clusters)
    sums = np.array([partialled[clusters == g].sum() for g in labels])
    shares = np.array([np.mean(clusters == g) for g in labels])
    G = len(labels)
    stats = []
    for v in itertools.product(points, repeat=G):
        v = np.asarray(v)
        numerator = v @ sums
        recentred = v * sums - shares * numerator
        stats.append(numerator / np.sqrt(G / (G - 1) * recentred @ recentred))
    return stats


def statsmodels_loop(X, y, weights):
    for b in range(weights.shape[1]):
        counts = weights[:, b].astype(int)
        sm.Logit(np.repeat(y, counts), np.repeat(X, counts, axis=0)).fit(
            disp=0, method="newton", tol=1e-8
        )


def pairs_interleaved(X, y, B: int, loop_fits: int, rounds: int) -> None:
    """Pairs bootstrap of B replicates against the statsmodels loop (``loop_fits`` fits scaled
    to B), one BLAS thread for both (the loop's best here), alternated round by round so that a
    busy machine slows both alike; min and median of the rounds, ratios of mins and medians, in
    wall-clock and in CPU time (the process's; on a shared machine the steadier of the two)."""
    weights = poisson_weights(0, np.arange(len(y)), loop_fits)
    ours, loop, ours_cpu, loop_cpu = [], [], [], []

    def timed(function, wall: list, cpu: list, scale: float = 1.0) -> None:
        start, start_cpu = time.perf_counter(), time.process_time()
        function()
        wall.append((time.perf_counter() - start) * scale)
        cpu.append((time.process_time() - start_cpu) * scale)

    with threadpool_limits(1):
        run_bootstrap(X, y, replicates=B, seed=0)  # warm
        for _ in range(rounds):
            timed(lambda: run_bootstrap(X, y, replicates=B, seed=0), ours, ours_cpu)
            timed(lambda: statsmodels_loop(X, y, weights), loop, loop_cpu, B / loop_fits)
    for label, mine, theirs in (("wall", ours, loop), ("CPU", ours_cpu, loop_cpu)):
        print(
            f"pairs bootstrap B = {B}, 1 BLAS thread, {rounds} rounds, {label} time: buzzpipe "
            f"min {min(mine):.3f} s, median {statistics.median(mine):.3f} s; statsmodels loop "
            f"(scaled from {loop_fits} fits) min {min(theirs):.2f} s, median "
            f"{statistics.median(theirs):.2f} s; ratio of mins {min(theirs) / min(mine):.1f}x, "
            f"of medians {statistics.median(theirs) / statistics.median(mine):.1f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--replicates", type=int, default=1000)
    parser.add_argument("--loop-replicates", type=int, default=200, help="statsmodels loop size")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--pairs-only",
        action="store_true",
        help="only the pairs bootstrap against the statsmodels loop, interleaved round by round",
    )
    args = parser.parse_args()
    X, y, clusters = survey_like_design()
    print(f"design: {X.shape[0]} x {X.shape[1]}, {len(np.unique(clusters))} clusters")
    if args.pairs_only:
        pairs_interleaved(X, y, args.replicates, args.loop_replicates, args.repeats)
        return

    with threadpool_limits(1):
        bootstrap = WildScoreBootstrap(X, y, clusters, draws=9999)  # Webb, 6^5 = 7,776 enumerated
        ours = median_time(lambda: bootstrap.test(1, 0.0), args.repeats * 4)
        construct = median_time(lambda: WildScoreBootstrap(X, y, clusters), args.repeats)
        webb = bootstrap.test(1, 0.0)
        points = np.unique(bootstrap.draws)
        peer = median_time(lambda: plain_wild_score_loop(X, y, clusters, 1, points), 2)
        interval = median_time(lambda: bootstrap.confidence_set(1), 2)
        joint = median_time(lambda: bootstrap.joint_test([1, 2, 3], [0.0, 0.0, 0.0]), args.repeats)
    # the library pins BLAS inside the bootstrap: the default (two-thread) setting should cost
    # about what one thread does
    default_threads, one_thread = [], []
    for _ in range(args.repeats * 8):  # interleaved: a busy machine slows both alike
        default_threads += times_of(lambda: bootstrap.test(1, 0.0), 1)
        with threadpool_limits(1):
            one_thread += times_of(lambda: bootstrap.test(1, 0.0), 1)
    print(
        f"wild score bootstrap per hypothesis: 1 BLAS thread {min_median(one_thread)}; default "
        f"threads {min_median(default_threads)}; default / one (medians) "
        f"{statistics.median(default_threads) / statistics.median(one_thread):.2f}x"
    )
    print(
        f"wild score bootstrap, Webb, {webb.n_draws} draws enumerated: {ours * 1e3:.2f} ms per "
        f"hypothesis (setup, incl. unrestricted fit and draws: {construct * 1e3:.1f} ms); "
        f"plain statsmodels + Python loop: {peer * 1e3:.0f} ms; ratio {peer / ours:.0f}x; "
        f"confidence set by inversion: {interval * 1e3:.0f} ms; joint test of 3 restrictions: "
        f"{joint * 1e3:.2f} ms"
    )
    try:  # the only peer package (OLS only): wild bootstrap on the linear probability model
        import pandas as pd
        from wildboottest.wildboottest import wildboottest

        frame = pd.DataFrame(X, columns=["const", *(f"x{j}" for j in range(1, X.shape[1]))])
        ols = sm.OLS(y, frame)

        def peer_lpm():
            wildboottest(
                ols, B=9999, cluster=clusters, param="x1", weights_type="webb", seed=1, show=False
            )

        with threadpool_limits(1):
            first = median_time(peer_lpm, 1)  # includes numba compilation
            warm = median_time(peer_lpm, 3)
        print(
            f"wildboottest (LPM, OLS, Webb, B = 9999): {warm:.3f} s warm, {first:.2f} s first call"
            f"; ratio to our logit score bootstrap {warm / ours:.0f}x"
        )
    except ImportError:
        print("wildboottest not installed: the LPM peer is not timed in this run")

    B = args.replicates
    weights = poisson_weights(0, np.arange(len(y)), args.loop_replicates)
    batched_default = median_time(lambda: run_bootstrap(X, y, replicates=B, seed=0), args.repeats)
    with threadpool_limits(1):
        batched_times = times_of(lambda: run_bootstrap(X, y, replicates=B, seed=0), args.repeats)
        batched = statistics.median(batched_times)
        print(f"pairs bootstrap B = {B}, 1 BLAS thread: {min_median(batched_times)}")
        loop_one = median_time(lambda: statsmodels_loop(X, y, weights), 1) * B / weights.shape[1]
    loop_default = median_time(lambda: statsmodels_loop(X, y, weights[:, :20]), 1) * B / 20
    best_loop = min(loop_one, loop_default)
    tracemalloc.start()
    with threadpool_limits(1):
        result = run_bootstrap(X, y, replicates=B, seed=0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(
        f"pairs bootstrap, B = {B}: batched {batched:.3f} s with 1 BLAS thread, "
        f"{batched_default:.3f} s with default threads (peak {peak / 2**20:.0f} MiB, "
        f"{result.n_failed} failed); statsmodels loop {loop_one:.2f} s with 1 BLAS thread, "
        f"{loop_default:.2f} s with default threads (scaled from {weights.shape[1]} and 20 fits); "
        f"ratio vs best loop {best_loop / batched:.1f}x (ours on 1 thread), "
        f"{best_loop / min(batched, batched_default):.1f}x (ours in its best setting)"
    )


if __name__ == "__main__":
    main()
