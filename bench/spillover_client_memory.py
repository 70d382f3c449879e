"""What spill-over's part holds on the Dask client: ``assess_spillover`` of one outcome run on
``--engine dask`` (a 2-worker LocalCluster, the analysis frame kept there as the battery keeps
it), with the Python allocations it makes (tracemalloc's peak above its start) and the resident
set's growth (sampled every 0.02 s) measured inside the call; the workers are not counted.

    OPENBLAS_NUM_THREADS=1 python bench/spillover_client_memory.py --firms 50000 150000 \
        [--no-links] [--engine dask|stream]

Bytes a firm: the difference between two sizes over the difference in firms. The survey is
``synthesize("norway2010", seed, firms=N, edge_list=links)``; the memory engine's code runs
with ``--engine memory`` for comparison.
"""

from __future__ import annotations

import argparse
import gc
import threading
import time
import tracemalloc

import psutil


def measure(firms: int, links: bool, engine_name: str, seed: int, client) -> dict:
    from buzzpipe.results import StudyResults
    from buzzpipe.study.engine import StudyEngine, using
    from buzzpipe.study.models import breadth_terms, control_terms
    from buzzpipe.study.spillover import assess_spillover
    from buzzpipe.synth import synthesize

    frame = synthesize("norway2010", seed, firms=firms, edge_list=links).analysis_frame()
    controls, control_columns = control_terms(frame)
    breadth = breadth_terms(frame)
    chosen = StudyEngine(engine_name, _client=client)
    process = psutil.Process()
    with using(chosen):
        chosen.keep_frame(frame)
        gc.collect()
        peak = [process.memory_info().rss]
        start = peak[0]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], process.memory_info().rss)
                time.sleep(0.02)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        tracemalloc.start()
        began = time.perf_counter()
        results = StudyResults()
        assess_spillover(
            results, "product", frame, breadth, controls, control_columns, "logit", seed=seed
        )
        seconds = time.perf_counter() - began
        traced = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        done.set()
        sampler.join()
    return {
        "firms": firms,
        "traced_peak": traced,
        "rss_growth": peak[0] - start,
        "seconds": seconds,
        "records": sorted(results.tests.get("product", {})),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--firms", type=int, nargs="+", default=[50_000, 150_000])
    parser.add_argument("--no-links", action="store_true")
    parser.add_argument("--engine", default="dask")
    parser.add_argument("--seed", type=int, default=2010)
    args = parser.parse_args(argv)
    client = None
    if args.engine == "dask":
        from buzzpipe.estimate.dask_engine import connect

        client = connect(None, n_workers=2, quiet=True)
    rows = [measure(n, not args.no_links, args.engine, args.seed, client) for n in args.firms]
    mib = 2**20
    kind = "without links" if args.no_links else "with links"
    print(f"assess_spillover, product, {kind}, --engine {args.engine}")
    for row in rows:
        print(
            f"{row['firms']:>9,} firms: traced peak {row['traced_peak'] / mib:7.1f} MiB, "
            f"resident growth {row['rss_growth'] / mib:7.1f} MiB, {row['seconds']:.0f} s, "
            f"{len(row['records'])} tests"
        )
    for low, high in zip(rows, rows[1:], strict=False):
        firms = high["firms"] - low["firms"]
        print(
            f"{low['firms']:,} -> {high['firms']:,}: traced "
            f"{(high['traced_peak'] - low['traced_peak']) / firms:.0f} bytes a firm, resident "
            f"{(high['rss_growth'] - low['rss_growth']) / firms:.0f} bytes a firm"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
