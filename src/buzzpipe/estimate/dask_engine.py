"""``engine="dask"``: the per-chunk sums mapped over partitions and tree-reduced on a cluster.

::

    client = connect()                         # DASK_SCHEDULER_ADDRESS, or a LocalCluster
    source = DaskSource("firms/", client)      # Parquet row groups, or a dask DataFrame
    fit_source(formula, source, ...)           # streamed.py: the same fit as in memory

Each partition's design is built on a worker from the fixed model specification and kept there
(persisted); a Newton step sends the parameters out and gets p x p sums back, added pairwise in
a fixed tree (the same tree as ``sources.tree_combine``, so the order of additions, and hence the
answer, does not depend on which worker ran what). Nothing row-sized comes back to the client but
the estimation sample's row ids at the end. A worker lost mid-fit costs a recomputation of its
partitions, not a different answer; ``fault_at_task`` (tests) makes the worker that runs the k-th
task exit.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd

from buzzpipe.errors import InputError
from buzzpipe.estimate.sources import (
    KeptDesigns,
    built_chunk,
    combine,
    parquet_files,
    read_row_group,
)

__all__ = ["connect", "DaskSource", "SCHEDULER_VARIABLE"]

SCHEDULER_VARIABLE = "DASK_SCHEDULER_ADDRESS"
_LOCAL: dict[str, Any] = {}
_REMOTE: dict[str, Any] = {}
_CLOSED_AT_EXIT: list[Callable[[], None]] = []


def connect(scheduler: str | None = None, *, n_workers: int | None = None, quiet: bool = False):
    """A distributed Client: ``scheduler`` (tcp://host:port), else $DASK_SCHEDULER_ADDRESS, else
    the client already running in this process, else a LocalCluster on this machine (one thread
    per worker process, BLAS pinned to one thread; its dashboard link is printed)."""
    from distributed import Client, LocalCluster

    if not _CLOSED_AT_EXIT:
        # Registered once, after distributed's own exit hooks, so that ours run first (atexit
        # runs last-registered first): clients and the local cluster close while distributed
        # can still close them quietly.
        _CLOSED_AT_EXIT[:] = [close_remote_clients, _close_local]
        for close in _CLOSED_AT_EXIT:
            atexit.register(close)
    return_large_blocks()
    address = scheduler or os.environ.get(SCHEDULER_VARIABLE)
    if address:
        known = _REMOTE.get(address)
        if known is not None and known.status == "running":
            return known  # one client per address, not one per fit
        try:
            _REMOTE[address] = Client(address, timeout="20s")
        except Exception as error:
            raise InputError(
                f"cannot reach the Dask scheduler ({error})".splitlines()[0], value=address
            ) from None
        if not quiet:
            print(f"dask: scheduler {address}, dashboard {_REMOTE[address].dashboard_link}",
                  file=sys.stderr)  # fmt: skip
        return _REMOTE[address]
    try:
        from distributed import get_client

        return get_client()
    except ValueError:
        pass
    if "client" not in _LOCAL:
        cluster = LocalCluster(
            n_workers=n_workers or min(os.cpu_count() or 1, 4),
            threads_per_worker=1,
            processes=True,
            env={"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
        )
        _LOCAL["cluster"], _LOCAL["client"] = cluster, Client(cluster)
        quiet_dashboard_errors()  # the local scheduler, and so its dashboard, runs in this process
        if not quiet:
            print(f"dask: local cluster, dashboard {cluster.dashboard_link}", file=sys.stderr)
    return _LOCAL["client"]


# glibc's mallopt parameter and the size from which this process's blocks are mapped on their
# own (returned to the system when freed): 256 KiB, glibc's own starting value
_M_MMAP_THRESHOLD = -3
LARGE_BLOCK_BYTES = 256 * 1024


def return_large_blocks() -> bool:
    """Fix glibc's mmap threshold in this process (the Dask client's): blocks of 256 KiB or more
    are mapped on their own and go back to the system when freed. By default glibc raises the
    threshold to the largest block freed so far (up to 32 MiB), after which the client's large,
    short-lived buffers (graphs and columns serialized for the cluster, results coming back)
    come from its heaps, which keep them when freed: the resident set ratchets up with the
    firms. At 50,000 firms (``bench/client_memory.py``, same code) the analyze process's peak
    was 527 MiB, 79 MiB of it free but kept by malloc, and 473 MiB with the threshold fixed, 20
    MiB kept. Memory placement only: no number changes. A no-op where the C library is not
    glibc; idempotent. Returns whether it was set."""
    return _glibc_call("mallopt", _M_MMAP_THRESHOLD, LARGE_BLOCK_BYTES)


def return_free_pages() -> bool:
    """Give the pages of glibc's heaps that hold only freed blocks back to the system
    (``malloc_trim(0)``), after the client has sent a frame's partitions to the workers: their
    columns, cut and serialized in pieces below :data:`LARGE_BLOCK_BYTES` (a partition's 1-byte
    column of 131,072 rows is 128 KiB), came from the heaps, which kept them once freed. At
    1,000,000 firms the analysis frame sent to the workers left 60 MiB free but kept; trimmed,
    the resident set fell from 414 to 356 MiB. Memory placement only: no number changes. A
    no-op where the C library is not glibc. Returns whether anything was given back."""
    return _glibc_call("malloc_trim", 0)


def _glibc_call(name: str, *arguments: int) -> bool:
    """glibc's function ``name`` called with ``arguments`` in this process, its result as a
    bool; False where the C library is not glibc (no call is made)."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        return bool(getattr(ctypes.CDLL("libc.so.6"), name)(*arguments))
    except (OSError, AttributeError):
        return False


class _DashboardErrors(logging.Filter):
    """A request the dashboard fails on, as one warning line without the traceback.

    The dashboard of a scheduler in this process (a LocalCluster's) logs an uncaught exception
    in one of its request handlers on ``tornado.application`` with the traceback, and that lands
    on the user's terminal between the progress bar's lines. One such failure is distributed's:
    ``GET /json/identity.json`` while a worker's last heartbeat carried task metrics, whose keys
    are tuples that JSON cannot write (``TypeError: keys must be str, ...``; distributed
    2026.8.0). The request fails; the scheduler and the analysis do not."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and str(record.msg).startswith("Uncaught exception"):
            request = record.getMessage().splitlines()[0].removeprefix("Uncaught exception ")
            error = record.exc_info[1]
            record.msg = "dask dashboard: %s failed (%s: %s); the computation is not affected"
            record.args = (request, type(error).__name__, error)
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def quiet_dashboard_errors() -> None:
    """Show the dashboard's failed requests (tornado's uncaught exceptions in this process) as
    one line each, without a traceback (``_DashboardErrors``). Idempotent."""
    logger = logging.getLogger("tornado.application")
    if not any(isinstance(known, _DashboardErrors) for known in logger.filters):
        logger.addFilter(_DashboardErrors())


def close_remote_clients() -> None:
    """Close the clients this process opened to schedulers by address. Called at exit, and by
    whoever shuts such a scheduler down first: a client left open keeps trying to reconnect to
    a closed scheduler and prints the failures."""
    while _REMOTE:
        _REMOTE.popitem()[1].close()


def _close_local() -> None:
    client, cluster = _LOCAL.pop("client", None), _LOCAL.pop("cluster", None)
    if client is not None:
        client.close()
    if cluster is not None:
        cluster.close()


def _claim_ticket(folder: str) -> int:
    """The next task number, claimed atomically across worker processes (files in ``folder``)."""
    number = 1
    while True:
        try:
            os.close(os.open(os.path.join(folder, f"task-{number}"), os.O_CREAT | os.O_EXCL))
            return number
        except FileExistsError:
            number += 1


def aligned(value: Any) -> Any:
    """``value`` with every numpy array in it (in tuples, lists, dicts, dataclasses such as a
    ``DesignChunk``, a DataFrame's columns) at an address its item size divides.

    distributed packs a message's small frames into one buffer and makes arrays that view it, so
    an array that travels (the parameters sent to a task, a p x p sum, a vector of y) can
    arrive at an odd address depending on what else the message held; numpy computes with an
    unaligned array through its own loops instead of BLAS's, and the sums round differently
    (measured: X'y and X'X at 25,000 x 20 differ in the last bits at every unaligned offset,
    and are bit-identical at every aligned one). So two runs of one fit on Dask differed in the
    last digits where a transfer happened to leave an array unaligned. Aligned copies (only
    where needed: the arrays that arrived so) make every pass's numbers independent of how its
    messages were packed."""
    if isinstance(value, np.ndarray):
        return value if value.flags.aligned else np.array(value)
    if isinstance(value, tuple):
        found = tuple(aligned(v) for v in value)
        if all(a is b for a, b in zip(found, value, strict=True)):
            return value
        return type(value)(*found) if hasattr(value, "_fields") else found
    if isinstance(value, list):
        return [aligned(v) for v in value]
    if isinstance(value, dict):
        return {key: aligned(v) for key, v in value.items()}
    if isinstance(value, pd.DataFrame):
        unaligned = any(
            isinstance(dtype, np.dtype) and not value[column].to_numpy().flags.aligned
            for column, dtype in value.dtypes.items()
            if value.columns.is_unique
        )
        return value.copy() if unaligned else value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for field in dataclasses.fields(value):
            if not field.init:
                continue
            current = getattr(value, field.name)
            if isinstance(current, np.ndarray) and not current.flags.aligned:
                changes[field.name] = np.array(current)
        return dataclasses.replace(value, **changes) if changes else value
    return value


def _task(function: Callable, item: Any, fault: tuple[int, str] | None, *args) -> Any:
    if fault is not None and _claim_ticket(fault[1]) == fault[0]:
        os._exit(70)  # the injected worker loss: the process dies mid-task
    return function(aligned(item), *aligned(args))


def _frame_task(function, frame, fault, where, first_row, *args):
    return _task(lambda f, *a: function(f, where, first_row, *a), frame, fault, *args)


def _design(spec, frame, where: str, first_row: int):
    return built_chunk(spec, frame, where, first_row)


def _without(answer: dict, key: str) -> dict:
    return {name: value for name, value in answer.items() if name != key}


def _entry(answer: dict, key: str) -> Any:
    return answer.get(key)  # None where the answer has none (a partition's refusal)


def _head(frame: pd.DataFrame, rows: int) -> pd.DataFrame:
    return frame.iloc[:rows]


def _select(frame: pd.DataFrame, columns: list[str] | None) -> pd.DataFrame:
    frame = frame if columns is None else frame[columns]
    return frame.reset_index(drop=True)


class DaskSource:
    """Partitions on a Dask cluster: Parquet row groups (``path``) or a dask DataFrame."""

    engine = "dask"

    def __init__(
        self,
        data: Any,
        client=None,
        *,
        persist: bool = True,
        fault_at_task: int | None = None,
        fault_folder: str | None = None,
    ) -> None:
        from dask import delayed

        self.client = client if client is not None else connect()
        self.persist = persist
        self.fault = None if fault_at_task is None else (int(fault_at_task), str(fault_folder))
        self._designs = KeptDesigns()
        self.parts: list[tuple[Callable[[list[str] | None], Any], str, int]] = []
        if hasattr(data, "to_delayed") and hasattr(data, "npartitions"):
            lengths = self.client.compute(data.map_partitions(len)).result().tolist()
            first = 0
            for number, (part, length) in enumerate(zip(data.to_delayed(), lengths, strict=True)):
                self.parts.append(
                    (
                        lambda columns, part=part: delayed(_select)(part, columns),
                        f"partition {number}",
                        first,
                    )
                )
                first += int(length)
        else:
            from buzzpipe.estimate.sources import ParquetSource

            streamed = ParquetSource(parquet_files(data))
            for file, group, first in streamed.parts:
                # the workers read the file by its absolute path: a relative one would be
                # resolved in each worker's own folder (on a real cluster, not this one's)
                read = os.path.abspath(file)
                self.parts.append(
                    (
                        lambda columns, read=read, group=group: delayed(read_row_group)(
                            read, group, columns
                        ),
                        f"{file}, row group {group}",
                        first,
                    )
                )
        if not self.parts:
            raise InputError("the data have no partitions")

    @staticmethod
    def _tree(tasks: list) -> Any:
        """The tasks' pairwise sums in ``sources.tree_combine``'s fixed tree, not computed."""
        from dask import delayed

        while len(tasks) > 1:
            paired = [
                delayed(combine, pure=True)(tasks[i], tasks[i + 1])
                for i in range(0, len(tasks) - 1, 2)
            ]
            if len(tasks) % 2:
                paired.append(tasks[-1])
            tasks = paired
        return tasks[0]

    def _reduce(self, tasks: list) -> Any:
        return aligned(self.client.compute(self._tree(tasks)).result())

    def _tasks(self, function: Callable, args: tuple, columns: list[str] | None) -> list:
        from dask import delayed

        return [
            delayed(_frame_task)(function, load(columns), self.fault, where, first, *args)
            for load, where, first in self.parts
        ]

    def map_reduce(self, function: Callable, *args, columns: list[str] | None = None) -> Any:
        return self._reduce(self._tasks(function, args, columns))

    def map_each(
        self, function: Callable, *args, columns: list[str] | None = None
    ) -> Iterator[Any]:
        """``function``'s answer for each partition, in partition order, each brought here when
        its turn comes and let go on the cluster then: this process holds one partition's
        answer at a time, where :meth:`map_reduce` brings their combination (for answers that
        concatenate, such as the links' cells and local partners, all of them at once)."""
        futures = list(self.client.compute(self._tasks(function, args, columns)))
        try:
            while futures:
                future = futures.pop(0)
                answer = future.result()
                del future  # released on the cluster
                yield aligned(answer)
        finally:
            if futures:  # an error, or the caller stopped early: the rest are not wanted
                self.client.cancel(futures)

    def map_each_kept(self, function: Callable, kept: str, *args) -> Iterator[tuple[Any, Any]]:
        """:meth:`map_each` where each answer is a dict whose ``kept`` entry stays on the
        cluster: for each partition in order, (the answer without that entry, brought here,
        and a future of the entry, held on the workers until the caller lets it go). The
        collaboration cells of an edge-list survey's links stay so on the workers, each
        partition of the firm table taking its own there (``survey/dask_measures.py``)."""
        futures = list(self.client.compute(self._tasks(function, args, None)))
        try:
            while futures:
                future = futures.pop(0)
                rest = self.client.submit(_without, future, kept)
                entry = self.client.submit(_entry, future, kept)
                answer = rest.result()
                del future, rest  # the whole answer released on the cluster once both ran
                yield aligned(answer), entry
        finally:
            if futures:  # an error, or the caller stopped early: the rest are not wanted
                self.client.cancel(futures)

    # the designs of this many specifications kept on the workers (the least recently used go)
    kept_specs = 2

    def designs(self, spec) -> list:
        """The partitions' designs for ``spec``, built on the workers (and kept there)."""
        from dask import delayed

        found = self._designs.get(spec)
        if found is not None:
            return found
        built = [
            delayed(_design)(spec, load(spec.columns), where, first)
            for load, where, first in self.parts
        ]
        if self.persist:
            built = list(self.client.persist(built))
        self._designs.put(spec, built, self.kept_specs)
        return built

    def map_designs(self, spec, function: Callable, *args) -> Any:
        return aligned(self.client.compute(self.map_designs_graph(spec, function, *args)).result())

    def map_designs_graph(self, spec, function: Callable, *args) -> Any:
        """``map_designs`` as a delayed result, not computed: several of them, of this source
        or others on the same client, computed in one call are one graph (``_MergedPasses``)."""
        from dask import delayed

        return self._tree(
            [delayed(_task)(function, design, self.fault, *args) for design in self.designs(spec)]
        )

    def head(self, rows: int = 256) -> pd.DataFrame:
        """The first partition's first ``rows`` rows, cut on the worker: only they travel to
        the client (every fit reads a head for its specification)."""
        from dask import delayed

        load, _where, _first = self.parts[0]
        return self.client.compute(delayed(_head)(load(None), rows)).result()
