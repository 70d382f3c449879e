"""Where the analyze process's memory goes: ``buzzpipe analyze`` run in this process, its
resident set charged to the part of the run going on (the stages, the battery's parts, the
engine's sample sources), to see what grows with the firms. Peaks are exact on Linux (the
kernel's high-water mark, read and reset as each part is entered and left; ``memory_peaks.py``),
else sampled every 0.05 s.

    OPENBLAS_NUM_THREADS=1 python bench/client_memory.py SURVEY_FOLDER --out OUT \
        [--engine dask] [--json LEDGER] [--survey-only] [-- more analyze options]

SURVEY_FOLDER is ``buzzpipe synth --out`` output (firms/, and links/ with ``--edge-list``).
``--survey-only`` runs the survey and description stages alone (read and classify the survey,
make the analysis frame and, on dask, send it to the cluster), without the study and the report:
seconds at the sizes where the whole run takes minutes.
Printed per part: calls, the resident set when it was first entered, the largest seen inside it
(nested parts included) and the most it grew inside one call; the Dask workers are other
processes and are not counted here (``bench/bench_study_engines.py`` measures them). At the
peak it also prints who holds the resident set: glibc malloc's bytes in use and free but kept
(``mallinfo2``), its large blocks mapped on their own, and the bytes Arrow's memory pool has
allocated (Arrow keeps its own pool), the rest being Python's object arenas, libraries and code.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from memory_peaks import MIB, Ledger, install


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], epilog="Options after -- go to buzzpipe analyze."
    )
    parser.add_argument("survey", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--engine", default="dask")
    parser.add_argument("--timeline", type=Path, help="write (seconds, MiB, part) rows here")
    parser.add_argument("--json", type=Path, help="write the ledger here (bytes)")
    parser.add_argument("--survey-only", action="store_true",
                        help="the survey and description stages alone")  # fmt: skip
    argv = sys.argv[1:] if argv is None else list(argv)
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    args.rest = argv[split + 1 :]  # after --: more analyze options
    ledger = Ledger()
    install(ledger)
    from buzzpipe.cli import main as cli

    links = args.survey / "links"  # a survey without links: the firms alone
    command = ["analyze", str(args.survey / "firms"),
               *(["--links", str(links)] if links.exists() else []),
               "--out", str(args.out), "--replications", "0", "--engine", args.engine,
               "--progress", "never", *args.rest]  # fmt: skip
    baseline = ledger.rss()  # the libraries imported, nothing read
    done = ledger.sampling()
    started = time.perf_counter()
    code = _survey_stages(args) if args.survey_only else cli(command)
    seconds = time.perf_counter() - started
    done.set()
    ledger.finish()
    how = "exact" if ledger.exact else "sampled"
    print(f"analyze --engine {args.engine} {args.survey}: {seconds:.0f} s, exit {code}, "
          f"analyze process peak {ledger.peak / MIB:.0f} MiB ({how}; "
          f"{baseline / MIB:.0f} MiB before it read)")  # fmt: skip
    if ledger.at_peak:
        print("at the peak: " + ", ".join(
            f"{name} {size / MIB:.0f} MiB" for name, size in ledger.at_peak.items()))  # fmt: skip
    if getattr(ledger, "sent", None) is not None:
        print(f"sample columns sent to the cluster (rows x columns): {ledger.sent:,}")
    print(f"{'part':<44} {'calls':>5} {'first':>7} {'max':>7} {'grew':>7}  (MiB)")
    for name, row in sorted(ledger.rows.items(), key=lambda item: -item[1]["max"]):
        print(
            f"{name:<44} {row['calls']:>5} {row['first'] / MIB:>7.0f} {row['max'] / MIB:>7.0f} "
            f"{row['grew'] / MIB:>7.0f}"
        )
    if args.timeline:
        args.timeline.write_text(
            json.dumps([(round(t, 2), round(r / MIB), w) for t, r, w in ledger.timeline])
        )
    if args.json:
        report = {**ledger.report(), "baseline": baseline, "seconds": seconds, "exit": code}
        args.json.write_text(json.dumps(report, indent=1))
    return code or 0


def _survey_stages(args) -> int:
    """The survey and description stages of ``buzzpipe analyze``, as it runs them."""
    from buzzpipe import end_to_end

    links = args.survey / "links"
    options = end_to_end.StudyOptions(engine=args.engine, replications=0)
    stages = end_to_end._Stages(["survey", "description"], False)
    engine = options.study_engine()
    try:
        with stages.stage("survey"):
            survey = end_to_end._load_for(
                options, args.survey / "firms", links if links.exists() else None, None, None
            )
        with stages.stage("description"):
            end_to_end._describe(survey, engine)
        _print_held(survey, engine)
    finally:
        engine.close()
    print("stages: " + ", ".join(f"{name} {s:.1f} s" for name, s in stages.seconds.items()))
    return 0


def _print_held(survey, engine) -> None:
    """Bytes a firm the client holds at the study's start, per holder (the survey's firm table
    and analysis frame, the engine's copy of the kept frame), each array counted once however
    many holders share it (columns shared by copy on write)."""
    holders = {
        "Survey._firms": getattr(survey, "_firms", None),
        "Survey._analysis": getattr(survey, "_analysis", None),
        "engine's kept frame (client copy)": None if engine._frame is None else engine._frame[0],
    }
    seen: dict[int, int] = {}
    firms = len(survey)
    for name, frame in holders.items():
        if frame is None:
            print(f"held at the study's start: {name} none")
            continue
        arrays = [a for column in frame.columns for a in _arrays(frame[column])]
        total = sum(size for _, size in arrays)
        new = sum(size for address, size in arrays if address not in seen)
        seen.update(arrays)
        print(f"held at the study's start: {name} {frame.shape[1]} columns, {total / firms:.1f} "
              f"bytes a firm ({new / firms:.1f} not held above)")  # fmt: skip
    print(f"held at the study's start, every holder: {sum(seen.values()) / firms:.1f} bytes a "
          f"firm ({firms:,} firms)")  # fmt: skip


def _arrays(column) -> list[tuple[int, int]]:
    """(address, bytes) of the arrays behind one column: values, mask, codes, Arrow buffers."""
    import numpy as np
    import pandas as pd

    values = column.array
    if hasattr(values, "_pa_array"):
        return [(b.address, b.size) for chunk in values._pa_array.chunks
                for b in chunk.buffers() if b is not None]  # fmt: skip
    if isinstance(column.dtype, pd.CategoricalDtype):
        parts = [values.codes]
    elif hasattr(values, "_data") and hasattr(values, "_mask"):
        parts = [values._data, values._mask]
    else:
        parts = [np.asarray(values)]
    return [(part.__array_interface__["data"][0], part.nbytes) for part in parts]


if __name__ == "__main__":
    sys.exit(main())
