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

__all__ = ["score_statistics"]


@njit(cache=True, error_model="numpy")
def score_statistics(scores, draws, share, factor, out):
    """t(v) = N(v) / sqrt(factor D(v)) of every null (column of ``scores``, G x m) at every
    draw (column of ``draws``, G x B) into ``out`` (m x B): N(v) = sum_g v_g S_g and
    D(v) = sum_g (v_g S_g - share_g N(v))^2, summed over g in order. A zero denominator gives
    +-inf or NaN, as numpy's division does."""
    n_clusters, m = scores.shape
    n_draws = draws.shape[1]
    numerator = np.empty(n_draws)
    denominator = np.empty(n_draws)
    for j in range(m):
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
        target = out[j]
        for b in range(n_draws):
            target[b] = numerator[b] / np.sqrt(factor * denominator[b])
    return out
