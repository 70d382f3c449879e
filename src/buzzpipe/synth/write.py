"""Write a synthetic survey to CSV or Parquet, block by block, so memory stays bounded at any N.

Both files (firms and, if asked, links) go to temporary files renamed together on success: an
error, SIGINT or SIGTERM leaves no half-written output and never a new firms file beside old
links. A survey that cannot fit on the disk is refused before the first block is drawn.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from buzzpipe.atomic_write import replace_together, temporary_sibling
from buzzpipe.csv_safety import spreadsheet_safe_frame
from buzzpipe.errors import InputError
from buzzpipe.resources import check_disk
from buzzpipe.synth.generate import (
    BLOCK_FIRMS,
    GeneratingParameters,
    block_frames,
    block_sizes,
    edge_list_firms,
    iter_blocks,
)
from buzzpipe.synth.preset import Preset

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}

# Bytes on disk per firm, measured on norway2010 draws of 10,000 and 100,000 firms (83 and 12 per
# firm for a firms file with answers; 44 + 204 and 9 + 47 for an edge list's firms + links),
# rounded up by a quarter for presets with more partners.
DISK_PER_FIRM = {
    ("csv", False): 105,
    ("parquet", False): 16,
    ("csv", True): 55,
    ("parquet", True): 12,
}
DISK_PER_FIRM_LINKS = {"csv": 255, "parquet": 60}


def check_disk_space(
    firms_path: Path, firms_format: str, links_path: Path | None, links_format: str | None,
    total: int,
) -> None:  # fmt: skip
    """Refuse a survey that cannot fit in the free space where it goes, before writing."""
    edge_list = links_path is not None
    per_firm = {firms_path: DISK_PER_FIRM[(firms_format, edge_list)]}
    if links_path is not None and links_format is not None:
        per_firm[links_path] = DISK_PER_FIRM_LINKS[links_format]
    for path, size in per_firm.items():
        check_disk(
            total * size,
            path,
            f"a survey of {total:,} firms",
            "fewer --firms, Parquet instead of CSV, or a folder on a larger disk",
        )


@dataclass(frozen=True)
class WrittenSurvey:
    """What was written."""

    firms_path: Path
    links_path: Path | None
    firms: int
    links: int


def output_format(path: Path, what: str) -> str:
    """The file format chosen by the extension of ``path``."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(
            f"unknown {what} file type",
            file=str(path),
            value=path.suffix or "(none)",
            expected="a name ending in .csv or .parquet",
        )
    return fmt


class _TableWriter:
    """Appends DataFrames to one CSV or Parquet file."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.path, self.fmt = path, fmt
        self.parquet: pq.ParquetWriter | None = None
        self.started = False

    def write(self, frame: pd.DataFrame) -> None:
        if self.fmt == "csv":
            spreadsheet_safe_frame(frame).to_csv(
                self.path, mode="a" if self.started else "w", header=not self.started, index=False
            )
        else:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self.parquet is None:
                self.parquet = pq.ParquetWriter(self.path, table.schema)
            self.parquet.write_table(table)
        self.started = True

    def close(self) -> None:
        if self.parquet is not None:
            self.parquet.close()


def _check_request(seed: int | None, firms: int | None) -> None:
    if seed is None:
        raise InputError("no seed", expected="--seed S (an integer >= 0)")
    if seed < 0:
        raise InputError("negative seed", value=seed, expected="an integer >= 0")
    if firms is not None and firms < 1:
        raise InputError("too few firms", value=firms, expected="--firms of at least 1")


def _with_progress(blocks, n_blocks: int, total: int, progress: bool | None):
    """The blocks behind a progress bar on stderr (None: only on a terminal), for several."""
    if progress is False or n_blocks <= 1:
        return blocks
    from tqdm import tqdm

    return tqdm(blocks, total=n_blocks, unit="block", desc=f"{total:,} firms",
                disable=None if progress is None else False)  # fmt: skip


def write_survey(
    preset: Preset,
    seed: int | None,
    firms_path: Path,
    *,
    links_path: Path | None = None,
    firms: int | None = None,
    progress: bool | None = None,
    block_firms: int = BLOCK_FIRMS,
) -> WrittenSurvey:
    """Generate the survey block by block into ``firms_path`` (and ``links_path``).

    Without links the firms file holds the collaboration answers (``collab_*``); with links it is
    an edge-list survey: collaboration is in the links and the firms file has a ``country``.

    ``progress``: a progress bar on stderr (None: only on a terminal, and only for several blocks).
    """
    _check_request(seed, firms)
    firms_format = output_format(firms_path, "firms")
    links_format = output_format(links_path, "links") if links_path is not None else None
    if links_path is not None and links_path.resolve() == firms_path.resolve():
        raise InputError("the links file must differ from the firms file", file=str(links_path))
    parameters = GeneratingParameters.from_preset(preset)
    total = int(firms if firms is not None else preset["survey.firms"])
    check_disk_space(firms_path, firms_format, links_path, links_format, total)
    n_blocks = len(block_sizes(total, block_firms))
    blocks = iter_blocks(preset, seed, firms=total, block_firms=block_firms)
    blocks = _with_progress(blocks, n_blocks, total, progress)
    written_firms = written_links = 0
    with ExitStack() as stack:
        firms_temporary = stack.enter_context(temporary_sibling(firms_path))
        firms_writer = _TableWriter(firms_temporary, firms_format)
        links_writer = None
        pairs = [(firms_temporary, firms_path)]
        if links_path is not None:
            links_temporary = stack.enter_context(temporary_sibling(links_path))
            links_writer = _TableWriter(links_temporary, links_format)
            pairs.append((links_temporary, links_path))
        try:
            for block in blocks:
                firms_frame, links_frame = block_frames(block, parameters)
                if links_writer is not None:  # an edge-list survey: collaboration in the links
                    firms_frame = edge_list_firms(firms_frame, parameters.country)
                firms_writer.write(firms_frame)
                written_firms += len(firms_frame)
                if links_writer is not None:
                    links_writer.write(links_frame)
                    written_links += len(links_frame)
        finally:
            firms_writer.close()
            if links_writer is not None:
                links_writer.close()
        replace_together(pairs)  # both files new, or both as they were
    return WrittenSurvey(firms_path, links_path, written_firms, written_links)


def is_folder_output(path: Path) -> bool:
    """``--out`` names a folder (no file extension, or an existing folder): partitions go there."""
    return path.is_dir() or (path.suffix == "" and not str(path).endswith((".csv", ".parquet")))


def write_partitioned(
    preset: Preset,
    seed: int | None,
    folder: Path,
    *,
    edge_list: bool = False,
    firms: int | None = None,
    progress: bool | None = None,
    block_firms: int = BLOCK_FIRMS,
) -> WrittenSurvey:
    """The survey as a folder of Parquet partitions, one per block of firms: ``firms/part-NNNNN
    .parquet`` (and ``links/part-NNNNN.parquet`` for an edge-list survey), the Dask engine's
    input (``buzzpipe analyze FOLDER/firms --links FOLDER/links --engine dask``).

    Written through ``output_folder.write_folder``: whole or not at all (an error, SIGINT or
    SIGTERM leaves the earlier folder or none), a manifest last; one block in memory at a time.
    Same preset, seed and N: the same rows as the single-file output, in the same order.
    """
    from buzzpipe.output_folder import check_output_folder, write_folder

    _check_request(seed, firms)
    check_output_folder(folder, kind="survey")
    parameters = GeneratingParameters.from_preset(preset)
    total = int(firms if firms is not None else preset["survey.firms"])
    check_disk_space(folder, "parquet", folder if edge_list else None, "parquet", total)
    n_blocks = len(block_sizes(total, block_firms))
    blocks = iter_blocks(preset, seed, firms=total, block_firms=block_firms)
    blocks = iter(_with_progress(blocks, n_blocks, total, progress))
    counted = {"firms": 0, "links": 0}
    pending: dict[str, pd.DataFrame] = {}

    def part(kind: str) -> Callable[[Path], None]:
        def write(path: Path) -> None:
            if kind == "firms":  # the next block: its firms now, its links in the next file
                firms_frame, links_frame = block_frames(next(blocks), parameters)
                if edge_list:
                    firms_frame = edge_list_firms(firms_frame, parameters.country)
                    pending["links"] = links_frame
                frame = firms_frame
            else:
                frame = pending.pop("links")
            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
            counted[kind] += len(frame)

        return write

    files: dict[str, Callable[[Path], None]] = {}
    for number in range(n_blocks):
        for kind in ("firms", "links") if edge_list else ("firms",):
            files[f"{kind}/part-{number:05d}.parquet"] = part(kind)
    write_folder(folder, files, kind="survey")
    links_folder = folder / "links" if edge_list else None
    return WrittenSurvey(folder / "firms", links_folder, counted["firms"], counted["links"])
