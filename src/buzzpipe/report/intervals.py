"""Intervals as the report shows them: one [low, high] (None ends unbounded) or a union of
segments, taken to the odds-ratio scale or reduced to a bar for a figure."""

import math
from typing import Any


def is_union(bounds: Any) -> bool:
    """Whether an interval is a union of segments (a Fieller set or an inverted bootstrap test
    can be) rather than one [low, high]."""
    return bool(bounds) and all(isinstance(segment, list | tuple) for segment in bounds)


def single_segment(bounds: Any) -> tuple[float, float] | None:
    """(low, high) of a bounded one-segment interval, else None (nothing to draw as a bar)."""
    if not bounds or is_union(bounds) or None in bounds:
        return None
    return bounds[0], bounds[1]


def exponentiated(bounds: Any) -> Any:
    """An interval on the log-odds scale taken to the odds-ratio scale, end by end; an
    unbounded lower end becomes 0, an unbounded upper end stays unbounded; unions segment by
    segment."""
    if bounds is None:
        return None
    if is_union(bounds):
        return [exponentiated(segment) for segment in bounds]
    low, high = bounds
    return [0.0 if low is None else math.exp(low), None if high is None else math.exp(high)]
