"""Counter-based random bootstrap weights keyed by (seed, row id, replicate).

A bootstrap that streams over chunks needs the weight of a row to depend only on the seed, the
row's id and the replicate number, never on the order or size of the chunks. Each weight here is a
pure function of those three integers: a SplitMix64 finaliser (Steele, Lea and Flood 2014) applied
to a counter built from them, in vectorised numpy ``uint64`` arithmetic. The same (seed, row id,
replicate) therefore gives the same weight in memory, in a streamed file or in a Dask partition.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)
_TO_UNIT = 2.0**-53

# Webb's six-point distribution: +-sqrt(1/2), +-1, +-sqrt(3/2), each with probability 1/6
WEBB_POINTS = np.array(
    [-math.sqrt(1.5), -1.0, -math.sqrt(0.5), math.sqrt(0.5), 1.0, math.sqrt(1.5)]
)
RADEMACHER_POINTS = np.array([-1.0, 1.0])


def _mix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser: a bijection of uint64 that scatters nearby counters (in place)."""
    shifted = np.empty_like(z)
    for shift, multiplier in ((30, _MIX_1), (27, _MIX_2)):
        np.right_shift(z, np.uint64(shift), out=shifted)
        z ^= shifted
        z *= multiplier
    np.right_shift(z, np.uint64(31), out=shifted)
    z ^= shifted
    return z


def row_keys(row_ids: np.ndarray | pd.Index | list) -> np.ndarray:
    """Row ids as uint64 keys: integers are used as they are, other labels are hashed."""
    ids = np.asarray(row_ids)
    if ids.dtype.kind in "iu":
        return ids.astype(np.uint64)
    return pd.util.hash_array(ids.astype(object)).astype(np.uint64)


def _uniform_bits(
    seed: int, row_ids: np.ndarray | pd.Index | list, replicates: np.ndarray | range | int
) -> np.ndarray:
    """53 random bits per (row, replicate) as uint64, each a pure function of (seed, row id, b)."""
    if isinstance(replicates, int):
        replicates = np.arange(replicates)
    with np.errstate(over="ignore"):
        seed_key = _mix64(np.asarray([int(seed) & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))[0]
        row_key = _mix64(row_keys(row_ids) * _GOLDEN + seed_key)
        replicate_key = (np.asarray(replicates, dtype=np.uint64) + np.uint64(1)) * _GOLDEN
        bits = _mix64(row_key[:, None] ^ _mix64(replicate_key)[None, :])
    bits >>= np.uint64(11)
    return bits


def uniform_draws(
    seed: int, row_ids: np.ndarray | pd.Index | list, replicates: np.ndarray | range | int
) -> np.ndarray:
    """Uniform(0, 1) draws, shape (rows, replicates), each a pure function of (seed, row id, b)."""
    draws = _uniform_bits(seed, row_ids, replicates).astype(np.float64)
    draws *= _TO_UNIT
    return draws


def rademacher_weights(seed: int, row_ids, replicates) -> np.ndarray:
    """Rademacher weights (-1 or +1 with probability 1/2), shape (rows, replicates)."""
    return np.where(uniform_draws(seed, row_ids, replicates) < 0.5, -1.0, 1.0)


def webb_weights(seed: int, row_ids, replicates) -> np.ndarray:
    """Webb's six-point weights, shape (rows, replicates)."""
    index = np.minimum((uniform_draws(seed, row_ids, replicates) * 6).astype(np.intp), 5)
    return WEBB_POINTS[index]


# cumulative Poisson(1) probabilities for counts 0..29; beyond that the tail is below 1e-32
_POISSON_CDF = np.cumsum([math.exp(-1.0) / math.factorial(k) for k in range(30)])
# u = bits 2^-53 >= cdf_k exactly when bits >= ceil(cdf_k 2^53) (scaling by 2^53 is exact)
_POISSON_THRESHOLDS = np.ceil(_POISSON_CDF * 2.0**53).astype(np.uint64)


def poisson_weights(seed: int, row_ids, replicates) -> np.ndarray:
    """Poisson(1) frequency weights, shape (rows, replicates): the streamable pairs bootstrap.

    Each row enters a replicate an independent Poisson(1) number of times, the limit of the
    multinomial resample that needs no knowledge of the other rows (Hanley and MacGibbon 2006).
    The count is the number of cumulative probabilities at or below a uniform draw, found by
    comparing integer bits with integer thresholds (the same counts as a search over floats).
    The bits are those of :func:`_uniform_bits`, mixed and counted in one compiled pass
    (``compiled_batch.poisson_counts``; measured: 1.8 against 7.0 ms for 1,604 x 1,000 by
    numpy's passes over blocks of rows).
    """
    from buzzpipe.estimate.compiled_batch import poisson_counts

    if isinstance(replicates, int):
        replicates = np.arange(replicates)
    keys = row_keys(row_ids)
    out = np.empty((len(keys), len(replicates)))
    if out.size == 0:
        return out
    with np.errstate(over="ignore"):
        seed_key = _mix64(np.asarray([int(seed) & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))[0]
        row_key = _mix64(keys * _GOLDEN + seed_key)
        replicate_key = (np.asarray(replicates, dtype=np.uint64) + np.uint64(1)) * _GOLDEN
        replicate_key = _mix64(replicate_key)
    poisson_counts(row_key, replicate_key, _POISSON_THRESHOLDS, out)
    return out


def multinomial_counts(seed: int, n_units: int, replicates: np.ndarray | range | int) -> np.ndarray:
    """Classical resample counts, shape (units, replicates): n draws with replacement each.

    This is Stata's ``bsample``: every replicate has exactly ``n_units`` units. It cannot stream
    (a unit's count depends on all others), so replicate b uses ``default_rng([seed, b])``.
    """
    if isinstance(replicates, int):
        replicates = np.arange(replicates)
    probabilities = np.full(n_units, 1.0 / n_units)
    counts = np.empty((n_units, len(replicates)))
    for column, replicate in enumerate(replicates):
        rng = np.random.default_rng([int(seed), int(replicate)])
        counts[:, column] = rng.multinomial(n_units, probabilities)
    return counts
