"""Derived measures of the survey model: breadth per scale, any-partner flags, regimes, novelty.

Missing collaboration answers mean "don't know". Breadth counts the partner types a firm said yes
to; a "don't know" counts as no, unless every partner type at that scale is "don't know", in which
case breadth is missing (Stata's ``egen rowtotal(..., missing)``). ``any_<scale>`` is breadth > 0,
so it follows the same rule and, like breadth, leaves out the firm's own business group.
"""

import numpy as np
import pandas as pd

from buzzpipe.survey.schema import (
    GROUP_PARTNER_TYPE,
    REGIMES,
    collab_column,
)


def as_float(series: pd.Series) -> np.ndarray:
    """A nullable column as float64 with NaN for missing."""
    return series.to_numpy(dtype="float64", na_value=np.nan)


def nullable_integers(values: np.ndarray, index: pd.Index, dtype: str = "int8") -> pd.Series:
    """Whole numbers held as floats (NaN = missing) as a pandas nullable integer column."""
    missing = np.isnan(values)
    data = np.where(missing, 0, values).astype(dtype)
    return pd.Series(pd.arrays.IntegerArray(data, missing), index=index, copy=False)


def nullable_any(columns: list[pd.Series], index: pd.Index) -> pd.Series:
    """1 if any column is 1, 0 if all are 0, missing otherwise (Int8)."""
    if not columns:
        return nullable_integers(np.full(len(index), np.nan), index)
    values = np.column_stack([as_float(c) for c in columns])
    any_yes = (values == 1).any(axis=1)
    all_no = (values == 0).all(axis=1)
    result = np.where(any_yes, 1.0, np.where(all_no, 0.0, np.nan))
    return nullable_integers(result, index)


def breadth_from_collaboration(
    firms: pd.DataFrame, scale: str, partner_types: tuple[str, ...], *, with_group: bool
) -> pd.Series | None:
    """Number of partner types collaborated with at a scale (None when no column exists)."""
    counts = _answer_counts(firms, scale, partner_types, with_group)
    if counts is None:
        return None
    yes, unknown, answers = counts
    breadth = yes.astype("float64")
    breadth[unknown == answers] = np.nan  # every answer at the scale missing
    return nullable_integers(breadth, firms.index, "int16")


def yes_and_unknown(
    firms: pd.DataFrame, scale: str, partner_types: tuple[str, ...], *, with_group: bool = False
) -> tuple[np.ndarray, np.ndarray] | None:
    """Per firm: partner types answered yes at a scale, and those answered don't know (the
    group left out unless ``with_group``); None when the survey has no such column."""
    counts = _answer_counts(firms, scale, partner_types, with_group)
    return None if counts is None else counts[:2]


def _answer_counts(
    firms: pd.DataFrame, scale: str, partner_types: tuple[str, ...], with_group: bool
) -> tuple[np.ndarray, np.ndarray, int] | None:
    """Per firm, the collaboration answers at a scale that are yes and that are missing (int64),
    and the number of answers; None when the survey has no such column. Summed one answer
    column at a time, not from a firms x partner types float matrix: at a million firms that
    matrix (and its comparisons) was the description stage's peak."""
    counted = [
        collab_column(scale, t)
        for t in partner_types
        if (with_group or t != GROUP_PARTNER_TYPE) and collab_column(scale, t) in firms.columns
    ]
    if not counted:
        return None
    yes = np.zeros(len(firms), dtype="int64")
    unknown = np.zeros(len(firms), dtype="int64")
    for column in counted:
        values = as_float(firms[column])
        yes += values == 1
        unknown += np.isnan(values)
    return yes, unknown, len(counted)


def any_partner(breadth: pd.Series) -> pd.Series:
    """1 if breadth > 0, 0 if breadth is 0, missing if breadth is missing (Int8)."""
    values = as_float(breadth)
    flags = np.where(np.isnan(values), np.nan, (values > 0).astype("float64"))
    return nullable_integers(flags, breadth.index)


def regime(local: pd.Series, global_: pd.Series) -> pd.Series:
    """The four regimes from 'any local partner' and 'any international partner'.

    none, local_only, global_only, both; missing where either flag is missing. Categories are
    ordered with "none" first, so "none" is the reference category in models.
    """
    local_values, global_values = as_float(local), as_float(global_)
    codes = np.where(
        np.isnan(local_values) | np.isnan(global_values),
        -1,
        (local_values == 1).astype(int) + 2 * (global_values == 1).astype(int),
    )
    # code 0 none, 1 local only, 2 global only, 3 both: the order of REGIMES
    return pd.Series(pd.Categorical.from_codes(codes, categories=list(REGIMES)), index=local.index)


def product_novelty(product: pd.Series, new_to_market: pd.Series) -> pd.Series:
    """0 no new product, 1 new to the firm only, 2 new to the market (Int8, missing if unknown).

    New to the market implies a product innovation, so a firm with new_to_market = 1 is 2 even if
    its product answer is missing; a product innovator with an unknown market novelty is missing.
    """
    product_values = as_float(product)
    market = as_float(new_to_market)
    novelty = np.full(len(product_values), np.nan)
    novelty[product_values == 0] = 0
    novelty[(product_values == 1) & (market == 0)] = 1
    novelty[market == 1] = 2
    return nullable_integers(novelty, product.index)
