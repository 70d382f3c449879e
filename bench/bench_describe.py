"""Peak memory and time of ``buzzpipe describe`` on large Parquet surveys, streamed versus whole.

Writes canonical surveys of 100,000 and 1,000,000 firms (seeded) to a temporary folder, then runs
each way in its own Python process, which reports its own peak resident memory (VmHWM from
/proc/self/status; ru_maxrss is not used because Linux carries the parent's peak across exec):

- floor:     import buzzpipe's survey stage, pandas and pyarrow, read nothing;
- streamed:  the command line, ``buzzpipe describe FILE`` (Parquet record batches);
- whole:     read the whole file with pandas, Survey.from_frame, then describe.

Prints peaks, the streamed/whole ratios, and the growth of each from 100k to 1M firms: bounded
memory means the streamed peak stays near the floor whatever the number of firms.

    PYTHONPATH=src python bench/bench_describe.py [--firms 1000000] [--csv] [--keep DIR]
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from buzzpipe.survey.schema import PARTNER_TYPES, SCALES  # noqa: E402


def write_survey(path: Path, n_firms: int, seed: int = 2010) -> None:
    """A canonical survey with 5% don't-know answers, written in row groups of 100,000 firms."""
    rng = np.random.default_rng(seed)
    regions = np.array(["Oslo", "Bergen", "Stavanger", "Trondheim", "Kristiansand"])
    product = rng.integers(0, 2, n_firms).astype("int8")
    columns = {
        "firm_id": np.arange(1, n_firms + 1),
        "region": pd.Categorical(regions[rng.integers(0, 5, n_firms)], categories=regions),
        "industry": rng.integers(1, 7, n_firms),
        "employees": np.round(10 + np.exp(rng.normal(3, 1, n_firms))),
        "foreign_share": np.round(rng.random(n_firms), 2),
        "product": product,
        "process": rng.integers(0, 2, n_firms).astype("int8"),
        "new_to_market": (product * rng.integers(0, 2, n_firms)).astype("int8"),
    }
    for scale in SCALES:
        for partner_type in PARTNER_TYPES:
            answers = pd.array(rng.integers(0, 2, n_firms), dtype="Int8")
            answers[rng.random(n_firms) < 0.05] = pd.NA
            columns[f"collab_{scale}_{partner_type}"] = answers
    pd.DataFrame(columns).to_parquet(path, row_group_size=100_000)


PROGRAMS = {
    "floor": "import buzzpipe.survey, buzzpipe.survey.describe, pandas, pyarrow.parquet",
    "streamed": "from buzzpipe.cli import main; import sys, io; "
    "sys.stdout = io.StringIO(); code = main(['describe', FILE]); sys.stdout = sys.__stdout__; "
    "assert code == 0",
    "whole": "import pandas as pd; from buzzpipe.survey import Survey; "
    "read = pd.read_parquet if FILE.endswith('.parquet') else pd.read_csv; "
    "Survey.from_frame(read(FILE), source=FILE).describe()",
}


def measure(way: str, path: Path) -> dict:
    """Run one way in a fresh process; return its wall time and peak resident memory."""
    program = (
        "import time, json\n"
        f"FILE = {str(path)!r}\n"
        "start = time.perf_counter()\n"
        f"{PROGRAMS[way]}\n"
        "seconds = time.perf_counter() - start\n"
        "status = open('/proc/self/status').read().split('VmHWM:')[1].split()[0]\n"
        "print(json.dumps({'seconds': seconds, 'peak_mib': int(status) / 1024}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT / "src"), "OPENBLAS_NUM_THREADS": "1", "PATH": ""},
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"{way} failed: {result.stderr.strip()[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--firms", type=int, default=1_000_000)
    parser.add_argument("--csv", action="store_true", help="also measure the same survey as CSV")
    parser.add_argument("--keep", help="folder to keep the generated files in")
    args = parser.parse_args()
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_describe_"))
    folder.mkdir(parents=True, exist_ok=True)
    sizes = sorted({min(100_000, args.firms), args.firms})
    formats = ["parquet", "csv"] if args.csv else ["parquet"]
    results = {}
    for n_firms in sizes:
        path = folder / f"survey_{n_firms}.parquet"
        if not path.exists():
            started = time.perf_counter()
            write_survey(path, n_firms)
            print(f"wrote {n_firms:,} firms in {time.perf_counter() - started:.1f} s")
        if args.csv and not path.with_suffix(".csv").exists():
            pd.read_parquet(path).to_csv(path.with_suffix(".csv"), index=False)
        for file_format in formats:
            data = path.with_suffix(f".{file_format}")
            for way in PROGRAMS:
                result = results[(file_format, way, n_firms)] = measure(way, data)
                print(
                    f"{n_firms:>9,} firms  {file_format:<7} {way:<9} "
                    f"peak {result['peak_mib']:7.0f} MiB  {result['seconds']:6.1f} s"
                )
    largest = sizes[-1]
    for file_format in formats:
        floor = results[(file_format, "floor", largest)]["peak_mib"]
        streamed = results[(file_format, "streamed", largest)]
        whole = results[(file_format, "whole", largest)]
        print(
            f"\n{file_format}, {largest:,} firms: streamed peak {streamed['peak_mib']:.0f} MiB = "
            f"{streamed['peak_mib'] / whole['peak_mib']:.2f} x whole-file peak "
            f"({whole['peak_mib']:.0f} MiB); above the import floor: streamed "
            f"{streamed['peak_mib'] - floor:.0f} MiB, whole {whole['peak_mib'] - floor:.0f} MiB; "
            f"time streamed/whole {streamed['seconds'] / whole['seconds']:.2f}"
        )
        if len(sizes) > 1:
            small = sizes[0]
            for way in ("streamed", "whole"):
                growth = (
                    results[(file_format, way, largest)]["peak_mib"]
                    - results[(file_format, way, small)]["peak_mib"]
                )
                print(
                    f"  {way}: peak grows by {growth:.0f} MiB from {small:,} to {largest:,} firms"
                )


if __name__ == "__main__":
    main()
