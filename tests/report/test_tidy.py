"""The tidy export (tidy.csv, tidy.parquet): broom's columns, every number of results.json back
exactly, each column's type, written with the rest of the report."""

import csv
import io
import math
import re
from pathlib import Path

import pandas as pd
import pytest

from buzzpipe.report.tidy import COLUMNS, TIDY_CSV, TIDY_PARQUET, tidy_csv, tidy_parquet
from buzzpipe.report.write_report import render_report
from buzzpipe.results import read_results

GOLDEN = Path(__file__).parents[1] / "results" / "golden" / "norway2010" / "results_format1.json"
BROOM = ["term", "estimate", "std_error", "statistic", "p_value", "conf_low", "conf_high"]
FLOATS = [name for name, kind in COLUMNS.items() if kind == "float"]


@pytest.fixture(scope="module")
def results():
    return read_results(GOLDEN)


def _expected(results) -> list[dict]:
    """The rows the tidy export must hold, straight from the records."""
    rows = []
    for models in results.models.values():
        for model in models.values():
            groups = [("coefficient", model.terms), ("odds_ratio", model.odds_ratios),
                      ("marginal_effect", model.marginal_effects)]  # fmt: skip
            groups += [("coefficient", terms) for terms in model.sensitivity.values()]
            for quantity, terms in groups:
                for term, record in terms.items():
                    rows.append((model, quantity, term, record))
    return rows


def _same(written, expected) -> bool:
    if expected is None:
        return written is None or (isinstance(written, float) and math.isnan(written))
    return written == expected  # exact: no tolerance


def _check_frame(frame: pd.DataFrame, results) -> None:
    assert list(frame.columns) == list(COLUMNS)
    assert set(BROOM) | {"model", "outcome", "vcov", "nobs"} <= set(frame.columns)
    for name in FLOATS:
        assert frame[name].dtype == "float64", name
    assert frame["nobs"].dtype == "int64"
    assert str(frame["clusters"].dtype) in ("Int64", "float64")
    expected = _expected(results)
    assert len(frame) == len(expected) > 100
    for (model, quantity, term, record), (_, row) in zip(expected, frame.iterrows(), strict=True):
        assert (row["outcome"], row["model"], row["quantity"], row["term"]) == (
            model.outcome, model.model, quantity, term)  # fmt: skip
        assert row["nobs"] == model.nobs
        assert row["vcov"] == record.inference.short()
        assert row["family"] == str(model.family)
        assert _same(row["estimate"], record.estimate)
        assert _same(row["std_error"], record.std_error)
        assert _same(row["p_value"], record.p_value)
        if record.statistic is not None:
            assert row["statistic"] == record.statistic
        elif record.estimate is not None and record.std_error:
            assert row["statistic"] == record.estimate / record.std_error
        if record.interval is not None:
            assert row["conf_low"] == record.interval.low
            assert row["conf_high"] == record.interval.high
            assert row["conf_level"] == record.interval.level
        clusters = record.inference.clusters
        if clusters is None:
            assert pd.isna(row["clusters"])
        else:
            assert row["clusters"] == clusters


@pytest.mark.filterwarnings("ignore:The 'float_precision' argument")
def test_tidy_csv_reads_back_every_number_exactly(results):
    text = tidy_csv(results)
    frame = pd.read_csv(
        io.StringIO(text), float_precision="round_trip", dtype={"clusters": "Int64"},
        keep_default_na=False, na_values=[""],
    )  # fmt: skip
    for name, kind in COLUMNS.items():
        if kind == "str":
            frame[name] = frame[name].astype(str)
    _check_frame(frame, results)
    # plain ASCII numbers: Python's float syntax, no thousands separator, no typographic minus
    number = re.compile(r"-?(inf|\d+(\.\d+)?(e[-+]\d+)?)")
    numeric = [index for index, kind in enumerate(COLUMNS.values()) if kind != "str"]
    for cells in list(csv.reader(io.StringIO(text)))[1:]:
        for index in numeric:
            assert cells[index] == "" or number.fullmatch(cells[index]), cells[index]


@pytest.mark.filterwarnings("ignore:The 'float_precision' argument")
def test_tidy_csv_default_read_gives_number_types(results):
    frame = pd.read_csv(io.StringIO(tidy_csv(results)), float_precision="round_trip")
    for name in FLOATS:
        assert frame[name].dtype == "float64", name
    assert frame["nobs"].dtype == "int64"
    assert frame["clusters"].dtype in ("float64", "int64")
    assert not frame["clusters"].dropna().mod(1).any()


def test_tidy_parquet_holds_the_same_rows_and_types(results):
    frame = pd.read_parquet(io.BytesIO(tidy_parquet(results)))
    assert str(frame["clusters"].dtype) == "Int64"
    _check_frame(frame, results)


def test_report_writes_the_tidy_export_with_its_other_files(results):
    files = render_report(results)
    assert files[TIDY_CSV] == tidy_csv(results).encode("utf-8")
    assert TIDY_PARQUET in files and "report.html" in files


def test_presentation_csvs_write_plain_numbers(results):
    """Every table CSV's cells: an ASCII minus, no thousands separator (intervals keep ', ')."""
    files = render_report(results)
    tables = [name for name in files if name.startswith("tables/") and name.endswith(".csv")]
    assert len(tables) > 5
    thousands = re.compile(r"\d,\d{3}(?!\d)")
    for name in tables:
        rows = list(csv.reader(io.StringIO(files[name].decode("utf-8"))))
        for row in rows[2:]:
            for cell in row[1:]:
                assert "\u2212" not in cell and not thousands.search(cell), (name, cell)
