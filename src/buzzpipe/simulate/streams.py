"""Random numbers keyed by what they are for: common random numbers by construction.

Every random number of a run is a hash of a run key and a counter that names its use: the
standing network's numbers are keyed by (purpose, firm or foreign agent, its k-th tie), a step's
numbers by (step, purpose, tie key or agent). Two arms of an experiment that share a tie therefore
share every number drawn for it (its activity, crossover mask, openness and absorption draws in
every step), however many other ties one of them has; the same holds for the initial strings and
the firms' exploration. Only the landscape (initial tables and shocks) comes from a sequential
generator, its own, so the shocks are the same in every arm too.

The hash is SplitMix64's finaliser (Steele, Lea and Flood 2014), applied twice with the parts
mixed in one at a time; uniforms take its top 53 bits. It is not a cryptographic generator and
need not be: it only has to look independent across keys, which SplitMix64 is known to do well
(it passes BigCrush as a counter-based generator).
"""

from __future__ import annotations

import numpy as np

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
_TOP53 = np.uint64(11)
_UNIT = 2.0**-53

# Purposes: one constant per use, so numbers for different uses never coincide.
(
    REGIONAL_COUNT, REGIONAL_PARTNER, REGIONAL_TYPE,
    NATIONAL_COUNT, NATIONAL_PARTNER, NATIONAL_TYPE,
    PIPELINE_HAS, PIPELINE_COUNT, PIPELINE_TARGET, PIPELINE_TYPE,
    WORLD_COUNT, WORLD_PARTNER,
    INITIAL_STRING, CAPABILITY, EMPLOYEES, FOREIGN_OWNED,
    ACTIVE, BUZZ_PARTNER, MASK, OPEN_A, OPEN_B, ABSORB_A, ABSORB_B, EXPLORE, EXPLORE_BIT,
    TIE_REGIONAL, TIE_NATIONAL, TIE_PIPELINE, TIE_WORLD, TIE_BUZZ, LANDSCAPE, GATEKEEPER,
) = range(1, 33)  # fmt: skip

WORLD_AGENT = 1 << 40  # foreign agent j is keyed as WORLD_AGENT + j, whatever the number of firms
MASK_BITS = 8  # crossover masks take copy_share to the nearest 1/256 (integer bit draws)


def mix(values: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on a uint64 array (wrapping arithmetic)."""
    z = np.asarray(values, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> _S30)) * _M1
        z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def combine(key: np.ndarray | int, *parts: np.ndarray | int) -> np.ndarray:
    """The hash of a key and parts, one part mixed in after another (arrays broadcast)."""
    h = np.asarray(key, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for part in parts:
            h = mix(h ^ (np.asarray(part, dtype=np.uint64) + GOLDEN))
    return h


def tie_key(kind: int, owner: np.ndarray | int, rank: np.ndarray | int) -> np.ndarray:
    """A tie's key: its kind mixed first, then the agent that named it and its rank.

    Mixing the kind before the owner matters: ``kind ^ (owner + golden)`` is equal for two kinds
    that differ in one bit and two owners that differ by that bit, so keys of different kinds
    would collide; ``mix(kind)`` is a full 64-bit word, and the owners' and ranks' small values
    cannot cancel it.
    """
    return combine(mix(np.uint64(kind)), owner, rank)


def unit(hashes: np.ndarray) -> np.ndarray:
    """Uniforms on [0, 1) from hashes: their top 53 bits."""
    return (np.asarray(hashes, dtype=np.uint64) >> _TOP53).astype(np.float64) * _UNIT


def uniform(key: np.ndarray | int, *parts: np.ndarray | int) -> np.ndarray:
    """One uniform on [0, 1) per (broadcast) combination of the parts."""
    return unit(combine(key, *parts))


def mask_levels(copy_share: float) -> int:
    """copy_share as an integer q: each mask bit is 1 with chance q / 2**MASK_BITS."""
    return int(round(copy_share * (1 << MASK_BITS)))


def masks(hashes: np.ndarray, copy_share: float, n_loci: int) -> np.ndarray:
    """One crossover mask per hash from integer bit draws: each bit 1 with chance q / 256.

    The binary digits of q are read from the lowest set one up; each digit takes a fresh word w
    (the hash advanced by the digit's index): a 1 turns the mask into ``mask | w``, a 0 into
    ``mask & w``, so each bit ends 1 with chance exactly q / 256 and bits are independent.
    """
    q = mask_levels(copy_share)
    full = np.uint64((1 << n_loci) - 1)
    hashes = np.asarray(hashes, dtype=np.uint64)
    if q == 0:
        return np.zeros(len(hashes), dtype=np.uint64)
    if q == 1 << MASK_BITS:
        return np.full(len(hashes), full, dtype=np.uint64)
    mask = np.zeros(len(hashes), dtype=np.uint64)
    low = (q & -q).bit_length() - 1
    with np.errstate(over="ignore"):
        for digit in range(low, MASK_BITS):
            word = mix(hashes + np.uint64(digit + 1) * GOLDEN)
            mask = (mask | word) if (q >> digit) & 1 else (mask & word)
    return mask & full


def root_key(seed: int | np.random.SeedSequence | np.random.Generator | None) -> np.uint64:
    """The run key: from a seed, a seed sequence, or (for callers holding one) a generator."""
    if isinstance(seed, np.random.Generator):
        return np.uint64(seed.integers(0, 2**63, dtype=np.int64))
    sequence = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return np.uint64(sequence.generate_state(1, np.uint64)[0])


def landscape_generator(key: np.uint64) -> np.random.Generator:
    """The landscape's own sequential generator (initial tables, then the shocks in order)."""
    return np.random.default_rng(np.random.SeedSequence([int(key), LANDSCAPE]))
