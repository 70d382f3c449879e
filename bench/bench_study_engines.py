"""``buzzpipe analyze`` on a partitioned Parquet edge-list survey, --engine memory against
--engine dask (or stream): wall time, peak memory and whether results.json agrees (1e-10).

    OPENBLAS_NUM_THREADS=1 nice -n 10 python bench/bench_study_engines.py --firms 20000 \
        --folder /tmp/survey-20k [--engines memory dask] [-- --no-sensitivity ...]

The survey is drawn once with ``buzzpipe synth --out FOLDER --edge-list`` (firms/ and links/
partitions, one per block of 131,072 firms). Each engine runs as its own ``buzzpipe analyze``
process with the firm bootstrap off (``--replications 0``; a chunked engine refuses it); the
peak is the largest resident set summed over that process and its children (the Dask workers),
sampled every 0.2 s with psutil. Arguments after ``--`` go to both analyze runs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from pathlib import Path

from memory_peaks import run_measured


def numbers(tree, path="$"):
    """(path, value) of every number and string of a results.json tree."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from numbers(value, f"{path}.{key}")
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            yield from numbers(value, f"{path}[{index}]")
    else:
        yield path, tree


def differences(a: dict, b: dict, tol: float = 1e-10) -> tuple[int, list]:
    left, right = dict(numbers(a)), dict(numbers(b))
    if left.keys() != right.keys():
        return 0, [("keys", sorted(left.keys() ^ right.keys())[:5])]
    compared, found = 0, []
    for key, x in left.items():
        y = right[key]
        if isinstance(x, float) and isinstance(y, (int, float)):
            compared += 1
            if not (math.isnan(x) and math.isnan(y)) and abs(x - y) > tol * max(1.0, abs(x)):
                found.append((key, x, y))
        elif x != y:
            found.append((key, x, y))
    return compared, found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--firms", type=int, default=20_000)
    parser.add_argument("--folder", help="the survey's folder (drawn there if missing)")
    parser.add_argument("--seed", type=int, default=2010)
    parser.add_argument("--engines", nargs="+", default=["memory", "dask"])
    parser.add_argument("--progress", default="never", help="analyze's --progress")
    parser.add_argument("rest", nargs="*", help="after --: more analyze options")
    args = parser.parse_args(argv)
    buzzpipe = str(Path(sys.executable).with_name("buzzpipe"))
    folder = Path(args.folder or tempfile.mkdtemp(prefix="bench-study-")) / "survey"
    if not (folder / "firms").is_dir():
        command = [buzzpipe, "synth", "--seed", str(args.seed), "--firms", str(args.firms)]
        wall, seen, code = run_measured([*command, "--out", str(folder), "--edge-list"])
        if code:
            return code
        print(f"synth {args.firms:,} firms: {wall:.1f} s, peak {seen['peak'] / 2**20:.0f} MiB")
    import pyarrow.parquet as pq

    links = sum(pq.read_metadata(p).num_rows for p in sorted((folder / "links").glob("*.parquet")))
    print(f"survey: {args.firms:,} firms, {links:,} links in {folder}")
    print(f"machine: load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores")
    results = {}
    for engine in args.engines:
        out = folder.parent / f"out-{engine}"
        command = [buzzpipe, "analyze", str(folder / "firms"), "--links", str(folder / "links"),
                   "--out", str(out), "--replications", "0", "--engine", engine,
                   "--progress", args.progress, *args.rest]  # fmt: skip
        load = os.getloadavg()[0]
        wall, seen, code = run_measured(command, folder.parent / f"analyze-{engine}.log")
        if code:
            return code
        results[engine] = json.loads((out / "results.json").read_text())
        mib = {key: seen[key] / 2**20 for key in ("peak", "client", "children")}
        print(
            f"analyze --engine {engine}: {wall:.1f} s wall, {seen['cpu']:.1f} s CPU (tree), "
            f"peak {mib['peak']:.0f} MiB (tree; analyze process {mib['client']:.0f}, "
            f"children {mib['children']:.0f}), load {load:.1f} -> {os.getloadavg()[0]:.1f}"
        )
    first, *others = args.engines
    for engine in others:
        compared, found = differences(results[first], results[engine])
        print(f"{engine} vs {first}: {compared:,} numbers, {len(found)} differences beyond 1e-10")
        for item in found[:10]:
            print("  ", item)
    return 0


if __name__ == "__main__":
    sys.exit(main())
