"""Write a synthetic survey to CSV or Parquet, block by block, so memory stays bounded at any N.

Both files (firms and, if asked, links) go to temporary files renamed on success: an error
leaves no half-written output.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from buzzpipe.atomic_write import atomic_path
from buzzpipe.errors import InputError
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
            frame.to_csv(
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
    if seed is None:
        raise InputError("no seed", expected="--seed S (an integer >= 0)")
    if seed < 0:
        raise InputError("negative seed", value=seed, expected="an integer >= 0")
    if firms is not None and firms < 1:
        raise InputError("too few firms", value=firms, expected="--firms of at least 1")
    firms_format = output_format(firms_path, "firms")
    links_format = output_format(links_path, "links") if links_path is not None else None
    if links_path is not None and links_path.resolve() == firms_path.resolve():
        raise InputError("the links file must differ from the firms file", file=str(links_path))
    parameters = GeneratingParameters.from_preset(preset)
    total = int(firms if firms is not None else preset["survey.firms"])
    blocks = iter_blocks(preset, seed, firms=total, block_firms=block_firms)
    n_blocks = len(block_sizes(total, block_firms))
    if progress is not False and n_blocks > 1:
        from tqdm import tqdm

        blocks = tqdm(
            blocks,
            total=n_blocks,
            unit="block",
            desc=f"{total:,} firms",
            disable=None if progress is None else False,
        )
    written_firms = written_links = 0
    with ExitStack() as stack:
        firms_writer = _TableWriter(stack.enter_context(atomic_path(firms_path)), firms_format)
        links_writer = None
        if links_path is not None:
            links_writer = _TableWriter(stack.enter_context(atomic_path(links_path)), links_format)
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
    return WrittenSurvey(firms_path, links_path, written_firms, written_links)
