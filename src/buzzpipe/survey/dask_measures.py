"""Edge-list measures on Dask: links classified into scales per partition, answers tree-reduced.

The links of an edge-list survey (tens of millions of rows) are Parquet partitions; each task
puts its links in canonical names (the mapping), validates and classifies them against the firm
directory (a join of links with the firms' regions and countries, the directory shipped to every
worker once) and returns the positions of the (partner type, scale, firm) cells its links make
1 or "don't know", plus its distinct local partners (16 bytes each) for pipeline exposure. The
positions stay on the workers (:class:`CellsOnWorkers`): under ``buzzpipe analyze --engine dask``
each partition of the firm table takes its own rows' answers there (``Survey.keep_on``), and
only a survey read here sets them in one
:class:`~buzzpipe.survey.edge_list.CollaborationCounts` on the client; links themselves never
travel. Breadth and regimes follow from those answers as for any survey. Same answers as
reading the links whole::

    counts = collaboration_on_dask("links/", directory, scales=..., partner_types=..., client=c)
    counts.matrix()        # the collab_<scale>_<partner_type> columns, one row per firm

``read_edge_list(firms, "links/", client=c)`` (``buzzpipe analyze --engine dask``) reads an
edge-list survey this way.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from buzzpipe.survey import edge_list
from buzzpipe.survey.schema import LINK_SCALE

__all__ = ["CellsOnWorkers", "DaskLinks", "collaboration_on_dask", "partition_cells"]


def partition_cells(
    links,
    where,
    first_row,
    directory,
    scales,
    partner_types,
    source,
    mapping=None,
    local=None,
    match=False,
) -> dict:
    """The cells one partition's links set: flat positions in (types, scales, firms) order,
    (with ``local``, the local scale) its distinct local partners for pipeline exposure, and
    (with ``match``) the links whose partner names it spelt as the firms file does."""
    if mapping is not None:
        from buzzpipe.survey.mapping import RawTable

        links = mapping.apply_links(RawTable(links, source, first_row=first_row + 1))
    canonical = edge_list.validate_links(
        links, directory, partner_types, source=source, first_row=first_row + 1
    )
    matched: edge_list.Matched | None = {} if match else None
    classified = edge_list.classify_links(
        canonical, directory, scales=scales, source=source, matched=matched
    )
    counts = edge_list.CollaborationCounts(
        len(directory), scales=scales, partner_types=partner_types
    )
    counts.add(canonical, classified)
    cells = {
        "cells": {"yes": np.flatnonzero(counts._yes), "maybe": np.flatnonzero(counts._maybe)},
        "links": len(canonical),
        "matched": matched or {},
    }
    if local is not None:  # kept with the cells, on the worker
        canonical[LINK_SCALE] = pd.Categorical(classified[LINK_SCALE], categories=list(scales))
        exposure = edge_list.ExposureCounts(directory, local_scale=local, spill_records=2**62)
        exposure.add(canonical, classified["firm_position"].to_numpy())
        records, anonymous = exposure.partial()
        firms = np.flatnonzero(anonymous)
        kept = {"records": records, "firms": firms, "anonymous": anonymous[firms]}
        cells["cells"].update(kept)
    return cells


def _cells_on_dask(
    links_path, directory, scales, partner_types, client, source, mapping, local, match=False
) -> Iterator[tuple[dict, Any]]:
    """Each partition's answer (:func:`partition_cells`), in partition order, one at a time on
    the client (all of them at once, a tree-reduced concatenation, were the survey stage's
    peak at a million firms), beside a future of its collaboration cells, which stay on the
    workers until asked for."""
    from buzzpipe.estimate.dask_engine import DaskSource

    links = DaskSource(links_path, client)
    # hash=False: hashing the directory would pickle it and unpickle a copy of its id keys (two
    # Python objects per firm on the client, the survey stage's largest holder at its peak)
    if hasattr(directory, "future"):  # made on the workers from the firm table kept there
        shipped = directory.future
    else:
        shipped = links.client.scatter(directory, broadcast=True, hash=False)
    for answer, cells in links.map_each_kept(
        _cells_or_refusal, "cells", shipped, scales, partner_types, source, mapping, local, match
    ):
        if "refused" in answer:  # the partition's bad input, raised here as a read would
            raise answer["refused"]
        yield answer, cells


def _cells_or_refusal(links, where, first_row, *args) -> dict:
    """:func:`partition_cells`, or ``{"refused": error}`` where the partition's links are bad
    input: the refusal is an answer, not a failed task, so the worker does not log it with a
    traceback beside the one-line error (the rest of the partitions are then cancelled)."""
    from buzzpipe.errors import InputError

    try:
        return partition_cells(links, where, first_row, *args)
    except InputError as error:
        return {"refused": error}


def _set_cells(counts: edge_list.CollaborationCounts, cells: dict) -> None:
    for name in ("yes", "maybe"):
        getattr(counts, f"_{name}").reshape(-1)[cells[name]] = True


@dataclass
class CellsOnWorkers:
    """The collaboration cells an edge-list survey's links set, kept on the Dask workers: one
    future per links partition of its flat "yes" and "maybe" positions in a count of the
    ``firms`` firms' answers (:class:`~buzzpipe.survey.edge_list.CollaborationCounts`' order).

    Why: set in one count on the client, the answers (21 Int8 columns, 42 bytes a firm) were
    held there from the survey stage until the firm table was sent to the workers. Kept here,
    each partition of the firm table takes its own rows' answers on its worker
    (:func:`~buzzpipe.survey.edge_list.answers_of_rows`, ``Survey.keep_on``); a survey used
    on the client (``Survey.firms``) gathers them, one partition's cells at a time
    (:meth:`counts`), the same answers."""

    futures: list
    firms: int
    scales: tuple[str, ...]
    partner_types: tuple[str, ...]
    client: Any
    # with a local scale, each future also holds its links' local partners for pipeline
    # exposure (``ExposureCounts.partial``: records, and the firms with partners without an id)
    local_scale: str | None = None

    def exposure_counts(self) -> edge_list.ExposureCounts:
        """The local partners counted for pipeline exposure, made here from every partition's
        (as the links counted here add them)."""
        counts = edge_list.ExposureCounts(self.firms, local_scale=self.local_scale)
        for future in self.futures:
            part = future.result()
            counts.add_partial(part["records"], part["firms"], part["anonymous"])
        return counts

    def status_blocks(self, rows: int, function, *args) -> list:
        """Futures of ``function(answers, *args)`` of each block of ``rows`` firms in order,
        made and kept on the workers (:func:`~buzzpipe.survey.edge_list.answers_of_rows`)."""
        return [
            self.client.submit(
                _of_rows, function, start, min(start + rows, self.firms), self.firms,
                self.scales, self.partner_types, args, *self.futures, pure=False,
            )
            for start in range(0, self.firms, max(1, rows))
        ]  # fmt: skip

    def counts(self) -> edge_list.CollaborationCounts:
        """The whole count, made here: every partition's cells set in it in turn."""
        counts = edge_list.CollaborationCounts(
            self.firms, scales=self.scales, partner_types=self.partner_types
        )
        for future in self.futures:
            _set_cells(counts, future.result())
        return counts

    def release(self) -> None:
        """Let the cells go on the workers."""
        self.futures = []


def _of_rows(function, start, stop, firms, scales, partner_types, args, *cells) -> Any:
    answers = edge_list.answers_of_rows(
        cells, firms, pd.RangeIndex(start, stop), scales=scales, partner_types=partner_types
    )
    return function(answers, *args)


def collaboration_on_dask(
    links_path,
    directory: edge_list.FirmDirectory,
    *,
    scales: tuple[str, ...],
    partner_types: tuple[str, ...],
    client=None,
    source: str = "links",
) -> edge_list.CollaborationCounts:
    """The collaboration answers the links imply, computed on the Dask cluster of ``client``."""
    kept = [
        cells
        for _answer, cells in _cells_on_dask(
            links_path, directory, scales, partner_types, client, source, None, None
        )
    ]
    client = kept[0].client if kept else client
    return CellsOnWorkers(kept, len(directory), scales, partner_types, client).counts()


@dataclass
class DaskLinks:
    """The links of an edge-list survey as Parquet partitions on a Dask cluster (in place of
    batches read here): ``Survey.from_frame(..., link_batches=DaskLinks(path, client))``."""

    path: Any
    client: Any = None
    mapping: Any = None

    def count_links(
        self,
        directory: edge_list.FirmDirectory,
        local: str | None,
        *,
        scales: tuple[str, ...],
        partner_types: tuple[str, ...],
        source: str,
        matched: edge_list.Matched | None = None,
    ) -> CellsOnWorkers:
        """Every partition's collaboration cells and (with the ``local`` scale) its local
        partners for pipeline exposure, kept on the workers (returned), and, with ``matched``,
        the links whose partner names were spelt as the firms file does (as in memory; without
        it such names are refused)."""
        kept = []
        for answer, cells in _cells_on_dask(
            self.path,
            directory,
            scales,
            partner_types,
            self.client,
            source,
            self.mapping,
            local,
            matched is not None,
        ):
            kept.append(cells)
            if matched is not None:
                for key, links in answer["matched"].items():
                    matched[key] = matched.get(key, 0) + links
        client = kept[0].client if kept else None
        return CellsOnWorkers(kept, len(directory), scales, partner_types, client, local)
