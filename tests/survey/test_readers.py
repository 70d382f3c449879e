"""Readers: every format round-trips to the same survey; unreadable files are one-line errors."""

import numpy as np
import pandas as pd
import pyreadstat
import pytest
from survey_builders import LABELS, canonical_frame, stata_ready

from buzzpipe.errors import InputError
from buzzpipe.survey import Survey, read_survey
from buzzpipe.survey.readers import iter_tables


def assert_same_survey(got: Survey, want: Survey) -> None:
    got_frame, want_frame = got.analysis_frame(), want.analysis_frame()
    assert list(got_frame.columns) == list(want_frame.columns)
    for column in want_frame.columns:
        got_values = [None if pd.isna(v) else v for v in got_frame[column].astype("object")]
        want_values = [None if pd.isna(v) else v for v in want_frame[column].astype("object")]
        assert got_values == want_values, column
    assert got.reference == want.reference


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".dta", ".sav"])
def test_every_format_round_trips_to_the_same_survey(tmp_path, suffix):
    frame = canonical_frame(n=40, seed=3)
    if suffix == ".dta":
        # Stata names hold at most 32 characters: collab_international_research_institutes
        # does not fit, so Stata users name their columns through a mapping
        frame = frame[[c for c in frame.columns if len(c) <= 32]]
    want = Survey.from_frame(frame)
    path = tmp_path / f"survey{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".parquet":
        frame.to_parquet(path)
    elif suffix == ".dta":
        pyreadstat.write_dta(stata_ready(frame), path, variable_value_labels=LABELS)
    else:
        pyreadstat.write_sav(stata_ready(frame), path, variable_value_labels=LABELS)
    got = read_survey(path)
    assert got.source == str(path)
    assert_same_survey(got, want)


def test_sav_user_missing_codes_and_value_labels(tmp_path):
    frame = stata_ready(canonical_frame(n=30, seed=5, unknown_rate=0))
    dont_know = [2, 7, 11]
    frame.loc[dont_know, "collab_regional_suppliers"] = 9
    frame.loc[dont_know, "process"] = 9
    path = tmp_path / "survey.sav"
    labels = {
        **LABELS,
        "process": {0: "no", 1: "yes", 9: "don't know"},
        "industry": {4: "services", 1: "manufacturing", 2: "construction", 3: "retail"},
    }
    pyreadstat.write_sav(
        frame,
        path,
        variable_value_labels=labels,
        missing_ranges={"collab_regional_suppliers": [9], "process": [9]},
    )
    firms = read_survey(path).firms
    # the declared missing code 9 reads as "don't know", the others as they were
    assert firms["collab_regional_suppliers"].isna().to_numpy().nonzero()[0].tolist() == dont_know
    assert firms["process"].isna().sum() == 3
    # value labels name the categories, in the order of their codes (lowest code = reference)
    assert list(firms["region"].cat.categories) == list(LABELS["region"].values())
    assert list(firms["industry"].cat.categories) == [
        "manufacturing",
        "construction",
        "retail",
        "services",
    ]
    # without the declaration, 9 is an ordinary (invalid) answer and is reported
    pyreadstat.write_sav(frame, tmp_path / "undeclared.sav")
    with pytest.raises(
        InputError,
        match=r"undeclared.sav, column 'process', rows 3, 8, 12: not a 0/1 value \(got 9\)",
    ):
        read_survey(tmp_path / "undeclared.sav")


def test_dta_extended_missing_values_are_missing(tmp_path):
    frame = canonical_frame(n=10, seed=1, unknown_rate=0)
    frame = frame[[c for c in frame.columns if len(c) <= 32]]
    column = frame["collab_international_customers"].astype("object")
    column[[0, 4]] = "a"  # Stata's .a
    frame["collab_international_customers"] = column
    path = tmp_path / "survey.dta"
    pyreadstat.write_dta(
        stata_ready(frame),
        path,
        missing_user_values={"collab_international_customers": ["a"]},
        variable_value_labels=LABELS,
    )
    firms = read_survey(path).firms
    assert firms["collab_international_customers"].isna().to_numpy().nonzero()[0].tolist() == [0, 4]


def test_latin1_csv_is_read(tmp_path):
    frame = canonical_frame(n=10, seed=2)
    frame["region"] = np.where(frame["region"] == "Oslo", "Tromsø", frame["region"])
    path = tmp_path / "latin1.csv"
    path.write_bytes(frame.to_csv(index=False).encode("latin-1"))
    assert "Tromsø" in read_survey(path).firms["region"].cat.categories


def test_parquet_batches_number_rows_of_the_whole_file(tmp_path):
    frame = canonical_frame(n=50, seed=4)
    path = tmp_path / "survey.parquet"
    frame.to_parquet(path, row_group_size=16)
    starts = [table.first_row for table in iter_tables(path, batch_rows=16)]
    assert starts == [1, 17, 33, 49]
    frame.loc[40, "foreign_share"] = 3.0
    frame.to_parquet(path, row_group_size=16)
    from buzzpipe.survey.readers import describe_file

    with pytest.raises(InputError, match="row 41"):
        describe_file(path, batch_rows=16)


def unreadable_message(path) -> str:
    with pytest.raises(InputError) as error:
        read_survey(path)
    message = str(error.value)
    assert "\n" not in message and str(path) in message
    return message


def test_unreadable_files_are_one_line_errors(tmp_path):
    frame = canonical_frame(n=200, seed=6)
    frame = frame[[c for c in frame.columns if len(c) <= 32]]
    good = {}
    for suffix in (".parquet", ".dta", ".sav"):
        good[suffix] = tmp_path / f"good{suffix}"
    frame.to_parquet(good[".parquet"])
    pyreadstat.write_dta(stata_ready(frame), good[".dta"])
    pyreadstat.write_sav(stata_ready(frame), good[".sav"])
    for suffix, path in good.items():
        data = path.read_bytes()
        truncated = tmp_path / f"truncated{suffix}"
        truncated.write_bytes(data[: len(data) // 2])
        assert "cannot read" in unreadable_message(truncated) or "row" in unreadable_message(
            truncated
        )
        garbage = tmp_path / f"garbage{suffix}"
        garbage.write_bytes(bytes(range(256)) * 4)
        assert "cannot read" in unreadable_message(garbage)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert "empty file" in unreadable_message(empty)
    header_only = tmp_path / "header.csv"
    header_only.write_text(",".join(frame.columns) + "\n")
    assert "no firms" in unreadable_message(header_only)
    assert "no such file" in unreadable_message(tmp_path / "absent.csv")
    assert "unknown file type" in unreadable_message(tmp_path / "survey.numbers")
    repeated = tmp_path / "repeated.csv"
    repeated.write_text(",".join([*frame.columns, "product"]) + "\n")
    assert "'product': duplicate column name" in unreadable_message(repeated)
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("firm_id,region\n1,Oslo\n2,Oslo,extra,cells\n")
    assert "cannot read as CSV" in unreadable_message(ragged)
