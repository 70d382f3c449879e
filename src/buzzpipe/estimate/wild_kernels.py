"""Compiled pieces of the wild cluster score bootstrap (numba): the statistics of many nulls
over all draws in one pass per null.

Why: test inversion computes t(v) for every null (tens a batch) and every draw (3,888 with five
clusters and Webb weights enumerated by halves, 9,999 sampled): with numpy that is a dozen
passes over an m x B array per null block, and these passes, not the arithmetic, were the cost
(about 0.08 ms a null on the norway2010 battery). Here each null's numerator and denominator
are summed over the clusters in the cluster order numpy used, along the draws (the loops
vectorise along the draws), with no temporary larger than one null's row. No ``fastmath``: the
sums are those of the numpy expressions, in their order, so the results differ from them only
where OpenBLAS summed the numerator's G products in another order or with fused multiply-adds.

Numba compiles on the first call (about a second) and caches the machine code on disk, as
``gram.py`` and ``simulate/compiled.py`` do.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["cluster_products", "draw_excesses", "score_counts", "score_statistics"]

# the orientation of a p-value's comparison (``wild_bootstrap._oriented``)
TWO_SIDED, GREATER, LESS = 0, 1, 2


@njit(cache=True, error_model="numpy")
def score_statistics(scores, draws, share, factor, out):  # pragma: no cover - compiled
    """t(v) = N(v) / sqrt(factor D(v)) of every null (column of ``scores``, G x m) at every
    draw (column of ``draws``, G x B) into ``out`` (m x B): N(v) = sum_g v_g S_g and
    D(v) = sum_g (v_g S_g - share_g N(v))^2, summed over g in order. A zero denominator gives
    +-inf or NaN, as numpy's division does."""
    m = scores.shape[1]
    numerator = np.empty(draws.shape[1])
    denominator = np.empty(draws.shape[1])
    for j in range(m):
        _statistics_of(scores, j, draws, share, factor, out[j], numerator, denominator)
    return out


@njit(cache=True, error_model="numpy")
def _statistics_of(
    scores, j, draws, share, factor, target, numerator, denominator
):  # pragma: no cover - compiled
    """t(v) of null j (column j of ``scores``) at every draw into ``target`` (B), with two
    B-vectors of workspace."""
    n_clusters = scores.shape[0]
    n_draws = draws.shape[1]
    numerator[:] = 0.0
    for g in range(n_clusters):
        score = scores[g, j]
        row = draws[g]
        for b in range(n_draws):
            numerator[b] += score * row[b]
    denominator[:] = 0.0
    for g in range(n_clusters):
        score, weight = scores[g, j], share[g]
        row = draws[g]
        for b in range(n_draws):
            recentred = score * row[b] - weight * numerator[b]
            denominator[b] += recentred * recentred
    for b in range(n_draws):
        target[b] = numerator[b] / np.sqrt(factor * denominator[b])


@njit(cache=True, error_model="numpy")
def score_counts(
    scores, draws, share, factor, actual, orientation, strict, halved, zero, tie, counts
):  # pragma: no cover - compiled
    """How many draws count towards each null's p-value (``counts``, m), with each null's
    draws t(v) computed as ``score_statistics`` computes them (the same operations in the
    same order, one null's row at a time) and compared with its actual statistic
    (``actual``, m) as ``wild_bootstrap._p_values`` and ``_p_values_halved`` compare them:
    oriented (|t| two-sided, t "greater", -t "less"; a NaN draw -inf, never counting), an
    actual statistic below ``zero`` in absolute value zeroed with every draw below ``zero``
    at that null, a draw counting where it is >= the actual statistic less ``tie`` of its
    absolute value (inclusive) or > it plus that (``strict``). ``halved``: the draws are half
    of the enumerated ones and their negations count too (t(-v) = -t(v)). No m x B array of
    statistics and no pass over one: p is the count over the number of draws counted."""
    m = scores.shape[1]
    n_draws = draws.shape[1]
    row = np.empty(n_draws)
    numerator = np.empty(n_draws)
    denominator = np.empty(n_draws)
    sign = -1.0 if orientation == LESS else 1.0
    for j in range(m):
        _statistics_of(scores, j, draws, share, factor, row, numerator, denominator)
        level = actual[j]
        if orientation == TWO_SIDED:
            level = abs(level)
        else:
            level = sign * level
        zeroed = abs(level) < zero
        if zeroed:
            level = 0.0
        slack = tie * abs(level)
        threshold = level + slack if strict else level - slack
        total = 0
        for b in range(n_draws):
            value = row[b]
            if orientation == TWO_SIDED:
                oriented = abs(value)
                total += _counts(oriented, threshold, zeroed, zero, strict) * (2 if halved else 1)
            else:
                total += _counts(sign * value, threshold, zeroed, zero, strict)
                if halved:
                    total += _counts(sign * -value, threshold, zeroed, zero, strict)
        counts[j] = total
    return counts


@njit(cache=True, error_model="numpy")
def draw_excesses(row, actual, orientation, strict, zero, tie, out):  # pragma: no cover
    """Each draw's excess over the actual statistic into ``out`` (as ``row``), one pass, from
    the draws ``row`` (t(v), B) and the actual statistic, so that a draw counts towards p
    exactly where its excess is >= 0 (as ``bootstrap_p_value`` compares them): oriented (|t|
    two-sided, t "greater", -t "less"; a NaN draw -inf), an actual statistic below ``zero`` in
    absolute value zeroed with every draw below ``zero`` then, the draw's oriented value less
    the actual one, and a tie (within ``tie`` of the actual's absolute value) +inf (inclusive)
    or -inf (``strict``). The same operations on the same numbers as the numpy construction it
    replaced (kept as the tests' reference): the same bits, without numpy's eight passes and
    their arrays."""
    sign = -1.0 if orientation == LESS else 1.0
    level = abs(actual) if orientation == TWO_SIDED else sign * actual
    zeroed = abs(level) < zero
    if zeroed:
        level = 0.0
    slack = tie * abs(level)
    tied = -np.inf if strict else np.inf
    for b in range(row.shape[0]):
        value = abs(row[b]) if orientation == TWO_SIDED else sign * row[b]
        if np.isnan(value):
            value = -np.inf
        elif zeroed and abs(value) < zero:
            value = 0.0
        excess = value - level
        out[b] = tied if abs(excess) <= slack else excess
    return out


@njit(cache=True, inline="always")
def _counts(value, threshold, zeroed, zero, strict):  # pragma: no cover - compiled
    """1 where one oriented draw counts, else 0 (see ``score_counts``)."""
    if np.isnan(value):
        return 0  # -inf: never counts
    if zeroed and abs(value) < zero:
        value = 0.0
    if strict:
        return 1 if value > threshold else 0
    return 1 if value >= threshold else 0


@njit(cache=True)
def cluster_products(codes, left, right, columns, out):  # pragma: no cover - compiled
    """out[g, j] = sum over the rows i of cluster g of left[i, j] * right[i, j], for the
    columns j of ``columns`` (left, right n x m; out G x m, its other columns untouched):
    each product rounded, then added to its cluster's sum in row order, as
    ``np.bincount(codes, weights=left[:, j] * right[:, j])`` sums them (the same numbers bit
    for bit), in one pass over the rows for every column instead of a product and a
    bincount per column."""
    n = codes.shape[0]
    for j in columns:
        for g in range(out.shape[0]):
            out[g, j] = 0.0
    for i in range(n):
        g = codes[i]
        for j in columns:
            out[g, j] += left[i, j] * right[i, j]
    return out
