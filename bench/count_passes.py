"""Passes over the chunks of one ``buzzpipe analyze --engine stream`` run, by per-chunk function.

    OPENBLAS_NUM_THREADS=1 nice -n 10 python bench/count_passes.py FIRMS LINKS OUT [--looped]

Every pass of the stream engine is one ``map_designs`` call over the sample's row blocks (on Dask
each is one graph, one round trip through the scheduler). ``--looped`` runs a model's wild
bootstrap terms one after another instead of side by side (``for_each_term``), to count what
merging their passes saves; the two runs' results.json are identical.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time

from buzzpipe import cli
from buzzpipe.estimate import sources
from buzzpipe.study import sensitivity


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("firms")
    parser.add_argument("links")
    parser.add_argument("out")
    parser.add_argument("--looped", action="store_true")
    args = parser.parse_args(argv)
    counts: collections.Counter = collections.Counter()
    original = sources._ChunkedSource.map_designs

    def counted(self, spec, function, *rest):
        counts[getattr(function, "__name__", "?")] += 1
        return original(self, spec, function, *rest)

    sources._ChunkedSource.map_designs = counted
    if args.looped:
        sensitivity.for_each_term = lambda bootstrap, work, terms: [work(t) for t in terms]
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
