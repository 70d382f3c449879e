"""Where chunks of rows come from: DataFrame blocks and Parquet row groups (Dask: ``dask_engine``).

A source maps a function over its chunks and sums what it returns (:func:`combine`), so the fit
in ``streamed.py`` is one piece of code for every engine::

    source = parquet_source("firms/")        # a file, a folder of .parquet files or a glob
    source.head(256)                         # the first rows, as a DataFrame
    source.map_reduce(function, *args)       # sum of function(frame, where, first_row, *args)
    source.map_designs(spec, function, *args)  # sum of function(DesignChunk, *args)

``where`` names the chunk in errors ("firms/part.3.parquet, row group 2"); ``first_row`` is its
first row's position in the whole data, so row ids (and the bootstraps keyed by them) do not
depend on the chunking. The streamed source holds one row group at a time.
"""

from __future__ import annotations

import glob as globbing
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from buzzpipe.errors import InputError

__all__ = ["combine", "FrameSource", "ParquetSource", "parquet_files", "parquet_source"]


def combine(a: Any, b: Any) -> Any:
    """The sum of two per-chunk results: numbers and arrays add, lists concatenate (in chunk
    order), sets unite, dicts and tuples combine entry by entry, ``None`` is the empty result."""
    if a is None:
        return b
    if b is None:
        return a
    if isinstance(a, dict):
        return {key: combine(a.get(key), b.get(key)) for key in dict.fromkeys([*a, *b])}
    if isinstance(a, tuple):
        return tuple(combine(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, list):
        return a + b
    if isinstance(a, (set, frozenset)):
        return a | b
    if isinstance(a, str):  # a label (the same in every chunk)
        return a
    return a + b


def tree_combine(results: list[Any]) -> Any:
    """Pairwise sums in a fixed tree (the order Dask's reduction uses too)."""
    if not results:
        return None
    while len(results) > 1:
        paired = [combine(results[i], results[i + 1]) for i in range(0, len(results) - 1, 2)]
        if len(results) % 2:
            paired.append(results[-1])
        results = paired
    return results[0]


def built_chunk(spec: Any, frame: pd.DataFrame, where: str, first_row: int) -> Any:
    """A chunk's design for ``spec``: :func:`~buzzpipe.estimate.chunks.build_chunk`'s, or the
    specification's own kind where it makes one (``spec.build_chunk(frame, where, first_row)``,
    such as the designs under data changes of ``probability_changes.ChangeChunks``)."""
    own = getattr(spec, "build_chunk", None)
    if own is not None:
        return own(frame, where, first_row)
    from buzzpipe.estimate.chunks import build_chunk

    return build_chunk(spec, frame, where=where, first_row=first_row)


def chunk_bytes(design: Any) -> int:
    """The bytes of a built chunk's arrays (a DesignChunk's X and about four columns; the
    arrays of a tuple)."""
    if isinstance(design, tuple):
        return sum(chunk_bytes(item) for item in design)
    if hasattr(design, "nbytes"):
        return int(design.nbytes)
    return design.X.nbytes + 4 * design.y.nbytes


class KeptDesigns:
    """Built designs kept per specification, by its identity, for the last few specifications
    used (the least recently used go): the in-process sources' and Dask's design caches."""

    def __init__(self) -> None:
        self._by_id: dict[int, tuple[Any, Any]] = {}  # id(spec) -> (spec, designs), by use

    def get(self, spec: Any) -> Any | None:
        """The designs kept for ``spec`` (now the most recently used), else None."""
        found = self._by_id.pop(id(spec), None)
        if found is None or found[0] is not spec:
            return None
        self._by_id[id(spec)] = found
        return found[1]

    def put(self, spec: Any, designs: Any, specs: int) -> None:
        """Keep ``designs`` for ``spec``, and those of at most ``specs`` specifications."""
        self._by_id[id(spec)] = (spec, designs)
        while len(self._by_id) > specs:
            del self._by_id[next(iter(self._by_id))]


class _ChunkedSource:
    """Shared by the in-process sources: chunks one at a time, results tree-summed."""

    def frames(self, columns: list[str] | None = None) -> Iterator[tuple[pd.DataFrame, str, int]]:
        raise NotImplementedError

    def map_reduce(self, function: Callable, *args, columns: list[str] | None = None) -> Any:
        return tree_combine(
            [function(frame, where, first, *args) for frame, where, first in self.frames(columns)]
        )

    # each specification's designs kept between passes up to this many bytes (else every pass
    # rebuilds them), for the last ``kept_specs`` specifications used
    cache_bytes = 256 * 2**20
    kept_specs = 2

    def map_designs(self, spec, function: Callable, *args) -> Any:
        cache = self.__dict__.setdefault("_kept", KeptDesigns())
        found = cache.get(spec)
        if found is not None:
            return tree_combine([function(design, *args) for design in found])
        kept: list | None = []
        size = 0
        results = []
        for frame, where, first in self.frames(spec.columns):
            design = built_chunk(spec, frame, where, first)
            results.append(function(design, *args))
            if kept is not None:
                size += chunk_bytes(design)
                if size <= self.cache_bytes:
                    kept.append(design)
                else:
                    kept = None
        if kept is not None:
            cache.put(spec, kept, self.kept_specs)
        return tree_combine(results)

    def head(self, rows: int = 256) -> pd.DataFrame:
        for frame, _where, _first in self.frames():
            return frame.iloc[:rows]
        raise InputError("the data have no rows")


class FrameSource(_ChunkedSource):
    """A pandas DataFrame in row blocks (row ids are its index labels)."""

    engine = "memory"

    def __init__(self, data: pd.DataFrame, block_rows: int = 65_536) -> None:
        self.data = data
        self.block_rows = block_rows

    def frames(self, columns=None):
        data = self.data if columns is None else self.data[columns]
        for start in range(0, max(len(data), 1), self.block_rows):
            yield data.iloc[start : start + self.block_rows], f"rows {start}-", start


def parquet_files(path: str | os.PathLike | list) -> list[str]:
    """The Parquet files of a path: a file, a folder (its ``*.parquet`` files, recursively,
    sorted) or a glob (sorted); a clear error when there are none."""
    if isinstance(path, (list, tuple)):
        return [file for item in path for file in parquet_files(item)]
    text = os.fspath(path)
    if any(character in text for character in "*?["):
        files = sorted(globbing.glob(text, recursive=True))
    elif Path(text).is_dir():
        files = sorted(str(p) for p in Path(text).rglob("*.parquet"))
    elif Path(text).exists():
        files = [text]
    else:
        raise InputError("no such file or folder", file=text, expected="a Parquet file or folder")
    if not files:
        raise InputError("no Parquet files found", file=text, expected="*.parquet files")
    return files


def _open(file: str):
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(file)
    except Exception as error:
        raise InputError(
            f"cannot read this Parquet file ({type(error).__name__}: {error})".splitlines()[0],
            file=file,
        ) from None


def read_row_group(file: str, group: int, columns: list[str] | None) -> pd.DataFrame:
    """One row group as a DataFrame with a fresh RangeIndex; a one-line error naming the file."""
    try:
        table = _open(file).read_row_group(group, columns=columns)
        frame = table.to_pandas()
    except InputError:
        raise
    except Exception as error:
        message = f"{type(error).__name__}: {error}".splitlines()[0]
        missing = [c for c in columns or [] if c not in _open(file).schema_arrow.names]
        if missing:
            raise InputError(
                "the column is not in the data", file=file, column=missing[0]
            ) from None
        raise InputError(f"cannot read row group {group} ({message})", file=file) from None
    frame.index = pd.RangeIndex(len(frame))
    return frame


class ParquetSource(_ChunkedSource):
    """Parquet files read one row group at a time (memory bounded by the largest row group)."""

    engine = "stream"

    def __init__(self, files: list[str]) -> None:
        self.files = files
        self.parts: list[tuple[str, int, int]] = []  # (file, row group, first row)
        first = 0
        for file in files:
            metadata = _open(file).metadata
            for group in range(metadata.num_row_groups):
                self.parts.append((file, group, first))
                first += metadata.row_group(group).num_rows
        self.n_rows = first

    def frames(self, columns=None):
        for file, group, first in self.parts:
            where = f"{file}, row group {group}"
            yield read_row_group(file, group, columns), where, first

    def read_all(self, columns: list[str] | None = None) -> pd.DataFrame:
        """The whole data in memory (RangeIndex = global row positions)."""
        frames = [frame for frame, _where, _first in self.frames(columns)]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def parquet_source(path) -> ParquetSource:
    return ParquetSource(parquet_files(path))


def is_path_like(data: Any) -> bool:
    return isinstance(data, (str, os.PathLike)) or (
        isinstance(data, (list, tuple))
        and data
        and all(isinstance(d, (str, os.PathLike)) for d in data)
    )
