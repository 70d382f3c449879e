"""Spreadsheet-safe CSV cells (OWASP's rule against CSV injection).

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula (and a tab or
carriage return in front of one hides it), so a region named ``=HYPERLINK("http://x","a")`` would
become a live link. Every CSV buzzpipe writes passes its text cells through ``spreadsheet_safe``:
such a cell gets a leading apostrophe, which spreadsheets show as text. Cells that are numbers
(``-0.25``, ``-1e-05``, ``-inf``, a number with significance stars ``-0.12**``) stay as they are,
so numbers stay numbers.
"""

from __future__ import annotations

import re

import pandas as pd

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_STARRED_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\**$")


def _is_number(text: str) -> bool:
    if _STARRED_NUMBER.match(text):
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True


def spreadsheet_safe(cell: object) -> object:
    """The cell with a leading apostrophe when a spreadsheet would run it as a formula;
    anything that is not text, and text that is a number, is returned unchanged."""
    if isinstance(cell, str) and cell.startswith(_TRIGGERS) and not _is_number(cell):
        return "'" + cell
    return cell


def _safe_labels(index: pd.Index) -> pd.Index:
    if isinstance(index, pd.MultiIndex):
        return index.set_levels([_safe_labels(level) for level in index.levels])
    if index.dtype == object or isinstance(index.dtype, (pd.CategoricalDtype, pd.StringDtype)):
        return pd.Index([spreadsheet_safe(label) for label in index], name=index.name)
    return index


def spreadsheet_safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of the frame whose text cells, index labels and column names are spreadsheet-safe
    (numeric columns untouched)."""
    safe = frame.copy()
    for position in range(frame.shape[1]):
        values = frame.iloc[:, position]
        if isinstance(values.dtype, pd.CategoricalDtype):
            categories = values.cat.categories
            if categories.dtype == object or isinstance(categories.dtype, pd.StringDtype):
                safe.isetitem(
                    position,
                    values.cat.rename_categories([spreadsheet_safe(c) for c in categories]),
                )
        elif values.dtype == object or isinstance(values.dtype, pd.StringDtype):
            safe.isetitem(position, values.map(spreadsheet_safe, na_action="ignore"))
    safe.columns = _safe_labels(frame.columns)
    safe.index = _safe_labels(frame.index)
    return safe
