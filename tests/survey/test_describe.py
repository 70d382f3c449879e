"""The descriptive table: numbers checked against a direct pandas computation; streaming equals
reading whole; the command line prints it, writes CSV atomically, and fails in one line."""

import numpy as np
import pandas as pd
import pyreadstat
import pytest
from survey_builders import LABELS, REGIONS, canonical_frame, cis_frame, network, stata_ready

import buzzpipe.survey.describe as describe_module
from buzzpipe.cli import main
from buzzpipe.errors import InputError
from buzzpipe.survey import Survey, column_types, read_survey
from buzzpipe.survey.describe import ALL
from buzzpipe.survey.readers import describe_file
from buzzpipe.survey.schema import PARTNER_TYPES, SCALES


def test_table_matches_a_direct_computation():
    frame = canonical_frame(n=300, seed=8, unknown_rate=0.15)
    survey = Survey.from_frame(frame)
    table = survey.describe().sort_index()  # sorted for lookups; the table's own order is kept
    analysis = survey.analysis_frame()
    by_region = analysis.groupby("region", observed=True)
    regions = list(analysis["region"].cat.categories)
    assert list(table.columns) == [ALL, *regions]
    counts = table.xs(("firms", "firms", "count"))
    assert counts[ALL] == 300
    assert [counts[r] for r in regions] == [int(by_region.size()[r]) for r in regions]
    crosstab = pd.crosstab(analysis["industry"], analysis["region"])
    for industry in crosstab.index:
        row = table.xs(("firms by industry", str(industry), "count"))
        for region in regions:
            assert row[region] == crosstab.loc[industry, region]
    for scale in SCALES:
        flag = analysis[f"any_{scale}"].astype("float64")  # NaN for unknown
        row = table.loc[("collaboration",)].filter(like=f"({scale})", axis=0).iloc[0]
        assert row[ALL] == pytest.approx(flag.mean())
        for region in regions:
            assert row[region] == pytest.approx(flag[analysis["region"] == region].mean())
        breadth = analysis[f"breadth_{scale}"].astype("float64")
        row = table.xs(("breadth (partner types, group left out)", scale, "mean"))
        assert row[ALL] == pytest.approx(breadth.mean())
        for partner_type in PARTNER_TYPES:
            answers = analysis[f"collab_{scale}_{partner_type}"].astype("float64")
            row = table.xs(("partner type by scale", f"{scale}: {partner_type}", "share"))
            assert row[ALL] == pytest.approx(answers.mean())
    regime = analysis["regime"]
    for name in ("none", "local_only", "global_only", "both"):
        row = table.xs(("regime", name, "share"))
        assert row[ALL] == pytest.approx((regime[regime.notna()] == name).mean())
    for outcome in ("product", "process", "new_to_market"):
        row = table.xs(("innovation", outcome, "share"))
        values = analysis[outcome].astype("float64")
        assert row[ALL] == pytest.approx(values.mean())
        assert row[regions[-1]] == pytest.approx(values[analysis["region"] == regions[-1]].mean())
    suppliers = analysis[[f"collab_{s}_suppliers" for s in SCALES]].astype("float64")
    any_scale = np.where(
        (suppliers == 1).any(axis=1), 1.0, np.where((suppliers == 0).all(axis=1), 0.0, np.nan)
    )
    assert table.xs(("partner type, any scale", "suppliers", "share"))[ALL] == pytest.approx(
        np.nanmean(any_scale)
    )


@pytest.mark.parametrize("declared", [False, True])
def test_streaming_parquet_equals_reading_whole(tmp_path, declared):
    frame = canonical_frame(n=230, seed=9)
    # the first batch holds no Bergen firm and no industry 1: order must still be by the rule
    frame = frame.sort_values(["region", "industry"], ascending=False, kind="stable")
    frame = frame.reset_index(drop=True)
    if declared:
        frame["region"] = pd.Categorical(frame["region"], categories=REGIONS)
    path = tmp_path / "survey.parquet"
    frame.to_parquet(path, row_group_size=50)
    streamed = describe_file(path, batch_rows=37)
    whole = Survey.from_frame(frame).describe()
    pd.testing.assert_frame_equal(streamed, whole)
    expected_regions = REGIONS if declared else sorted(REGIONS)
    assert list(whole.columns[1:]) == expected_regions


def test_streaming_csv_equals_reading_whole(tmp_path):
    frame = canonical_frame(n=230, seed=13)
    frame = frame.sort_values("region", ascending=False, kind="stable").reset_index(drop=True)
    frame["firm_id"] = frame["firm_id"].astype("object")
    frame.loc[frame.index[-5:], "firm_id"] = ["a1", "a2", "a3", "a4", "a5"]  # text ids, late
    path = tmp_path / "survey.csv"
    frame.to_csv(path, index=False)
    streamed = describe_file(path, batch_rows=40)
    whole = Survey.from_frame(pd.read_csv(path)).describe()
    pd.testing.assert_frame_equal(streamed, whole)
    # the same id as text in one batch and as a number in another is a duplicate
    frame.loc[200, "firm_id"] = str(frame.loc[3, "firm_id"])
    frame.to_csv(path, index=False)
    with pytest.raises(InputError, match="rows 4, 201: duplicate firm id"):
        describe_file(path, batch_rows=40)


def test_streaming_stata_and_spss_equals_reading_whole(tmp_path):
    frame = stata_ready(canonical_frame(n=120, seed=14))
    frame = frame[[c for c in frame.columns if len(c) <= 32]]
    for suffix, write in ((".dta", pyreadstat.write_dta), (".sav", pyreadstat.write_sav)):
        path = tmp_path / f"survey{suffix}"
        write(frame, path, variable_value_labels=LABELS)
        streamed = describe_file(path, batch_rows=25)
        pd.testing.assert_frame_equal(streamed, read_survey(path).describe())
        assert list(streamed.columns[1:]) == list(LABELS["region"].values())


def test_a_parquet_file_without_rows_has_no_firms(tmp_path):
    path = tmp_path / "empty.parquet"
    canonical_frame(n=5).iloc[:0].to_parquet(path)
    with pytest.raises(InputError, match="empty.parquet: no firms"):
        describe_file(path)


def test_duplicate_ids_across_batches_are_found(tmp_path):
    frame = canonical_frame(n=100, seed=10)
    frame.loc[90, "firm_id"] = frame.loc[5, "firm_id"]
    path = tmp_path / "survey.parquet"
    frame.to_parquet(path)
    with pytest.raises(InputError, match="rows 6, 91: duplicate firm id"):
        describe_file(path, batch_rows=20)


@pytest.mark.parametrize("kind", ["integers", "nullable integers", "text", "categories"])
def test_id_hashes_made_step_by_step_equal_the_whole_columns(monkeypatch, kind):
    # the ids hashed a few at a time (the text of each id a Python object only while its step
    # is hashed) give the hashes of the whole column's text at once, as before the steps
    rng = np.random.default_rng(3)
    numbers = rng.integers(-(10**12), 10**12, size=103)
    ids = {
        "integers": pd.Series(numbers),
        "nullable integers": pd.Series(numbers, dtype="Int64"),
        "text": pd.Series([f" f{n} " for n in numbers]),
        "categories": pd.Series([f"f{n % 17}" for n in numbers], dtype="category"),
    }[kind]
    whole = (
        ids.astype("int64").astype(str)
        if pd.api.types.is_integer_dtype(ids)
        else column_types.id_keys(ids)
    )
    expected = pd.util.hash_pandas_object(whole, index=False).to_numpy()
    monkeypatch.setattr(describe_module, "ROWS_PER_STEP", 10)
    found = describe_module._id_hashes(ids)
    assert found.dtype == expected.dtype and np.array_equal(found, expected)
    # the same id as an integer and as text hashes alike
    if kind == "integers":
        text = describe_module._id_hashes(pd.Series([str(n) for n in numbers]))
        assert np.array_equal(text, expected)


def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_command_line_describes_the_builtin_survey_and_writes_csv(tmp_path, capsys):
    out_csv = tmp_path / "table.csv"
    code, out, err = run(["describe", "--builtin", "--csv", str(out_csv)], capsys)
    assert code == 0 and err == ""
    assert "Oslo" in out and "Kristiansand" in out and "local_only" in out
    written = pd.read_csv(out_csv, index_col=[0, 1, 2])
    assert written.loc[("firms", "firms", "count"), ALL] == 1604  # the norway2010 preset
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]


def test_command_line_errors_are_one_line_and_leave_outputs_alone(tmp_path, capsys):
    frame = canonical_frame(n=20, seed=12)
    frame.loc[3, "foreign_share"] = 7
    data = tmp_path / "bad.csv"
    frame.to_csv(data, index=False)
    before = data.read_bytes()
    out_csv = tmp_path / "table.csv"
    out_csv.write_text("previous table")
    code, out, err = run(["describe", str(data), "--csv", str(out_csv)], capsys)
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "bad.csv, column 'foreign_share', row 4" in err and "(got 7)" in err
    assert out_csv.read_text() == "previous table"
    assert data.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "table.csv"]
    code, _, err = run(["describe"], capsys)
    assert code == 2 and "--builtin" in err


def test_command_line_reads_edge_lists_and_named_mappings(tmp_path, capsys, norway_layout_csv):
    firms, links = network()
    firms["country"] = "NO"
    firms_file, links_file = tmp_path / "firms.csv", tmp_path / "links.csv"
    firms.to_csv(firms_file, index=False)
    links.to_csv(links_file, index=False)
    code, out, err = run(["describe", str(firms_file), "--links", str(links_file)], capsys)
    assert code == 0, err
    assert "pipeline_exposure" in out
    code, out, _ = run(["describe", str(norway_layout_csv), "--mapping", "norway"], capsys)
    assert code == 0 and "Trondheim" in out


def test_command_line_with_the_cis_mapping_says_local_means_own_country(tmp_path, capsys):
    path = tmp_path / "cis.dta"
    pyreadstat.write_dta(cis_frame(80, seed=2), path)
    code, out, err = run(["describe", str(path), "--mapping", "cis"], capsys)
    assert code == 0, err
    assert "note: no regional scale: local means own country (national)" in out
    assert "(regional)" not in out and "(national)" in out
