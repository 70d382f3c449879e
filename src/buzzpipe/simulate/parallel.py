"""Replicates over processes: the same results whatever the number of processes.

A replicate's numbers depend only on its own seed (``SeedSequence(seed).spawn(replicates)`` by
replicate index, and keyed streams inside it), never on which process runs it or in what order,
so spreading replicates over processes changes nothing but the wall time. Results come back in
replicate order. Processes are started with ``spawn`` (no fork of a process holding threads);
each loads the compiled step from numba's disk cache.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

from buzzpipe.errors import InputError


def check_processes(processes: int) -> int:
    """The number of processes, checked (1 runs in this process)."""
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise InputError("--processes must be at least 1", value=processes)
    return processes


def _limited(task: Callable[[Any], Any], item: Any) -> Any:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # one BLAS thread per worker: processes share the cores
        return task(item)


def map_replicates(
    task: Callable[[Any], Any], items: Sequence[Any], processes: int = 1
) -> list[Any]:
    """``[task(item) for item in items]``, over ``processes`` processes when more than one.

    ``task`` must be picklable (a module-level function, or a ``functools.partial`` of one).
    """
    check_processes(processes)
    workers = min(processes, len(items), os.cpu_count() or 1)
    if workers <= 1:
        return [task(item) for item in items]
    from functools import partial

    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        return list(pool.map(partial(_limited, task), items))
