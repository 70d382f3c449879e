"""Which engine runs a fit: ``memory`` (a DataFrame), ``stream`` (Parquet row groups, one at a
time) or ``dask`` (partitions on a Dask cluster). ``fit`` picks ``stream`` for a path and
``dask`` for a dask DataFrame unless told otherwise."""

from __future__ import annotations

from typing import Any

import pandas as pd

from buzzpipe.errors import InputError
from buzzpipe.estimate.sources import FrameSource, is_path_like, parquet_source

__all__ = ["ENGINES", "default_engine", "source_for", "is_dask_frame"]

ENGINES = ("memory", "stream", "dask")


def is_dask_frame(data: Any) -> bool:
    return hasattr(data, "to_delayed") and hasattr(data, "npartitions")


def is_chunk_source(data: Any) -> bool:
    """A source already made (``sources.py``, ``dask_engine.py``): used as it is."""
    return hasattr(data, "map_designs") and hasattr(data, "map_reduce")


def default_engine(data: Any) -> str:
    if is_chunk_source(data):
        return "dask" if data.engine == "dask" else "stream"
    if is_dask_frame(data):
        return "dask"
    if is_path_like(data):
        return "stream"
    return "memory"


def check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise InputError("unknown engine", value=engine, expected=" | ".join(ENGINES))
    return engine


def source_for(data: Any, engine: str, *, scheduler: str | None = None, **options):
    """The chunk source of ``data`` for ``engine`` ("stream" | "dask"; "memory" over a DataFrame
    gives its row blocks, for testing the chunked fit against the in-memory one)."""
    check_engine(engine)
    if is_chunk_source(data):
        return data
    if engine == "dask":
        from buzzpipe.estimate.dask_engine import DaskSource, connect

        client = options.pop("client", None) or connect(scheduler)
        return DaskSource(data, client, **options)
    if isinstance(data, pd.DataFrame):
        return FrameSource(data, **options)
    if is_dask_frame(data):
        raise InputError("a dask DataFrame needs engine='dask'", value=engine)
    return parquet_source(data)


def load_frame(data: Any) -> pd.DataFrame:
    """The whole data as a DataFrame (engine="memory" on a path: RangeIndex = row positions)."""
    if isinstance(data, pd.DataFrame):
        return data
    if is_dask_frame(data):
        return data.compute().reset_index(drop=True)
    return parquet_source(data).read_all()
