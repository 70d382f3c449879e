"""Exactly rounded sums that do not depend on how the rows were chunked.

A sum over firms that reaches results.json is made on every engine from the same exact value:
each chunk returns its sum exactly (an :class:`ExactSum`, an integer times a power of two), the
chunks' exact sums add exactly in any order or tree, and the total is rounded to a float once.
So the in-memory, streamed and Dask engines give the same float bit for bit whatever the
partitioning, and it is the correctly rounded sum (``math.fsum``'s).

How a chunk's sum is made exact, vectorised: every float is m 2^e with an integer mantissa
|m| < 2^53 (``np.frexp``); m is split into a high and a low part of at most 27 and 26 bits and
both are added per (column, group, exponent) by ``np.bincount``, whose float partial sums of such
integers stay exact below 2^53 (at most 2^25 rows a round). Only those bins, a few dozen per
group, are then added as Python integers. The cost is a few array passes per sum: small next to
a fit's passes, and the same at any chunking. Whole numbers (counts, unit weights) whose sums
cannot reach 2^52 are added by ``np.bincount`` directly: every partial sum is exact.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["ExactSum", "exact_sum", "group_sums"]

_MANTISSA_BITS = 53
_LOW_BITS = 26
_WHOLE_LIMIT = 2.0**52  # whole numbers: rows x largest below it, every float sum is exact
_ROUND_ROWS = 2**25  # rows per bincount round: 2^25 high parts of < 2^27 stay below 2^53


class ExactSum:
    """The exact value ``numerator * 2**exponent``: adds exactly, rounds once (``float``)."""

    __slots__ = ("numerator", "exponent")

    def __init__(self, numerator: int = 0, exponent: int = 0) -> None:
        self.numerator = int(numerator)
        self.exponent = int(exponent)

    def __reduce__(self):  # pickled for the Dask workers' results
        return (ExactSum, (self.numerator, self.exponent))

    def __add__(self, other: ExactSum | int) -> ExactSum:
        if isinstance(other, int) and other == 0:  # the start of Python's sum()
            return self
        if not isinstance(other, ExactSum):
            return NotImplemented
        if not other.numerator:
            return self
        if not self.numerator:
            return other
        shift = self.exponent - other.exponent
        if shift >= 0:
            return ExactSum((self.numerator << shift) + other.numerator, other.exponent)
        return ExactSum(self.numerator + (other.numerator << -shift), self.exponent)

    __radd__ = __add__

    def __neg__(self) -> ExactSum:
        return ExactSum(-self.numerator, self.exponent)

    def __sub__(self, other: ExactSum) -> ExactSum:
        return self + (-other)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ExactSum):
            return NotImplemented
        return not (self - other).numerator

    def __hash__(self) -> int:
        return hash(float(self))

    def __float__(self) -> float:
        """The value rounded once to the nearest float (ties to even): int -> float conversion
        and int / int true division are correctly rounded in Python."""
        if self.exponent >= 0:
            try:
                return float(self.numerator << self.exponent)
            except OverflowError:
                return float("inf") if self.numerator > 0 else float("-inf")
        return self.numerator / (1 << -self.exponent)

    def __repr__(self) -> str:
        return f"ExactSum({float(self)!r})"


def group_sums(
    columns: Sequence[np.ndarray] | np.ndarray, codes: np.ndarray | None = None, groups: int = 1
) -> list[list[ExactSum]]:
    """The exact sum of each column (1-d arrays of the same length, finite) over the rows of each
    group: ``[group][column]``. ``codes``: each row's group in 0 .. groups - 1 (all rows in group
    0 without)."""
    values = np.asarray(columns, dtype=float)
    if values.ndim == 1:
        values = values[None, :]
    count, rows = values.shape
    codes = np.zeros(rows, dtype=np.intp) if codes is None else np.asarray(codes, dtype=np.intp)
    found = [[ExactSum() for _column in range(count)] for _group in range(groups)]
    if rows == 0 or count == 0:
        return found
    if not np.isfinite(values).all():
        raise ValueError("an exact sum of values that are not all finite")
    # columns of whole numbers (counts, unit weights) whose sums cannot reach 2^52: every
    # partial sum of bincount is exact, no split needed; the other columns by rounds
    whole = (np.abs(values).max(axis=1) < _WHOLE_LIMIT / rows) & (values == np.trunc(values)).all(
        axis=1
    )
    chosen = np.flatnonzero(whole)
    if chosen.size:
        keys = (np.arange(chosen.size)[:, None] * groups + codes[None, :]).ravel()
        sums = np.bincount(keys, weights=values[chosen].ravel(), minlength=chosen.size * groups)
        for row, total in enumerate(sums.tolist()):
            place, group = divmod(row, groups)
            found[group][int(chosen[place])] = ExactSum(int(total))
    rest = np.flatnonzero(~whole)
    if rest.size:
        rounded = [[ExactSum() for _column in rest] for _group in range(groups)]
        for start in range(0, rows, _ROUND_ROWS):
            part = slice(start, start + _ROUND_ROWS)
            _add_round(rounded, values[rest, part], codes[part], groups)
        for group in range(groups):
            for place, column in enumerate(rest.tolist()):
                found[group][column] = rounded[group][place]
    return found


def exact_sum(values: np.ndarray) -> ExactSum:
    """The exact sum of a 1-d array of finite floats."""
    return group_sums([values])[0][0]


def _add_round(found: list[list[ExactSum]], values: np.ndarray, codes: np.ndarray, groups: int):
    """Add at most ``_ROUND_ROWS`` rows' exact sums per group and column into ``found``."""
    count, rows = values.shape
    fractions, exponents = np.frexp(values)  # values = fractions 2^exponents, |f| in [0.5, 1)
    mantissas = np.ldexp(fractions, _MANTISSA_BITS).astype(np.int64)  # exact integers
    high = mantissas >> _LOW_BITS  # floor: mantissa = high 2^26 + low, 0 <= low < 2^26
    low = mantissas & ((1 << _LOW_BITS) - 1)
    lowest = int(exponents.min())
    span = int(exponents.max()) - lowest + 1
    keys = exponents - lowest
    keys += (np.arange(count)[:, None] * groups + codes[None, :]) * span
    size = count * groups * span
    high_sums = np.bincount(keys.ravel(), weights=high.ravel(), minlength=size)
    low_sums = np.bincount(keys.ravel(), weights=low.ravel(), minlength=size)
    used = np.flatnonzero((high_sums != 0) | (low_sums != 0))
    totals = [0] * (count * groups)
    for key, h, lo in zip(
        used.tolist(), high_sums[used].tolist(), low_sums[used].tolist(), strict=True
    ):
        row, offset = divmod(key, span)
        totals[row] += ((int(h) << _LOW_BITS) + int(lo)) << offset
    scale = lowest - _MANTISSA_BITS  # a bin's unit at exponent offset 0
    for row, total in enumerate(totals):
        if total:
            column, group = divmod(row, groups)
            found[group][column] = found[group][column] + ExactSum(total, scale)
