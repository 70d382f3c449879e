"""Benchmark synthetic-survey generation against peers measured in the same run.

Peers: numpy drawing just the uniforms the generator consumes (the floor of any generator),
one logit fit of the named specification with buzzpipe.fit (what a study does with each survey),
and reading the generated survey back from Parquet with pandas. Prints times and ratios; the
streamed run (``--stream N``, default 10,000,000) reports wall time and peak resident memory of
a child process that writes N firms to Parquet.

    PYTHONPATH=src python bench/bench_synth.py [--large 1000000] [--stream 10000000]
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from buzzpipe.synth import generate  # noqa: E402
from buzzpipe.synth.generate import GeneratingParameters, draw_block  # noqa: E402
from buzzpipe.synth.preset import load_preset  # noqa: E402


def median_seconds(task, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        task()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def uniform_floor(n: int) -> None:
    """The random numbers one block of n firms consumes, drawn by numpy alone (about 60 per firm:
    42 collaboration uniforms, 3 scale effects, ~10 link draws, a handful of firm traits)."""
    rng = np.random.default_rng(0)
    rng.random((n, 60))


def small(preset) -> None:
    from buzzpipe import fit
    from buzzpipe.synth import synthesize

    parameters = GeneratingParameters.from_preset(preset)
    arrays = median_seconds(lambda: draw_block(parameters, 1604, np.random.default_rng(1)), 30)
    frames = median_seconds(lambda: generate(preset, 1), 30)
    survey = median_seconds(lambda: synthesize(preset, 1), 10)
    frame = synthesize(preset, 1).analysis_frame()
    one_fit = median_seconds(
        lambda: fit(preset["calibration.specification"], frame, family="logit", vcov="robust"), 10
    )
    floor = median_seconds(lambda: uniform_floor(1604), 30)
    print("N = 1,604 (medians)")
    print(f"  draw arrays             {arrays * 1e3:8.2f} ms   {arrays / floor:6.1f} x numpy floor")
    print(f"  generate (DataFrames)   {frames * 1e3:8.2f} ms   {frames / one_fit:6.2f} x one fit")
    print(f"  synthesize (Survey)     {survey * 1e3:8.2f} ms   {survey / one_fit:6.2f} x one fit")
    print(f"  buzzpipe.fit, robust    {one_fit * 1e3:8.2f} ms")
    print(f"  numpy uniforms floor    {floor * 1e3:8.2f} ms")


def large(preset, n: int) -> None:
    start = time.perf_counter()
    firms, links = generate(preset, 1, firms=n)
    seconds = time.perf_counter() - start
    floor = median_seconds(lambda: uniform_floor(n), 3)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "firms.parquet"
        firms.to_parquet(path)
        read = median_seconds(lambda: pd.read_parquet(path), 3)
    print(f"N = {n:,} in memory ({len(links):,} links)")
    print(f"  generate                {seconds:8.2f} s    {seconds / floor:6.1f} x numpy floor")
    print(f"  read back from Parquet  {read:8.2f} s    generate = {seconds / read:5.1f} x read")


def stream(n: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "firms.parquet"
        links = Path(folder) / "links.parquet"
        code = (
            "import time\n"
            "from pathlib import Path\n"
            "from buzzpipe.synth.preset import load_preset\n"
            "from buzzpipe.synth.write import write_survey\n"
            "start = time.perf_counter()\n"
            f"w = write_survey(load_preset('norway2010'), 1, Path({str(out)!r}), "
            f"links_path=Path({str(links)!r}), firms={n}, progress=False)\n"
            "seconds = time.perf_counter() - start\n"
            "# VmHWM: this process's peak resident memory (ru_maxrss can carry the parent's)\n"
            "peak = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
            "print(seconds, w.links, peak)\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        seconds, n_links, peak_kib = result.stdout.split()
        size = (out.stat().st_size + links.stat().st_size) / 2**20
    print(f"N = {n:,} streamed to Parquet with links ({int(n_links):,} links, {size:,.0f} MiB)")
    print(
        f"  wall time {float(seconds):.1f} s, peak resident memory {int(peak_kib) / 1024:.0f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--stream", type=int, default=10_000_000, help="0 to skip")
    args = parser.parse_args()
    preset = load_preset("norway2010")
    print(f"cpus: {os.cpu_count()}; BLAS threads pinned to 1")
    small(preset)
    large(preset, args.large)
    if args.stream:
        stream(args.stream)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of this process (in-memory runs): {peak:.0f} MiB")


if __name__ == "__main__":
    main()
