"""Peak memory of processes and of the parts of a ``buzzpipe analyze`` run: the one owner of the
measuring code that ``bench/client_memory.py``, ``bench/bench_study_engines.py`` and the slow
memory test (``tests/study/test_memory_at_scale.py``) use.

Peaks are exact on Linux, not sampled: the kernel keeps each process's high-water mark of its
resident set (``VmHWM`` in ``/proc/PID/status``), and writing 5 to ``/proc/self/clear_refs``
resets it to the present resident set. The ledger of parts reads and resets it whenever a part is
entered or left, so a part's peak is the highest resident set while it ran (an array held for a
millisecond counts). Where the kernel offers neither, the resident set sampled every 0.05 s
(psutil) stands in, and a spike shorter than that can be missed.
"""

from __future__ import annotations

import ctypes
import functools
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

MIB = 2**20

# The parts of a run the ledger charges memory to: module -> functions wrapped in it (a
# "Class.method" name wraps that method of the module's class).
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
        "cell_clustering_test", "partner_sorting_test", "exposure_spread", "confounding_bound",
        "_between_cells",
    ],
    # the survey stage (read, validate, classify the links) and the analysis frame
    "buzzpipe.survey.readers": ["read_table", "survey_from_table"],
    "buzzpipe.survey.column_types": [
        "to_firm_id", "to_category", "to_number_in_range", "to_binary", "id_keys",
    ],
    "buzzpipe.survey.model": [
        "_add_links", "Survey._derive", "Survey.keep_on", "Survey._table_to_send",
        "Survey.on_workers",
    ],
    "buzzpipe.survey.dask_firms": ["read_firms_on_dask", "FirmsOnWorkers.directory"],
    "buzzpipe.survey.edge_list": [
        "FirmDirectory.__init__", "CollaborationCounts.matrix", "ExposureCounts.shares",
    ],
    "buzzpipe.survey.dask_measures": ["DaskLinks.count_links"],
    "buzzpipe.survey.measures": ["breadth_from_collaboration"],
    "buzzpipe.survey.describe": ["DescribeTable.add", "DescribeTable.result", "_id_hashes"],
    "buzzpipe.study.engine": ["StudyEngine.keep_frame", "StudyEngine.keep_derived"],
}  # fmt: skip
SOURCE = "engine source (a sample to chunks)"


def high_water(pid: int | str = "self") -> int | None:
    """The process's high-water mark of its resident set in bytes (``VmHWM``), None where the
    system has no such record (not Linux) or the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def reset_high_water() -> bool:
    """Set this process's high-water mark to its present resident set; False where the kernel
    does not allow it (then peaks are sampled)."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        return False
    return True


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
    """This process's resident set charged to the parts of the run going on. Per part (``rows``):
    ``calls``; ``first``, the resident set when it was first entered; ``max``, the highest inside
    it (nested parts included); ``grew``, the most it rose above its entry in one call; ``after``,
    the resident set when it was last left. ``peak`` is the whole process's, ``at_peak`` who held
    memory when the sampler last saw a new peak."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.exact = reset_high_water() and high_water() is not None
        self.calls: list[list] = []  # the calls going on: [name, resident at entry, highest]
        self.rows: dict[str, dict] = {}
        self.peak = 0
        self.at_peak: dict[str, int] = {}
        self.timeline: list[tuple[float, int, str]] = []
        self.start = time.perf_counter()
        self.lock = threading.Lock()

    def rss(self) -> int:
        return self.process.memory_info().rss

    def _fold(self, reset: bool) -> int:
        """Charge the highest resident set since the last reset (or now, where peaks are sampled)
        to the calls going on and to the process's peak; then reset the mark. Under the lock."""
        highest = (high_water() or 0) if self.exact else self.rss()
        self.peak = max(self.peak, highest)
        for call in self.calls:
            call[2] = max(call[2], highest)
            row = self.rows[call[0]]
            row["max"] = max(row["max"], highest)
        if reset and self.exact:
            reset_high_water()
        return highest

    def sample(self) -> None:
        now = self.rss()
        with self.lock:
            before = self.peak
            self._fold(reset=False)
            where = self.calls[-1][0] if self.calls else "-"
        if self.peak > before:
            self.at_peak = holders()
        self.timeline.append((time.perf_counter() - self.start, now, where))

    def enter(self, name: str) -> None:
        with self.lock:
            self._fold(reset=True)
            now = self.rss()
            row = self.rows.setdefault(name, {"calls": 0, "first": now, "max": now, "grew": 0})
            row["calls"] += 1
            row["max"] = max(row["max"], now)
            self.calls.append([name, now, now])

    def leave(self, name: str) -> None:
        with self.lock:
            self._fold(reset=True)
            index = max(i for i, call in enumerate(self.calls) if call[0] == name)
            _, entered, highest = self.calls.pop(index)
            row = self.rows[name]
            row["grew"] = max(row["grew"], highest - entered)
            row["after"] = self.rss()

    def finish(self) -> None:
        """Fold in the last stretch (after the last part was left)."""
        with self.lock:
            self._fold(reset=False)

    def wrap(self, name: str, function):
        @functools.wraps(function)
        def wrapped(*args, **kwargs):
            self.enter(name)
            try:
                return function(*args, **kwargs)
            finally:
                self.leave(name)

        return wrapped

    def sampling(self, every: float = 0.05) -> threading.Event:
        """Start a thread that samples every ``every`` seconds (the timeline, and the peaks where
        they are not exact) until the returned event is set."""
        done = threading.Event()

        def sampler() -> None:
            while not done.is_set():
                self.sample()
                time.sleep(every)

        threading.Thread(target=sampler, daemon=True).start()
        return done

    def report(self) -> dict:
        """The ledger as plain numbers (bytes): ``peak``, ``exact``, ``at_peak`` and ``parts``."""
        return {"peak": self.peak, "exact": self.exact, "at_peak": self.at_peak,
                "parts": self.rows}  # fmt: skip


def install(ledger: Ledger) -> None:
    """Charge the study's parts (``PARTS``), the engine's sample sources and the stages of
    ``buzzpipe analyze`` (``stage: NAME``) to ``ledger``, in this process."""
    import importlib
    from contextlib import contextmanager

    from buzzpipe import end_to_end
    from buzzpipe.study.engine import StudyEngine

    for module_name, names in PARTS.items():
        module = importlib.import_module(module_name)
        for name in names:
            *owners, attribute = name.split(".")
            owner = module
            for part in owners:
                owner = getattr(owner, part)
            if hasattr(owner, attribute):  # an older version may lack a part: not charged
                setattr(owner, attribute, ledger.wrap(name, getattr(owner, attribute)))
    StudyEngine._source = ledger.wrap(SOURCE, StudyEngine._source)
    closing = StudyEngine.close

    def close(self):
        ledger.sent = getattr(self, "sent_columns", None)
        closing(self)

    StudyEngine.close = close
    original = end_to_end._Stages.stage

    @contextmanager
    def stage(self, name):
        ledger.enter(f"stage: {name}")
        try:
            with original(self, name):
                yield
        finally:
            ledger.leave(f"stage: {name}")

    end_to_end._Stages.stage = stage


def run_measured(command: list[str], log: Path | None = None) -> tuple[float, dict, int]:
    """Run ``command`` as a process and measure it and its children (the Dask workers): (wall
    seconds, measures, exit code). Measures in bytes, sampled every 0.2 s: ``peak`` the largest
    resident set summed over the process and its children, ``client`` the process's own,
    ``children`` the children's summed. Exact where the system keeps high-water marks:
    ``client_high_water`` the process's own (a process that resets its mark, as the ``Ledger``
    does, reports its peak itself), ``child_marks`` each child's (highest first; the last read
    before it ended), ``largest_child`` the highest, ``children_high_water`` their sum (an
    upper bound of ``children``, whatever the sampling missed), ``child_count``. ``cpu``: the
    user + system seconds of every process of the tree (each one's last sample); ``output``:
    the command's output. With ``log`` the output goes to that file as it comes (to follow a
    long run)."""
    start = time.perf_counter()
    sink = open(log, "w") if log else subprocess.PIPE  # noqa: SIM115 (closed below)
    process = psutil.Popen(command, stdout=sink, stderr=subprocess.STDOUT, text=True)
    seen = {"peak": 0, "client": 0, "children": 0}
    cpu: dict[int, float] = {}
    marks: dict[int, int] = {}  # each process's high-water mark, last read
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            try:
                children = process.children(recursive=True)
                sizes = {}
                for member in [process, *children]:
                    try:
                        sizes[member.pid] = member.memory_info().rss
                        times = member.cpu_times()
                        cpu[member.pid] = times.user + times.system
                    except psutil.Error:
                        pass
                    mark = high_water(member.pid)
                    if mark is not None:
                        marks[member.pid] = max(marks.get(member.pid, 0), mark)
                own = sizes.get(process.pid, 0)
                seen["client"] = max(seen["client"], own)
                seen["children"] = max(seen["children"], sum(sizes.values()) - own)
                seen["peak"] = max(seen["peak"], sum(sizes.values()))
            except psutil.Error:
                pass
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = process.communicate()
    if log:
        sink.close()
        output = Path(log).read_text()
    done.set()
    sampler.join()
    wall = time.perf_counter() - start
    seen["cpu"] = sum(cpu.values())
    children = [mark for pid, mark in marks.items() if pid != process.pid]
    seen["client_high_water"] = max(marks.get(process.pid, 0), seen["client"])
    seen["children_high_water"] = max(sum(children), seen["children"])
    seen["largest_child"] = max(children, default=0)
    seen["child_marks"] = sorted(children, reverse=True)
    seen["child_count"] = len(children)
    seen["output"] = output
    if process.returncode:
        print(output[-3000:], file=sys.stderr)
    return wall, seen, process.returncode
