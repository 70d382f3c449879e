"""Where the analyze process's memory goes: ``buzzpipe analyze`` run in this process, its
resident set sampled every 0.05 s and charged to the part of the run going on (the stages, the
battery's parts, the engine's sample sources), to see what grows with the firms.

    OPENBLAS_NUM_THREADS=1 python bench/client_memory.py SURVEY_FOLDER --out OUT \
        [--engine dask] [-- more analyze options]

SURVEY_FOLDER is ``buzzpipe synth --out`` output (firms/, and links/ with ``--edge-list``).
Printed per part: calls, the resident set when it was first entered, the largest seen inside it
(nested parts included) and the most it grew inside one call; the Dask workers are other
processes and are not counted here (``bench/bench_study_engines.py`` measures them). At the
peak it also prints who holds the resident set: glibc malloc's bytes in use and free but kept
(``mallinfo2``), its large blocks mapped on their own, and the bytes Arrow's memory pool has
allocated (Arrow keeps its own pool), the rest being Python's object arenas, libraries and code.
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import json
import sys
import threading
import time
from pathlib import Path

import psutil

PARTS = {
    "buzzpipe.study.battery": [
        "analysis_frame_of", "fit_outcome_models", "marginal_effects", "add_sensitivity",
        "partner_type_tests", "compare_pipelines_and_buzz", "compare_on_common_support",
        "first_partner_bootstrap", "single_term_sensitivity", "assess_complementarity",
        "assess_spillover", "assess_heterogeneity", "_counterfactuals", "compare_across_outcomes",
        "dropped_firms_note",
    ],
    "buzzpipe.study.counterfactuals": ["counterfactual"],
    "buzzpipe.study.spillover": [
        "cell_clustering_test", "partner_sorting_test", "confounding_bound", "_between_cells",
    ],
}  # fmt: skip


class _MallocInfo(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                     "uordblks", "fordblks", "keepcost")
    ]  # fmt: skip


def holders() -> dict[str, int]:
    """Bytes by holder now: glibc malloc's in use / free but kept / mapped blocks (all arenas)
    and Arrow's pool (empty where glibc has no mallinfo2)."""
    found = {}
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallocInfo
        info = libc.mallinfo2()
        found = {"malloc in use": info.uordblks, "malloc free, kept": info.fordblks,
                 "malloc mapped blocks": info.hblkhd}  # fmt: skip
    except (OSError, AttributeError):
        pass
    if "pyarrow" in sys.modules:
        found["arrow pool"] = sys.modules["pyarrow"].total_allocated_bytes()
    return found


class Ledger:
    def __init__(self) -> None:
        self.process = psutil.Process()
        self.active: list[str] = []
        self.rows: dict[str, dict] = {}
        self.peak = 0
        self.at_peak: dict[str, int] = {}
        self.timeline: list[tuple[float, int, str]] = []
        self.start = time.perf_counter()
        self.lock = threading.Lock()

    def rss(self) -> int:
        return self.process.memory_info().rss

    def sample(self) -> None:
        now = self.rss()
        if now > self.peak:
            self.at_peak = holders()
        with self.lock:
            self.peak = max(self.peak, now)
            for name in self.active:
                row = self.rows[name]
                row["max"] = max(row["max"], now)
            where = self.active[-1] if self.active else "-"
        self.timeline.append((time.perf_counter() - self.start, now, where))

    def enter(self, name: str) -> int:
        now = self.rss()
        with self.lock:
            row = self.rows.setdefault(name, {"calls": 0, "first": now, "max": now, "grew": 0})
            row["calls"] += 1
            row["max"] = max(row["max"], now)
            self.active.append(name)
        return now

    def leave(self, name: str, entered: int) -> None:
        now = self.rss()
        with self.lock:
            row = self.rows[name]
            row["grew"] = max(row["grew"], row["max"] - entered)
            row["after"] = now
            self.active.remove(name)

    def wrap(self, name: str, function):
        @functools.wraps(function)
        def wrapped(*args, **kwargs):
            entered = self.enter(name)
            try:
                return function(*args, **kwargs)
            finally:
                self.leave(name, entered)

        return wrapped


def install(ledger: Ledger) -> None:
    import importlib
    from contextlib import contextmanager

    from buzzpipe import end_to_end
    from buzzpipe.study.engine import StudyEngine

    for module_name, names in PARTS.items():
        module = importlib.import_module(module_name)
        for name in names:
            setattr(module, name, ledger.wrap(name, getattr(module, name)))
    StudyEngine._source = ledger.wrap("engine source (a sample to chunks)", StudyEngine._source)
    closing = StudyEngine.close

    def close(self):
        ledger.sent = getattr(self, "sent_columns", None)
        closing(self)

    StudyEngine.close = close
    original = end_to_end._Stages.stage

    @contextmanager
    def stage(self, name):
        entered = ledger.enter(f"stage: {name}")
        try:
            with original(self, name):
                yield
        finally:
            ledger.leave(f"stage: {name}", entered)

    end_to_end._Stages.stage = stage


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("survey", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--engine", default="dask")
    parser.add_argument("--timeline", type=Path, help="write (seconds, MiB, part) rows here")
    parser.add_argument("rest", nargs="*")
    args = parser.parse_args(argv)
    ledger = Ledger()
    install(ledger)
    done = threading.Event()

    def sampler() -> None:
        while not done.is_set():
            ledger.sample()
            time.sleep(0.05)

    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    from buzzpipe.cli import main as cli

    links = args.survey / "links"  # a survey without links: the firms alone
    command = ["analyze", str(args.survey / "firms"),
               *(["--links", str(links)] if links.exists() else []),
               "--out", str(args.out), "--replications", "0", "--engine", args.engine,
               "--progress", "never", *args.rest]  # fmt: skip
    started = time.perf_counter()
    code = cli(command)
    done.set()
    thread.join()
    mib = 2**20
    print(f"analyze --engine {args.engine} {args.survey}: {time.perf_counter() - started:.0f} s, "
          f"exit {code}, analyze process peak {ledger.peak / mib:.0f} MiB")  # fmt: skip
    if ledger.at_peak:
        print("at the peak: " + ", ".join(
            f"{name} {size / mib:.0f} MiB" for name, size in ledger.at_peak.items()))  # fmt: skip
    if getattr(ledger, "sent", None) is not None:
        print(f"sample columns sent to the cluster (rows x columns): {ledger.sent:,}")
    print(f"{'part':<44} {'calls':>5} {'first':>7} {'max':>7} {'grew':>7}  (MiB)")
    for name, row in sorted(ledger.rows.items(), key=lambda item: -item[1]["max"]):
        print(
            f"{name:<44} {row['calls']:>5} {row['first'] / mib:>7.0f} {row['max'] / mib:>7.0f} "
            f"{row['grew'] / mib:>7.0f}"
        )
    if args.timeline:
        args.timeline.write_text(
            json.dumps([(round(t, 2), round(r / mib), w) for t, r, w in ledger.timeline])
        )
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
