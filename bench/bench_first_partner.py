"""The first-partner bootstrap (the wild region bootstrap of g(b) and the verdict's 95% set) on
the stream and Dask engines at scale: its time, the time in g(b) and its gradient, and whether
the records equal memory's (p-values identical, statistics and the set's ends to 1e-10).

    OPENBLAS_NUM_THREADS=1 python bench/bench_first_partner.py --firms 100000 \
        --case /tmp/fp-100k.pkl [--engines memory stream dask] [--json OUT.json]

The product model's bootstrap is captured from an in-memory run of the battery (up to its call:
the controls fit, its sample, the results so far) and pickled to ``--case`` once, so several
commits can be timed on the same case. Each engine then runs ``first_partner_bootstrap`` alone
in this process (Dask: a LocalCluster of 2 single-threaded workers, started before the clock).
Printed per engine: wall, this process's CPU, the workers' CPU (Dask), the evaluations of g(b)
(``ChunkedChangeDifference.many``: calls, the columns asked for in all, wall inside them).
"""

from __future__ import annotations

import argparse
import copy
import json
import pickle
import sys
import time
from pathlib import Path

import psutil


class _Captured(BaseException):
    """Stops the study once the first-partner bootstrap's arguments are captured (not an
    Exception: the battery records those as parts not assessed and goes on)."""


def capture(survey, **options) -> dict:
    """The first-partner bootstrap's call in an in-memory ``run_study(survey, **options)``
    (its results so far, outcome, the controls fit, sample, family, keywords); the study stops
    there."""
    import buzzpipe.study.battery as battery
    from buzzpipe.study.battery import run_study

    captured = {}

    def stop(results, outcome, fitted, sample, family, **keywords):
        captured.update(
            results=copy.deepcopy(results), outcome=outcome, fitted=fitted, sample=sample,
            family=family, keywords=keywords,
        )  # fmt: skip
        raise _Captured

    original, battery.first_partner_bootstrap = battery.first_partner_bootstrap, stop
    try:
        run_study(survey, **options)
    except _Captured:
        pass
    finally:
        battery.first_partner_bootstrap = original
    if not captured:
        raise RuntimeError("the study did not reach the first-partner bootstrap")
    return captured


def bootstrap_tests(case: dict, engine) -> dict:
    """The captured call made on ``engine`` (None: memory): its records, the tests ending in
    _wild_bootstrap (Estimates)."""
    from buzzpipe.study.common_support import BOOTSTRAP_SUFFIX, first_partner_bootstrap
    from buzzpipe.study.engine import using

    found = copy.deepcopy(case["results"])
    with using(engine):
        first_partner_bootstrap(
            found, case["outcome"], case["fitted"], case["sample"], case["family"],
            **case["keywords"],
        )  # fmt: skip
    tests = found.tests[case["outcome"]]
    return {name: test for name, test in tests.items() if name.endswith(BOOTSTRAP_SUFFIX)}


def records(case: dict, engine) -> dict:
    return {
        name: {
            "p_value": test.p_value,
            "statistic": test.statistic,
            "interval": None if test.interval is None else list(map(list, test.interval.segments)),
            "note": test.note,
        }
        for name, test in bootstrap_tests(case, engine).items()
    }


def same(a: dict, b: dict) -> list[str]:
    found = []
    for name, x in a.items():
        y = b.get(name)
        if y is None or x["p_value"] != y["p_value"] or x["note"] != y["note"]:
            found.append(name)
            continue
        ends_x = [e for s in x["interval"] or [] for e in s]
        ends_y = [e for s in y["interval"] or [] for e in s]
        pairs = [(x["statistic"], y["statistic"]), *zip(ends_x, ends_y, strict=False)]
        if len(ends_x) != len(ends_y) or any(
            abs(u - v) > 1e-10 * max(1.0, abs(u), abs(v)) for u, v in pairs
        ):
            found.append(name)
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--firms", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--case", required=True, help="pickle of the captured call (made once)")
    parser.add_argument("--engines", nargs="+", default=["memory", "stream", "dask"])
    parser.add_argument("--json", help="write the records and timings here")
    args = parser.parse_args(argv)
    case_file = Path(args.case)
    if not case_file.exists():
        start = time.process_time()
        import buzzpipe as bp

        survey = bp.synthesize("norway2010", seed=args.seed, firms=args.firms)
        case = capture(survey, seed=1, bootstrap_replications=0, outcomes=["product"],
                       heterogeneity=False)  # fmt: skip
        case_file.write_bytes(pickle.dumps(case))
        print(f"captured {args.firms:,} firms: {time.process_time() - start:.1f} s CPU")
    case = pickle.loads(case_file.read_bytes())
    print(f"sample: {len(case['sample']):,} firms, outcome {case['outcome']}, "
          f"draws {case['keywords'].get('draws')}")  # fmt: skip

    from buzzpipe.study import probability_changes
    from buzzpipe.study.engine import StudyEngine

    calls = {"n": 0, "columns": 0, "wall": 0.0}
    many = probability_changes.ChunkedChangeDifference.many

    def counted(self, params):
        start = time.perf_counter()
        try:
            return many(self, params)
        finally:
            calls["n"] += 1
            calls["columns"] += params.shape[1] if params.ndim == 2 else 1
            calls["wall"] += time.perf_counter() - start

    probability_changes.ChunkedChangeDifference.many = counted
    client = cluster = None
    found, timings = {}, {}
    for name in args.engines:
        engine = None
        if name == "stream":
            engine = StudyEngine("stream")
        elif name == "dask":
            if client is None:
                from distributed import Client, LocalCluster

                cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=":0",
                                       env={"OPENBLAS_NUM_THREADS": "1"})  # fmt: skip
                client = Client(cluster)
            engine = StudyEngine("dask", _client=client)
        workers = [p for p in psutil.Process().children(recursive=True)]
        worker_cpu = sum(sum(p.cpu_times()[:2]) for p in workers)
        calls.update(n=0, columns=0, wall=0.0)
        wall, cpu = time.perf_counter(), time.process_time()
        found[name] = records(case, engine)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        worker_cpu = sum(sum(p.cpu_times()[:2]) for p in workers) - worker_cpu
        timings[name] = {"wall": wall, "cpu": cpu, "workers_cpu": worker_cpu, **calls}
        print(f"{name}: {wall:.1f} s wall, {cpu:.1f} s CPU here, {worker_cpu:.1f} s CPU on "
              f"workers; g(b): {calls['n']} calls, {calls['columns']} columns, "
              f"{calls['wall']:.1f} s wall; load {psutil.getloadavg()[0]:.1f}")  # fmt: skip
        if name != args.engines[0]:
            differing = same(found[args.engines[0]], found[name])
            print(f"  vs {args.engines[0]}: {len(found[name])} records, differing: {differing}")
    if args.json:
        Path(args.json).write_text(json.dumps({"records": found, "timings": timings}, indent=1))
    if client is not None:
        client.close()
        cluster.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
