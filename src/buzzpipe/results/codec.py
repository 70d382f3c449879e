"""The float codec of ``results.json``: JSON has no infinities and no NaN.

A float is written as a finite number, ``"inf"``/``"-inf"`` (an unbounded end of a confidence
set), or ``null`` (not a number: a quantity the study could not compute).
"""

from __future__ import annotations

import math

INFINITIES = {"inf": math.inf, "-inf": -math.inf}


def encode_float(value: float | None) -> float | str | None:
    """A float as JSON can hold it: finite numbers stay, infinities become strings, NaN null."""
    if value is None:
        return None
    value = float(value)
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def decode_float(value: float | str | None) -> float | None:
    """Inverse of :func:`encode_float`: ``null`` comes back as None (the caller decides
    whether that is NaN or absent)."""
    if value is None:
        return None
    if isinstance(value, str):
        return INFINITIES[value]
    return float(value)


def finite_or_none(value: float | None) -> float | None:
    """A float for display: NaN and infinities as None (an unbounded end, no number)."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)
