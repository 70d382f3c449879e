"""The NK fitness landscape: technologies are N-bit strings, fitness is a mean of locus tables.

Locus i contributes ``tables[i, code]`` where ``code`` reads the bits of loci i, i+1, ..., i+K
(cyclic, Kauffman's adjacent neighbourhood) as a (K+1)-bit number, so fitness is one table
lookup per locus. Turbulence redraws the tables of some loci, which makes knowledge go stale.
"""

from __future__ import annotations

import numpy as np

MAX_LOCI = 62  # bit strings are packed in uint64 and rotated with shifts below 64
MAX_K = 16  # a locus table has 2**(K+1) entries


class Landscape:
    """A (possibly turbulent) NK landscape over N-bit strings packed into uint64."""

    def __init__(self, n_loci: int, k: int, rng: np.random.Generator) -> None:
        if not 1 <= n_loci <= MAX_LOCI:
            raise ValueError(f"n_loci must lie in 1..{MAX_LOCI}, got {n_loci}")
        if not 0 <= k < n_loci or k > MAX_K:
            raise ValueError(f"k must lie in 0..min(n_loci - 1, {MAX_K}), got {k}")
        self.n_loci = n_loci
        self.k = k
        self.tables = rng.random((n_loci, 2 ** (k + 1)))
        self._shifts = np.arange(n_loci, dtype=np.uint64)
        self._wrap_shifts = (n_loci - self._shifts).astype(np.uint64)
        self._code_mask = np.uint64(2 ** (k + 1) - 1)
        self._offsets = np.arange(n_loci, dtype=np.int64) * 2 ** (k + 1)

    @property
    def full_mask(self) -> np.uint64:
        """All N bits set."""
        return np.uint64(2**self.n_loci - 1)

    def codes(self, strings: np.ndarray, loci: np.ndarray | None = None) -> np.ndarray:
        """Table index of each locus (columns) for each string (rows): the bits i..i+K, cyclic."""
        shifts = self._shifts if loci is None else self._shifts[loci]
        wraps = self._wrap_shifts if loci is None else self._wrap_shifts[loci]
        strings = np.asarray(strings, dtype=np.uint64)
        if self.n_loci <= 32:  # the string twice, side by side: bits i..i+K are one shift away
            doubled = strings | (strings << np.uint64(self.n_loci))
            rotated = doubled[:, None] >> shifts
        else:
            rotated = strings[:, None] >> shifts
            rotated |= strings[:, None] << wraps
        rotated &= self._code_mask
        return rotated.view(np.int64)

    def contributions(self, strings: np.ndarray) -> np.ndarray:
        """Per-locus contributions, shape (len(strings), N): one flat-table lookup each."""
        flat_index = self.codes(strings)
        flat_index += self._offsets  # locus i's table starts at i * 2**(K+1)
        return np.take(self.tables.reshape(-1), flat_index)

    def update_contributions(
        self, strings: np.ndarray, contributions: np.ndarray, loci: np.ndarray
    ) -> None:
        """Recompute, in place, only the columns of ``loci`` (after their tables changed)."""
        if len(loci):
            contributions[:, loci] = self.tables[loci, self.codes(strings, loci)]

    @staticmethod
    def fitness(contributions: np.ndarray) -> np.ndarray:
        """Fitness of each row: the mean of its locus contributions, summed locus by locus.

        The sum runs in locus order (not numpy's pairwise order) so that the vectorised kernel,
        the compiled kernel and the per-agent loop give the same bits.
        """
        n_loci = contributions.shape[1]
        total = np.zeros(len(contributions))
        for locus in range(n_loci):
            total += contributions[:, locus]
        return total / n_loci

    def evaluate(self, strings: np.ndarray) -> np.ndarray:
        """Fitness of each string, computed from scratch."""
        return self.fitness(self.contributions(strings))

    def redraw(self, loci: np.ndarray, new_tables: np.ndarray) -> None:
        """Turbulence: give ``loci`` new contribution tables (rows of ``new_tables``)."""
        self.tables[loci] = new_tables

    def one_bit_neighbours_best(self, strings: np.ndarray) -> np.ndarray:
        """Fitness of the best string one bit flip away from each string."""
        strings = np.asarray(strings, dtype=np.uint64)
        flips = np.uint64(1) << self._shifts
        neighbours = (strings[:, None] ^ flips[None, :]).ravel()
        return self.evaluate(neighbours).reshape(len(strings), self.n_loci).max(axis=1)

    def global_optimum(self, chunk: int = 1 << 16) -> tuple[int, float]:
        """The best string and its fitness by exhaustive search (for small N, in tests)."""
        best_string, best_fitness = 0, -np.inf
        for start in range(0, 2**self.n_loci, chunk):
            strings = np.arange(start, min(start + chunk, 2**self.n_loci), dtype=np.uint64)
            values = self.evaluate(strings)
            at = int(np.argmax(values))
            if values[at] > best_fitness:
                best_string, best_fitness = int(strings[at]), float(values[at])
        return best_string, best_fitness


def unpack_bits(strings: np.ndarray, n_loci: int) -> np.ndarray:
    """The 0/1 matrix (len(strings), N) of the bit strings, locus i in column i."""
    shifts = np.arange(n_loci, dtype=np.uint64)
    return ((np.asarray(strings, dtype=np.uint64)[:, None] >> shifts) & np.uint64(1)).astype(
        np.uint8
    )


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """Inverse of :func:`unpack_bits`: rows of 0/1 into uint64 strings."""
    packed = np.packbits(np.asarray(bits, dtype=bool), axis=1, bitorder="little")
    words = np.zeros((len(packed), 8), dtype=np.uint8)
    words[:, : packed.shape[1]] = packed
    return words.view("<u8").ravel().astype(np.uint64)
