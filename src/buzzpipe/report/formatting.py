"""Number presentation for tables and findings: decimals, stars, p-values, intervals, counts."""

import math
import re

# Significance stars as in the economic-geography literature (Fitjar and Rodriguez-Pose 2011).
STAR_LEVELS: tuple[tuple[float, str], ...] = ((0.01, "***"), (0.05, "**"), (0.10, "*"))
STAR_NOTE = "* p < 0.10, ** p < 0.05, *** p < 0.01"
DASH = "\u2013"  # an en dash marks an empty cell, as in printed tables
MINUS = "\u2212"


def stars(p: float | None) -> str:
    """Significance stars for a p-value ('' when p is missing or above 0.10)."""
    if p is None:
        return ""
    for level, mark in STAR_LEVELS:
        if p < level:
            return mark
    return ""


def number(value: float | None, decimals: int = 3, *, unicode_minus: bool = False) -> str:
    """A fixed-decimal number; a dash for a missing value, and no '-0.000'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    if math.isinf(value):
        return "\u221e" if value > 0 else f"{MINUS}\u221e"
    text = f"{value:.{decimals}f}"
    if float(text) == 0.0:
        text = text.lstrip("-")
    if unicode_minus:
        text = text.replace("-", MINUS)
    return text


def count(value: int | float | None) -> str:
    """A count with thousands separators (1,604)."""
    if value is None:
        return DASH
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def p_value(p: float | None) -> str:
    """A p-value as journals print it: three decimals, '< 0.001' below that."""
    if p is None:
        return DASH
    if p < 0.001:
        return "< 0.001"
    return f"{p:.3f}"


def interval(bounds: list | tuple | None, decimals: int = 3) -> str:
    """An interval '[low, high]'; a missing end is unbounded (Fieller intervals can be), and a
    union of segments (a Fieller set of two rays) is joined with '∪'."""
    if bounds is None:
        return DASH
    if bounds and all(isinstance(segment, list | tuple) for segment in bounds):
        return " ∪ ".join(interval(segment, decimals) for segment in bounds)
    low, high = bounds
    low_text = f"{MINUS}\u221e" if low is None else number(low, decimals)
    high_text = "\u221e" if high is None else number(high, decimals)
    return f"[{low_text}, {high_text}]"


def percent(share: float | None, decimals: int = 1) -> str:
    """A share in [0, 1] as a percentage."""
    if share is None:
        return DASH
    return f"{100 * share:.{decimals}f}%"


_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")


def plain_numbers(text: str) -> str:
    """A table cell as a CSV writes it: an ASCII minus for U+2212 and no thousands separator
    ("−1108.7" -> "-1108.7", "1,604" -> "1604"); intervals' ", " stay."""
    return _THOUSANDS.sub("", text.replace(MINUS, "-"))
