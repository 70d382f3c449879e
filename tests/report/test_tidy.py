"""The tidy export (tidy.csv, tidy.parquet): broom's columns, every number of results.json back
exactly, each column's type, written with the rest of the report."""

import csv
import io
import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest

from buzzpipe.report.tidy import (
    COLUMNS,
    TIDY_CSV,
    TIDY_PARQUET,
    TIDY_VERDICTS_CSV,
    TIDY_VERDICTS_PARQUET,
    VERDICT_COLUMNS,
    tidy_csv,
    tidy_parquet,
    tidy_verdicts_csv,
)
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


@pytest.fixture(scope="module")
def studied(tmp_path_factory):
    """A fresh study (format 3: Holm-adjusted verdicts for every outcome) and its results.json."""
    import buzzpipe as bp

    survey = bp.synthesize("norway2010", seed=1, firms=400)
    study = bp.run_study(survey, seed=1, sensitivity=False, heterogeneity=False,
                         bootstrap_replications=0, scenarios=())  # fmt: skip
    path = tmp_path_factory.mktemp("tidy") / "results.json"
    path.write_text(study.to_json(), encoding="utf-8")
    return read_results(path), json.loads(path.read_text(encoding="utf-8"))


def _json_at(data, quantity):
    kind, _, rest = quantity.partition("/")
    if kind == "models":
        outcome, model, term = rest.split("/", 2)
        if term.startswith("sensitivity/"):
            column, _, name = term.removeprefix("sensitivity/").partition("/")
            return data["models"][outcome][model]["sensitivity"][column][name]
        return data["models"][outcome][model]["terms"][term]
    section, _, name = rest.rpartition("/")
    return data[kind][section][name]


@pytest.mark.filterwarnings("ignore:The 'float_precision' argument")
def test_tidy_verdicts_equal_results_json_number_for_number(studied):
    results, data = studied
    text = tidy_verdicts_csv(results)
    frame = pd.read_csv(io.StringIO(text), float_precision="round_trip", keep_default_na=False,
                        na_values=[""])  # fmt: skip
    assert list(frame.columns) == list(VERDICT_COLUMNS)
    for name, kind in VERDICT_COLUMNS.items():  # every column's type, as read by default
        if kind == "float":
            assert frame[name].dtype == "float64", name
        elif kind == "Int":
            assert frame[name].dtype in ("float64", "int64"), name
            assert not frame[name].dropna().mod(1).any(), name
    written = [*data["verdicts"]]
    written += [v for outcome, vs in data["verdicts_by_outcome"].items()
                if outcome != data["meta"]["primary_outcome"] for v in vs]  # fmt: skip
    assert len(frame) == len(written) > 16
    assert {"primary", "other_outcomes"} == set(frame["family"])
    for verdict, (_, row) in zip(written, frame.iterrows(), strict=True):
        for name in ("outcome", "finding", "verdict", "decision", "quantity", "family"):
            assert row[name] == verdict[name], name
        for name in ("threshold", "estimate", "p_value", "p_adjusted", "family_size"):
            assert _same(row[name], verdict[name]), (name, row[name], verdict[name])
        read = _json_at(data, verdict["quantity"]) if verdict["p_value"] is not None else None
        if read is None:
            continue
        assert _same(row["std_error"], read["std_error"])
        assert _same(row["df"], read.get("df"))
        assert row["alternative"] == read.get("alternative", "two_sided")
        if read.get("interval"):  # the lowest and highest points of the set
            segments = [[float(end) for end in segment] for segment in read["interval"]["segments"]]
            assert row["conf_low"] == min(low for low, _ in segments)
            assert row["conf_high"] == max(high for _, high in segments)
        assert _same(row["clusters"], verdict["inference"].get("clusters"))
    assert frame["p_adjusted"].notna().sum() > 10
    assert (frame["p_adjusted"].dropna() >= frame["p_value"].dropna()).all()


@pytest.mark.filterwarnings("ignore:The 'float_precision' argument")
def test_tidy_verdicts_parquet_holds_the_same_rows_and_types(studied):
    results, _ = studied
    files = render_report(results)
    frame = pd.read_parquet(io.BytesIO(files[TIDY_VERDICTS_PARQUET]))
    again = pd.read_csv(io.BytesIO(files[TIDY_VERDICTS_CSV]), keep_default_na=False,
                        na_values=[""], float_precision="round_trip")  # fmt: skip
    assert list(frame.columns) == list(VERDICT_COLUMNS)
    for name, kind in VERDICT_COLUMNS.items():
        expected = {"float": ("float64",), "Int": ("Int64",), "str": ("object", "str")}[kind]
        assert str(frame[name].dtype) in expected, name
        if kind == "float":
            pd.testing.assert_series_equal(frame[name], again[name], check_exact=True)
