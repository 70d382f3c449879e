"""Peak memory and time of ``buzzpipe describe`` on large Parquet surveys, streamed versus whole.

Writes canonical surveys of 100,000 and 1,000,000 firms (seeded) to a temporary folder, then runs
each way in its own Python process, which reports its own peak resident memory (VmHWM from
/proc/self/status; ru_maxrss is not used because Linux carries the parent's peak across exec):

- floor:     import buzzpipe's survey stage, pandas and pyarrow, read nothing;
- streamed:  the command line, ``buzzpipe describe FILE`` (Parquet record batches);
- whole:     read the whole file with pandas, Survey.from_frame, then describe.

Prints peaks, the streamed/whole ratios, and the growth of each from 100k to 1M firms: bounded
memory means the streamed peak stays near the floor whatever the number of firms.

``--edge-list`` measures an edge-list survey instead: ``buzzpipe synth --preset norway2010
--seed 1 --firms N --links`` writes firms and links (about 6 links a firm), and a second links
file repeats the first 4 links in 6 (a repeated link changes no measure) to reach about 10
links a firm. Ways: floor; streamed (``buzzpipe describe FIRMS --links LINKS``: links read in
batches and counted); whole (``read_edge_list`` holding the links, then describe; measured on
the first links file only unless ``--whole-large``). Bounded memory: the streamed peak does not
grow with the number of links, and the tables agree (checked here to the last digit).

    PYTHONPATH=src python bench/bench_describe.py [--firms 1000000] [--csv] [--keep DIR]
    PYTHONPATH=src python bench/bench_describe.py --edge-list [--firms 1000000] [--keep DIR]
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
EDGE_LIST_PROGRAMS = {
    "floor": PROGRAMS["floor"],
    "streamed": "from buzzpipe.cli import main; import sys, io; "
    "sys.stdout = io.StringIO(); code = main(['describe', FILE, '--links', LINKS, '--csv', OUT]); "
    "sys.stdout = sys.__stdout__; assert code == 0",
    "whole": "from buzzpipe.survey import read_edge_list; "
    "read_edge_list(FILE, LINKS).describe().to_csv(OUT, lineterminator='\\n')",
}


def measure(way: str, path: Path, links: Path | None = None, out: Path | None = None) -> dict:
    """Run one way in a fresh process; return its wall time and peak resident memory."""
    code = (EDGE_LIST_PROGRAMS if links is not None else PROGRAMS)[way]
    program = (
        "import time, json\n"
        f"FILE, LINKS, OUT = {str(path)!r}, {str(links)!r}, {str(out)!r}\n"
        "start = time.perf_counter()\n"
        f"{code}\n"
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


def write_edge_list(folder: Path, n_firms: int) -> tuple[Path, Path, Path]:
    """Firms and links through ``buzzpipe synth`` (seed 1), and a links file of ~10 per firm."""
    import pyarrow.parquet as pq

    firms, links = folder / f"firms_{n_firms}.parquet", folder / f"links_{n_firms}.parquet"
    if not links.exists():
        command = [
            sys.executable, "-m", "buzzpipe", "synth", "--preset", "norway2010", "--seed", "1",
            "--firms", str(n_firms), "--out", str(firms), "--links", str(links),
        ]  # fmt: skip
        env = {"PYTHONPATH": str(ROOT / "src"), "PATH": ""}
        subprocess.run(command, check=True, env=env, capture_output=True)
    more = folder / f"links_{n_firms}_more.parquet"
    if not more.exists():
        source = pq.ParquetFile(links)
        with pq.ParquetWriter(more, source.schema_arrow) as writer:
            for repeat in (False, True):
                for index, batch in enumerate(source.iter_batches(500_000)):
                    if not repeat or index % 6 < 4:
                        writer.write_batch(batch)
    return firms, links, more


def edge_list_main(args: argparse.Namespace, folder: Path) -> None:
    import pyarrow.parquet as pq

    firms, links, more = write_edge_list(folder, args.firms)
    results = {}
    for links_file in (links, more):
        n_links = pq.ParquetFile(links_file).metadata.num_rows
        ways = ["floor", "streamed"]
        if links_file == links or args.whole_large:
            ways.append("whole")
        for way in ways:
            out = folder / f"table_{way}_{links_file.stem}.csv"
            result = results[(way, n_links)] = measure(way, firms, links_file, out)
            print(
                f"{args.firms:>9,} firms {n_links:>11,} links  {way:<9} "
                f"peak {result['peak_mib']:7.0f} MiB  {result['seconds']:6.1f} s"
            )
        if "whole" in ways:
            streamed_table = (folder / f"table_streamed_{links_file.stem}.csv").read_text()
            whole_table = (folder / f"table_whole_{links_file.stem}.csv").read_text()
            same = "identical" if streamed_table == whole_table else "DIFFERENT"
            print(f"  tables, streamed and whole: {same}")
    (small, large) = sorted({n for _, n in results})
    floor = results[("floor", large)]["peak_mib"]
    growth = results[("streamed", large)]["peak_mib"] - results[("streamed", small)]["peak_mib"]
    print(
        f"\nstreamed peak {results[('streamed', large)]['peak_mib']:.0f} MiB at {large:,} links "
        f"({results[('streamed', large)]['peak_mib'] - floor:.0f} MiB above the import floor); "
        f"grows by {growth:.0f} MiB from {small:,} to {large:,} links"
    )
    whole = results[("whole", small)]
    streamed = results[("streamed", small)]
    print(
        f"at {small:,} links: streamed peak = {streamed['peak_mib'] / whole['peak_mib']:.2f} x "
        f"whole-file peak ({whole['peak_mib']:.0f} MiB); "
        f"time streamed/whole {streamed['seconds'] / whole['seconds']:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--firms", type=int, default=1_000_000)
    parser.add_argument("--csv", action="store_true", help="also measure the same survey as CSV")
    parser.add_argument("--keep", help="folder to keep the generated files in")
    parser.add_argument("--edge-list", action="store_true", help="measure an edge-list survey")
    parser.add_argument(
        "--whole-large", action="store_true", help="also hold the larger links file whole"
    )
    args = parser.parse_args()
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_describe_"))
    folder.mkdir(parents=True, exist_ok=True)
    if args.edge_list:
        edge_list_main(args, folder)
        return
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
