"""Passes over the chunks of one ``buzzpipe analyze --engine stream`` run, by per-chunk function.

    OPENBLAS_NUM_THREADS=1 nice -n 10 python bench/count_passes.py FIRMS LINKS OUT [--looped]

Every pass of the stream engine is one ``map_designs`` call over the sample's row blocks (on Dask
each is one graph, one round trip through the scheduler); a round of passes merged over several
samples (``StudyEngine.side_by_side``: the single-term bootstraps of the differences and the
supermodularity test) is one Dask graph and counts once, as "side by side". ``--looped`` runs a
model's wild bootstrap terms (``for_each_term``) and the single-term bootstraps one after
another instead, to count what merging their passes saves; the two runs' results.json are
identical.
"""

from __future__ import annotations

import argparse
import collections
import sys
import threading
import time

from buzzpipe import cli
from buzzpipe.estimate import sources, wild_bootstrap
from buzzpipe.study import engine, sensitivity


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("firms")
    parser.add_argument("links")
    parser.add_argument("out")
    parser.add_argument("--looped", action="store_true")
    args = parser.parse_args(argv)
    counts: collections.Counter = collections.Counter()
    original = sources._ChunkedSource.map_designs
    original_round = wild_bootstrap._MergedPasses._pass
    state = threading.local()  # the passes of the merged round this thread is making

    def counted(self, spec, function, *rest):
        name = getattr(function, "__name__", "?")
        if getattr(state, "round", None) is not None:
            state.round.append(name)
        else:
            counts[name] += 1
        return original(self, spec, function, *rest)

    def counted_round(self):
        outer = getattr(state, "round", None) is None
        if outer:
            state.round = []
        try:
            original_round(self)
        finally:
            if outer:
                made, state.round = state.round, None
                if len(made) == 1:  # one sample's merged pass, as before
                    counts[made[0]] += 1
                elif made:
                    counts["side by side"] += 1

    sources._ChunkedSource.map_designs = counted
    wild_bootstrap._MergedPasses._pass = counted_round
    if args.looped:
        sensitivity.for_each_term = lambda bootstrap, work, terms: [work(t) for t in terms]
        engine.StudyEngine.side_by_side = lambda self, works: [
            engine._outcome(work) for work in works
        ]
    start = time.process_time()
    command = ["analyze", args.firms, "--links", args.links, "--out", args.out]
    code = cli.main([*command, "--replications", "0", "--engine", "stream", "--progress", "never"])
    how = "looped" if args.looped else "side by side"
    seconds = time.process_time() - start
    print(f"{how}: exit {code}, {sum(counts.values()):,} passes, CPU {seconds:.1f} s")
    for name, number in counts.most_common():
        print(f"  {name:<24} {number:,}")
    return code


if __name__ == "__main__":
    sys.exit(main())
