"""Compiled kernels of the batched bootstraps (numba): many small matrices at once, and the
Poisson resample counts.

Why: the pairs bootstrap of a 1,604 x 25 logit factors and inverts 1,000 Hessians of 25 x 25
once (the quasi-Newton steps reuse them) and draws 1.6 million resample counts. LAPACK does
the matrices one call at a time (the Python loop and the calls cost more than the arithmetic);
numpy draws the counts in seven passes over the block. Here the matrices are taken in groups of
``LANES`` replicates with the replicate as the innermost index, so each scalar operation of the
Cholesky factorisation and of the triangular inverse is one vector operation over the group
(the group, a few hundred KiB, stays in the core's cache), and each count is one pass of
integer arithmetic.

Sums are reassociated (``fastmath`` with reassociation and contraction only), so the inverses
differ from LAPACK's by rounding only. Numba compiles each function on its first call and
caches the machine code on disk (as ``gram.py``).

::

    status = factor_inverse(hessians, inverse, trace, smallest_pivot)   # B x p x p
    poisson_counts(row_key, replicate_key, thresholds, out)              # n x B counts
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["LANES", "factor_inverse", "poisson_counts"]

_FAST = {"reassoc", "contract"}

# replicates per group: a group's p x p x LANES factor and inverse (25 columns: 2 x 312 KiB)
# stay in the core's second-level cache
LANES = 64


@njit(cache=True, fastmath=_FAST)
def factor_inverse(hessians, inverse, trace, smallest_pivot):  # pragma: no cover - compiled
    """Inverses of B symmetric p x p matrices by Cholesky factors of the matrices scaled to unit
    diagonal, as ``batched_newton`` uses them (each matrix's lower triangle is read).

    For matrix b with s_j = 1 / sqrt(H_jj) (1 where H_jj <= 0): the lower Cholesky factor L of
    S H S, M = L^-1, ``inverse[b]`` = S (M' M) S (entry (i, j) the scaled one times s_i s_j, so
    exactly symmetric), ``trace[b]`` the trace of M' M (the scaled inverse) and
    ``smallest_pivot[b]`` the smallest squared diagonal of L. Returns the status of each matrix:
    1 factored, 0 where the factorisation failed (a pivot not above zero, or NaN; its outputs
    are then meaningless, as LAPACK's ``dpotrf`` would refuse it).
    """
    count, p, _ = hessians.shape
    lanes = LANES
    factor = np.empty((p, p, lanes))
    lower_inverse = np.empty((p, p, lanes))
    scale = np.empty((p, lanes))
    pivot = np.empty(lanes)
    failed = np.empty(lanes, dtype=np.bool_)
    status = np.zeros(count, dtype=np.int8)
    for first in range(0, count, lanes):
        width = min(lanes, count - first)
        # the group's scaled lower triangles, replicate innermost
        for lane in range(width):
            matrix = hessians[first + lane]
            for i in range(p):
                value = matrix[i, i]
                scale[i, lane] = 1.0 / np.sqrt(value) if value > 0 else 1.0
            for i in range(p):
                for j in range(i + 1):
                    factor[i, j, lane] = matrix[i, j] * scale[i, lane] * scale[j, lane]
        for lane in range(width):
            pivot[lane] = np.inf
            failed[lane] = False
        # Cholesky (left-looking, by columns): every operation over the group's lanes
        for j in range(p):
            for k in range(j):
                for lane in range(width):
                    factor[j, j, lane] -= factor[j, k, lane] * factor[j, k, lane]
            for lane in range(width):
                value = factor[j, j, lane]
                good = value > 0
                failed[lane] = failed[lane] or not good
                pivot[lane] = min(pivot[lane], value) if good else pivot[lane]
                factor[j, j, lane] = np.sqrt(value) if good else 1.0
            for i in range(j + 1, p):
                for k in range(j):
                    for lane in range(width):
                        factor[i, j, lane] -= factor[i, k, lane] * factor[j, k, lane]
                for lane in range(width):
                    factor[i, j, lane] /= factor[j, j, lane]
        # M = L^-1 (lower), column by column
        for j in range(p):
            for lane in range(width):
                lower_inverse[j, j, lane] = 1.0 / factor[j, j, lane]
            for i in range(j + 1, p):
                for lane in range(width):
                    lower_inverse[i, j, lane] = 0.0
                for k in range(j, i):
                    for lane in range(width):
                        lower_inverse[i, j, lane] += factor[i, k, lane] * lower_inverse[k, j, lane]
                for lane in range(width):
                    lower_inverse[i, j, lane] = -lower_inverse[i, j, lane] / factor[i, i, lane]
        # (M' M)_ij = sum_{k >= i} M_ki M_kj for j <= i, into the factor's lower triangle
        for i in range(p):
            for j in range(i + 1):
                for lane in range(width):
                    factor[i, j, lane] = 0.0
                for k in range(i, p):
                    for lane in range(width):
                        factor[i, j, lane] += lower_inverse[k, i, lane] * lower_inverse[k, j, lane]
        for lane in range(width):
            b = first + lane
            out = inverse[b]
            total = 0.0
            for i in range(p):
                total += factor[i, i, lane]
                for j in range(i + 1):
                    value = factor[i, j, lane] * (scale[i, lane] * scale[j, lane])
                    out[i, j] = value
                    out[j, i] = value
            trace[b] = total
            smallest_pivot[b] = pivot[lane]
            status[b] = 0 if failed[lane] else 1
    return status


@njit(cache=True)
def poisson_counts(row_key, replicate_key, thresholds, out):  # pragma: no cover - compiled
    """out[i, b] = the number of ``thresholds`` at or below the 53 bits of
    mix64(row_key[i] ^ replicate_key[b]) >> 11 (``random_weights``: a Poisson(1) count, the
    thresholds its cumulative probabilities times 2^53; the first four decide 98% of draws)."""
    rows, columns = out.shape
    first, second = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
    t0, t1, t2, t3 = thresholds[0], thresholds[1], thresholds[2], thresholds[3]
    n_thresholds = thresholds.shape[0]
    for i in range(rows):
        key = row_key[i]
        target = out[i]
        for b in range(columns):
            z = key ^ replicate_key[b]
            z = (z ^ (z >> np.uint64(30))) * first
            z = (z ^ (z >> np.uint64(27))) * second
            z = (z ^ (z >> np.uint64(31))) >> np.uint64(11)
            count = np.int64(z >= t0) + np.int64(z >= t1) + np.int64(z >= t2) + np.int64(z >= t3)
            target[b] = count
        for b in range(columns):  # the tail (2% of draws): count the rest of the thresholds
            if target[b] == 4.0:
                z = key ^ replicate_key[b]
                z = (z ^ (z >> np.uint64(30))) * first
                z = (z ^ (z >> np.uint64(27))) * second
                z = (z ^ (z >> np.uint64(31))) >> np.uint64(11)
                count = 4
                while count < n_thresholds and z >= thresholds[count]:
                    count += 1
                target[b] = count
