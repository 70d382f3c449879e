"""The end-to-end run behind ``buzzpipe replicate`` and ``buzzpipe analyze``: survey,
description, study battery, report, one stage after another with a progress bar and a clock
per stage.

This module is the only one that knows all the stages; each stage stays ignorant of the others
(``report/`` only turns ``results.json`` data into files and knows nothing of how the numbers
were estimated). The stages are called, not reimplemented: the data layer reads or the
synthesiser draws the survey, the study runs its battery, and the report writes its files.
Nothing is written until the report is rendered, so a failing stage leaves no partial output.
(Not called ``pipeline``: in this field a pipeline is a firm's link to partners abroad.)
"""

import gc
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from buzzpipe import defaults
from buzzpipe.errors import InputError
from buzzpipe.results.records import Source
from buzzpipe.results.vocabulary import Allocation, NoteKind, Programme, SourceKind, Targeting

PROGRAMMES = tuple(Programme)
TARGETINGS = tuple(Targeting)
ALLOCATIONS = tuple(Allocation)


@dataclass
class StudyOptions:
    """The study's choices a user can make from the command line.

    ``firms_treated``/``targeting``/``allocation`` left as None keep the study's default set of
    programmes; giving any of them runs the pipeline and the cluster programme with those.
    """

    seed: int = defaults.STUDY_SEED
    replications: int = defaults.BOOTSTRAP_REPLICATIONS
    wild_draws: int = defaults.WILD_BOOTSTRAP_DRAWS
    sensitivity: bool = True
    heterogeneity: bool = True
    counterfactuals: bool = True
    firms_treated: int | None = None
    targeting: str | None = None
    allocation: str | None = None
    engine: str = "memory"  # memory | stream | dask: where the fits run (study/engine.py)
    scheduler: str | None = None  # a Dask scheduler address (--engine dask)
    statistic: str = "se"  # the models tables' row under each estimate: se, t or ci
    eform: bool = True  # logit columns as odds ratios (Stata's eform)
    specification: Any = None  # the user's outcomes and controls (study.specification)

    def check(self) -> None:
        """Refuse impossible choices with one line each."""
        if self.replications < 0:
            raise InputError("--replications must be 0 (off) or more", value=self.replications)
        self.study_engine().check_pairs_bootstrap(self.replications, self.counterfactuals)
        if self.wild_draws < 99:
            raise InputError("--wild-draws must be at least 99", value=self.wild_draws)
        if self.firms_treated is not None and self.firms_treated < 1:
            raise InputError("--firms-treated must be at least 1", value=self.firms_treated)
        if self.targeting is not None and self.targeting not in TARGETINGS:
            raise InputError(
                "unknown targeting", value=self.targeting, expected=", ".join(TARGETINGS)
            )
        if self.statistic not in ("se", "t", "ci"):
            raise InputError("unknown statistic", value=self.statistic, expected="se, t, ci")
        if self.allocation is not None and self.allocation not in ALLOCATIONS:
            raise InputError(
                "unknown allocation", value=self.allocation, expected=", ".join(ALLOCATIONS)
            )

    def study_engine(self) -> Any:
        """The engine the study's fits, margins and wild bootstraps run on."""
        from buzzpipe.study.engine import StudyEngine

        return StudyEngine(self.engine, self.scheduler)

    def scenarios(self) -> Sequence[dict[str, Any]] | None:
        """The programmes to run: None for the study's defaults, () for none."""
        if not self.counterfactuals:
            return ()
        if self.firms_treated is None and self.targeting is None and self.allocation is None:
            return None
        chosen = {
            "firms_treated": self.firms_treated or 100,
            "targeting": self.targeting or Targeting.RANDOM,
            "allocation": self.allocation or Allocation.TOTAL,
        }
        return tuple({"programme": programme, **chosen} for programme in PROGRAMMES)


@dataclass
class SimulationOptions:
    """``replicate --simulate``: a calibrated scenario (a built-in name or a TOML file) run
    beside the study, over ``replicates`` seeds (``buzzpipe.simulate.evidence``)."""

    scenario: str = "norway"
    replicates: int = 100  # about 0.6 s CPU each on the norway world (docs/simulation.md)
    processes: int = 1
    scheduler: str | None = None  # a Dask scheduler's address: the replicates run there

    def check(self) -> None:
        """Refuse impossible choices with one line each."""
        from buzzpipe.simulate.parallel import check_processes

        check_processes(self.processes)
        if self.replicates < 2:
            raise InputError(
                "--simulate-replicates must be at least 2 (standard errors over replicates)",
                value=self.replicates,
            )

    def workers(self) -> Any:
        """What runs the replicates: a number of processes, or the Dask scheduler's client."""
        if self.scheduler:
            from buzzpipe.estimate.dask_engine import connect

            return connect(self.scheduler)
        return self.processes

    def load(self) -> Any:
        """The scenario: a built-in one by name, else a file."""
        from buzzpipe.simulate.scenario import builtin_scenario, builtin_scenarios, read_scenario

        if self.scenario in builtin_scenarios():
            return builtin_scenario(self.scenario)
        return read_scenario(self.scenario)


@dataclass
class RunSummary:
    """What a run wrote and how long each stage took (seconds, wall clock)."""

    out_dir: Path
    files: list[Path]
    stages: dict[str, float] = field(default_factory=dict)
    verdicts: list[dict[str, Any]] = field(default_factory=list)


class _Stages:
    """A progress bar over named stages (on stderr, only when it is a terminal) and a clock."""

    def __init__(self, names: Sequence[str], show: bool | None) -> None:
        from tqdm import tqdm

        self.show = sys.stderr.isatty() if show is None else show
        self.bar = tqdm(
            total=len(names),
            disable=not self.show,
            file=sys.stderr,
            bar_format="{desc:<28} {bar} {n_fmt}/{total_fmt} [{elapsed}]",
        )
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.bar.set_description_str(name)
        start = time.perf_counter()
        yield
        self.seconds[name] = time.perf_counter() - start
        self.bar.update(1)

    def close(self) -> None:
        self.bar.set_description_str("done")
        self.bar.close()


SMALL_SURVEY_FIRMS = 100_000


def _blas_threads(firms: int) -> Any:
    """One BLAS thread for survey-sized problems: many small fits run several times faster so
    on two cores (shared/reference/performance.md), and results repeat byte for byte."""
    from contextlib import nullcontext

    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1) if firms < SMALL_SURVEY_FIRMS else nullcontext()


def _describe(survey: Any, engine: Any) -> Any:
    """The survey's descriptive table; on dask its sums by region are made per partition of
    the analysis frame, kept on the cluster here for the study after it, and only they come
    back (``DescribeTable.add(chunks=)``)."""
    if engine is None or engine.name != "dask":
        return survey.describe()
    from buzzpipe.survey.describe import DescribeTable

    survey.keep_on(engine)  # derived on the workers; the survey's firm-level data let go here
    table = DescribeTable()
    table.add(survey, chunks=engine.frame_source())
    return table.result()


@contextmanager
def _imports_not_collected() -> Iterator[None]:
    """Python's garbage collector stays off while the block imports modules, and what is
    made until its end goes straight to the oldest generation (``gc.freeze`` then
    ``gc.unfreeze``), where only a full pass reads it; where the caller froze objects itself or
    turned the collector off, the collector is left as it is.

    Why: importing the battery's modules (formulaic, scipy, numba and the study's own: some
    200,000 objects, nearly all kept for the life of the process) set off 162 young and 14
    middle passes and one full pass over the whole process: 99 ms of CPU in the first battery
    of a process, against 20-24 ms with the imports left to the oldest generation (norway2010;
    the collector's own time, measured by ``gc.callbacks``). The few cycles an import leaves
    behind (72 objects) wait for the next full pass.
    """
    if not gc.isenabled() or gc.get_freeze_count():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.unfreeze()
        gc.enable()


def _study(survey: Any, options: StudyOptions, engine: Any = None) -> Any:
    with _imports_not_collected():
        from buzzpipe.study.battery import run_study
        from buzzpipe.study.engine import using

    keywords: dict[str, Any] = {
        "seed": options.seed,
        "sensitivity": options.sensitivity,
        "wild_bootstrap_draws": options.wild_draws,
        "bootstrap_replications": options.replications,
        "heterogeneity": options.heterogeneity,
        "specification": options.specification,
    }
    scenarios = options.scenarios()
    if scenarios is not None:
        keywords["scenarios"] = scenarios
    with using(engine or options.study_engine()):
        results = run_study(survey, **keywords)
    for chosen, part in (
        (options.sensitivity, "the sensitivity column (region clusters, wild bootstrap)"),
        (options.heterogeneity, "the heterogeneity models"),
        (options.counterfactuals, "the policy counterfactuals"),
    ):
        if not chosen:
            results.note(NoteKind.SKIPPED, f"Skipped at the user's request: {part}.")
    return results


def synthetic_meta(preset: str, results: Any) -> None:
    """Set what a report of a synthetic survey shows beside its verdicts: ``meta.synthetic``
    (the banner, the preset's truth per finding read against the primary verdicts, the headline
    rule's power at the published effect) and ``meta.published`` (the published figures of the
    study the preset was calibrated to; none for a preset without one)."""
    from buzzpipe.estimate.inference_rule import power_words, recovery_words
    from buzzpipe.synth.published import published_figures
    from buzzpipe.synth.truth import report_record

    states = {str(v.finding): str(v.verdict) for v in results.verdicts}
    outcome = results.meta.primary_outcome or "product"
    record = report_record(preset, states, outcome)
    record["power"] = power_words()
    for finding, truth in record["truth"].items():  # where the recovery check scored it
        if words := recovery_words(finding, preset):
            truth["recovery"] = words
    results.meta.synthetic = record
    results.meta.published = published_figures(preset)


def _run(
    load_survey: Callable[[], Any],
    source: Source,
    title: str,
    out_dir: str | os.PathLike,
    options: StudyOptions,
    show_progress: bool | None,
    simulation: SimulationOptions | None = None,
) -> RunSummary:
    from buzzpipe.output_folder import check_output_folder
    from buzzpipe.results import Descriptives
    from buzzpipe.results.contract import encode

    with _imports_not_collected():  # the report's: matplotlib, python-docx and lxml
        from buzzpipe.report.tables import TableStyle
        from buzzpipe.report.write_report import render_report, write_files

    options.check()
    scenario = None
    if simulation is not None:
        simulation.check()
        scenario = simulation.load()  # a bad scenario is refused before the study runs
    check_output_folder(out_dir)  # before the study runs, not after
    names = ["survey", "description", "study battery", "report"]
    if scenario is not None:
        names.insert(3, "simulation")
    stages = _Stages(names, show_progress)
    engine = options.study_engine()  # dask: the analysis frame kept for both stages below
    try:
        with stages.stage("survey"):
            survey = load_survey()
        with stages.stage("description"):
            descriptives = Descriptives.from_table(_describe(survey, engine))
        with stages.stage("study battery"), _blas_threads(len(survey)):
            results = _study(survey, options, engine)
        firms = len(survey)
        # the survey (its firms table and analysis frame, one row per firm) let go before the
        # simulation and the report, which read the results alone: at scale it was the largest
        # firm-level holder left in their stages (the Dask client's peak at 50,000 and 150,000
        # firms was in the report stage)
        del survey
        if scenario is not None:
            from buzzpipe.simulate.evidence import simulation_evidence

            with stages.stage("simulation"), _blas_threads(0):
                results.simulation = simulation_evidence(
                    scenario,
                    replicates=simulation.replicates,  # type: ignore[union-attr]
                    counterfactuals=results.counterfactuals,
                    firms_treated=options.firms_treated or 100,  # the study's programmes' K
                    targetings=(options.targeting,) if options.targeting else TARGETINGS,
                    processes=simulation.workers(),  # type: ignore[union-attr]
                )
        from buzzpipe.study.battery import older_objects_frozen

        # as in the battery: the collector's full pass (about once a report, over every object
        # of the process: 234-253 ms of CPU on norway2010) reads only what the report makes
        with stages.stage("report"), older_objects_frozen():
            source.firms = results.meta.firms or firms
            results.meta.source, results.meta.title = source, title
            if source.kind == SourceKind.SYNTHETIC:
                synthetic_meta(source.name, results)
            results.descriptives = descriptives
            style = TableStyle(statistic=options.statistic, eform=options.eform)
            files = write_files(render_report(results, style), out_dir)
    finally:
        engine.close()  # the kept frame let go, had the study not run
        stages.close()
    verdicts = [encode(verdict) for verdict in results.verdicts]
    return RunSummary(Path(out_dir), files, stages.seconds, verdicts)


# Peak memory of ``replicate`` with the default options, measured (maximum resident set size)
# at 10,000 and 30,000 firms of norway2010: 353 MiB and 571 MiB, so about 11 KiB per firm above
# 240 MiB; rounded up to 12 KiB and 300 MiB.
REPLICATE_BYTES_PER_FIRM = 12 * 1024
REPLICATE_BASE_BYTES = 300 * 1024 * 1024


def check_replicate_memory(firms: int) -> None:
    """Refuse a ``replicate`` run that cannot fit in memory, before drawing anything."""
    from buzzpipe.resources import check_memory

    check_memory(
        REPLICATE_BASE_BYTES + firms * REPLICATE_BYTES_PER_FIRM,
        f"replicate with {firms:,} firms (the study holds the survey in memory)",
        "fewer --firms; or draw the survey to disk in bounded memory with "
        f"`buzzpipe synth --firms {firms} --out survey.parquet` (streamed); "
        "then `buzzpipe analyze` it with --engine dask (docs/scale.md)",
    )


def replicate(
    out_dir: str | os.PathLike,
    *,
    preset: str = defaults.PRESET,
    seed: int = defaults.REPLICATION_SEED,
    firms: int | None = None,
    options: StudyOptions | None = None,
    show_progress: bool | None = None,
    simulation: SimulationOptions | None = None,
) -> RunSummary:
    """Draw a calibrated synthetic survey from a preset and run the study and report on it;
    with ``simulation``, the calibrated simulation beside it (``replicate --simulate``)."""
    from buzzpipe.synth import synthesize

    options = options or StudyOptions(seed=seed)
    if firms is not None and firms < 50:
        raise InputError("--firms must be at least 50 for the study's models", value=firms)
    if firms is not None:
        check_replicate_memory(firms)
    source = Source(SourceKind.SYNTHETIC, str(preset), seed)
    title = f"Local buzz and global pipelines: synthetic survey '{preset}', seed {seed}"
    return _run(
        lambda: synthesize(preset, seed, firms=firms),
        source,
        title,
        out_dir,
        options,
        show_progress,
        simulation,
    )


def analyze(
    file: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    links: str | os.PathLike | None = None,
    mapping: str | os.PathLike | None = None,
    options: StudyOptions | None = None,
    show_progress: bool | None = None,
    delimiter: str | None = None,
) -> RunSummary:
    """Read a user's survey (a file, or firms plus links) and run the study and report on it."""
    options = options or StudyOptions()

    def load() -> Any:
        return _load_for(options, file, links, mapping, delimiter)

    name = Path(file).name + (f" with links {Path(links).name}" if links else "")
    source = Source(SourceKind.FILE, name, options.seed)
    title = f"Local buzz and global pipelines: {Path(file).name}"
    return _run(load, source, title, out_dir, options, show_progress)


def _load_for(
    options: StudyOptions,
    file: str | os.PathLike,
    links: str | os.PathLike | None,
    mapping: str | os.PathLike | None,
    delimiter: str | None,
) -> Any:
    """The survey as ``options``' engine reads it: on ``dask``, Parquet links are classified on
    the cluster (only the firm-level cells come back), and a Parquet firms file is read and
    checked there and kept there (``survey/dask_firms.py``)."""
    client = None
    if options.engine == "dask" and (_parquet(links) if links is not None else _parquet(file)):
        client = options.study_engine().client
    return load_survey(file, links=links, mapping=mapping, delimiter=delimiter, client=client)


def _parquet(path: str | os.PathLike) -> bool:
    """A Parquet file, a folder of Parquet partitions or a glob of them."""
    text = os.fspath(path)
    if Path(text).is_dir():
        return True
    return text.lower().endswith((".parquet", ".pq", "*"))


def load_survey(
    file: str | os.PathLike,
    *,
    links: str | os.PathLike | None = None,
    mapping: str | os.PathLike | None = None,
    delimiter: str | None = None,
    client: Any = None,
) -> Any:
    """A user's survey: one firm-level file, or firms plus links (an edge-list survey); the
    mapping is a TOML file or a shipped one by short name ("norway", "cis"); ``delimiter`` of a
    CSV file (default: detected); ``client``: classify Parquet links on that Dask cluster, and
    read a Parquet firms file there."""
    from buzzpipe.survey import read_edge_list, read_survey

    if links:
        return read_edge_list(file, links, mapping=mapping, delimiter=delimiter, client=client)
    return read_survey(file, mapping=mapping, delimiter=delimiter, client=client)


def study_file(
    file: str | os.PathLike,
    out: str | os.PathLike,
    *,
    links: str | os.PathLike | None = None,
    mapping: str | os.PathLike | None = None,
    options: StudyOptions | None = None,
    delimiter: str | None = None,
) -> Any:
    """``buzzpipe study``: read a user's survey, run the battery on ``options``' engine and write
    ``results.json`` to ``out`` (no report); returns the study's results. On dask the survey
    (its own, read here) goes to the workers as ``buzzpipe analyze``'s does
    (``Survey.keep_on``): the analysis frame derived there, no column of it kept here, not
    the whole frame sent from here."""
    from buzzpipe.atomic_write import write_text

    options = options or StudyOptions()
    options.check()
    engine = options.study_engine()
    try:
        survey = _load_for(options, file, links, mapping, delimiter)
        firms = len(survey)
        survey.keep_on(engine)  # dask only: the survey's firm-level data let go here
        with _blas_threads(firms):
            results = _study(survey, options, engine)
    finally:
        engine.close()
    write_text(out, results.to_json())
    return results
