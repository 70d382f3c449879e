"""Edge-list measures on Dask: links classified into scales per partition, answers tree-reduced.

The links of an edge-list survey (tens of millions of rows) are Parquet partitions; each task
validates and classifies its links against the firm directory (a join of links with the firms'
regions and countries, the directory shipped to every worker once) and returns the positions of
the (partner type, scale, firm) cells its links make 1 or "don't know"; the positions are united
pairwise and set in one :class:`~buzzpipe.survey.edge_list.CollaborationCounts` on the client
(only cell positions travel, never links). Same answers as reading the links whole::

    counts = collaboration_on_dask("links/", directory, scales=..., partner_types=..., client=c)
    counts.matrix()        # the collab_<scale>_<partner_type> columns, one row per firm
"""

from __future__ import annotations

import numpy as np

from buzzpipe.survey import edge_list

__all__ = ["collaboration_on_dask", "partition_cells"]


def partition_cells(links, where, first_row, directory, scales, partner_types, source) -> dict:
    """The cells one partition's links set: flat positions in (types, scales, firms) order."""
    canonical = edge_list.validate_links(
        links, directory, partner_types, source=source, first_row=first_row + 1
    )
    classified = edge_list.classify_links(canonical, directory, scales=scales)
    counts = edge_list.CollaborationCounts(
        len(directory), scales=scales, partner_types=partner_types
    )
    counts.add(canonical, classified)
    return {
        "yes": [np.flatnonzero(counts._yes)],
        "maybe": [np.flatnonzero(counts._maybe)],
        "links": len(canonical),
    }


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
    from buzzpipe.estimate.dask_engine import DaskSource

    links = DaskSource(links_path, client)
    shipped = links.client.scatter(directory, broadcast=True)
    cells = links.map_reduce(partition_cells, shipped, scales, partner_types, source)
    counts = edge_list.CollaborationCounts(
        len(directory), scales=scales, partner_types=partner_types
    )
    for name in ("yes", "maybe"):
        target = getattr(counts, f"_{name}").reshape(-1)
        for positions in cells[name]:
            target[positions] = True
    return counts
