"""Replicates over processes or a Dask cluster: the same results whatever runs them.

A replicate's numbers depend only on its own seed (``SeedSequence(seed).spawn(replicates)`` by
replicate index, and keyed streams inside it), never on which process or worker runs it or in
what order, so spreading replicates over processes, or over the workers of a Dask
``distributed.Client``, changes nothing but the wall time. Results come back in replicate order.
Processes are started with ``spawn`` (no fork of a process holding threads); each loads the
compiled step from numba's disk cache, as a Dask worker does (or compiles it once, on a machine
without the cache).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

from buzzpipe.errors import InputError


def is_client(workers: Any) -> bool:
    """Is ``workers`` a Dask ``distributed.Client`` (rather than a number of processes)?"""
    try:
        from distributed import Client
    except ImportError:
        return False
    return isinstance(workers, Client)


def check_processes(processes: int | Any) -> int | Any:
    """The number of processes, checked (1 runs in this process), or a Dask client."""
    if is_client(processes):
        return processes
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise InputError("--processes must be at least 1", value=processes)
    return processes


def describe(processes: int | Any) -> str:
    """Where replicates run, in words (for progress lines)."""
    if is_client(processes):
        return f"the Dask cluster at {processes.scheduler.address}"
    return f"{processes} processes"


def _limited(task: Callable[[Any], Any], item: Any) -> Any:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # one BLAS thread per worker: processes share the cores
        return task(item)


def map_replicates(
    task: Callable[[Any], Any], items: Sequence[Any], processes: int | Any = 1
) -> list[Any]:
    """``[task(item) for item in items]``, over ``processes`` processes when more than one, or
    over the workers of ``processes`` when it is a Dask ``distributed.Client``.

    ``task`` must be picklable (a module-level function, or a ``functools.partial`` of one).
    """
    from functools import partial

    check_processes(processes)
    if is_client(processes):  # each item one task; gathered in the order of the items
        futures = processes.map(partial(_limited, task), list(items), pure=False)
        return processes.gather(futures)
    workers = min(processes, len(items), os.cpu_count() or 1)
    if workers <= 1:
        return [task(item) for item in items]
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        return list(pool.map(partial(_limited, task), items))
