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

The multiplicity-adjusted p-values live on the verdicts, not on the terms: ``tidy_verdicts.csv``
(and ``tidy_verdicts.parquet``) hold one row per verdict (``VERDICT_COLUMNS``): the finding, its
state, the rule's decision and threshold, the quantity read with its estimate, error, statistic
and interval, the unadjusted p the decision reads (one-sided for a one-sided rule) and the
Holm-adjusted ``p_adjusted`` with its family, and the inference it read (``vcov``,
``clusters``), written the same way.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from typing import Any

from buzzpipe.csv_safety import spreadsheet_safe
from buzzpipe.results import Estimate, ModelResult, StudyResults, Verdict

TIDY_CSV = "tidy.csv"
TIDY_PARQUET = "tidy.parquet"
TIDY_VERDICTS_CSV = "tidy_verdicts.csv"
TIDY_VERDICTS_PARQUET = "tidy_verdicts.parquet"

# column -> its type in the table: "str", "float" (float64, empty = missing), "int" (int64,
# never missing), "Int" (nullable integer)
# the confidence set's ends, level and kind, and the inference (both tables end with them)
_INTERVAL_AND_INFERENCE: dict[str, str] = {
    "conf_low": "float",
    "conf_high": "float",
    "conf_level": "float",
    "conf_kind": "str",
    "vcov": "str",
    "clusters": "Int",
}
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
    **_INTERVAL_AND_INFERENCE,
    "nobs": "int",
}


# one row per verdict: the primary outcome's, then the other outcomes' (verdicts_by_outcome)
VERDICT_COLUMNS: dict[str, str] = {
    "outcome": "str",
    "finding": "str",
    "verdict": "str",
    "decision": "str",
    "threshold": "float",
    "quantity": "str",
    "estimate": "float",
    "std_error": "float",
    "statistic": "float",
    "df": "Int",
    "alternative": "str",
    "p_value": "float",
    "p_adjusted": "float",
    "adjustment": "str",
    "family": "str",
    "family_size": "Int",
    **_INTERVAL_AND_INFERENCE,
}


def _statistic(estimate: Estimate) -> float | None:
    if estimate.statistic is not None:
        return estimate.statistic
    if estimate.estimate is None or not estimate.std_error:
        return None
    return estimate.estimate / estimate.std_error


def _interval_and_inference(interval: Any, inference: Any) -> dict[str, Any]:
    return {
        "conf_low": None if interval is None else interval.low,
        "conf_high": None if interval is None else interval.high,
        "conf_level": None if interval is None else interval.level,
        "conf_kind": "" if interval is None else interval.kind,
        "vcov": "" if inference is None else inference.short(),
        "clusters": None if inference is None else inference.clusters,
    }


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
        **_interval_and_inference(interval, estimate.inference),
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


def _csv(columns: dict[str, str], rows: Iterator[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(
            spreadsheet_safe(str(row[name])) if kind == "str" else _number(row[name])
            for name, kind in columns.items()
        )
    return buffer.getvalue()


def _frame(columns: dict[str, str], rows: Iterator[dict[str, Any]]) -> Any:
    import pandas as pd

    rows = list(rows)
    data = {}
    for name, kind in columns.items():
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
    return pd.DataFrame(data, columns=list(columns))


def _parquet(frame: Any) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False, engine="pyarrow")
    return buffer.getvalue()


def tidy_csv(results: StudyResults) -> str:
    """``tidy.csv``: a header of ``COLUMNS`` and one line per tidy row (plain ASCII numbers,
    text that a spreadsheet would run as a formula neutralised)."""
    return _csv(COLUMNS, tidy_rows(results))


def tidy_frame(results: StudyResults) -> Any:
    """The tidy rows as a pandas DataFrame with ``COLUMNS``' types (float64, int64, Int64)."""
    return _frame(COLUMNS, tidy_rows(results))


def tidy_parquet(results: StudyResults) -> bytes:
    """``tidy.parquet``: the same rows and types as ``tidy.csv``, unneutralised text."""
    return _parquet(tidy_frame(results))


def all_verdicts(results: StudyResults) -> list[Verdict]:
    """The primary outcome's verdicts, then every other outcome's (each verdict once)."""
    verdicts = list(results.verdicts)
    primary = {verdict.outcome for verdict in verdicts}
    for outcome, decided in results.verdicts_by_outcome.items():
        if outcome not in primary:
            verdicts.extend(decided)
    return verdicts


def _verdict_row(results: StudyResults, verdict: Verdict) -> dict[str, Any]:
    read = results.lookup(verdict.quantity) if verdict.quantity else None
    interval = None if read is None else read.interval
    inference = verdict.inference
    return {
        "outcome": verdict.outcome,
        "finding": str(verdict.finding),
        "verdict": str(verdict.verdict),
        "decision": str(verdict.decision),
        "threshold": verdict.threshold,
        "quantity": verdict.quantity,
        "estimate": verdict.estimate,
        "std_error": None if read is None else read.std_error,
        "statistic": None if read is None else _statistic(read),
        "df": None if read is None else read.df,
        "alternative": "" if read is None else str(read.alternative),
        "p_value": verdict.p_value,
        "p_adjusted": verdict.p_adjusted,
        "adjustment": verdict.adjustment,
        "family": verdict.family,
        "family_size": verdict.family_size,
        **_interval_and_inference(interval, inference),
    }


def tidy_verdict_rows(results: StudyResults) -> Iterator[dict[str, Any]]:
    """Every verdict of the study as a tidy row (``VERDICT_COLUMNS``)."""
    for verdict in all_verdicts(results):
        yield _verdict_row(results, verdict)


def tidy_verdicts_csv(results: StudyResults) -> str:
    """``tidy_verdicts.csv``: one line per verdict, written as ``tidy.csv``."""
    return _csv(VERDICT_COLUMNS, tidy_verdict_rows(results))


def tidy_verdicts_frame(results: StudyResults) -> Any:
    """The verdict rows as a pandas DataFrame with ``VERDICT_COLUMNS``' types."""
    return _frame(VERDICT_COLUMNS, tidy_verdict_rows(results))


def tidy_files(results: StudyResults) -> dict[str, bytes]:
    """The tidy export's files for a report folder."""
    return {
        TIDY_CSV: tidy_csv(results).encode("utf-8"),
        TIDY_PARQUET: tidy_parquet(results),
        TIDY_VERDICTS_CSV: tidy_verdicts_csv(results).encode("utf-8"),
        TIDY_VERDICTS_PARQUET: _parquet(tidy_verdicts_frame(results)),
    }
