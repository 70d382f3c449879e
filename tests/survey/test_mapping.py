"""Mapping files: the two shipped examples on fixture files, and every mapping error.

Expected values are computed here straight from the raw columns and the codebook, not through
the mapping code.
"""

import numpy as np
import pandas as pd
import pyreadstat
import pytest
from norwegian_layout import PARTNER_CODES, SCALE_CODES, generate
from survey_builders import cis_frame

from buzzpipe.errors import InputError
from buzzpipe.survey import Survey, load_mapping, read_survey
from buzzpipe.survey.mapping import SHIPPED_MAPPINGS, RawTable

NORWAY = SHIPPED_MAPPINGS["norway"]
CIS = SHIPPED_MAPPINGS["cis"]


def plain(series: pd.Series) -> list:
    return [None if pd.isna(v) else v for v in series.astype("object")]


def yes_no(codes: pd.Series) -> list:
    """The codebook: 1 yes, 2 no, 9 don't know."""
    return [{1: 1, 2: 0, 9: None}[int(c)] for c in codes]


def test_norwegian_mapping_on_a_norwegian_layout_file_matches_the_codebook(norway_layout_csv):
    raw = pd.read_csv(norway_layout_csv)
    survey = read_survey(norway_layout_csv, mapping=NORWAY)
    analysis = survey.analysis_frame()
    assert survey.scales == ("regional", "national", "international")
    assert plain(analysis["product"]) == yes_no(raw["produkt"])
    assert plain(analysis["new_to_market"]) == yes_no(raw["nytt_marked"])
    regions = {1: "Oslo", 2: "Bergen", 3: "Stavanger", 4: "Trondheim", 5: "Kristiansand"}
    assert plain(analysis["region"]) == [regions[c] for c in raw["byregion"]]
    assert list(analysis["region"].cat.categories) == list(regions.values())
    assert survey.reference == {"region": "Oslo", "industry": "manufacturing"}
    for scale, place in SCALE_CODES.items():
        answers = raw[
            [f"samarb_{code}_{place}" for t, code in PARTNER_CODES.items() if t != "group"]
        ]
        yes = (answers == 1).sum(axis=1)
        all_unknown = (answers == 9).all(axis=1)
        expected = [None if u else int(y) for y, u in zip(yes, all_unknown, strict=True)]
        assert plain(analysis[f"breadth_{scale}"]) == expected
    by_name = read_survey(norway_layout_csv, mapping="norway")  # the shipped mapping's short name
    assert (analysis.columns == by_name.analysis_frame().columns).all()


def test_norwegian_mapping_on_an_spss_file_with_declared_missing_codes(tmp_path):
    raw = generate(n_firms=120, seed=7)
    path = tmp_path / "bedrifter.sav"
    yes_no_columns = [c for c in raw.columns if c.startswith("samarb_")] + [
        "produkt",
        "prosess",
        "nytt_marked",
    ]
    pyreadstat.write_sav(
        raw,
        path,
        variable_value_labels={
            "byregion": {1: "Oslo", 2: "Bergen", 3: "Stavanger", 4: "Trondheim", 5: "Kristiansand"},
            **{c: {1: "ja", 2: "nei", 9: "vet ikke"} for c in yes_no_columns},
        },
        missing_ranges={c: [9] for c in yes_no_columns},
    )
    csv = tmp_path / "bedrifter.csv"
    raw.to_csv(csv, index=False)
    from_sav = read_survey(path, mapping=NORWAY).analysis_frame()
    from_csv = read_survey(csv, mapping=NORWAY).analysis_frame()
    assert list(from_sav.columns) == list(from_csv.columns)
    for column in from_csv.columns:
        assert plain(from_sav[column]) == plain(from_csv[column]), column
    assert from_sav["new_to_market"].isna().sum() == (raw["nytt_marked"] == 9).sum()


def test_cis_mapping_on_a_stata_file_without_the_regional_scale(tmp_path):
    raw = cis_frame(150, seed=11)
    path = tmp_path / "cis.dta"
    pyreadstat.write_dta(
        raw, path, variable_value_labels={"nuts": {11: "NO01", 12: "NO02", 13: "NO03"}}
    )
    survey = read_survey(path, mapping=CIS)
    analysis = survey.analysis_frame()
    assert survey.scales == ("national", "international") and survey.local_scale == "national"
    assert list(analysis["region"].cat.categories) == ["NO01", "NO02", "NO03"]
    assert list(analysis["industry"].cat.categories) == [10, 25, 62, 72]  # lowest NACE first
    assert plain(analysis["product"]) == ((raw["inpdgd"] + raw["inpdsv"]) > 0).astype(int).tolist()
    process = (raw[["inpspd", "inpslg", "inpssu"]].sum(axis=1) > 0).astype(int)
    assert plain(analysis["process"]) == process.tolist()
    types = ["group", "suppliers", "customers", "competitors", "consultants", "universities"]
    types += ["research_institutes"]
    abroad = pd.DataFrame(
        {
            t: raw[[f"co{i}{loc}" for loc in (2, 3, 4, 5)]].max(axis=1)
            for i, t in enumerate(types, 1)
        }
    )
    home = pd.DataFrame({t: raw[f"co{i}1"] for i, t in enumerate(types, 1)})
    for t in types:
        assert plain(analysis[f"collab_international_{t}"]) == abroad[t].tolist()
    assert (
        plain(analysis["breadth_international"])
        == abroad.drop(columns="group").sum(axis=1).tolist()
    )
    local = home.drop(columns="group").sum(axis=1) > 0
    foreign = abroad.drop(columns="group").sum(axis=1) > 0
    regime = np.select(
        [~local & ~foreign, local & ~foreign, ~local & foreign],
        ["none", "local_only", "global_only"],
        "both",
    )
    assert plain(analysis["regime"]) == regime.tolist()
    np.testing.assert_allclose(analysis["weight"], raw["weight"])


def write_mapping(tmp_path, text: str):
    path = tmp_path / "mine.toml"
    path.write_text(text)
    return path


MINIMAL = """
[codes.yn]
1 = 1
2 = 0
9 = "missing"

[columns]
firm_id = "id"
region = "town"
industry = "sector"
employees = "staff"
foreign_share = "foreign"
product = { column = "newprod", codes = "yn" }
collab_regional_suppliers = { column = "sup_local", codes = "yn" }
"""


def minimal_data(tmp_path):
    frame = pd.DataFrame(
        {
            "id": [1, 2, 3],
            "town": ["A", "B", "A"],
            "sector": [1, 1, 2],
            "staff": [12, 40, 33],
            "foreign": [0, 0.5, 1],
            "newprod": [1, 2, 9],
            "sup_local": [2, 1, 1],
        }
    )
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    return frame, path


def test_a_minimal_mapping_with_dont_know_codes(tmp_path):
    _, data = minimal_data(tmp_path)
    survey = read_survey(data, mapping=write_mapping(tmp_path, MINIMAL))
    assert plain(survey.firms["product"]) == [1, 0, None]
    assert survey.scales == ("regional",) and survey.partner_types == ("suppliers",)
    # a survey from one scale has breadth but no regime
    assert "regime" not in survey.analysis_frame()


@pytest.mark.parametrize(
    ("text", "data_change", "pieces"),
    [
        (MINIMAL.replace('"staff"', '"staf"'), None, ["mine.toml", "'staf'", "not in"]),
        (MINIMAL, lambda f: f.assign(newprod=[1, 2, 3]), ["data.csv", "'newprod'", "row 3", "3"]),
        (MINIMAL.replace('codes = "yn" }\ncollab', 'codes = "ja_nei" }\ncollab'), None, ["ja_nei"]),
        (MINIMAL + "\n[columns.nonsense]\ncolumn = 'x'\n", None, ["nonsense", "not a column"]),
        (MINIMAL.replace("[columns]", "[columns"), None, ["not valid TOML"]),
        (
            MINIMAL.replace(
                'region = "town"', 'region = { column = "town", labels = { A = "a" } }'
            ),
            None,
            ["data.csv", "'town'", "without a label", "'B'"],
        ),
        (
            MINIMAL.replace('region = "town"', 'region = { column = "town", reference = "C" }'),
            None,
            ["reference category not found", "'C'"],
        ),
        ("[survey]\nscales = ['galactic']\n", None, ["galactic", "unknown name"]),
    ],
)
def test_mapping_errors_name_the_file_and_entry(tmp_path, text, data_change, pieces):
    frame, data = minimal_data(tmp_path)
    if data_change is not None:
        data_change(frame).to_csv(data, index=False)
    with pytest.raises(InputError) as error:
        read_survey(data, mapping=write_mapping(tmp_path, text))
    message = str(error.value)
    assert "\n" not in message
    for piece in pieces:
        assert piece in message


def test_shipped_mappings_load_and_name_what_they_map():
    norway, cis = load_mapping(NORWAY), load_mapping(CIS)
    assert norway.home_country == "NO" and cis.scales == ("national", "international")
    assert {r.target for r in cis.firm_rules} >= {"product", "collab_international_suppliers"}
    assert {r.target for r in norway.link_rules} == {
        "firm_id",
        "partner_id",
        "partner_type",
        "partner_region",
        "partner_country",
    }
    with pytest.raises(InputError, match="no such mapping file"):
        load_mapping("absent.toml")


def test_survey_from_mapped_frame_equals_from_frame():
    raw = generate(n_firms=50, seed=3)
    frame, reference = load_mapping(NORWAY).apply_firms(RawTable(raw, "raw"))
    survey = Survey.from_frame(frame, reference=reference)
    assert survey.reference["region"] == "Oslo"
