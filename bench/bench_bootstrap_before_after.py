"""Benchmark: the pairs bootstrap before and after the speed-up, and a statsmodels loop, in one run.

Run: PYTHONPATH=src /work/main/.venv/bin/python bench/bench_bootstrap_before_after.py [--rounds 15]
The "before" code is ``bootstrap.py``, ``random_weights.py`` and (where the commit has it)
``batched_newton.py`` at ``--before`` (default commit 330fb3f, the first pass), read from git into
a temporary folder and imported beside the current ones. Rounds interleave before, after and the
loop, so machine load falls on all three alike; medians, fastest rounds and ratios are printed,
in wall-clock and in CPU time (``--cpu``: the process's, steadier on a busy machine). BLAS is
pinned to one thread.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from buzzpipe.estimate import bootstrap, random_weights

sys.path.insert(0, str(Path(__file__).parent))
from bench_bootstrap import statsmodels_loop, survey_like_design  # noqa: E402


def module_at(commit: str, path: str, name: str, folder: Path):
    """Import one file of the package as it was at ``commit``."""
    text = subprocess.run(
        ["git", "show", f"{commit}:{path}"], check=True, capture_output=True, text=True
    ).stdout
    target = folder / f"{name}.py"
    target.write_text(text)
    spec = importlib.util.spec_from_file_location(name, target)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


CLOCK = time.perf_counter


def once(function) -> float:
    start = CLOCK()
    function()
    return CLOCK() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", default="330fb3f")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--replicates", type=int, default=1000)
    parser.add_argument("--cpu", action="store_true", help="CPU time instead of wall-clock")
    args = parser.parse_args()
    global CLOCK
    if args.cpu:
        CLOCK = time.process_time
    X, y, _ = survey_like_design()
    with tempfile.TemporaryDirectory() as folder:
        old_weights = module_at(
            args.before, "src/buzzpipe/estimate/random_weights.py", "weights_before", Path(folder)
        )
        old = module_at(
            args.before, "src/buzzpipe/estimate/bootstrap.py", "bootstrap_before", Path(folder)
        )
        has_solver = subprocess.run(
            ["git", "cat-file", "-e", f"{args.before}:src/buzzpipe/estimate/batched_newton.py"],
            capture_output=True,
        )
        if has_solver.returncode == 0:  # the solver the bootstrap called then
            old_solver = module_at(
                args.before,
                "src/buzzpipe/estimate/batched_newton.py",
                "batched_newton_before",
                Path(folder),
            )
            old.newton_batch = old_solver.newton_batch
    old.random_weights = old_weights
    loop_weights = random_weights.poisson_weights(0, np.arange(len(y)), 20)
    B = args.replicates
    before, after, loop = [], [], []
    with threadpool_limits(1):
        for _ in range(args.rounds):
            before.append(once(lambda: old.run_bootstrap(X, y, replicates=B)))
            after.append(once(lambda: bootstrap.run_bootstrap(X, y, replicates=B)))
            loop.append(once(lambda: statsmodels_loop(X, y, loop_weights)) * B / 20)
        difference = np.abs(
            old.run_bootstrap(X, y, replicates=B).replicates
            - bootstrap.run_bootstrap(X, y, replicates=B).replicates
        ).max()
    median = statistics.median
    print(
        f"pairs bootstrap {X.shape[0]} x {X.shape[1]}, B = {B}, 1 BLAS thread, {args.rounds} "
        f"rounds, {'CPU' if args.cpu else 'wall-clock'} time, before = {args.before}"
    )
    for name, times in (("before", before), ("after", after), ("statsmodels loop", loop)):
        print(
            f"{name:>16}: median {median(times) * 1e3:7.0f} ms, fastest {min(times) * 1e3:7.0f} ms"
        )
    print(
        f"loop / before {min(loop) / min(before):.1f}x, loop / after {min(loop) / min(after):.1f}x "
        "(fastest rounds)"
    )
    ratios = [b / a for b, a in zip(before, after, strict=True)]
    print(
        f"before / after per round: median {median(ratios):.2f}x; loop / before "
        f"{median(loop) / median(before):.1f}x, loop / after {median(loop) / median(after):.1f}x "
        f"(medians); replicate estimates agree to {difference:.1e}"
    )


if __name__ == "__main__":
    main()
