"""The study battery of ``buzzpipe replicate`` in fits' worth of statsmodels, measured in one run.

    PYTHONPATH=src python bench/bench_battery.py [--repeat 3] [--peer 20] [--restriction-sets]

The battery: ``run_study`` on the norway2010 survey, seed 2010, with the replicate command's
options (sensitivity, heterogeneity, the counterfactual programmes, 199 bootstrap replicates,
9,999 wild draws). The peer: statsmodels' formula logit of the study's controls model of
``product`` with HC1 errors, on the same survey. Both run with BLAS on one thread (their best
setting on two cores for problems this small), alternated: battery, peer x (--peer / --repeat),
battery, ... after one warm-up of each. Prints the min and median of each and the battery in
fits' worth: battery min / peer median and battery median / peer median. Caches that an
earlier run filled are emptied before each timed run. ``--cpu`` times the process's CPU instead
of the wall clock (both run on one thread: on a loaded machine the wall clock mostly measures
the wait for a core). Timings are printed,
never asserted; on a shared machine only the ratio means anything (the load average is printed).

``--restriction-sets``: what the 95% sets of the first-partner differences under the region
bootstrap add (``WildScoreBootstrap.restriction_confidence_set``, issue 16): each round runs the
battery with them and without them (the method replaced by one returning the whole line at
once), alternated, and prints both and their difference in ms and fits' worth, with the time
spent inside the sets in the runs with them.

``--cold``: each battery in a fresh Python process, as ``buzzpipe replicate`` runs it: the
process imports ``buzzpipe.end_to_end`` and ``buzzpipe.synth`` (numpy, pandas, pyarrow with
them) and builds the survey and its description before its timer starts; the timer covers the
first ``_study`` call, so the modules it imports (the study's and estimation's own, formulaic,
scipy, numba) and numba's cached kernels it loads are included (BLAS on one thread there too).
The peer runs warm in this process between the batteries. Both the cold batteries and, in the
same rounds, warm ones (a second ``_study`` in that same fresh process) are printed. The fresh
processes read and write Python's bytecode cache (``__pycache__``) as an installed package
does, whatever PYTHONDONTWRITEBYTECODE says here, after one untimed process that fills it;
``--no-bytecode`` makes them compile buzzpipe's modules from source each time instead (what
runs under PYTHONDONTWRITEBYTECODE=1 paid: about 0.1 s of CPU more on norway2010).
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np  # noqa: F401  (the peer's formula says np.log)
from threadpoolctl import threadpool_limits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="battery runs")
    parser.add_argument("--peer", type=int, default=21, help="peer fits in all")
    parser.add_argument("--restriction-sets", action="store_true", help="with and without them")
    parser.add_argument(
        "--cpu", action="store_true", help="CPU time of the process instead of wall-clock time"
    )
    parser.add_argument(
        "--cold", action="store_true", help="each battery in a fresh process (imports included)"
    )
    parser.add_argument(
        "--no-bytecode",
        action="store_true",
        help="--cold: the fresh processes compile buzzpipe's modules from source each time",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    clock = time.process_time if args.cpu else time.perf_counter
    if args.child:
        _cold_child(clock)
        return

    import statsmodels.formula.api as smf

    from buzzpipe import defaults
    from buzzpipe.end_to_end import StudyOptions, _study
    from buzzpipe.study.models import estimation_sample, main_specifications
    from buzzpipe.synth import synthesize

    survey = synthesize("norway2010", defaults.REPLICATION_SEED)
    options = StudyOptions(seed=defaults.REPLICATION_SEED)
    frame = survey.analysis_frame()
    specifications = main_specifications(frame, "product")
    controls = next(s for s in specifications if s.name == "controls")
    sample = estimation_sample(frame, [s for s in specifications if s.name != "partner_types"])

    def peer() -> None:
        smf.logit(controls.formula, sample).fit(disp=0, cov_type="HC1")

    def cold() -> None:
        """Forget what an earlier battery run left in the process (parsed formulas, design
        specifications and plans), so that each timed run does what one ``replicate`` does."""
        for module, names in (
            ("buzzpipe.estimate.chunks", ("_parse", "_CODINGS", "_CATEGORY_VALUES", "_RHS_PLANS")),
            (
                "buzzpipe.estimate.design",
                ("_SPECIFICATIONS", "_REBUILD_PLANS", "_UNIONS", "_OUTCOMES", "_RIGHT_HANDS"),
            ),
            ("buzzpipe.estimate.direct_specification", ("_RIGHT_HANDS",)),
            ("buzzpipe.estimate.simple_formula", ("_right_terms",)),
            ("buzzpipe.estimate.hypothesis_tests", ("_name_patterns", "_stata_spelling")),
            ("buzzpipe.study.models", ("_COLUMN_KINDS", "_CODED_LEVELS", "_expression_variables")),
        ):
            try:
                found = __import__(module, fromlist=["_"])
            except ImportError:  # a module the version measured does not have
                continue
            for name in names:
                cache = getattr(found, name, None)
                if hasattr(cache, "cache_clear"):
                    cache.cache_clear()
                elif cache is not None:
                    cache.clear()

    from buzzpipe.estimate.wild_bootstrap import ConfidenceSet, WildScoreBootstrap

    with_sets = WildScoreBootstrap.restriction_confidence_set
    inside: list[float] = []

    def timed_set(self, *arguments, **keywords):
        start = clock()
        found = with_sets(self, *arguments, **keywords)
        inside.append(clock() - start)
        return found

    def whole_line(self, restriction, name="g(b)", alpha=0.05, **_):
        inf = float("inf")
        return ConfidenceSet(name, alpha, [(-inf, inf)], [], float("nan"))

    per_round = max(1, args.peer // args.repeat)
    variants = {"with": timed_set, "without": whole_line} if args.restriction_sets else {}
    battery_times, peer_times = [], []
    if args.cold:
        _cold_rounds(args, peer, per_round)
        return
    variant_times: dict[str, list[float]] = {name: [] for name in variants}
    with threadpool_limits(limits=1):
        _study(survey, options)
        peer()
        for _ in range(args.repeat):
            for name, method in variants.items() or [(None, None)]:
                if method is not None:
                    WildScoreBootstrap.restriction_confidence_set = method
                cold()
                start = clock()
                _study(survey, options)
                elapsed = clock() - start
                (variant_times[name] if name else battery_times).append(elapsed)
            WildScoreBootstrap.restriction_confidence_set = with_sets
            for _ in range(per_round):
                start = clock()
                peer()
                peer_times.append(clock() - start)
    if variants:
        battery_times = variant_times["with"]
    peer_median = statistics.median(peer_times)
    print(
        f"load average {os.getloadavg()[0]:.1f}; BLAS on one thread; {len(sample)} firms; "
        f"{'CPU' if args.cpu else 'wall-clock'} time"
    )
    print(
        f"battery ({len(battery_times)} runs): min {min(battery_times):.2f} s, "
        f"median {statistics.median(battery_times):.2f} s"
    )
    print(
        f"peer, statsmodels formula logit of the controls model, HC1 ({len(peer_times)} fits): "
        f"min {1000 * min(peer_times):.1f} ms, median {1000 * peer_median:.1f} ms"
    )
    print(
        f"battery in fits' worth: {min(battery_times) / peer_median:.0f} (min / peer median), "
        f"{statistics.median(battery_times) / peer_median:.0f} (median / peer median)"
    )
    if variants:
        without = variant_times["without"]
        print(
            f"without the restriction sets ({len(without)} runs): min {min(without):.2f} s, "
            f"median {statistics.median(without):.2f} s; {min(without) / peer_median:.0f} / "
            f"{statistics.median(without) / peer_median:.0f} fits' worth"
        )
        added = [a - b for a, b in zip(battery_times, without, strict=True)]
        per_run = sum(inside) / len(battery_times)
        print(
            f"the sets add (with - without, per round): min {1000 * min(added):.0f} ms, median "
            f"{1000 * statistics.median(added):.0f} ms = {min(added) / peer_median:.1f} / "
            f"{statistics.median(added) / peer_median:.1f} fits' worth; time inside them "
            f"{1000 * per_run:.0f} ms a run ({len(inside) // len(battery_times)} sets), "
            f"{per_run / peer_median:.1f} fits' worth"
        )


def _cold_child(clock) -> None:
    """One fresh process: the survey and its description as ``replicate`` builds them, then the
    first ``_study`` timed and a second one (warm) after it; prints both in seconds."""
    from buzzpipe import defaults
    from buzzpipe.end_to_end import StudyOptions, _study
    from buzzpipe.synth import synthesize

    survey = synthesize("norway2010", defaults.REPLICATION_SEED)
    survey.describe()
    options = StudyOptions(seed=defaults.REPLICATION_SEED)
    with threadpool_limits(limits=1):
        start = clock()
        _study(survey, options)
        first = clock() - start
        start = clock()
        _study(survey, options)
        second = clock() - start
    print(f"{first!r} {second!r}")


def _cold_rounds(args, peer, per_round: int) -> None:
    """``--cold``: a fresh process per battery, the peer in this process between them."""
    command = [sys.executable, os.path.abspath(__file__), "--child"] + (
        ["--cpu"] if args.cpu else []
    )
    environment = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    if args.no_bytecode:
        environment["PYTHONDONTWRITEBYTECODE"] = "1"
    else:
        environment.pop("PYTHONDONTWRITEBYTECODE", None)
        subprocess.run(command, env=environment, capture_output=True, check=True)  # fills caches
    clock = time.process_time if args.cpu else time.perf_counter
    cold, warm, peer_times = [], [], []
    with threadpool_limits(limits=1):
        peer()
        for _ in range(args.repeat):
            output = subprocess.run(
                command, env=environment, capture_output=True, text=True, check=True
            ).stdout.split()
            cold.append(float(output[-2]))
            warm.append(float(output[-1]))
            for _ in range(per_round):
                start = clock()
                peer()
                peer_times.append(clock() - start)
    peer_median = statistics.median(peer_times)
    print(
        f"load average {os.getloadavg()[0]:.1f}; BLAS on one thread; "
        f"{'CPU' if args.cpu else 'wall-clock'} time; each battery in a fresh process, "
        + ("modules compiled from source" if args.no_bytecode else "bytecode cache on")
    )
    for name, times in (("cold (first in its process)", cold), ("warm (second in it)", warm)):
        print(
            f"battery {name} ({len(times)} runs): min {min(times):.2f} s, median "
            f"{statistics.median(times):.2f} s = {min(times) / peer_median:.0f} / "
            f"{statistics.median(times) / peer_median:.0f} fits' worth"
        )
    print(
        f"peer, statsmodels formula logit of the controls model, HC1 ({len(peer_times)} fits): "
        f"min {1000 * min(peer_times):.1f} ms, median {1000 * peer_median:.1f} ms"
    )


if __name__ == "__main__":
    main()
