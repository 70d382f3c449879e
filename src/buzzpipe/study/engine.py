"""Where the study's fits, margins and wild bootstraps run: ``memory``, ``stream`` or ``dask``.

``buzzpipe analyze --engine dask`` (``replicate`` too) runs the battery with every
model fit, every average marginal effect and +1 change, and every wild score bootstrap as sums over
chunks (``estimate/streamed.py``): ``stream`` over row blocks of the sample in this process,
``dask`` over the sample's partitions persisted on a Dask cluster (``--scheduler`` or
$DASK_SCHEDULER_ADDRESS, else a LocalCluster). The numbers are the in-memory ones (tested to
1e-10 on results.json): only where they are computed changes.

On ``dask`` the study's analysis frame is sent to the cluster once (:meth:`StudyEngine.keep_frame`)
and each sample of its rows is selected there, partition by partition, its rows kept there
(:meth:`StudyEngine.rows_on_workers`): only the columns the sample changed or added travel, and
a fit's row ids on it come back as a range (:meth:`StudyEngine.labelled` gives their labels).
``buzzpipe analyze`` makes the frame on the
workers instead (``Survey.keep_on``, :meth:`StudyEngine.keep_derived`: the firm table sent in
partitions, each partition's measures made where it lies; the links, the large table of an
edge-list survey, are classified on Dask by ``survey/dask_measures.py``). The client then keeps
no column of the frame: its copy has the frame's length and no column (:meth:`keep_derived`),
and every part reads the rows through the engine (below). The frame is kept in the description
stage, whose
table's sums are made per partition (:meth:`frame_source`); the probability changes (+1 per
scale, the common-support steps, the Ai-Norton pair) are summed over a sample's chunks
(``probability_changes.average_changes``). The policy counterfactuals are summed per chunk (on
the workers): the treatment shares are filled from each chunk's fill-order levels and only three
sums per region come back. suest's meat and the +1 changes compared across outcomes are sums
over the frame's chunks. The counterfactuals' firm bootstrap (pairs, stratified by region) is in
memory only: a chunked engine refuses it, naming ``--replications 0``.

The study reads no column of the analysis frame on the client. Which columns the survey has
and their types are asked of the engine (:meth:`StudyEngine.columns`, :meth:`~StudyEngine.meta`);
the samples' masks (:meth:`StudyEngine.mask`) and the parts' reductions of their rows (value
sets and counts, the values in the order the rows show them, nunique, per-group totals, a
weighted mean and SD, the margins' factor levels: :meth:`StudyEngine.reduced`,
:meth:`~StudyEngine.factor_levels`) are made per partition on the workers and combined here; in
memory the same functions run once on the whole frame, the numbers as before bit for bit. A
sample selected from the kept frame on the workers holds the kept frame's columns there.

The study's code asks :func:`current` for the engine; ``with using(engine):`` sets it.
"""

from __future__ import annotations

import contextvars
import dataclasses
import itertools
import math
import threading
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np
import pandas as pd

from buzzpipe.errors import InputError

__all__ = [
    "ENGINES",
    "StudyEngine",
    "current",
    "using",
    "PAIRS_BOOTSTRAP_OFF",
]

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
    _frame: Any = dataclasses.field(default=None, repr=False)  # (frame, on dask, partition bounds)
    # samples whose columns are on the workers (:meth:`rows_on_workers`): id -> _RowsElsewhere
    _elsewhere: dict = dataclasses.field(default_factory=dict, repr=False)
    _kept: int = dataclasses.field(default=0, repr=False)  # frames kept on the workers so far
    _labelled_samples: int = dataclasses.field(default=0, repr=False)  # rows_on_workers' ranges
    # the first label of each such range -> the sample's _RowsElsewhere, weakly: a frame made
    # here with pandas from the sample (a copy, some of its rows) is selected from its rows
    _ranges: dict = dataclasses.field(default_factory=dict, repr=False)
    # fits on samples of rows_on_workers: id -> (the fit, weakly; the sample's labels; its rows)
    _fitted_rows: dict = dataclasses.field(default_factory=dict, repr=False)
    sent_columns: int = dataclasses.field(default=0, repr=False)  # column-rows sent, not selected
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

    def keep_frame(self, frame: pd.DataFrame) -> None:
        """The study's analysis frame, sent to the cluster once (dask) and kept there in
        partitions of ``partition_rows``: a sample of its rows is then selected on the workers
        (only the row positions, and the columns it does not share with the frame, are sent)."""
        if self.name != "dask":
            return
        if self._frame is not None and self._frame[0].equals(frame):
            # the frame already kept (the descriptives sum it first): the study's own copy is
            # the one its samples are selected from, nothing is sent again
            self._frame = (frame, *self._frame[1:])
            return
        from buzzpipe.estimate.dask_engine import return_free_pages

        data = self.client.persist(self._scattered(frame))
        return_free_pages()  # the pieces sent, freed: their heap pages back to the system
        lengths = self.client.compute(data.map_partitions(len)).result().tolist()
        self._frame = (frame, data, np.cumsum([0, *lengths]))
        self._kept += 1

    def keep_derived(
        self,
        table: Any,
        derive: Callable[..., pd.DataFrame],
        inputs: Sequence[Any] = (),
    ) -> pd.DataFrame:
        """The analysis frame made on the workers and kept there, as :meth:`keep_frame` keeps
        one: ``table`` (the firm table, one row per firm, index 0..n-1) is sent in partitions
        and ``derive(part, *inputs)`` (a module-level function making each row's measures from
        that row alone; a partition's index is its rows' positions in ``table``) makes each
        partition of the frame where it lies. ``inputs``: futures of data on the cluster every
        partition reads (an edge-list survey's collaboration cells); ``derive(rows)`` without
        them gives the frame's columns and types. Returns the client's copy of the frame: its
        length and no column (the study reads none here, module docstring), the frame the
        study's samples are selected from. The table is let go once sent (the caller passes
        its last reference).

        ``table`` may instead be the firm table already on the workers, in partitions of its
        own (``survey.dask_firms.FirmsOnWorkers``: futures, their lengths, the columns and
        types with no rows; a Parquet firms file read and checked there): the pieces of
        ``partition_rows`` are then cut from them there (:meth:`_pieces_kept`), the same pieces
        as the table sent from here, and the table is never here."""
        import dask.dataframe as dd

        from buzzpipe.estimate.dask_engine import return_free_pages

        empty = table.iloc[:0] if isinstance(table, pd.DataFrame) else table.meta
        meta = dd.from_pandas(derive(empty), npartitions=1, sort=False)._meta
        if isinstance(table, pd.DataFrame):
            pieces, types = self._pieces(table)
        else:
            pieces, types = self._pieces_kept(table)
        del table  # the pieces are on the workers: the table goes with its last reference
        if inputs:
            # tasks of their own, not a graph of delayed calls: the persisted collection kept
            # that graph, and with it the futures of ``inputs`` (an edge-list survey's cells
            # and local partners) on the workers for as long as the frame was kept
            made = [self.client.submit(derive, piece, *inputs, pure=False) for piece in pieces]
            del pieces  # let go on the workers once the frame is made
            data = dd.from_delayed(made, meta=meta, verify_meta=False)
            del made
        else:
            scattered = dd.from_delayed(pieces, meta=types, verify_meta=False)
            del pieces
            data = self.client.persist(scattered.map_partitions(derive, meta=meta))
            del scattered  # the firm table's pieces let go on the workers once the frame is made
        futures = _futures(data)
        _wait(futures)
        if len(self.client.nthreads()) > 1:  # as for sent pieces: one lost worker loses nothing
            self.client.replicate(futures, n=2)
        return_free_pages()
        lengths = self.client.compute(data.map_partitions(len)).result().tolist()
        frame = pd.DataFrame(index=pd.RangeIndex(int(sum(lengths))))
        self._frame = (frame, data, np.cumsum([0, *lengths]))
        self._kept += 1
        return frame

    def _pieces_kept(self, kept: Any) -> tuple[list[Any], pd.DataFrame]:
        """:meth:`_pieces` of a table kept on the workers in partitions of its own (``kept``:
        ``futures``, their ``lengths`` and ``meta``, no rows): each piece of ``partition_rows``
        cut there from the partitions it spans (:func:`_rows_between`), the same rows, index
        and types as the piece sent from a table here, each kept on two workers."""
        import dask.dataframe as dd

        meta = dd.from_pandas(kept.meta.iloc[:0], npartitions=1, sort=False)._meta
        converted = {
            name: wanted
            for name, given, wanted in zip(kept.meta.columns, kept.meta.dtypes, meta.dtypes,
                                           strict=True)
            if given != wanted
        }  # fmt: skip
        rows = int(sum(kept.lengths))
        parts = max(1, math.ceil(rows / self.partition_rows))
        size, more = divmod(rows, parts)
        bounds = np.cumsum([0, *(size + (part < more) for part in range(parts))])
        starts = np.cumsum([0, *kept.lengths])
        pieces = []
        for start, stop in itertools.pairwise(bounds):
            spanned = [
                number
                for number in range(len(kept.futures))
                if starts[number] < stop and starts[number + 1] > start and kept.lengths[number]
            ] or [0]
            pieces.append(
                self.client.submit(
                    _rows_between, int(start), int(stop), converted,
                    [int(starts[number]) for number in spanned],
                    *[kept.futures[number] for number in spanned], pure=False,
                )
            )  # fmt: skip
        _wait(pieces)
        if len(self.client.nthreads()) > 1:
            self.client.replicate(pieces, n=2)
        return pieces, meta

    def frame_source(self) -> Any:
        """The kept analysis frame's partitions as a chunk source (dask, after
        :meth:`keep_frame`): summaries of every firm made where the partitions are."""
        from buzzpipe.estimate.dask_engine import DaskSource

        if self._frame is None:
            raise RuntimeError("no analysis frame kept on the cluster (keep_frame first)")
        return DaskSource(self._frame[1], self.client)

    def rows_on_workers(
        self, frame: pd.DataFrame, keep: np.ndarray, reads: Sequence[str]
    ) -> pd.DataFrame | None:
        """The rows of ``frame`` where ``keep`` (booleans, one per row in order) with only the
        columns ``reads`` here, the ones the caller reads on the client; its other columns stay
        on the workers, where the sample is selected from the kept analysis frame when it is
        fitted (:meth:`source`). Which rows it holds is kept on the workers too: per partition
        of the kept frame, its rows' positions there (futures made from ``frame``'s own
        selection and ``keep``'s bits, :meth:`_composed`), let go with the sample; the client
        holds the sample's length, the columns read and their types. Its row labels are a
        range of its own (negative: no label of the kept frame), not the kept frame's labels
        (8 bytes a row): a fit on it gives its row ids as that range, and the study asks the
        engine for their labels in the kept frame where it compares samples
        (:meth:`labelled`). Where every row is kept the sample keeps ``frame``'s labels. The
        sample counts every column of ``frame`` as its own there, and a column set on it later
        is sent as a sample's changed column is. ``frame.loc[keep]`` copied every column here:
        spill-over's own-pipeline and no-pipeline subsets on the Dask client. None where the
        rows cannot be selected on the workers (not dask, no kept frame, ``frame``'s rows not
        the kept frame's in order): the caller copies them."""
        if (selected := self._selectable(frame)) is None:
            return None
        parts, sent, meta, computed = selected
        keep = np.asarray(keep, dtype=bool)
        read = frame[list(dict.fromkeys(reads))]  # copy on write: no column copied
        if keep.all():  # every row: the frame's own columns
            return self._elsewhere_kept(read, parts, sent, meta, computed)
        rows = np.flatnonzero(keep)
        self._labelled_samples += 1
        start = -self._labelled_samples * _LABELS_APART
        labels = pd.RangeIndex(start, start + len(rows))
        if len(read.columns):
            sample = read.iloc[rows]
            sample.index = labels
        else:  # no column read here: no row either
            sample = pd.DataFrame(index=labels)
        if sent is not None:
            sent = sent.iloc[rows].reset_index(drop=True)
        del rows
        sample = self._elsewhere_kept(sample, self._composed(parts, keep), sent, meta, computed)
        return self._ranged(sample)

    def rows_where(
        self, frame: pd.DataFrame, partial: Callable[..., Any], *args: Any, columns=None
    ) -> pd.DataFrame | None:
        """``rows_on_workers(frame, mask(frame, partial, *args), [])`` with the mask made and
        used on the workers: per partition of the sample its rows where ``partial(rows,
        *args)`` (reading ``columns``) are kept there, and only their number comes here (the
        mask was a byte a row here, its bits sent back). None where that cannot be (not dask,
        no kept frame, ``frame``'s rows not the kept frame's in order, or columns set on
        ``frame`` here, which its rows' mask would select here): the caller asks for the mask."""
        if (selected := self._selectable(frame)) is None:
            return None
        parts, sent, meta, computed = selected
        if (sent is not None and len(sent.columns)) or not parts:
            return None
        from dask import delayed

        pieces = self._sample_on_cluster(frame).to_delayed()
        listed = None if columns is None else list(columns)
        tasks = [
            delayed(_rows_where)(piece, local, rows, partial, args, listed)
            for piece, (_number, local, rows) in zip(pieces, parts, strict=True)
        ]
        made = self.client.compute(tasks)
        counts = self.client.gather(self.client.map(len, made, pure=False))
        found, kept = [], []
        for (number, local, rows), future, count in zip(parts, made, counts, strict=True):
            if count == rows:  # every row of the frame's there: its own
                found.append((number, local, rows))
            elif count:
                found.append((number, future, count))
                kept.append(future)
        del made
        if kept and len(self.client.nthreads()) > 1:
            self.client.replicate(kept, n=2)  # as sent pieces are: one lost worker loses none
        if len(found) == len(parts) and all(
            local is mine[1] for mine, (_n, local, _r) in zip(parts, found, strict=True)
        ):
            return self._elsewhere_kept(frame[[]], parts, None, meta, computed)
        self._labelled_samples += 1
        start = -self._labelled_samples * _LABELS_APART
        sample = pd.DataFrame(index=pd.RangeIndex(start, start + sum(counts)))
        return self._ranged(self._elsewhere_kept(sample, tuple(found), None, meta, computed))

    def _ranged(self, sample: pd.DataFrame) -> pd.DataFrame:
        """``sample`` (its labels a range of its own) found by its labels (:meth:`_labelled`)."""
        held = self._elsewhere[id(sample)]
        self._ranges[sample.index.start] = weakref.ref(held)
        weakref.finalize(held, self._ranges.pop, sample.index.start, None)
        return sample

    def _labelled(self, frame: pd.DataFrame) -> tuple | None:
        """:meth:`_selection` of a frame made here with pandas from a sample of
        :meth:`rows_on_workers` (a copy, some of its rows in order: its labels are of that
        sample's range), recorded as that sample's are (its rows composed on the workers from
        the sample's); None where its labels are not such."""
        index = frame.index
        if not len(index) or index.dtype.kind != "i" or int(index[0]) >= 0:
            return None
        start = (int(index[0]) // _LABELS_APART) * _LABELS_APART  # its range's first label
        held = self._ranges.get(start)
        origin = None if held is None else held()
        if origin is None or origin.kept != self._kept or origin.sample() is None:
            return None
        labels = origin.sample().index
        rows = labels.get_indexer(index)
        if rows.min() < 0 or (len(rows) > 1 and (np.diff(rows) <= 0).any()):
            return None
        whole = len(rows) == len(labels)
        parts = origin.parts
        if not whole:
            keep = np.zeros(len(labels), dtype=bool)
            keep[rows] = True
            parts = self._composed(parts, keep)
            del keep
        shared = origin.shared if whole else origin.shared.iloc[rows]
        own = [
            column
            for column in frame.columns
            if column not in shared.columns or not _same_values(frame[column], shared[column])
        ]
        sent = origin.sent
        if sent is not None:
            sent = sent if whole else sent.iloc[rows].reset_index(drop=True)
            sent = sent.drop(columns=[c for c in own if c in sent])
        if own:
            mine = frame[own].reset_index(drop=True)
            sent = mine if sent is None else pd.concat([sent, mine], axis=1)
        meta = origin.meta.copy()
        for column in frame.columns:  # a column set on the frame: its type
            meta[column] = frame[column].iloc[:0].reset_index(drop=True)
        self._elsewhere_kept(frame, parts, sent, meta, origin.computed)
        self._elsewhere[id(frame)].origin = origin  # the sample's rows kept while it lives
        return parts, sent, meta, origin.computed

    def computed_on_workers(
        self, frame: pd.DataFrame, compute: Callable[[pd.DataFrame], dict[str, pd.Series]]
    ) -> pd.DataFrame | None:
        """``frame`` with the columns ``compute`` gives counted as its own, computed on the
        workers from each partition of the sample when it is fitted (:meth:`source`), not here:
        ``compute(rows)`` makes each row's values from that row alone (a module-level function,
        sent in the graph). The frame returned shares ``frame``'s columns and lacks the computed
        ones: the caller does not read them on the client. Computed here, they were columns
        sent from the client (the differences' sum columns and the regime indicators of the
        sensitivity part: 8 bytes a firm each, held while their bootstraps ran). None where
        the sample cannot be selected on the workers: the caller computes them."""
        if (selected := self._selectable(frame)) is None:
            return None
        parts, sent, meta, computed = selected
        meta = meta.copy()
        # the columns' types, from no rows of every column on the workers: a row's computed
        # values may read columns the client does not hold (the kept frame's own)
        made = compute(self._with_worker_columns(meta))
        for name, values in made.items():
            meta[name] = values
        # a column of ``frame`` a computed one replaces (complementarity's regime) is computed
        # from the kept frame's: where the frame's own differs (sent), it is computed here
        replaced = [name for name in made if name in frame.columns]
        if sent is not None and any(name in sent.columns for name in replaced):
            return None
        # copy on write: no column copied; the replaced columns are not read here
        sample = frame.drop(columns=replaced) if replaced else frame.copy(deep=False)
        return self._elsewhere_kept(sample, parts, sent, meta, (*computed, compute))

    def _selectable(self, frame: pd.DataFrame) -> tuple | None:
        """:meth:`_selection` of ``frame`` on dask; None elsewhere."""
        return self._selection(frame) if self.name == "dask" else None

    def _elsewhere_kept(self, sample: pd.DataFrame, *selection: Any) -> pd.DataFrame:
        """``sample`` recorded as selected on the workers by ``selection`` (its rows per
        partition, sent columns, types, computed columns) for as long as it lives; its columns
        as they are now are those the selection accounts for (``shared``)."""
        shared = sample.copy(deep=False)  # copy on write: no column copied
        self._elsewhere[id(sample)] = _RowsElsewhere(
            weakref.ref(sample), self._kept, *selection, shared=shared
        )
        weakref.finalize(sample, self._elsewhere.pop, id(sample), None)
        return sample

    def _composed(self, parts: tuple, keep: np.ndarray) -> tuple:
        """The rows of a sample selected by ``parts`` (per partition of the kept frame: its
        number, the sample's rows there, how many) where ``keep`` (one boolean a row of the
        sample, in order): per partition, the rows kept where none or all are not sent, the
        others made on the workers from their parent's rows and ``keep``'s bits there (an
        eighth of a byte a row sent, nothing per row kept here)."""
        from buzzpipe.estimate.dask_engine import return_free_pages

        composed, start, made = [], 0, []
        for number, local, rows in parts:
            here = keep[start : start + rows]
            start += rows
            count = int(here.sum())
            if count == 0:
                continue
            if count == rows:  # every row of the parent's there: its own
                composed.append((number, local, rows))
                continue
            if isinstance(local, np.ndarray):  # a frame of the kept frame's labels: sent
                (local,) = self._to_workers([local])
            bits = self.client.scatter(np.packbits(here), hash=False)  # gone once used
            local = self.client.submit(_composed_rows, local, bits, rows, pure=False)
            made.append(local)
            composed.append((number, local, count))
        if made:
            # kept on two workers, as sent pieces are: the bits they were made from go
            _wait(made)
            if len(self.client.nthreads()) > 1:
                self.client.replicate(made, n=2)
            return_free_pages()
        return tuple(composed)

    def source(self, frame: pd.DataFrame) -> Any:
        """The chunk source of ``frame`` (row ids are its row positions), made once per frame;
        inside :meth:`side_by_side`, one whose passes join the merged rounds."""
        with self._lock:  # the works of side_by_side ask from their threads
            made = self._source(frame)
        merged = _MERGED.get()
        return made if merged is None else merged.joined(made)

    def _source(self, frame: pd.DataFrame) -> Any:
        key = id(frame)
        if key in self._sources and self._sources[key][0]() is frame:
            self._sources.move_to_end(key)
            return self._sources[key][1]
        if self.name == "dask":
            from buzzpipe.estimate.dask_engine import DaskSource, return_free_pages

            with warnings.catch_warnings():
                # what the sample does not share with the kept frame goes to the cluster once,
                # in the graph: distributed's advice on large graphs would land in models' notes
                warnings.filterwarnings("ignore", "Sending large graph", UserWarning)
                data = self.client.persist(self._sample_on_cluster(frame))
                source = DaskSource(data, self.client)
            return_free_pages()  # the sample's sent columns, freed: as for the kept frame
        else:
            from buzzpipe.estimate.sources import FrameSource

            source = FrameSource(frame.reset_index(drop=True))
        # held weakly: a sample the study has let go of is not kept alive here
        self._sources[key] = (weakref.ref(frame), source)
        while len(self._sources) > self.kept_samples:
            self._sources.popitem(last=False)
        return source

    def _sample_on_cluster(self, frame: pd.DataFrame) -> Any:
        """``frame`` as a dask DataFrame of rows in its order: selected per partition of the kept
        analysis frame on the workers where its rows are rows of that frame (in their order),
        with only the columns it does not share sent (its rows there: futures on the workers,
        or the positions of a frame made here with pandas); else sent whole."""
        import dask.dataframe as dd
        from dask import delayed

        selected = self._selection(frame)
        if selected is None:
            self.sent_columns += len(frame) * frame.shape[1]
            return self._scattered(frame)
        parts, sent, meta, computed = selected
        sending = sent is not None and len(sent.columns) > 0
        if sending:
            self.sent_columns += len(frame) * sent.shape[1]
        kept = self._frame[1].to_delayed()
        pieces, columns, start = [], [], 0
        for number, local, rows in parts:
            pieces.append((kept[number], local))
            if sending:
                columns.append(sent.iloc[start : start + rows].reset_index(drop=True))
            start += rows
        if sending:
            columns = self._to_workers(columns)  # to the workers, not into the graph
        else:
            columns = [None] * len(pieces)
        made = [
            delayed(_rows_of)(part, local, sent_here, list(meta.columns), computed)
            for (part, local), sent_here in zip(pieces, columns, strict=True)
        ]
        if not made:  # no rows: an empty frame of the sample's columns
            return dd.from_pandas(meta, npartitions=1, sort=False)
        return dd.from_delayed(made, meta=meta, verify_meta=False)

    def _scattered(self, frame: pd.DataFrame) -> Any:
        """``frame`` (its rows in order, index reset) as a dask DataFrame of the partitions
        ``dd.from_pandas`` makes of it (``n // parts`` rows each, the first ``n % parts`` one
        more) with its types (text as Arrow strings), each sent to the workers
        (:meth:`_to_workers`). Each partition is a slice of the frame, made when its turn to
        be sent comes, with only the columns whose type Dask changes converted:
        ``dd.from_pandas`` of the whole frame copied every column (at a million firms 138 MiB
        more here while the frame was sent), and its partition bounds made a Python int per
        row (about 100 bytes a row)."""
        import dask.dataframe as dd

        pieces, meta = self._pieces(frame)
        return dd.from_delayed(pieces, meta=meta, verify_meta=False)

    def _pieces(self, frame: pd.DataFrame) -> tuple[list[Any], pd.DataFrame]:
        """:meth:`_scattered`'s pieces (futures, in order) and their types (no rows)."""
        import dask.dataframe as dd

        frame = frame.reset_index(drop=True)  # copy on write: no column copied
        meta = dd.from_pandas(frame.iloc[:0], npartitions=1, sort=False)._meta
        converted = {
            name: wanted
            for name, given, wanted in zip(frame.columns, frame.dtypes, meta.dtypes, strict=True)
            if given != wanted
        }
        parts = max(1, math.ceil(len(frame) / self.partition_rows))
        rows, more = divmod(len(frame), parts)
        bounds = np.cumsum([0, *(rows + (part < more) for part in range(parts))])
        pieces = (
            frame.iloc[start:stop].astype(converted) if converted else frame.iloc[start:stop]
            for start, stop in itertools.pairwise(bounds)
        )
        return self._to_workers(pieces), meta

    def _to_workers(self, pieces: Iterable[Any]) -> list[Any]:
        """``pieces`` sent straight to the workers (futures), one piece at a time: scattered
        together, every piece was serialised before any was sent, and sending the analysis frame
        raised this process's resident set by 2.4 times the frame (at a million firms 321 MiB
        for a 135 MiB frame, the Dask client's peak of the whole run). Put in a task graph
        instead, they would stay in the scheduler's copy of the graph for as long as the
        collection built on them is kept, and a LocalCluster's scheduler runs in this process:
        the analysis frame and every kept sample's sent columns held a second time here (at
        150,000 firms the frame alone held 28 MiB of malloc'd memory, 40 MiB resident). Each
        piece is kept on two workers where there are two or more, so that one lost worker loses
        no data: its tasks are recomputed from the other copy, as they were from the graph."""
        # hash=False: a key of their own each time. Keyed by their content, a piece sent again
        # soon after the same piece was let go (a sample's changed column, reduced twice) came
        # back as the cancelled future of the first
        futures = [self.client.scatter(piece, hash=False) for piece in pieces]
        if len(self.client.nthreads()) > 1:
            self.client.replicate(futures, n=2)
        return futures

    def _selection(self, frame: pd.DataFrame) -> tuple | None:
        """(its rows per partition of the kept frame, the columns to send or None, the sample's
        columns and types with no rows, the functions computing columns on the workers) when
        ``frame``'s rows are rows of the kept analysis frame in its order; a column counts as
        shared when its name, type and values at those rows are the kept frame's. None when
        there is no kept frame or the rows are not its rows in order. The rows, per partition:
        (its number, the rows there: None for every row, else their positions in the
        partition, a future on the workers or an array here, how many). A sample of
        :meth:`rows_on_workers` or :meth:`computed_on_workers` has its rows, the columns it does
        not share and its computed columns kept from when it was made; a column set on it since
        (or changed) is sent, as any sample's own column is (not computed again)."""
        elsewhere = self._elsewhere.get(id(frame))
        if elsewhere is not None and elsewhere.sample() is not frame:
            elsewhere = None
        if elsewhere is not None and (self._frame is None or elsewhere.kept != self._kept):
            raise RuntimeError("a sample of rows left on the workers outlived their kept frame")
        if self._frame is None:
            return None
        kept, bounds = self._frame[0], self._frame[2]
        if elsewhere is not None:
            shared = elsewhere.shared
            own = [
                column
                for column in frame.columns
                if column not in shared.columns or not _same_values(frame[column], shared[column])
            ]
            sent = elsewhere.sent
            if own:
                if sent is not None:
                    sent = sent.drop(columns=[c for c in own if c in sent])
                mine = frame[own].reset_index(drop=True)
                sent = mine if sent is None else pd.concat([sent, mine], axis=1)
            meta = elsewhere.meta.copy()
            for column in frame.columns:  # a column set on the sample: its type
                meta[column] = frame[column].iloc[:0].reset_index(drop=True)
            return elsewhere.parts, sent, meta, elsewhere.computed
        meta = frame.iloc[:0].reset_index(drop=True)
        every = tuple(
            (number, None, int(stop - start))
            for number, (start, stop) in enumerate(itertools.pairwise(bounds))
        )
        if frame is kept:  # the rows of every column on the workers, the client's own or not
            return every, None, self._with_worker_columns(meta), ()
        if isinstance(frame.index, pd.RangeIndex) and frame.index.equals(kept.index):
            # a frame of every row of the kept one in order (a copy of it or of a sample of
            # every row, heterogeneity's): no positions, nor the labels' lookup, here
            own = _not_shared(frame, kept, range(len(kept)))
            sent = frame[own].reset_index(drop=True) if own else None
            return every, sent, self._with_worker_columns(meta), ()
        if (positions := self._kept_positions(frame)) is None:
            return self._labelled(frame)
        # the kept frame's columns on the workers only come with its rows: the client's
        # pandas made ``frame`` from rows of the client's copy, which never held them
        meta = self._with_worker_columns(meta)
        own = _not_shared(frame, kept, positions)
        starts = np.searchsorted(positions, bounds)
        parts = []
        for number in range(len(bounds) - 1):
            start, stop = starts[number], starts[number + 1]
            if start == stop:
                continue
            local = (positions[start:stop] - bounds[number]).astype(np.int32)
            if stop - start == bounds[number + 1] - bounds[number]:
                local = None  # every row of the partition
            parts.append((number, local, int(stop - start)))
        sent = frame[own].reset_index(drop=True) if own else None
        return tuple(parts), sent, meta, ()

    def _kept_positions(self, frame: pd.DataFrame) -> np.ndarray | None:
        """The positions in the kept analysis frame of ``frame``'s rows (by their labels) where
        they are rows of it in its order; None where they are not (or nothing is kept)."""
        kept = self._frame[0]
        if not frame.index.is_unique or not kept.index.is_unique:
            return None
        positions = kept.index.get_indexer(frame.index)
        if len(positions) and (positions.min() < 0 or (np.diff(positions) <= 0).any()):
            return None
        return positions

    def _with_worker_columns(self, meta: pd.DataFrame) -> pd.DataFrame:
        """``meta`` (a frame of no rows) with the columns the kept analysis frame holds on the
        workers only (on ``analyze``'s path every column: the client's copy holds none), in the
        kept frame's order: the columns of a sample selected there from the frame's rows."""
        workers = self._frame[1]._meta
        if all(column in meta.columns for column in workers.columns):
            return meta
        whole = workers.iloc[:0].reset_index(drop=True)
        for column in meta.columns:  # the client's columns as the client holds them
            whole[column] = meta[column]
        return whole

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
        """Let go of the persisted samples and frame (the client stays for other work)."""
        self._sources.clear()
        self._fitted_rows.clear()
        self._frame = None

    # --- the study's reductions over a frame's rows -------------------------------------------

    def reduced(
        self, frame: pd.DataFrame, partial: Callable[..., Any], *args: Any, columns=None
    ) -> Any:
        """``partial(rows, *args)`` of ``frame``'s rows, the partials of its chunks combined
        (``sources.combine``: numbers add, sets unite, dicts entry by entry). In memory (and on
        ``stream``) one partial of the whole frame, computed as it always was here; on dask one
        per partition of the sample on the workers (selected there from the kept frame, with
        only ``columns`` read), and only the partials come here: the study's reductions of its
        samples (counts, value sets, per-region totals, weighted moments) read no column of
        every firm on the client. ``partial`` is a module-level function (sent in the graph)."""
        if self._selectable(frame) is None:
            return partial(frame, *args)
        from dask import delayed

        from buzzpipe.estimate.dask_engine import DaskSource, aligned

        data = self._sample_on_cluster(frame)
        listed = None if columns is None else list(columns)
        tasks = [delayed(_partial_of)(part, listed, partial, args) for part in data.to_delayed()]
        return aligned(self.client.compute(DaskSource._tree(tasks)).result())

    def mask(
        self, frame: pd.DataFrame, partial: Callable[..., Any], *args: Any, columns=None
    ) -> np.ndarray:
        """``partial(rows, *args)``: one boolean a row of ``frame``, in its order. In memory of
        the whole frame; on dask made per partition of the sample on the workers (reading
        ``columns`` there, which the client need not hold) and only the booleans come here: the
        estimation samples' masks over every model variable."""
        if self._selectable(frame) is None:
            return partial(frame, *args)
        found = self.reduced(frame, _as_list, partial, args, columns=columns)
        return np.concatenate(found) if found else np.zeros(0, dtype=bool)

    def columns(self, frame: pd.DataFrame) -> list[str]:
        """The columns of ``frame``, with those its rows hold on the workers only (dask: the
        kept analysis frame, a sample of :meth:`rows_on_workers`, or any frame of the kept
        frame's rows made here with pandas, :meth:`meta`): which columns the survey has, for a
        frame whose client copy holds none of them."""
        if self.name != "dask" or self._frame is None:  # the frame's own, no frame made
            return list(frame.columns)
        return list(self.meta(frame).columns)

    def meta(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame``'s columns and their types, no rows, with those its rows hold on the workers
        only on dask (a frame of the kept frame's rows made here with pandas holds them there
        too, :meth:`_selection`): the columns and types of a frame whose client copy holds none
        of them (the controls the survey has, the margins' variables)."""
        own = frame.iloc[:0].reset_index(drop=True)
        if self.name != "dask" or self._frame is None:
            return own
        elsewhere = self._elsewhere.get(id(frame))
        if elsewhere is not None and elsewhere.sample() is frame:
            whole = elsewhere.meta.copy()
            for column in frame.columns:  # a column set on the sample: its type
                whole[column] = own[column]
            return whole
        if frame is self._frame[0] or self._kept_positions(frame) is not None:
            return self._with_worker_columns(own)
        selected = self._labelled(frame)  # a frame made here from a sample of its own labels
        return own if selected is None else selected[2]

    def any_present(self, frame: pd.DataFrame, column: str) -> bool:
        """Whether ``frame[column]`` has any value that is not missing."""
        return bool(self.reduced(frame, _present_count, column, columns=[column]))

    def value_counts(self, frame: pd.DataFrame, column: str) -> dict[Any, int]:
        """``{value: rows holding it}`` of ``frame[column]``'s values present (missing left
        out), in the values' order; its keys are the column's value set."""
        found = self.reduced(frame, _value_counts, column, columns=[column]) or {}
        return dict(sorted(found.items()))

    def nunique(self, frame: pd.DataFrame, column: str) -> int:
        """``frame[column].nunique()``: how many distinct values present it holds (on dask the
        partitions' value sets united)."""
        if self._selectable(frame) is None:
            return int(frame[column].nunique())
        return len(self.reduced(frame, _value_counts, column, columns=[column]) or {})

    def unique(self, frame: pd.DataFrame, column: str) -> list[Any]:
        """``frame[column].dropna().unique()``'s values, in the order they first appear in
        ``frame``'s rows (on dask each partition's, in partition order, the first of each kept):
        a part's groups in the order it meets them (heterogeneity's sectors)."""
        return list(dict.fromkeys(self.reduced(frame, _first_seen, column, columns=[column]) or []))

    def totals_by(
        self, frame: pd.DataFrame, by: str, values: Callable[[pd.DataFrame], dict[str, Any]]
    ) -> dict[str, dict[Any, float]]:
        """``{name: {group: total}}`` of the columns ``values(rows)`` makes (name -> one number
        a row; a module-level function), summed over the rows of each value of ``frame[by]``
        (a missing ``by`` in no group), with ``"rows"``: the rows of each group. Sums of whole
        numbers are exact whatever the order they are added in (the regional pool's counts)."""
        return self.reduced(frame, _totals_by, by, values) or {}

    def mean(self, frame: pd.DataFrame, column: str) -> float:
        """``frame[column].mean()`` (missing values left out). In memory pandas' own; on dask
        the partitions' sums and counts of the values present added (the same mean to
        rounding: the order of the additions differs)."""
        if self._selectable(frame) is None:
            return float(frame[column].mean())
        found = self.reduced(frame, _sum_and_count, column, columns=[column]) or {}
        count = found.get("count", 0)
        return found["sum"] / count if count else math.nan

    def weighted_moments(
        self, frame: pd.DataFrame, column: str, weights: str | None = None
    ) -> tuple[float, float]:
        """(mean, standard deviation) of ``frame[column]`` weighted by ``frame[weights]`` (equal
        weights where None), the weights normalised to sum 1: ``m = w @ x``, ``sd = sqrt(w @
        (x - m) ** 2)``. In memory those very products; on dask each of the three sums (the
        weights, ``w @ x``, ``w @ (x - m) ** 2``) is summed over the partitions."""
        read = [column] if weights is None else [column, weights]
        total = float(self.reduced(frame, _weight_total, weights, columns=read))
        mean = float(
            self.reduced(frame, _weighted_power, column, weights, total, 0.0, 1, columns=read)
        )
        spread = float(
            self.reduced(frame, _weighted_power, column, weights, total, mean, 2, columns=read)
        )
        return mean, math.sqrt(spread)

    # --- what the study computes over chunks --------------------------------------------------

    def fit(self, formula: str, frame: pd.DataFrame, family: str, vcov: Any, weights) -> Any:
        """``buzzpipe.fit`` over the chunks of ``frame``; row ids are ``frame``'s labels (a
        sample of :meth:`rows_on_workers`: its range; :meth:`labelled` gives them as the kept
        frame's)."""
        from buzzpipe.estimate.streamed import fit_source

        fitted = fit_source(formula, self.source(frame), family, vcov, weights)
        positions = fitted.row_ids
        if positions.equals(pd.RangeIndex(len(frame))):  # every row: the frame's own labels
            fitted = dataclasses.replace(fitted, row_ids=frame.index)
        else:
            fitted = dataclasses.replace(fitted, row_ids=frame.index[positions.to_numpy()])
        elsewhere = self._elsewhere.get(id(frame))
        if elsewhere is not None and elsewhere.sample() is frame:
            # its rows on the workers, kept while the fit lives: the study may ask for them
            key = id(fitted)
            self._fitted_rows[key] = (weakref.ref(fitted), frame.index, elsewhere.parts)
            weakref.finalize(fitted, self._fitted_rows.pop, key, None)
        return fitted

    def labelled(self, fitted: Any, frame: pd.DataFrame) -> Any:
        """``fitted`` with its row ids as labels of ``frame``, the kept analysis frame (or a
        frame of its labels): a fit on a sample of :meth:`rows_on_workers` gives its rows as
        the sample's own range, here their labels in the kept frame, their positions there
        gathered from the workers (8 bytes a row, for as long as the caller holds the fit
        returned: the comparisons across samples, ``suest``). Any other fit as it is."""
        found = self._fitted_rows.get(id(fitted))
        if found is None or found[0]() is not fitted or self._frame is None:
            return fitted
        _fit, labels, parts = found
        kept, bounds = self._frame[0], self._frame[2]
        if labels is kept.index:  # the kept frame's own labels already
            return fitted
        futures = [local for _number, local, _rows in parts if not _is_here(local)]
        gathered = iter(self.client.gather(futures)) if futures else iter(())
        pieces = []
        for number, local, rows in parts:
            if local is None:
                local = np.arange(rows, dtype=np.int64)
            elif not isinstance(local, np.ndarray):
                local = next(gathered)
            pieces.append(local.astype(np.int64) + int(bounds[number]))
        positions = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)
        del pieces
        if not fitted.row_ids.equals(labels):  # some of the sample's rows
            positions = positions[labels.get_indexer(fitted.row_ids)]
        return dataclasses.replace(fitted, row_ids=kept.index[positions])

    def _positional(self, fitted: Any, frame: pd.DataFrame) -> Any:
        """``fitted`` with its row ids as positions in ``frame``: a RangeIndex where it was
        fitted on every row in order (no per-row array, nor the labels' hash table, here)."""
        if fitted.row_ids is frame.index or fitted.row_ids.equals(frame.index):
            return dataclasses.replace(fitted, row_ids=pd.RangeIndex(len(frame)))
        return dataclasses.replace(
            fitted, row_ids=pd.Index(frame.index.get_indexer(fitted.row_ids))
        )

    def margin_rows(
        self, fitted: Any, frame: pd.DataFrame, variables: Sequence[str], **options
    ) -> list[tuple[str, dict[str, Any]]]:
        """The rows of ``margins(fitted, frame, variables, ...).table`` as (label, {column:
        value}): in memory without the table, sums over chunks on a chunked engine."""
        from buzzpipe.estimate.margins import margin_rows, margins, table_rows

        if not self.chunked:
            return margin_rows(fitted, frame, list(variables), **options)
        found = margins(
            self._positional(fitted, frame), self.source(frame), list(variables), **options
        )
        return table_rows(found.table)

    def factor_levels(
        self, fitted: Any, frame: pd.DataFrame, variables: Sequence[str]
    ) -> dict[str, list[Any]]:
        """The levels of each factor ``variables`` in ``fitted``'s estimation sample of
        ``frame``'s rows (chunked: found over its chunks, where they are), in the margins'
        order: what :meth:`margin_rows` contrasts given them as ``levels=``."""
        from buzzpipe.estimate.margins import streamed_levels

        return streamed_levels(self._positional(fitted, frame), self.source(frame), variables)

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


def _is_here(local: Any) -> bool:
    """Whether a sample's rows in a partition are here (None: every row; an array), not a
    future on the workers."""
    return local is None or isinstance(local, np.ndarray)


def _futures(data: Any) -> list[Any]:
    from distributed import futures_of

    return futures_of(data)


def _rows_between(
    start: int, stop: int, converted: dict, firsts: list[int], *parts: pd.DataFrame
) -> pd.DataFrame:
    """Rows ``start`` to ``stop`` of a table kept in partitions (``parts``, whose first rows
    are ``firsts``) as one piece (a task on a worker): :meth:`StudyEngine._pieces_kept`."""
    pieces = [
        part.iloc[max(start - first, 0) : max(stop - first, 0)]
        for first, part in zip(firsts, parts, strict=True)
    ]
    piece = pd.concat(pieces) if len(pieces) > 1 else pieces[0]
    piece.index = pd.RangeIndex(start, stop)
    return piece.astype(converted) if converted else piece


def _wait(futures: list[Any]) -> None:
    from distributed import wait

    wait(futures)


_CURRENT: ContextVar[StudyEngine | None] = ContextVar("buzzpipe_study_engine", default=None)
_MERGED: ContextVar[Any] = ContextVar("buzzpipe_merged_passes", default=None)


# how far apart the row labels of two samples of rows_on_workers are (each a range of its own,
# below zero): more rows than any kept frame holds
_LABELS_APART = 2**40


@dataclasses.dataclass
class _RowsElsewhere:
    """A sample of :meth:`StudyEngine.rows_on_workers` or :meth:`~StudyEngine.computed_on_workers`:
    what selects it on the workers. Nothing here has a row per firm but ``sent`` (the columns
    the study set on the client, which it holds there anyway)."""

    sample: Any  # a weak reference to the sample on the client (its columns read here)
    kept: int  # which frame kept on the workers (StudyEngine._kept) its rows are of
    # per partition of the kept frame holding any of its rows: (its number, the rows there:
    # None for every row, else their positions in the partition, on the workers (a future)
    # or here (an array), how many)
    parts: tuple
    sent: pd.DataFrame | None  # the columns its frame did not share with the kept one, its rows
    meta: pd.DataFrame  # every column of the sample and its type, no rows
    computed: tuple = ()  # functions of a partition's rows giving columns of the sample
    # the sample's columns when it was made (copy on write: no column copied), which ``sent``
    # and the kept frame give on the workers: a column set on it since is sent
    shared: pd.DataFrame | None = None
    origin: Any = None  # a frame made with pandas from a sample: that sample's (kept alive)


def _not_shared(frame: pd.DataFrame, kept: pd.DataFrame, positions: Sequence[int]) -> list[str]:
    """The columns of ``frame`` (rows at ``positions`` of ``kept``, increasing) that the kept
    frame does not hold with the same type and values there: the ones to send."""
    whole = len(positions) == len(kept)  # increasing positions: every row, in order
    return [
        column
        for column in frame.columns
        if column not in kept.columns
        or not _same_values(frame[column], kept[column] if whole else kept[column].iloc[positions])
    ]


def _same_values(column: pd.Series, kept: pd.Series) -> bool:
    """Whether a sample's column holds the kept frame's values (missing where they are
    missing) and type at its rows."""
    if column.dtype != kept.dtype:
        return False
    if isinstance(column.dtype, pd.CategoricalDtype):
        return np.array_equal(column.cat.codes.to_numpy(), kept.cat.codes.to_numpy())
    if not isinstance(column.dtype, np.dtype):
        # text (Arrow) and nullable columns compared as arrays: to_numpy would make a Python
        # object per firm of a text column, two such arrays per sample on the client
        return bool(column.array.equals(kept.array))
    left, right = column.to_numpy(), kept.to_numpy()
    if left.dtype.kind == "f":
        return np.array_equal(left, right, equal_nan=True)
    return bool(pd.Series(left).equals(pd.Series(right)))


def _composed_rows(parent: np.ndarray | None, bits: np.ndarray, rows: int) -> np.ndarray:
    """A sample's rows in one partition of the kept frame (on a worker): those of its parent
    there (None: every row) where ``bits`` (one a parent's row, packed) are set."""
    keep = np.unpackbits(bits, count=rows).astype(bool)
    if parent is None:
        return np.flatnonzero(keep).astype(np.int32)
    return parent[keep]


def _rows_where(
    part: pd.DataFrame,
    local: np.ndarray | None,
    rows: int,
    partial: Callable[..., Any],
    args: tuple,
    columns: list[str] | None,
) -> np.ndarray:
    """A sample's rows of one partition of the kept frame where ``partial`` holds (on a worker):
    their positions there, of the sample's rows ``local`` (None: every row, ``rows`` of them)."""
    keep = np.asarray(_partial_of(part, columns, partial, args), dtype=bool)
    return (np.arange(rows, dtype=np.int32) if local is None else local)[keep]


def _rows_of(
    part: pd.DataFrame, rows: Any, sent: Any, columns: list[str], computed: tuple = ()
) -> pd.DataFrame:
    """A sample's rows of one partition of the kept frame (on a worker), with its own columns:
    those sent, then those computed from its rows (where none of that name was sent)."""
    part = part if rows is None else part.iloc[rows]
    part = part.reset_index(drop=True)
    if sent is not None:
        part = pd.concat([part.drop(columns=[c for c in sent.columns if c in part]), sent], axis=1)
    for compute in computed:
        made = compute(part)
        part = part.assign(**{n: v for n, v in made.items() if sent is None or n not in sent})
    return part[columns]


def _partial_of(part: pd.DataFrame, columns: Any, partial: Callable, args: tuple) -> Any:
    """One partition's partial of :meth:`StudyEngine.reduced` (on a worker)."""
    return partial(part if columns is None else part[columns], *args)


def _as_list(rows: pd.DataFrame, partial: Callable, args: tuple) -> list[np.ndarray]:
    """One partition's mask of :meth:`StudyEngine.mask`, as a list (lists concatenate)."""
    return [np.asarray(partial(rows, *args), dtype=bool)]


def _present_count(rows: pd.DataFrame, column: str) -> int:
    """How many of ``rows[column]``'s values are present."""
    return int(rows[column].notna().sum())


def _value_counts(rows: pd.DataFrame, column: str) -> dict[Any, int]:
    """``{value: rows}`` of ``rows[column]``'s values present (Python numbers and text)."""
    counts = rows[column].value_counts(dropna=True, sort=False)
    counts = counts[counts.to_numpy() > 0]  # a categorical's unused categories
    return dict(zip(counts.index.tolist(), counts.to_numpy().tolist(), strict=True))


def _first_seen(rows: pd.DataFrame, column: str) -> list[Any]:
    """``rows[column]``'s values present, each once, in the order they first appear."""
    return rows[column].dropna().unique().tolist()


def _totals_by(
    rows: pd.DataFrame, by: str, values: Callable[[pd.DataFrame], dict[str, Any]]
) -> dict[str, dict[Any, float]]:
    """One chunk's part of :meth:`StudyEngine.totals_by`."""
    codes, groups = pd.factorize(rows[by], sort=False)
    grouped = codes >= 0
    groups = list(groups.tolist())
    sizes = np.bincount(codes[grouped], minlength=len(groups))
    found = {"rows": dict(zip(groups, sizes.astype(float).tolist(), strict=True))}
    for name, made in values(rows).items():
        made = np.asarray(made, dtype=float)[grouped]
        sums = np.bincount(codes[grouped], weights=made, minlength=len(groups))
        found[name] = dict(zip(groups, sums.tolist(), strict=True))
    return found


def _sum_and_count(rows: pd.DataFrame, column: str) -> dict[str, float]:
    """The sum and the number of ``rows[column]``'s values present (:meth:`StudyEngine.mean`)."""
    values = rows[column].to_numpy(dtype=float, na_value=np.nan)
    present = ~np.isnan(values)
    return {"sum": float(values[present].sum()), "count": int(present.sum())}


def _raw_weights(rows: pd.DataFrame, weights: str | None) -> np.ndarray:
    """``rows``' sampling weights (ones without weights)."""
    if weights is None:
        return np.ones(len(rows))
    return rows[weights].to_numpy(dtype=float)


def _weight_total(rows: pd.DataFrame, weights: str | None) -> float:
    """The sum of ``rows``' weights (their number without weights)."""
    return float(_raw_weights(rows, weights).sum())


def _weighted_power(
    rows: pd.DataFrame, column: str, weights: str | None, total: float, centre: float, power: int
) -> float:
    """``w @ (x - centre) ** power`` over ``rows`` (``w``: the weights over ``total``); the
    mean's product (power 1) is ``w @ x``, with no subtraction."""
    values = rows[column].to_numpy(dtype=float)
    normalised = _raw_weights(rows, weights) / total
    if power == 1:
        return float(normalised @ values)
    return float(normalised @ (values - centre) ** power)


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
