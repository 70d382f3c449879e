"""The fused per-block kernel: one pass over a block of rows gives every sum a Newton step needs.

This is the contract that the in-memory fit, the streamed Parquet reader and the Dask partitions
all feed (``newton.py`` sums it over chunks)::

    sums = block_sums(family, beta, X, y, weights, offset,
                      hessian=True, meat=False, cluster_codes=None, n_clusters=0)
    sums.llf                  # float: sum_i w_i l_i
    sums.gradient             # (k,): sum_i w_i dl_i/db
    sums.hessian              # (k, k) symmetric observed Hessian sum_i w_i d2l_i/db db' (<= 0),
                              #   or None with hessian=False (a gradient-only pass)
    sums.meat                 # (k, k) sum_i s_i s_i' of weighted scores s_i = w_i dl_i/db, or None
    sums.cluster_score_sums   # (G, k) sum of s_i over the rows of each cluster code, or None
    total = chunk_sums(family, beta, chunks, ...)   # the same, summed over a chunk source
    total += sums                                    # BlockSums add (the shapes must agree)

Inputs: ``X`` (n, p) float64 in any memory layout, ``y`` (n,), ``weights`` (n,) sampling
weights or None, ``offset`` (n,) or None, ``beta`` the parameter vector (k = p, or p + J - 1 for
ordered logit), ``cluster_codes`` (n,) integers in 0 .. n_clusters-1. Blocks of any size are
accepted and are split internally into cache-sized row blocks, so a caller hands over a whole
Parquet row group or Dask partition as it comes. Sums are plain sums: adding the ``BlockSums`` of
two halves of the rows gives the ``BlockSums`` of all of them (to rounding).

For single-index families (logit, probit, LPM: ``family.single_index``) each row block is read
once from memory. A pass that forms a Hessian or a meat on a design of at most
``COMPILED_MAX_COLUMNS`` columns and at least ``COMPILED_MIN_ROWS`` rows goes through the
compiled kernels of ``gram.py``: the block is copied once by columns (the linear index summed
from the copy while it is in the cache), the family's per-row pieces (``index_terms``: l, d, h;
logit's in one compiled loop after numpy's ``exp`` and ``log1p``), then the gradient
``X'(w d)`` and the upper triangle of ``X' diag(w h) X`` from the copy in register tiles (any
sign of ``h``; the meat likewise with weights ``(w d)^2``). Other passes use BLAS: ``X'(w d)``
by ``gemv`` and the Hessian by ``dsyrk`` on ``X * sqrt(w h)``. The cluster score sums only when
asked. Ordered logit (not single-index) goes through ``family.loglike_chunk`` and
``family.scores``.

``blas_threads(n)`` pins the BLAS thread count (threadpoolctl) around small-matrix work: on a
shared two-core machine two threads make such products several times slower.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.linalg import blas

if TYPE_CHECKING:
    from buzzpipe.estimate.families import Family

__all__ = [
    "BlockSums",
    "block_sums",
    "chunk_sums",
    "weighted_gram",
    "blas_threads",
    "one_blas_thread",
    "block_rows_for",
]

# bytes of X per internal row block: the block, its scaled copy and the per-row vectors stay in
# the cache between the reads of one block (measured on this machine: 1-4 MiB are alike)
BLOCK_BYTES = 2 * 2**20

# designs with at most this many columns take the compiled kernels (``gram.py``) for passes that
# form a Hessian or a meat; wider ones BLAS dsyrk (measured: compiled 1.3-2.2x faster for 2-128
# columns, even at 192; docs/speed.md)
COMPILED_MAX_COLUMNS = 128
# ... and at least this many rows in the call: a smaller pass takes a few milliseconds either way,
# and the study's fits (a few thousand firms, or chunks of them on the stream and Dask engines)
# keep BLAS's rounding, on which separated restricted fits of the wild bootstrap's confidence
# sets depend (tests/study/test_study_sensitivity.py: a set whose far end is decided by the sign
# of a statistic that is constant to rounding)
COMPILED_MIN_ROWS = 100_000
# bytes of X per row block on the compiled path: its column copy stays in the core's second-level
# cache between the copy and the tiles (measured on 1,000,000 x 25: 0.8-1.2 MiB fastest)
COMPILED_BLOCK_BYTES = 2**20


def block_rows_for(n_columns: int) -> int:
    """Rows per internal block for a design of ``n_columns`` float64 columns."""
    return max(256, BLOCK_BYTES // (8 * max(n_columns, 1)))


@dataclass
class BlockSums:
    """Sums over rows of the log-likelihood, gradient, Hessian, meat and cluster score sums."""

    llf: float
    gradient: np.ndarray
    hessian: np.ndarray | None = None
    meat: np.ndarray | None = None
    cluster_score_sums: np.ndarray | None = None

    def __iadd__(self, other: BlockSums) -> BlockSums:
        self.llf += other.llf
        self.gradient = self.gradient + other.gradient
        for name in ("hessian", "meat", "cluster_score_sums"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if (mine is None) != (theirs is None):
                raise ValueError(f"cannot add block sums with and without {name}")
            if mine is not None:
                setattr(self, name, mine + theirs)
        return self


def _syrk_update(target: np.ndarray, scaled: np.ndarray) -> np.ndarray:
    """target (Fortran order, upper triangle) += scaled' scaled, in place where BLAS allows."""
    # scaled is C-contiguous (m, p): its transpose is the Fortran (p, m) matrix dsyrk reads
    return blas.dsyrk(1.0, scaled.T, beta=1.0, c=target, trans=0, lower=0, overwrite_c=1)


def _mirror(upper: np.ndarray) -> np.ndarray:
    """The full symmetric matrix from its upper triangle (C order; each entry the triangle's
    plus 0.0, so -0.0 reads 0.0: the numbers ``triu(upper) + triu(upper, 1).T`` gives, bit for
    bit, at a third of its cost on the fits' small matrices)."""
    full = np.add(upper, 0.0, order="C")
    rows, columns = _below_diagonal(upper.shape[0])
    full[rows, columns] = full[columns, rows]
    return full


@functools.lru_cache(maxsize=256)
def _below_diagonal(size: int) -> tuple[np.ndarray, np.ndarray]:
    """The (rows, columns) of the entries below the diagonal of a ``size`` x ``size`` matrix."""
    rows, columns = np.tril_indices(size, -1)
    rows.flags.writeable = columns.flags.writeable = False
    return rows, columns


def weighted_gram(X: np.ndarray, d: np.ndarray | None = None) -> np.ndarray:
    """X' diag(d) X (X'X without ``d``).

    From ``COMPILED_MIN_ROWS`` rows and up to ``COMPILED_MAX_COLUMNS`` columns by the compiled
    register tiles (``gram.py``, any sign of d; measured, CPU time, min of 5-15: 4.0 against
    6.4 ms at 100,000 x 25, 38 against 71 ms at 1,000,000 x 25, 3.2 against 4.2 at 200,000 x 8,
    36 against 39 at 200,000 x 60, parity at 200,000 x 128); otherwise for d >= 0 by blocked
    symmetric rank-k updates (half a general product's flops), a general product where
    rounding left some d below zero. The rule is ``block_sums``': smaller Grams keep BLAS's
    rounding."""
    n, p = X.shape
    if p == 0:
        return np.zeros((0, 0))
    if p <= COMPILED_MAX_COLUMNS and n >= max(COMPILED_MIN_ROWS, 1):
        return _compiled_gram(X, d)
    if d is not None and d.min(initial=0.0) < 0:
        return X.T @ (X * d[:, None])
    rows = block_rows_for(p)
    upper = np.zeros((p, p), order="F")
    buffer = np.empty((min(rows, n), p))
    root = None if d is None else np.sqrt(d)
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        scaled = buffer[: stop - start]
        if root is None:
            np.copyto(scaled, X[start:stop])
        else:
            np.multiply(X[start:stop], root[start:stop, None], out=scaled)
        upper = _syrk_update(upper, scaled)
    return _mirror(upper)


def _compiled_gram(X: np.ndarray, d: np.ndarray | None) -> np.ndarray:
    """:func:`weighted_gram` by the compiled kernels: each row block copied once by columns,
    then the upper triangle from the copy in register tiles (as :func:`_compiled_sums`)."""
    from buzzpipe.estimate import gram

    n, p = X.shape
    rows = min(max(256, COMPILED_BLOCK_BYTES // (8 * p)), n)
    padded = gram.padded_rows(p)
    packed = np.zeros((padded, rows + 8))  # a cache line past the block: see _compiled_sums
    upper = np.zeros((padded, padded))
    ones = np.ones(rows) if d is None else None
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        gram.pack(X[start:stop], packed)
        weight = ones[: stop - start] if d is None else np.ascontiguousarray(d[start:stop], float)
        gram.gram_update(packed, p, stop - start, weight, upper)
    return gram.upper_of(upper, p)


def _cluster_sums(codes: np.ndarray, scores: np.ndarray, n_clusters: int) -> np.ndarray:
    return np.column_stack(
        [
            np.bincount(codes, weights=scores[:, j], minlength=n_clusters)
            for j in range(scores.shape[1])
        ]
    ).reshape(n_clusters, scores.shape[1])


def block_sums(
    family: Family,
    beta: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray | None = None,
    offset: np.ndarray | None = None,
    *,
    hessian: bool = True,
    meat: bool = False,
    cluster_codes: np.ndarray | None = None,
    n_clusters: int = 0,
    need_loglike: bool = True,
    block_rows: int | None = None,
) -> BlockSums:
    """One fused pass over the rows of ``X`` (see the module docstring for the contract).

    ``need_loglike=False`` skips the log-likelihood where the family allows (``llf`` is then
    NaN); ``block_rows`` overrides the internal row-block size.
    """
    beta = np.asarray(beta, dtype=np.float64)
    k = beta.shape[0]
    if not getattr(family, "single_index", False):
        return _generic_sums(
            family, beta, X, y, weights, offset, hessian, meat, cluster_codes, n_clusters
        )
    n, p = X.shape
    if (hessian or meat) and 0 < p <= COMPILED_MAX_COLUMNS and n >= max(COMPILED_MIN_ROWS, 1):
        return _compiled_sums(
            family, beta, X, y, weights, offset, hessian, meat, cluster_codes, n_clusters,
            need_loglike, block_rows,
        )  # fmt: skip
    gradient = np.zeros(p)
    upper = np.zeros((p, p), order="F") if hessian else None
    general = None  # X' diag(h) X rows whose h rounded below zero (never for logit)
    meat_upper = np.zeros((p, p), order="F") if meat else None
    sums = np.zeros((n_clusters, p)) if cluster_codes is not None else None
    llf = 0.0
    rows = block_rows or block_rows_for(p)
    buffer = np.empty((min(rows, n), p)) if (hessian or meat) and n else None
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        block = X[start:stop]
        eta = block @ beta if p else np.zeros(stop - start)
        if offset is not None:
            eta += offset[start:stop]
        w = None if weights is None else weights[start:stop]
        part, first, curvature = _weighted_index_terms(family, eta, y[start:stop], w, need_loglike)
        llf += part
        gradient += block.T @ first
        if hessian and p:
            scaled = buffer[: stop - start]
            if curvature.min(initial=0.0) < 0:
                part = block.T @ (block * curvature[:, None])
                general = part if general is None else general + part
            else:
                np.multiply(block, np.sqrt(curvature)[:, None], out=scaled)
                upper = _syrk_update(upper, scaled)
        if meat and p:
            scaled = buffer[: stop - start]
            np.multiply(block, np.abs(first)[:, None], out=scaled)
            meat_upper = _syrk_update(meat_upper, scaled)
        if sums is not None:
            sums += _cluster_sums(cluster_codes[start:stop], block * first[:, None], n_clusters)
    hessian_out = None
    if hessian:
        hessian_out = -_mirror(upper)
        if general is not None:
            hessian_out -= (general + general.T) / 2
    assert k == p, "single-index families have one parameter per column"
    return BlockSums(
        llf if need_loglike else float("nan"),
        gradient,
        hessian_out,
        _mirror(meat_upper) if meat else None,
        sums,
    )


def _weighted_index_terms(family, eta, y, w, need_loglike):
    """A single-index family's per-row pieces on one block, times the weights ``w`` (None: 1):
    the block's log-likelihood sum (0.0 when not needed), the first and the second derivative
    of each row's log-likelihood in its linear index."""
    loglike, first, curvature = family.index_terms(eta, y, need_loglike)
    if w is not None:
        first *= w
        curvature = curvature * w
        if loglike is not None:
            loglike *= w
    return (float(loglike.sum()) if need_loglike else 0.0), first, curvature


def _compiled_sums(
    family, beta, X, y, weights, offset, hessian, meat, cluster_codes, n_clusters, need_loglike,
    block_rows,
) -> BlockSums:  # fmt: skip
    """:func:`block_sums` for a single-index family through the compiled kernels (``gram.py``):
    each row block copied once by columns (the linear index summed from the copy), the family's
    per-row pieces by numpy on the block, then the gradient and the Hessian's (and the meat's)
    upper triangle from the copy in register tiles."""
    from buzzpipe.estimate import gram

    n, p = X.shape
    rows = min(block_rows or max(256, COMPILED_BLOCK_BYTES // (8 * p)), n)
    padded = gram.padded_rows(p)
    # rows one cache line longer than the block: a power-of-two stride would put the rows a
    # tile reads in the same cache sets (measured: 64 columns ran at half speed)
    packed = np.zeros((padded, rows + 8))
    gradient = np.zeros(p)
    upper = np.zeros((padded, padded)) if hessian else None
    meat_upper = np.zeros((padded, padded)) if meat else None
    sums = np.zeros((n_clusters, p)) if cluster_codes is not None else None
    beta = np.ascontiguousarray(beta)
    y = np.ascontiguousarray(y, dtype=np.float64)
    weights = None if weights is None else np.ascontiguousarray(weights, dtype=np.float64)
    # logit's per-row pieces in one compiled loop (numpy's exp and log1p); other families'
    # from family.index_terms
    logit = family.name == "logit"
    first_buffer, curvature_buffer = np.empty(rows), np.empty(rows)
    llf = 0.0
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        m = stop - start
        block = X[start:stop]
        eta = gram.pack_index(
            block, beta, None if offset is None else np.ascontiguousarray(offset[start:stop]),
            packed,
        )  # fmt: skip
        w = None if weights is None else weights[start:stop]
        if logit:
            small = np.abs(eta)
            np.negative(small, out=small)
            np.exp(small, out=small)
            log_terms = np.log1p(small) if need_loglike else None
            first, curvature = first_buffer[:m], curvature_buffer[:m]
            llf += gram.logit_pieces(eta, y[start:stop], small, log_terms, w, first, curvature)
        else:
            part, first, curvature = _weighted_index_terms(
                family, eta, y[start:stop], w, need_loglike
            )
            llf += part
            first, curvature = np.ascontiguousarray(first), np.ascontiguousarray(curvature)
        if hessian:
            gram.gram_update(packed, p, m, curvature, upper, first, gradient)
        else:
            gram.gradient_update(packed, m, first, gradient)
        if meat:
            gram.gram_update(packed, p, m, first * first, meat_upper)
        if sums is not None:
            sums += _cluster_sums(cluster_codes[start:stop], block * first[:, None], n_clusters)
    return BlockSums(
        llf if need_loglike else float("nan"),
        gradient,
        -gram.upper_of(upper, p) if hessian else None,
        gram.upper_of(meat_upper, p) if meat else None,
        sums,
    )


def _generic_sums(
    family, beta, X, y, weights, offset, hessian, meat, cluster_codes, n_clusters
) -> BlockSums:
    """Families that are not single-index (ordered logit): their own per-chunk methods."""
    need_scores = meat or cluster_codes is not None
    llf, gradient, full_hessian, scores = family.sums_and_scores(
        beta, X, y, weights, offset, hessian=hessian, scores=need_scores
    )
    meat_out = sums = None
    if need_scores:
        if weights is not None:
            scores = scores * weights[:, None]
        if meat:
            meat_out = scores.T @ scores
            meat_out = (meat_out + meat_out.T) / 2
        if cluster_codes is not None:
            sums = _cluster_sums(cluster_codes, scores, n_clusters)
    return BlockSums(llf, gradient, full_hessian if hessian else None, meat_out, sums)


Chunk = Sequence[Any]  # (X, y, weights, offset) or (X, y, weights, offset, cluster_codes)


def chunk_sums(
    family: Family,
    beta: np.ndarray,
    source: Iterable[Chunk] | Callable[[], Iterable[Chunk]],
    *,
    hessian: bool = True,
    meat: bool = False,
    n_clusters: int = 0,
    need_loglike: bool = True,
) -> BlockSums:
    """:func:`block_sums` summed over the chunks of ``source`` (a sequence or a callable giving a
    fresh iterator). A chunk with a fifth item carries its rows' cluster codes; cluster sums are
    returned when ``n_clusters`` > 0."""
    beta = np.asarray(beta, dtype=np.float64)
    k = beta.shape[0]
    if isinstance(source, list | tuple) and len(source) == 1 and not n_clusters:
        single = _single_chunk_sums(family, beta, source[0], hessian, meat, need_loglike)
        if single is not None:
            return single
    total = BlockSums(
        0.0 if need_loglike else float("nan"),
        np.zeros(k),
        np.zeros((k, k)) if hessian else None,
        np.zeros((k, k)) if meat else None,
        np.zeros((n_clusters, k)) if n_clusters else None,
    )
    chunks: Iterator[Chunk] = iter(source() if callable(source) else source)
    for chunk in chunks:
        X, y, weights, offset = chunk[:4]
        if y.shape[0] == 0:
            continue
        codes = chunk[4] if n_clusters and len(chunk) > 4 else None
        if n_clusters and codes is None:
            raise ValueError("cluster sums need the cluster codes as each chunk's fifth item")
        total += block_sums(
            family,
            beta,
            X,
            y,
            weights,
            offset,
            hessian=hessian,
            meat=meat,
            cluster_codes=codes,
            n_clusters=n_clusters,
            need_loglike=need_loglike,
        )
    return total


def _single_chunk_sums(
    family: Family, beta: np.ndarray, chunk: Chunk, hessian: bool, meat: bool, need_loglike: bool
) -> BlockSums | None:
    """:func:`chunk_sums` of a source of one chunk (an in-memory design's rows) without the
    loop's bookkeeping: the chunk's sums added to zeros as the loop adds them (the same bits);
    None for an empty chunk."""
    X, y, weights, offset = chunk[:4]
    if y.shape[0] == 0:
        return None
    found = block_sums(
        family, beta, X, y, weights, offset, hessian=hessian, meat=meat, need_loglike=need_loglike
    )
    k = beta.shape[0]
    return BlockSums(
        (0.0 if need_loglike else float("nan")) + found.llf,
        np.zeros(k) + found.gradient,
        None if found.hessian is None else np.zeros((k, k)) + found.hessian,
        None if found.meat is None else np.zeros((k, k)) + found.meat,
        None,
    )


@functools.cache
def _controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


# the limit of the blas_threads block this thread is inside (a nested block of the same limit
# changes nothing, so it does not ask threadpoolctl again: about 24 us a block)
_PINNED = threading.local()


@contextlib.contextmanager
def blas_threads(limit: int | None = 1):
    """Pin the BLAS libraries to ``limit`` threads inside the block (``None``: leave them).

    The controller that finds the loaded BLAS libraries is built once per process, so entering
    the block costs microseconds, not the milliseconds of a fresh ``threadpool_limits``; a
    block inside another of the same limit in the same thread costs nothing more.
    """
    if limit is None or getattr(_PINNED, "limit", None) == limit:  # pinned so already
        yield
        return
    outer = getattr(_PINNED, "limit", None)
    with _controller().limit(limits=limit, user_api="blas"):
        _PINNED.limit = limit
        try:
            yield
        finally:
            _PINNED.limit = outer


def one_blas_thread(function):
    """Decorator: run ``function`` with BLAS pinned to one thread (small-matrix kernels, the
    bootstraps), so the Python API is as fast as the command line whatever the environment."""

    @functools.wraps(function)
    def pinned(*args, **kwargs):
        with blas_threads(1):
            return function(*args, **kwargs)

    return pinned
