"""Spreadsheet-safe CSV (OWASP): text a spreadsheet would run as a formula is neutralised in
every CSV buzzpipe writes; numbers stay numbers."""

import csv
import io

import pandas as pd
import pytest

from buzzpipe.csv_safety import spreadsheet_safe, spreadsheet_safe_frame
from buzzpipe.report.table_formats import table_csv
from buzzpipe.report.tables import Cell, Row, Table

FORMULAS = ['=HYPERLINK("http://x","a")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)",
            "\t=1+1", "\r=1+1"]  # fmt: skip


@pytest.mark.parametrize("text", FORMULAS)
def test_formula_text_is_neutralised(text):
    assert spreadsheet_safe(text) == "'" + text


@pytest.mark.parametrize("text", ["-0.25", "-1e-05", "+3", "-inf", "-0.12***", "0.5", "Oslo",
                                  "", "'=already"])  # fmt: skip
def test_numbers_and_plain_text_stay(text):
    assert spreadsheet_safe(text) == text


def test_frame_keeps_numbers_and_neutralises_text_labels_and_categories():
    frame = pd.DataFrame(
        {"region": pd.Categorical(["=cmd()", "Oslo"]), "name": ["@x", "y"], "v": [-1.5, 2.0]},
        index=pd.Index(["-a", "b"], name="=idx"),
    )
    safe = spreadsheet_safe_frame(frame)
    assert list(safe["region"]) == ["'=cmd()", "Oslo"]
    assert list(safe["name"]) == ["'@x", "y"]
    assert safe["v"].tolist() == [-1.5, 2.0] and safe["v"].dtype == float
    assert list(safe.index) == ["'-a", "b"]
    assert list(frame["region"]) == ["=cmd()", "Oslo"]  # the input frame is not changed


def test_table_csv_neutralises_a_region_named_like_a_formula():
    table = Table(
        id="t",
        title="Table",
        header=("", '=HYPERLINK("http://x","a")'),
        rows=(Row(label="=1+1", cells=(Cell(text="-0.25", stars="**"),)),),
        notes=("+note",),
    )
    cells = [c for row in csv.reader(io.StringIO(table_csv(table))) for c in row]
    assert '\'=HYPERLINK("http://x","a")' in cells
    assert "'=1+1" in cells and "'+note" in cells
    assert "-0.25**" in cells


def test_describe_csv_of_a_region_named_like_a_formula(tmp_path):
    from buzzpipe.cli import main

    survey = tmp_path / "s.csv"
    assert main(["synth", "--seed", "1", "--firms", "300", "--out", str(survey)]) == 0
    frame = pd.read_csv(survey)
    frame["region"] = frame["region"].replace({"Oslo": '=HYPERLINK("http://x","a")'})
    frame.to_csv(survey, index=False)
    out = tmp_path / "d.csv"
    assert main(["describe", str(survey), "--csv", str(out)]) == 0
    cells = [c for row in csv.reader(io.StringIO(out.read_text())) for c in row]
    assert '\'=HYPERLINK("http://x","a")' in cells
    assert '=HYPERLINK("http://x","a")' not in cells
