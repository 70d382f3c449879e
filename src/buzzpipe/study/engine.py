"""Where the study's fits, margins and wild bootstraps run: ``memory``, ``stream`` or ``dask``.

``buzzpipe analyze --engine dask`` (``replicate`` too) runs the battery with every
model fit, every average marginal effect and +1 change, and every wild score bootstrap as sums over
chunks (``estimate/streamed.py``): ``stream`` over row blocks of the sample in this process,
``dask`` over the sample's partitions persisted on a Dask cluster (``--scheduler`` or
$DASK_SCHEDULER_ADDRESS, else a LocalCluster). The numbers are the in-memory ones (tested to
1e-10 on results.json): only where they are computed changes.

What stays on the client: the firm-level analysis frame (one row per firm; the links, the large
table of an edge-list survey, are classified on Dask by ``survey/dask_measures.py``) and the
parts that refit nothing. The policy counterfactuals' predictions are made per chunk (on the
workers), their designs never built on the client; two probabilities per firm come back for
the programmes' treatment shares, which rank all firms. The counterfactuals' firm bootstrap
(pairs, stratified by region) is in memory only: a chunked engine refuses it, naming
``--replications 0``.

The study's code asks :func:`current` for the engine; ``with using(engine):`` sets it.
"""

from __future__ import annotations

import contextvars
import dataclasses
import math
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import pandas as pd

from buzzpipe.errors import InputError

__all__ = ["ENGINES", "StudyEngine", "current", "using", "PAIRS_BOOTSTRAP_OFF"]

ENGINES = ("memory", "stream", "dask")
PAIRS_BOOTSTRAP_OFF = "--replications 0"


@dataclasses.dataclass
class StudyEngine:
    """Where the study's fits run. ``partition_rows``: rows per Dask partition of a sample;
    ``kept_samples``: samples kept persisted on the cluster at once (least recently used go)."""

    name: str = "memory"
    scheduler: str | None = None
    partition_rows: int = 262_144
    kept_samples: int = 3
    _client: Any = dataclasses.field(default=None, repr=False)
    _sources: OrderedDict = dataclasses.field(default_factory=OrderedDict, repr=False)
    _lock: Any = dataclasses.field(default_factory=threading.Lock, repr=False)
    merged_rounds: int = dataclasses.field(default=0, repr=False)  # side_by_side's rounds

    def __post_init__(self) -> None:
        if self.name not in ENGINES:
            raise InputError("unknown engine", value=self.name, expected=" | ".join(ENGINES))
        if self.scheduler and self.name != "dask":
            raise InputError("--scheduler needs --engine dask", value=self.scheduler)

    @property
    def chunked(self) -> bool:
        return self.name != "memory"

    @property
    def client(self) -> Any:
        """The Dask client (connected on first use)."""
        if self._client is None:
            from buzzpipe.estimate.dask_engine import connect

            self._client = connect(self.scheduler)
        return self._client

    def check_pairs_bootstrap(self, replications: int, counterfactuals: bool = True) -> None:
        """Refuse the in-memory firm bootstrap of the counterfactuals on a chunked engine."""
        if self.chunked and counterfactuals and replications > 0:
            raise InputError(
                f"the counterfactuals' firm bootstrap runs in memory only: with --engine "
                f"{self.name} give {PAIRS_BOOTSTRAP_OFF} (no intervals) or --no-counterfactuals",
                value=replications,
            )

    # --- the chunk source of a sample ---------------------------------------------------------

    def source(self, frame: pd.DataFrame) -> Any:
        """The chunk source of ``frame`` (row ids are its row positions), made once per frame;
        inside :meth:`side_by_side`, one whose passes join the merged rounds."""
        with self._lock:  # the works of side_by_side ask from their threads
            made = self._source(frame)
        merged = _MERGED.get()
        return made if merged is None else merged.joined(made)

    def _source(self, frame: pd.DataFrame) -> Any:
        key = id(frame)
        if key in self._sources and self._sources[key][0] is frame:
            self._sources.move_to_end(key)
            return self._sources[key][1]
        positional = frame.reset_index(drop=True)
        if self.name == "dask":
            import dask.dataframe as dd

            from buzzpipe.estimate.dask_engine import DaskSource

            parts = max(1, math.ceil(len(positional) / self.partition_rows))
            with warnings.catch_warnings():
                # the sample goes to the cluster once, in the graph, and stays persisted there:
                # distributed's advice on large graphs would land in the models' notes
                warnings.filterwarnings("ignore", "Sending large graph", UserWarning)
                data = self.client.persist(
                    dd.from_pandas(positional, npartitions=parts, sort=False)
                )
                source = DaskSource(data, self.client)
        else:
            from buzzpipe.estimate.sources import FrameSource

            source = FrameSource(positional)
        self._sources[key] = (frame, source)
        while len(self._sources) > self.kept_samples:
            self._sources.popitem(last=False)
        return source

    def side_by_side(self, works: Sequence[Callable[[], Any]]) -> list[tuple[Any, Any]]:
        """``(work(), None)``, or ``(None, error)`` where it raised, for each work, as a loop
        over them gives. On a chunked engine the works run side by side in threads whose passes
        over their samples' chunks are merged (``wild_bootstrap._MergedPasses``): one round,
        one Dask graph, computes every work's next pass, each summed in the same order as when
        run alone, so the numbers are the loop's bit for bit. For work whose only use of the
        engine is :meth:`source` (the wild bootstraps of fitted models): fits record their
        warnings process-wide and stay out of the threads."""
        works = list(works)
        if not self.chunked or len(works) < 2:
            return [_outcome(work) for work in works]
        from concurrent.futures import ThreadPoolExecutor

        from buzzpipe.estimate.kernel import blas_threads
        from buzzpipe.estimate.wild_bootstrap import _MergedPasses

        merged = _MergedPasses(None, len(works))

        def run(work: Callable[[], Any]) -> tuple[Any, Any]:
            try:
                _MERGED.set(merged)
                return _outcome(work)
            finally:
                merged.finished()

        contexts = [contextvars.copy_context() for _work in works]  # the engine in the threads
        with blas_threads(1), ThreadPoolExecutor(max_workers=len(works)) as pool:
            found = list(pool.map(lambda c, w: c.run(run, w), contexts, works))
        self.merged_rounds += merged.rounds
        return found

    def close(self) -> None:
        """Let go of the persisted samples (the client stays for other work)."""
        self._sources.clear()

    # --- what the study computes over chunks --------------------------------------------------

    def fit(self, formula: str, frame: pd.DataFrame, family: str, vcov: Any, weights) -> Any:
        """``buzzpipe.fit`` over the chunks of ``frame``; row ids are ``frame``'s labels."""
        from buzzpipe.estimate.streamed import fit_source

        fitted = fit_source(formula, self.source(frame), family, vcov, weights)
        return dataclasses.replace(fitted, row_ids=frame.index[fitted.row_ids.to_numpy()])

    def _positional(self, fitted: Any, frame: pd.DataFrame) -> Any:
        return dataclasses.replace(
            fitted, row_ids=pd.Index(frame.index.get_indexer(fitted.row_ids))
        )

    def margins(self, fitted: Any, frame: pd.DataFrame, variables: Sequence[str], **options):
        """``margins(fitted, frame, variables, ...)``, sums over chunks on a chunked engine."""
        from buzzpipe.estimate.margins import margins

        if not self.chunked:
            return margins(fitted, frame, list(variables), **options)
        return margins(
            self._positional(fitted, frame), self.source(frame), list(variables), **options
        )

    def map_chunks(self, frame: pd.DataFrame, function: Any, *args) -> Any:
        """``function(chunk, where, first_row, *args)`` over the chunks of ``frame``, results
        combined in chunk order (lists concatenate): where the chunks are, on the Dask workers
        for dask (the counterfactuals' predictions: no design of the sample on the client)."""
        return self.source(frame).map_reduce(function, *args)

    def wild_bootstrap(self, fitted: Any, frame: pd.DataFrame, cluster: str, **options) -> Any:
        """The wild cluster score bootstrap of ``fitted`` over the chunks of ``frame``."""
        from buzzpipe.estimate.wild_bootstrap import streamed_wild_bootstrap

        return streamed_wild_bootstrap(
            self._positional(fitted, frame), self.source(frame), cluster=cluster, **options
        )


_CURRENT: ContextVar[StudyEngine | None] = ContextVar("buzzpipe_study_engine", default=None)
_MERGED: ContextVar[Any] = ContextVar("buzzpipe_merged_passes", default=None)


def _outcome(work: Callable[[], Any]) -> tuple[Any, Any]:
    try:
        return work(), None
    except Exception as error:
        return None, error


_MEMORY = StudyEngine()


def current() -> StudyEngine:
    """The engine the study runs on now (memory unless set by :func:`using`)."""
    return _CURRENT.get() or _MEMORY


@contextmanager
def using(engine: StudyEngine | None) -> Iterator[StudyEngine]:
    """Run the study's fits on ``engine`` inside the block (its samples let go at the end)."""
    engine = engine or _MEMORY
    token = _CURRENT.set(engine)
    try:
        yield engine
    finally:
        _CURRENT.reset(token)
        engine.close()
