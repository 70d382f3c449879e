"""The surveys people have: semicolon-delimited with decimal commas, compressed, Excel, percent
shares, no foreign ownership, names with stray spaces or another spelling."""

import bz2
import gzip
import json
import zipfile

import numpy as np
import pandas as pd
import pytest

from buzzpipe.cli import main
from buzzpipe.errors import InputError
from buzzpipe.study.models import control_terms
from buzzpipe.survey import read_edge_list, read_survey
from buzzpipe.survey.readers import CsvDialect, read_table
from buzzpipe.synth import synthesize


@pytest.fixture(scope="module")
def survey_frame() -> pd.DataFrame:
    frame = synthesize("norway2010", 5, firms=300, edge_list=False).firms.copy()
    frame["foreign_share"] = np.round(np.linspace(0, 1, len(frame)), 4)  # decimals to read
    return frame.astype({c: object for c in ("region", "industry")})


def _variants(frame: pd.DataFrame, folder) -> dict[str, object]:
    plain = frame.to_csv(index=False)
    paths = {}
    paths["comma"] = folder / "s.csv"
    paths["comma"].write_text(plain)
    paths["semicolon-decimal-comma"] = folder / "s-excel.csv"
    frame.to_csv(paths["semicolon-decimal-comma"], sep=";", decimal=",", index=False)
    paths["semicolon"] = folder / "s-semi.csv"
    frame.to_csv(paths["semicolon"], sep=";", index=False)
    paths["tab"] = folder / "s.tsv"
    frame.to_csv(paths["tab"], sep="\t", index=False)
    paths["gzip"] = folder / "s.csv.gz"
    with gzip.open(paths["gzip"], "wt") as handle:
        handle.write(plain)
    paths["bz2"] = folder / "s.csv.bz2"
    with bz2.open(paths["bz2"], "wt") as handle:
        handle.write(plain)
    paths["zip"] = folder / "s.csv.zip"
    with zipfile.ZipFile(paths["zip"], "w") as archive:
        archive.writestr("survey.csv", plain)
    paths["xlsx"] = folder / "s.xlsx"
    frame.to_excel(paths["xlsx"], index=False)
    return paths


def test_every_variant_reads_as_the_same_survey(survey_frame, tmp_path):
    paths = _variants(survey_frame, tmp_path)
    expected = read_survey(paths["comma"]).analysis_frame()
    assert expected["foreign_share"].between(0, 1).all()
    for name, path in paths.items():
        got = read_survey(path).analysis_frame()
        pd.testing.assert_frame_equal(got, expected, check_dtype=False, obj=name)


def test_a_forced_wrong_delimiter_gets_a_hint(survey_frame, tmp_path):
    path = _variants(survey_frame, tmp_path)["semicolon-decimal-comma"]
    with pytest.raises(InputError, match="looks delimited by ';'.*--delimiter"):
        read_table(path, CsvDialect(","))
    assert main(["describe", str(path), "--delimiter", ","]) == 2


def test_decimal_comma_is_never_guessed_in_a_comma_file_but_can_be_said(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text('firm_id,foreign_share\n1,"0,5"\n2,"1,604"\n')
    assert read_table(path).frame["foreign_share"].tolist() == ["0,5", "1,604"]
    said = read_table(path, CsvDialect(",", ",")).frame["foreign_share"]
    assert said.tolist() == [0.5, 1.604]


def test_mapping_survey_delimiter_and_decimal(survey_frame, tmp_path):
    path = tmp_path / "s.txt.csv"
    survey_frame.to_csv(path, sep="|", decimal=",", index=False)
    mapping = tmp_path / "m.toml"
    mapping.write_text('[survey]\ndelimiter = "|"\ndecimal = ","\n')
    got = read_survey(path, mapping=mapping).analysis_frame()
    expected = read_survey(_variants(survey_frame, tmp_path)["comma"]).analysis_frame()
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    mapping.write_text('[survey]\ndelimiter = ":"\n')
    with pytest.raises(InputError, match="unknown \\[survey\\] delimiter"):
        read_survey(path, mapping=mapping)


def test_zip_with_two_files_is_refused(survey_frame, tmp_path):
    path = tmp_path / "two.csv.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.csv", "x\n1\n")
        archive.writestr("b.csv", "x\n1\n")
    with pytest.raises(InputError, match="holds 2 files"):
        read_table(path)


@pytest.mark.parametrize("rule", ["percent = true", "scale = 0.01"])
def test_percent_shares_through_the_mapping(survey_frame, tmp_path, rule):
    frame = survey_frame.assign(eierandel=survey_frame["foreign_share"] * 100).drop(
        columns="foreign_share"
    )
    path = tmp_path / "p.csv"
    frame.to_csv(path, index=False)
    mapping = tmp_path / "m.toml"
    mapping.write_text(f'[columns]\nforeign_share = {{ column = "eierandel", {rule} }}\n')
    got = read_survey(path, mapping=mapping).firms["foreign_share"].to_numpy()
    np.testing.assert_allclose(got, survey_frame["foreign_share"].to_numpy(), atol=1e-12)
    mapping.write_text('[columns]\nregion = { column = "region", percent = true }\n')
    with pytest.raises(InputError, match="not a number to scale"):
        read_survey(path, mapping=mapping)


def test_a_survey_without_foreign_share_is_modelled_without_it(survey_frame, tmp_path):
    path = tmp_path / "s.csv"
    survey_frame.drop(columns="foreign_share").to_csv(path, index=False)
    frame = read_survey(path).analysis_frame()
    terms, columns = control_terms(frame)
    assert "foreign_share" not in terms and "foreign_share" not in columns
    assert "C(region)" in terms


def test_names_are_trimmed_and_spelling_variants_matched_with_a_note(survey_frame, tmp_path):
    padded = survey_frame.assign(industry=survey_frame["industry"].map(lambda s: f"  {s} "))
    path = tmp_path / "padded.csv"
    padded.to_csv(path, index=False)
    expected = read_survey(_variants(survey_frame, tmp_path)["comma"])
    got = read_survey(path).firms["industry"]
    assert list(got) == list(expected.firms["industry"])
    cased = survey_frame.copy()
    cased.loc[cased.index[::5], "region"] = cased["region"].str.upper()
    cased.loc[cased.index[1], "industry"] = cased.loc[cased.index[1], "industry"].title()
    cased.to_csv(path, index=False)
    survey = read_survey(path)
    # one category per name, spelt as most firms spell it; never split in two
    assert list(survey.firms["region"]) == list(expected.firms["region"])
    assert list(survey.firms["industry"]) == list(expected.firms["industry"])
    assert list(survey.firms["region"].cat.categories) == list(
        expected.firms["region"].cat.categories
    )
    upper = int((cased["region"] == "BERGEN").sum())
    (region_note,) = [note for note in survey.notes if "column 'region'" in note]
    assert "differ only in case, accents or spaces" in region_note
    assert f"'BERGEN' read as 'Bergen' ({upper} firms)" in region_note
    assert any("column 'industry'" in note for note in survey.notes)
    # the note reaches the results, and the numbers are those of the one-spelling file
    from buzzpipe.study.battery import run_study

    quick = {"outcomes": ["product"], "sensitivity": False, "heterogeneity": False,
             "scenarios": ()}  # fmt: skip
    results = run_study(survey, **quick)
    assert region_note in [note.text for note in results.meta.notes]
    same = run_study(expected, **quick)
    assert results.models["product"]["controls"].terms == same.models["product"]["controls"].terms


def test_accent_variants_are_one_category(survey_frame, tmp_path):
    frame = survey_frame.copy()
    frame["industry"] = frame["industry"].astype(str)
    first = frame["industry"].iloc[0]
    frame.loc[frame["industry"] == first, "industry"] = "Café"
    frame.loc[frame.index[frame["industry"] == "Café"][:2], "industry"] = "cafe"
    path = tmp_path / "accents.csv"
    frame.to_csv(path, index=False)
    survey = read_survey(path)
    assert "cafe" not in set(survey.firms["industry"].cat.categories)
    assert any("'cafe' read as 'Café' (2 firms)" in note for note in survey.notes)


def test_partner_region_in_another_case_is_matched_not_made_national(tmp_path):
    firms = pd.DataFrame({"firm_id": [1, 2, 3], "region": ["Bergen", "Oslo", "Bergen"],
                          "country": "NO", "industry": "retail", "employees": 10,
                          "foreign_share": 0.0, "product": [1, 0, 1]})  # fmt: skip
    links = pd.DataFrame({"firm_id": [1, 2], "partner_id": [9, 10],
                          "partner_type": "suppliers", "partner_region": ["bergen", "Oslo"],
                          "partner_country": "NO"})  # fmt: skip
    firms.to_csv(tmp_path / "f.csv", index=False)
    links.to_csv(tmp_path / "l.csv", index=False)
    survey = read_edge_list(tmp_path / "f.csv", tmp_path / "l.csv")
    # firm 1's partner in "bergen" is in its own region: regional, not national
    assert survey.firms.loc[0, "collab_regional_suppliers"] == 1
    assert survey.firms.loc[0, "collab_national_suppliers"] == 0
    (note,) = [n for n in survey.notes if "partner_region" in n]
    assert "'bergen' read as 'Bergen' (1 link)" in note


def test_analyze_writes_the_same_numbers_from_semicolon_csv_excel_and_gzip(
    survey_frame, tmp_path, capsys
):
    paths = _variants(survey_frame, tmp_path)
    fast = ["--no-sensitivity", "--no-heterogeneity", "--no-counterfactuals",
            "--progress", "never"]  # fmt: skip
    numbers = {}
    for name in ("semicolon-decimal-comma", "xlsx", "gzip"):
        out = tmp_path / f"out-{name}"
        assert main(["analyze", str(paths[name]), "--out", str(out), *fast]) == 0
        results = json.loads((out / "results.json").read_text())
        results["meta"].pop("source")
        results["meta"].pop("title")
        numbers[name] = results
    assert numbers["xlsx"] == numbers["semicolon-decimal-comma"]
    assert numbers["gzip"] == numbers["semicolon-decimal-comma"]
    assert numbers["gzip"]["models"]
