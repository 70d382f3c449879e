"""Convert raw survey columns to the model's types, raising one clear InputError per problem.

Every converter takes the column as read, the file it came from and the number of its first row,
so that an error names file, column, row(s), value and what was expected. Rows are counted from 1
over the data rows (the header is not a row), as Stata's ``list in`` counts observations.
"""

import math
import unicodedata
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
from pandas.api import types as pd_types

from buzzpipe.errors import InputError


def bad_rows(mask: np.ndarray | pd.Series, first_row: int) -> list[int]:
    """Row numbers (from first_row) where mask is true."""
    return (np.flatnonzero(np.asarray(mask, dtype=bool)) + first_row).tolist()


def first_value(series: pd.Series, mask: np.ndarray | pd.Series) -> object:
    """The first offending value, as a plain Python object for the message."""
    value = series[np.asarray(mask, dtype=bool)].iloc[0]
    value = value.item() if isinstance(value, np.generic) else value
    if isinstance(value, float) and value.is_integer():
        return int(value)  # 9, as the user wrote it, not 9.0
    return value


def is_missing(value: object) -> bool:
    """True for None, NaN, pd.NA and NaT."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float | np.floating) and math.isnan(value)


def _blank(series: pd.Series) -> np.ndarray:
    """Missing values, and strings that are empty or only spaces (a blank cell is missing)."""
    missing = series.isna().to_numpy().copy()
    if pd_types.is_object_dtype(series) or pd_types.is_string_dtype(series):
        text = series.astype("object")
        stripped = np.array(
            [isinstance(v, str) and not v.strip() for v in text.to_numpy()], dtype=bool
        )
        missing |= stripped
    return missing


def _element_to_float(value: object) -> float | None:
    """One value as a float, or None when it is not a number (missing values are NaN)."""
    if is_missing(value):
        return math.nan
    if isinstance(value, bool | np.bool_):
        return float(value)
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return math.nan
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number


def to_float(series: pd.Series, *, column: str, file: str, first_row: int) -> pd.Series:
    """A numeric column as float64 (NaN for missing); text that is not a number is an error."""
    if pd_types.is_bool_dtype(series) or pd_types.is_numeric_dtype(series):
        if isinstance(series.dtype, pd.CategoricalDtype):
            series = series.astype("object")
        else:
            values = series.to_numpy(dtype="float64", na_value=np.nan)
            return pd.Series(values, index=series.index, name=series.name)
    converted = [_element_to_float(v) for v in series.astype("object").to_numpy()]
    not_number = np.array([v is None for v in converted], dtype=bool)
    if not_number.any():
        raise row_error(
            "not a number",
            series,
            not_number,
            file=file,
            column=column,
            first_row=first_row,
            expected="a number (or an empty cell for missing)",
        )
    values = np.array(converted, dtype="float64")
    return pd.Series(values, index=series.index, name=series.name)


def row_error(
    problem: str,
    values: pd.Series | None,
    mask: np.ndarray | pd.Series,
    *,
    file: str,
    column: str,
    first_row: int,
    expected: str,
) -> InputError:
    """The error for the rows where mask is true, showing the first offending value (none to
    show when ``values`` is None: a value that is missing)."""
    return InputError(
        problem,
        file=file,
        column=column,
        rows=bad_rows(mask, first_row),
        value=None if values is None else first_value(values, mask),
        expected=expected,
    )


def check_present(
    missing: np.ndarray,
    problem: str = "missing value",
    *,
    column: str,
    file: str,
    first_row: int,
    expected: str,
) -> None:
    """A value required in every row: the rows where ``missing`` is true are the error."""
    if missing.any():
        raise row_error(
            problem, None, missing, file=file, column=column, first_row=first_row, expected=expected
        )


def check_finite(
    values: pd.Series,
    *,
    column: str,
    file: str,
    first_row: int,
    expected: str = "a finite number",
) -> None:
    """Infinite values are never meaningful in a survey (numbers, or codes read as numbers)."""
    if pd_types.is_float_dtype(values):
        infinite = np.isinf(values.to_numpy())
    else:
        infinite = np.array(
            [isinstance(v, float) and math.isinf(v) for v in values.to_numpy()], dtype=bool
        )
    if infinite.any():
        raise row_error(
            "infinite value",
            values,
            infinite,
            file=file,
            column=column,
            first_row=first_row,
            expected=expected,
        )


def to_number_in_range(
    series: pd.Series,
    *,
    column: str,
    file: str,
    first_row: int,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    required: bool = False,
    expected: str,
) -> pd.Series:
    """A float64 column whose known values lie in [low, high] (or (low, high] if not inclusive)."""
    values = to_float(series, column=column, file=file, first_row=first_row)
    check_finite(values, column=column, file=file, first_row=first_row)
    array = values.to_numpy()
    if required:
        check_present(
            np.isnan(array), column=column, file=file, first_row=first_row, expected=expected
        )
    outside = np.zeros(len(array), dtype=bool)
    with np.errstate(invalid="ignore"):
        if low is not None:
            outside |= (array < low) if low_inclusive else (array <= low)
        if high is not None:
            outside |= array > high
    if outside.any():
        raise row_error(
            "value out of range",
            values,
            outside,
            file=file,
            column=column,
            first_row=first_row,
            expected=expected,
        )
    return values


def to_binary(series: pd.Series, *, column: str, file: str, first_row: int) -> pd.Series:
    """A nullable 0/1 column (pandas Int8; missing = don't know)."""
    values = to_float(series, column=column, file=file, first_row=first_row)
    array = values.to_numpy()
    not_binary = ~np.isnan(array) & (array != 0) & (array != 1)
    if not_binary.any():
        raise row_error(
            "not a 0/1 value",
            values,
            not_binary,
            file=file,
            column=column,
            first_row=first_row,
            expected="0 or 1 (or an empty cell for don't know)",
        )
    missing = np.isnan(array)
    answers = pd.arrays.IntegerArray(np.where(missing, 0, array).astype("int8"), missing)
    return pd.Series(answers, index=series.index, name=series.name)


def to_count(
    series: pd.Series, *, column: str, file: str, first_row: int, most: int | None
) -> pd.Series:
    """A nullable count column (pandas Int16) with values 0..most."""
    expected = "a whole number of partner types" + (f" from 0 to {most}" if most else " >= 0")
    values = to_number_in_range(
        series, column=column, file=file, first_row=first_row, low=0, high=most, expected=expected
    )
    array = values.to_numpy()
    fractional = ~np.isnan(array) & (array != np.round(array))
    if fractional.any():
        raise row_error(
            "not a whole number",
            values,
            fractional,
            file=file,
            column=column,
            first_row=first_row,
            expected=expected,
        )
    missing = np.isnan(array)
    counts = pd.arrays.IntegerArray(np.where(missing, 0, array).astype("int16"), missing)
    return pd.Series(counts, index=series.index, name=series.name)


def id_key(value: object) -> str | None:
    """A firm or partner id as comparable text: 17, 17.0 and "17" are the same firm."""
    if is_missing(value):
        return None
    if isinstance(value, bool | np.bool_):
        return str(int(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        if math.isinf(value):
            return str(value)
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    text = str(value).strip()
    return text or None


def id_keys(series: pd.Series) -> pd.Series:
    """id_key for a whole column (object dtype, None for missing).

    Whole columns of integers, categories or text are converted at C speed (links files run to
    tens of millions of rows); anything else goes value by value. Both give the same keys.
    """
    return pd.Series(_id_key_array(series), index=series.index, dtype="object")


def _id_key_array(series: pd.Series) -> np.ndarray:
    if isinstance(series.dtype, pd.CategoricalDtype):
        keys = [id_key(c) for c in series.cat.categories.to_numpy(dtype="object")]
        return np.array([*keys, None], dtype="object")[series.cat.codes.to_numpy()]
    missing = series.isna().to_numpy()
    if pd_types.is_integer_dtype(series) and not pd_types.is_bool_dtype(series):
        import pyarrow as pa

        numbers = series.to_numpy(
            dtype=getattr(series.dtype, "numpy_dtype", series.dtype), na_value=0
        )
        text = pa.array(numbers).cast(pa.string()).to_numpy(zero_copy_only=False)
        keys = np.array(text, dtype="object", copy=True)
        keys[missing] = None
        return keys
    values = series.astype("object").to_numpy()
    if pd_types.infer_dtype(values, skipna=True) == "string":
        keys = pd.Series(values, dtype="object").str.strip().to_numpy(dtype="object", copy=True)
        keys[missing | (keys == "")] = None
        return keys
    return np.array([id_key(v) for v in values], dtype="object")


def to_firm_id(series: pd.Series, *, file: str, first_row: int) -> pd.Series:
    """Firm ids: present and unique. Whole-number floats become integers."""
    check_firm_ids_present(series, file=file, first_row=first_row)
    series = firm_ids_as_integers(series, integral_float_ids(series))
    if pd_types.is_integer_dtype(series) and not isinstance(series.dtype, pd.CategoricalDtype):
        duplicated = series.duplicated(keep=False).to_numpy()
    else:
        duplicated = id_keys(series).duplicated(keep=False).to_numpy()
    if duplicated.any():
        rows = bad_rows(duplicated, first_row)
        raise duplicate_ids_error(rows, first_value(series, duplicated), file=file)
    return series


def check_firm_ids_present(series: pd.Series, *, file: str, first_row: int) -> None:
    """Every firm has an id (a blank cell is missing)."""
    check_present(
        _blank(series),
        "missing firm id",
        column="firm_id",
        file=file,
        first_row=first_row,
        expected="every firm to have an id",
    )


def integral_float_ids(series: pd.Series) -> bool:
    """Float ids that are all whole numbers within float precision (made integers)."""
    if not pd_types.is_float_dtype(series):
        return False
    array = series.to_numpy(dtype="float64")
    return bool(
        np.all(np.isfinite(array) & (array == np.round(array))) and np.all(np.abs(array) < 2**53)
    )


def firm_ids_as_integers(series: pd.Series, integral: bool) -> pd.Series:
    """Float ids as int64 where ``integral`` (:func:`integral_float_ids` of the whole column)."""
    if integral and pd_types.is_float_dtype(series):
        array = series.to_numpy(dtype="float64")
        return pd.Series(array.astype("int64"), index=series.index, name=series.name)
    return series


def duplicate_ids_error(rows: list[int], value: object, *, file: str) -> InputError:
    """The error naming the rows whose firm id occurs more than once (``value``: the first's)."""
    return InputError(
        "duplicate firm id",
        file=file,
        column="firm_id",
        rows=rows,
        value=value,
        expected="each firm id once",
    )


def fold(value: object) -> str:
    """A name as compared for spelling variants: case, accents and runs of spaces ignored."""
    text = unicodedata.normalize("NFKD", " ".join(str(value).split()))
    return "".join(c for c in text if not unicodedata.combining(c)).casefold()


def refuse_spelling_variants(
    values: Iterable[object], *, column: str, file: str | None, known: Iterable[object] = ()
) -> None:
    """Refuse names that differ only in case, accents or spaces (" retail", "Retail"): one
    category must not be silently split in two. ``known``: spellings to match instead."""
    spellings: dict[str, list[object]] = {}
    for value in [*known, *values]:
        if isinstance(value, str):
            group = spellings.setdefault(fold(value), [])
            if value not in group:
                group.append(value)
    clashes = [group for group in spellings.values() if len(group) > 1]
    if clashes:
        shown = "; ".join(" / ".join(repr(v) for v in group) for group in clashes[:4])
        raise InputError(
            f"names that differ only in case, accents or spaces: {shown}",
            file=file,
            column=column,
            expected="one spelling per category (correct the file, or label the codes in a "
            "mapping)",
        )


def merge_spelling_variants(
    values: pd.Series,
    *,
    column: str,
    file: str | None,
    spellings: dict[object, int] | None = None,
) -> tuple[pd.Series, str | None]:
    """Names that differ only in case, accents or spaces ("Bergen", "bergen", "BERGEN") made
    one category under the spelling most firms use (ties: the first by Stata's order), with a
    note listing what was merged; None when nothing was. One category is never silently split
    in two, and never silently merged either. ``spellings`` gets each merged spelling's own
    firms, so that batches of one file can be merged as the whole file would be."""
    counts = values.dropna().value_counts(sort=False)
    renames, note = spelling_merge(
        {value: int(counts[value]) for value in counts.index}, column=column, file=file,
        spellings=spellings,
    )  # fmt: skip
    if not renames:
        return values, None
    return renamed(values, renames), note


def renamed(values: pd.Series, renames: Mapping[object, object]) -> pd.Series:
    """``values`` with each spelling variant read as its category (:func:`spelling_renames`)."""
    return values.map(lambda v: renames.get(v, v) if isinstance(v, str) else v)


def spelling_merge(
    firms: Mapping[object, int],
    *,
    column: str,
    file: str | None,
    spellings: dict[object, int] | None = None,
) -> tuple[dict[object, object], str | None]:
    """:func:`merge_spelling_variants` decided from the firms of each value (``firms``; the
    value counts of a whole column, or summed over its partitions): the renames and the note,
    each merged spelling's own firms added to ``spellings``."""
    renames = spelling_renames(firms)
    if not renames:
        return renames, None
    if spellings is not None:
        spellings.update({name: int(firms[name]) for pair in renames.items() for name in pair})
    return renames, spelling_note(renames, dict(firms.items()), column=column, file=file)


def spelling_renames(firms: Mapping[object, float]) -> dict[object, object]:
    """Names that differ only in case, accents or spaces, each to the spelling with the most
    firms (``firms``: name -> firms; ties: the first by Stata's order): variant -> spelling."""
    groups: dict[str, list[object]] = {}
    for value in firms:
        if isinstance(value, str):
            groups.setdefault(fold(value), []).append(value)
    renames: dict[object, object] = {}
    for group in groups.values():
        if len(group) < 2:
            continue
        ordered = sorted_categories(group)
        canonical = max(ordered, key=lambda v: (firms[v], -ordered.index(v)))
        renames.update({v: canonical for v in ordered if v != canonical})
    return renames


def spelling_note(
    renames: Mapping[object, object],
    firms: Mapping[object, float],
    *,
    column: str,
    file: str | None,
) -> str:
    """The data note of :func:`spelling_renames`: what was read as what, with its firms."""
    merged = []
    for canonical in dict.fromkeys(renames.values()):
        variants = [v for v in renames if renames[v] == canonical]
        count = int(sum(firms[v] for v in variants))
        shown = ", ".join(repr(v) for v in variants)
        merged.append(f"{shown} read as {canonical!r} ({count} firm{'s' * (count != 1)})")
    where = f"{file}, column {column!r}" if file else f"column {column!r}"
    return (
        f"{where}: names that differ only in case, accents or spaces are one category: "
        + "; ".join(merged)
    )


def _sort_key(value: object) -> tuple:
    """Numbers in numeric order before text in text order: Stata's lowest-code rule."""
    if isinstance(value, bool | np.bool_ | int | np.integer | float | np.floating):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def sorted_categories(values: Iterable[object]) -> list[object]:
    """Categories by Stata's rule: the lowest code first (text sorts after numbers)."""
    return sorted(values, key=_sort_key)


def to_category(
    series: pd.Series,
    *,
    column: str,
    file: str,
    first_row: int,
    reference: object = None,
    required: bool,
    notes: list[str] | None = None,
    spellings: dict[object, int] | None = None,
) -> pd.Series:
    """A categorical column, categories ordered with the reference category first.

    Names that differ only in case, accents or spaces are one category (the spelling most firms
    use) with a note appended to ``notes``; without ``notes`` they are refused, naming them.

    Declared categories (a pandas Categorical, value labels) keep their order; other values are
    sorted by Stata's rule (lowest code first). Categories no firm has are dropped, so the reference
    is always a category that occurs. A given reference must be one of the values.

    The steps apart (a file read in partitions on Dask workers, ``survey/dask_firms.py``):
    :func:`category_values` row by row, :func:`declared_categories` or the value counts merged
    by :func:`spelling_merge`, :func:`category_order` once for the column, then
    :func:`as_category`.
    """
    values, declared = category_values(
        series, column=column, file=file, first_row=first_row, required=required
    )
    if declared is not None:
        categories = declared_categories([declared], [set(values.dropna().unique().tolist())])
        refuse_spelling_variants(declared, column=column, file=file)
    else:
        if notes is not None:
            values, note = merge_spelling_variants(
                values, column=column, file=file, spellings=spellings
            )
            notes.extend([note] if note else [])
        categories = sorted_categories(
            [v.item() if isinstance(v, np.generic) else v for v in values.dropna().unique()]
        )
    categories = category_order(categories, reference, column=column, file=file)
    return as_category(values, categories, series)


def category_values(
    series: pd.Series, *, column: str, file: str, first_row: int, required: bool
) -> tuple[pd.Series, list | None]:
    """:func:`to_category`'s checks of each row (a required value present, no infinite code)
    and its values: text trimmed, blanks missing, whole-number float codes as integers (object
    dtype); with the column's declared categories (a Categorical's, as declared: None for
    other columns)."""
    missing = _blank(series)
    if required:
        expected = f"every firm to have a {column}"
        check_present(missing, column=column, file=file, first_row=first_row, expected=expected)
    if isinstance(series.dtype, pd.CategoricalDtype):
        declared = series.cat.categories.tolist()
        if series.cat.categories.dtype == object or pd_types.is_string_dtype(series.cat.categories):
            series = series.cat.rename_categories(
                [c.strip() if isinstance(c, str) else c for c in series.cat.categories]
            )
        return series.astype("object").where(~missing, None), declared
    values = series.astype("object").where(~missing, None)
    values = values.map(lambda v: v.strip() if isinstance(v, str) else v)
    if pd_types.is_float_dtype(series):
        values = pd.Series(
            [
                int(v) if isinstance(v, float) and math.isfinite(v) and v.is_integer() else v
                for v in values.to_numpy()
            ],
            index=series.index,
            dtype="object",
        )
    check_finite(
        values,
        column=column,
        file=file,
        first_row=first_row,
        expected="a category code or label",
    )
    return values, None


def declared_categories(declared: list[list], present: list[set]) -> list:
    """The declared categories (of each partition, in their order: the first's, then what each
    next adds) that some firm has (``present``, each partition's values), trimmed."""
    categories = dict.fromkeys(c for part in declared for c in part)
    found = set().union(*present)
    trimmed = [c.strip() if isinstance(c, str) else c for c in categories]
    return [c.item() if isinstance(c, np.generic) else c for c in trimmed if c in found]


def category_order(categories: list, reference: object, *, column: str, file: str) -> list:
    """The column's categories with the reference first; names that differ only in case,
    accents or spaces refused, and a reference no firm has."""
    refuse_spelling_variants(categories, column=column, file=file)
    if reference is not None and categories:
        match = [c for c in categories if c == reference or id_key(c) == id_key(reference)]
        if not match and isinstance(reference, str):  # "oslo" for the merged "Oslo"
            match = [c for c in categories if isinstance(c, str) and fold(c) == fold(reference)]
        if not match:
            shown = ", ".join(str(c) for c in categories[:8])
            raise InputError(
                "reference category not found",
                file=file,
                column=column,
                value=reference,
                expected=f"one of the categories present: {shown}",
            )
        categories = [match[0]] + [c for c in categories if c != match[0]]
    return categories


def as_category(values: pd.Series, categories: list, series: pd.Series) -> pd.Series:
    """``values`` (:func:`category_values`) as the column's Categorical, as ``series`` is
    indexed and named."""
    return pd.Series(
        pd.Categorical(values, categories=categories), index=series.index, name=series.name
    )
