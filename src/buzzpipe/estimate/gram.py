"""Compiled pieces of the fused Newton pass (numba): the block packed by columns, the linear
index, the gradient and the weighted Gram's upper triangle by register tiles.

Why: the Hessian ``X' diag(h) X`` of a design with a few dozen columns and millions of rows is a
Gram with a tiny output and a long inner dimension, which OpenBLAS's ``dsyrk`` runs at a fifth
of this machine's one-core GEMM rate (about 10 against 48 GFLOP/s, docs/speed.md). Here each
block of rows is copied once into a column-major buffer (the copy is the block's one read from
memory, and the linear index is summed from it while it is in the cache); the Gram is then
accumulated over sub-blocks of ``SUB_ROWS`` rows that stay in the core's cache, in tiles of
3 x 4 outputs held in registers (twelve sums, each a packed FMA over consecutive rows: the loops
vectorise along the rows). Sums are reassociated (``fastmath`` with reassociation and
contraction only: no approximate functions, no assumptions about NaN or infinity), so results
differ from a plain loop by rounding only.

Numba compiles each function on its first call (a few seconds) and caches the machine code on
disk, as ``simulate/compiled.py`` does.

::

    packed = np.zeros((padded_rows(p), block_rows))         # once per pass; pad rows stay zero
    eta = pack_index(X_block, beta, offset_or_None, packed)  # packed[:p, :m] = X_block.T
    gradient_update(packed, m, first, gradient)             # gradient += X_block' first
    gram_update(packed, p, m, weight, upper)                # upper += X_block' diag(weight) X_block
    gram_update(packed, p, m, weight, upper, first, gradient)   # and the gradient, one pass
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = [
    "SUB_ROWS",
    "TILE",
    "padded_rows",
    "pack",
    "pack_index",
    "gradient_update",
    "gram_update",
    "logit_pieces",
    "ordered_tails",
    "ordered_pieces",
    "upper_of",
]

# reassociation and contraction (FMA) only: the sums may be taken in another order, nothing else
_FAST = {"reassoc", "contract"}

# rows per sub-block: a sub-block of the packed design (25 columns: 100 KiB) stays in the core's
# second-level cache while every tile reads it (measured on 1,000,000 x 25: 512 rows 24-25 ms,
# 256 rows 26-27, 1,024 rows 28)
SUB_ROWS = 512

# output tile: 3 rows x 4 columns of the Gram, twelve sums in registers (3 x 4 was faster than
# 2 x 4, 4 x 4, 2 x 6, 4 x 6, 3 x 8 and 6 x 4 on 1,000,000 x 25 here: docs/speed.md)
TILE = (3, 4)


def padded_rows(p: int) -> int:
    """Rows of the packed buffer and the accumulated triangle: ``p`` plus zero rows enough for
    the last tile to read past the design's last column."""
    return p + max(TILE) - 1


# Loops below index slices from 0 (never ``a[lo + i]``): numba wraps negative indices, and an
# index it cannot prove non-negative turns a vector loop into gathers.


@njit(cache=True, fastmath=_FAST)
def _pack_rows(block, beta, target, eta):
    """target[:p, :m] = block.T and eta = block beta for a row-major block (one pass over the
    rows: each row's index summed while it is copied)."""
    m, p = block.shape
    for i in range(m):
        row = block[i]
        total = 0.0
        for j in range(p):
            value = row[j]
            target[j, i] = value
            total += value * beta[j]
        eta[i] = total


@njit(cache=True, fastmath=_FAST)
def _pack_columns(block, target):
    """The same copy for a column-major block (contiguous column segments)."""
    m, p = block.shape
    for j in range(p):
        for i in range(m):
            target[j, i] = block[i, j]


@njit(cache=True, fastmath=_FAST)
def _index(packed, lo, beta, eta):
    """eta = beta' packed[:p, lo:lo+m] (vectorised along the rows)."""
    m = eta.shape[0]
    for i in range(m):
        eta[i] = 0.0
    for j in range(beta.shape[0]):
        b = beta[j]
        row = packed[j, lo:]
        for i in range(m):
            eta[i] += b * row[i]


@njit(cache=True, fastmath=_FAST)
def pack_index(X, beta, offset, packed):
    """Copy the rows of ``X`` (m x p, any layout) into ``packed[:p, :m]`` and return the linear
    index ``X beta (+ offset)``; the copy and the index are made sub-block by sub-block so the
    index reads the copy from the cache."""
    m, p = X.shape
    eta = np.empty(m)
    column_major = X.strides[0] < X.strides[1]
    for lo in range(0, m, SUB_ROWS):
        hi = min(lo + SUB_ROWS, m)
        if column_major:
            _pack_columns(X[lo:hi], packed[:, lo:hi])
            _index(packed, lo, beta, eta[lo:hi])
        else:
            _pack_rows(X[lo:hi], beta, packed[:, lo:hi], eta[lo:hi])
    if offset is not None:
        for i in range(m):
            eta[i] += offset[i]
    return eta


@njit(cache=True, fastmath=_FAST)
def pack(X, packed):
    """Copy the rows of ``X`` (m x p, any layout) into ``packed[:p, :m]`` (no linear index)."""
    m, p = X.shape
    column_major = X.strides[0] < X.strides[1]
    for lo in range(0, m, SUB_ROWS):
        hi = min(lo + SUB_ROWS, m)
        if column_major:
            _pack_columns(X[lo:hi], packed[:, lo:hi])
        else:
            target = packed[:, lo:hi]
            for i in range(hi - lo):
                row = X[lo + i]
                for j in range(p):
                    target[j, i] = row[j]


@njit(cache=True, fastmath=_FAST)
def gradient_update(packed, m, first, gradient):
    """gradient[j] += sum_i first[i] packed[j, i] over the block's ``m`` rows."""
    for j in range(gradient.shape[0]):
        row = packed[j, :m]
        total = 0.0
        for i in range(m):
            total += first[i] * row[i]
        gradient[j] += total


@njit(cache=True, fastmath=_FAST, inline="always")
def _tile(packed, weight, lo, m, j, k, upper):
    """upper[j:j+3, k:k+4] += rows j..j+2 of packed[:, lo:lo+m] diag(weight) rows k..k+3'
    (twelve register sums; the weight applied in the tile: faster here than a weighted copy)."""
    # row slices starting at lo (contiguous): indices from 0, so no negative-index handling
    l0, l1, l2 = packed[j, lo:], packed[j + 1, lo:], packed[j + 2, lo:]
    r0, r1, r2, r3 = packed[k, lo:], packed[k + 1, lo:], packed[k + 2, lo:], packed[k + 3, lo:]
    s00 = s01 = s02 = s03 = 0.0
    s10 = s11 = s12 = s13 = 0.0
    s20 = s21 = s22 = s23 = 0.0
    for i in range(m):
        w = weight[i]
        a0, a1, a2 = w * l0[i], w * l1[i], w * l2[i]
        b0, b1, b2, b3 = r0[i], r1[i], r2[i], r3[i]
        s00 += a0 * b0
        s01 += a0 * b1
        s02 += a0 * b2
        s03 += a0 * b3
        s10 += a1 * b0
        s11 += a1 * b1
        s12 += a1 * b2
        s13 += a1 * b3
        s20 += a2 * b0
        s21 += a2 * b1
        s22 += a2 * b2
        s23 += a2 * b3
    upper[j, k] += s00
    upper[j, k + 1] += s01
    upper[j, k + 2] += s02
    upper[j, k + 3] += s03
    upper[j + 1, k] += s10
    upper[j + 1, k + 1] += s11
    upper[j + 1, k + 2] += s12
    upper[j + 1, k + 3] += s13
    upper[j + 2, k] += s20
    upper[j + 2, k + 1] += s21
    upper[j + 2, k + 2] += s22
    upper[j + 2, k + 3] += s23


@njit(cache=True, fastmath=_FAST)
def gram_update(packed, p, m, weight, upper, first=None, gradient=None):
    """upper += packed[:p, :m] diag(weight) packed[:p, :m]' on and above the diagonal, and with
    ``first`` also gradient += packed[:p, :m] first (each sub-block while it is in the cache).

    ``packed`` and ``upper`` have ``padded_rows(p)`` rows, the rows past ``p`` zero. Entries
    below the diagonal inside diagonal tiles are accumulated too and must be ignored
    (``upper_of``). Any sign of ``weight`` is allowed (no square roots).
    """
    for lo in range(0, m, SUB_ROWS):
        hi = min(lo + SUB_ROWS, m)
        w = weight[lo:hi]
        if first is not None:
            d = first[lo:hi]
            for j in range(p):
                source = packed[j, lo:hi]
                total = 0.0
                for i in range(hi - lo):
                    total += d[i] * source[i]
                gradient[j] += total
        for j in range(0, p, 3):
            for k in range(j, p, 4):
                _tile(packed, w, lo, hi - lo, j, k, upper)


@njit(cache=True, fastmath=_FAST)
def logit_pieces(eta, y, small, log_terms, weights, first, curvature):
    """The logit's per-row pieces in one loop, as ``families.binary_terms`` forms them, given
    ``small = exp(-|eta|)`` and ``log_terms = log1p(small)`` (numpy's vectorised functions; None
    skips the log-likelihood): first = w (y - P(y=1)), curvature = w P (1 - P); returns the sum
    of w l (0.0 without ``log_terms``)."""
    total = 0.0
    for i in range(eta.shape[0]):
        e = small[i]
        inverse = 1.0 / (e + 1.0)
        scaled = e * inverse
        probability = inverse if eta[i] >= 0 else scaled
        d = y[i] - probability
        h = scaled * inverse
        if weights is not None:
            d *= weights[i]
            h *= weights[i]
        first[i] = d
        curvature[i] = h
        if log_terms is not None:
            loglike = y[i] * eta[i] - (log_terms[i] + max(eta[i], 0.0))
            if weights is not None:
                loglike *= weights[i]
            total += loglike
    return total


# The ordered logit's per-row pieces (``families.OrderedLogit.sums_and_scores``), compiled
# without fastmath: each number is what numpy's and scipy's element-wise steps give, bit for bit
# (scipy's expit and log_expit are 1 / (1 + exp(-x)) and the branch on the sign below, with the
# same libm exp and log1p numba calls; numpy's own vectorised exp and log1p, which round
# differently, stay numpy's between the two kernels). One loop instead of some forty array
# operations, each with its temporary, on the fits' few thousand rows.


@njit(cache=True)
def _log_expit(x):
    if x < 0:
        return x - math.log1p(math.exp(x))
    return -math.log1p(math.exp(-x))


@njit(cache=True)
def _expit(x):
    return 1.0 / (1.0 + math.exp(-x))


@njit(cache=True)
def ordered_tails(eta, codes, padded, upper, lower, log_upper, difference):
    """Each row's upper and lower index (``padded[code + 1] - eta``, ``padded[code] - eta``)
    and, on whichever tail keeps precision (the upper one where both indices are positive),
    log F(u) and log F(l) - log F(u): log P(y = code) is then
    ``log_upper + log1p(-exp(difference))``."""
    for i in range(eta.shape[0]):
        a = padded[codes[i] + 1] - eta[i]
        b = padded[codes[i]] - eta[i]
        upper[i] = a
        lower[i] = b
        if b > 0:
            u, l_ = -b, -a
        else:
            u, l_ = a, b
        log_u = _log_expit(u)
        log_upper[i] = log_u
        difference[i] = _log_expit(l_) - log_u


@njit(cache=True)
def ordered_pieces(upper, lower, inverse, codes, weights, d_eta, cut_scores, curvature, cross):
    """From the indices and 1 / P(y = code) (``inverse``): d l / d eta (``d_eta``), the scores
    of the cut points (``cut_scores``, rows zero beforehand: g(u) in column ``code``, -g(l) in
    ``code - 1``) and, where ``curvature`` is not None, the weighted curvature in eta, the
    weighted cross terms of eta and the cut points (``cross``, zero beforehand) and the cut
    points' block, returned as the sums ``np.bincount`` gives over (upper, upper), (lower,
    lower), (upper, lower), (lower, upper) in that order (k x k, flat). ``weights``: None for
    ones."""
    n = upper.shape[0]
    k = cut_scores.shape[1]
    hessian = curvature is not None
    d_aa = np.empty(n) if hessian else np.empty(0)
    d_bb = np.empty(n) if hessian else np.empty(0)
    d_ab = np.empty(n) if hessian else np.empty(0)
    for i in range(n):
        a, b, inv = upper[i], lower[i], inverse[i]
        cdf_a, cdf_b = _expit(a), _expit(b)
        f_a = cdf_a * (1.0 - cdf_a)
        f_b = cdf_b * (1.0 - cdf_b)
        g_a = f_a * inv
        g_b = f_b * inv
        d_eta[i] = -(g_a - g_b)
        code = codes[i]
        if code < k:
            cut_scores[i, code] = g_a
        if code > 0:
            cut_scores[i, code - 1] = -g_b
        if not hessian:
            continue
        h_a = (f_a * (1.0 - 2.0 * cdf_a) if math.isfinite(a) else 0.0) * inv
        h_b = (f_b * (1.0 - 2.0 * cdf_b) if math.isfinite(b) else 0.0) * inv
        aa = h_a - g_a * g_a
        bb = -h_b - g_b * g_b
        ab = g_a * g_b
        bend = -(aa + 2.0 * ab + bb)
        upper_cross, lower_cross = -(aa + ab), -(ab + bb)
        if weights is not None:
            w = weights[i]
            bend = bend * w
            upper_cross, lower_cross = upper_cross * w, lower_cross * w
            aa, bb, ab = w * aa, w * bb, w * ab
        curvature[i] = bend
        if code < k:
            cross[i, code] = upper_cross
        if code > 0:
            cross[i, code - 1] = lower_cross
        d_aa[i], d_bb[i], d_ab[i] = aa, bb, ab
    block = np.zeros(k * k)
    if not hessian:
        return block
    for i in range(n):  # np.bincount's order: the rows of each of the four cells in turn
        if codes[i] < k:
            block[codes[i] * (k + 1)] += d_aa[i]
    for i in range(n):
        if codes[i] > 0:
            block[(codes[i] - 1) * (k + 1)] += d_bb[i]
    for i in range(n):
        if 0 < codes[i] < k:
            block[codes[i] * k + codes[i] - 1] += d_ab[i]
    for i in range(n):
        if 0 < codes[i] < k:
            block[(codes[i] - 1) * k + codes[i]] += d_ab[i]
    return block


def upper_of(upper: np.ndarray, p: int) -> np.ndarray:
    """The symmetric p x p matrix from the accumulated upper triangle of ``upper``."""
    full = np.triu(upper[:p, :p])
    return full + np.triu(full, 1).T
