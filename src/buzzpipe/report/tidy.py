"""The study's model terms as one tidy table, as R's ``broom::tidy`` names its columns.

One row per (outcome, model, quantity, covariance, term), read from the results records (never
from the presentation tables): ``quantity`` is ``coefficient``, ``odds_ratio`` or
``marginal_effect`` (the average marginal effect); coefficient rows come under the model's
primary covariance and again under each sensitivity covariance the study computed (``vcov``
names it as :meth:`Inference.short` does, ``clusters`` its number of clusters). ``statistic`` is
the record's own statistic, or ``estimate / std_error`` where the record holds none (a z
statistic, as broom's). ``conf_low``/``conf_high`` are the lowest and highest points of the
confidence set (``conf_kind`` says whether it is one bounded segment). Numbers are written as
Python's ``repr`` (shortest text that reads back to the same double), an absent number as an
empty cell, infinite ends as ``inf``/``-inf``: ``pandas.read_csv(path,
float_precision="round_trip")`` gives back every number of ``results.json`` exactly.

The records hold no multiplicity-adjusted p-values yet; when they do, they belong here as
``p_value_adjusted``.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from typing import Any

from buzzpipe.csv_safety import spreadsheet_safe
from buzzpipe.results import Estimate, ModelResult, StudyResults

TIDY_CSV = "tidy.csv"
TIDY_PARQUET = "tidy.parquet"

# column -> its type in the table: "str", "float" (float64, empty = missing), "int" (int64,
# never missing), "Int" (nullable integer)
COLUMNS: dict[str, str] = {
    "outcome": "str",
    "model": "str",
    "family": "str",
    "quantity": "str",
    "term": "str",
    "estimate": "float",
    "std_error": "float",
    "statistic": "float",
    "p_value": "float",
    "conf_low": "float",
    "conf_high": "float",
    "conf_level": "float",
    "conf_kind": "str",
    "vcov": "str",
    "clusters": "Int",
    "nobs": "int",
}


def _statistic(estimate: Estimate) -> float | None:
    if estimate.statistic is not None:
        return estimate.statistic
    if estimate.estimate is None or not estimate.std_error:
        return None
    return estimate.estimate / estimate.std_error


def _row(model: ModelResult, quantity: str, term: str, estimate: Estimate) -> dict[str, Any]:
    interval = estimate.interval
    return {
        "outcome": model.outcome,
        "model": model.model,
        "family": str(model.family),
        "quantity": quantity,
        "term": term,
        "estimate": estimate.estimate,
        "std_error": estimate.std_error,
        "statistic": _statistic(estimate),
        "p_value": estimate.p_value,
        "conf_low": None if interval is None else interval.low,
        "conf_high": None if interval is None else interval.high,
        "conf_level": None if interval is None else interval.level,
        "conf_kind": "" if interval is None else interval.kind,
        "vcov": estimate.inference.short(),
        "clusters": estimate.inference.clusters,
        "nobs": model.nobs,
    }


def tidy_rows(results: StudyResults) -> Iterator[dict[str, Any]]:
    """Every model term of the study as a tidy row (``COLUMNS``), in the results' order."""
    for models in results.models.values():
        for model in models.values():
            for quantity, terms in (
                ("coefficient", model.terms),
                ("odds_ratio", model.odds_ratios),
                ("marginal_effect", model.marginal_effects),
            ):
                for term, estimate in terms.items():
                    yield _row(model, quantity, term, estimate)
            for terms in model.sensitivity.values():
                for term, estimate in terms.items():
                    yield _row(model, "coefficient", term, estimate)


def _number(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        raise TypeError("a tidy number cannot be a bool")
    if isinstance(value, int):
        return str(value)
    return repr(float(value))  # shortest round-trip text; "inf", "-inf"


def tidy_csv(results: StudyResults) -> str:
    """``tidy.csv``: a header of ``COLUMNS`` and one line per tidy row (plain ASCII numbers,
    text that a spreadsheet would run as a formula neutralised)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in tidy_rows(results):
        writer.writerow(
            spreadsheet_safe(str(row[name])) if kind == "str" else _number(row[name])
            for name, kind in COLUMNS.items()
        )
    return buffer.getvalue()


def tidy_frame(results: StudyResults) -> Any:
    """The tidy rows as a pandas DataFrame with ``COLUMNS``' types (float64, int64, Int64)."""
    import pandas as pd

    rows = list(tidy_rows(results))
    data = {}
    for name, kind in COLUMNS.items():
        values = [row[name] for row in rows]
        if kind == "float":
            data[name] = pd.Series(
                [math.nan if v is None else float(v) for v in values], dtype="float64"
            )
        elif kind == "int":
            data[name] = pd.Series(values, dtype="int64")
        elif kind == "Int":
            data[name] = pd.Series(values, dtype="Int64")
        else:
            data[name] = pd.Series([str(v) for v in values], dtype="object")
    return pd.DataFrame(data, columns=list(COLUMNS))


def tidy_parquet(results: StudyResults) -> bytes:
    """``tidy.parquet``: the same rows and types as ``tidy.csv``, unneutralised text."""
    buffer = io.BytesIO()
    tidy_frame(results).to_parquet(buffer, index=False, engine="pyarrow")
    return buffer.getvalue()


def tidy_files(results: StudyResults) -> dict[str, bytes]:
    """The tidy export's files for a report folder."""
    return {
        TIDY_CSV: tidy_csv(results).encode("utf-8"),
        TIDY_PARQUET: tidy_parquet(results),
    }
