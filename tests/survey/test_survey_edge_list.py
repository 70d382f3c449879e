"""Edge-list surveys: links classified into scales, the collaboration matrix, pipeline exposure.

A small network worked out by hand: every expected number below is counted from the link table.
"""

import numpy as np
import pandas as pd
import pytest
from norwegian_layout import write_edge_list
from survey_builders import network

from buzzpipe.errors import InputError
from buzzpipe.survey import Survey, read_edge_list
from buzzpipe.survey.mapping import SHIPPED_MAPPINGS


def plain(series: pd.Series) -> list:
    """Values as Python objects, None for missing."""
    return [None if pd.isna(v) else v for v in series.astype("object")]


def test_links_are_classified_against_the_firms_own_region_and_country():
    firms, links = network()
    survey = Survey.from_frame(firms, links, home_country="NO")
    scales = [None if pd.isna(s) else s for s in survey.links["scale"]]
    assert scales == [
        "regional",
        "national",
        "international",
        None,
        "regional",
        "regional",
        "regional",
        "regional",
        "international",
        "national",
        None,
    ]
    matrix = survey.firms.set_index("firm_id")
    first = matrix.loc[1]
    assert first["collab_regional_suppliers"] == 1
    assert first["collab_national_customers"] == 1
    assert first["collab_international_universities"] == 1
    assert first["collab_regional_competitors"] == 1
    assert first["collab_regional_group"] == 1
    # region unknown inside Norway: regional and national unknown, abroad known to be no
    assert pd.isna(first["collab_regional_consultants"])
    assert pd.isna(first["collab_national_consultants"])
    assert first["collab_international_consultants"] == 0
    assert first["collab_international_suppliers"] == 0
    third = matrix.loc[3]
    assert third["collab_national_customers"] == 1
    for scale in ("regional", "national", "international"):
        assert pd.isna(third[f"collab_{scale}_research_institutes"])
    fourth = matrix.loc[4]
    assert (fourth.filter(like="collab_") == 0).all()


def test_pipeline_exposure_through_regional_partners():
    firms, links = network()
    analysis = Survey.from_frame(firms, links, home_country="NO").analysis_frame()
    analysis = analysis.set_index("firm_id")
    assert analysis["any_international"].tolist() == [1, 1, 0, 0]
    # firm 1's regional partners (group left out): 2 (pipeline), 4 (none), ext-d and one without
    # an id (unknown): exposure 1 of 2 known, unknown share 2 of 4
    assert analysis.loc[1, "pipeline_exposure"] == pytest.approx(0.5)
    assert analysis.loc[1, "pipeline_exposure_unknown_share"] == pytest.approx(0.5)
    for firm in (2, 3, 4):  # no regional partners
        assert np.isnan(analysis.loc[firm, "pipeline_exposure"])
        assert np.isnan(analysis.loc[firm, "pipeline_exposure_unknown_share"])
    # breadth: firm 1 regional = suppliers + competitors (consultants unknown, group left out)
    assert analysis.loc[1, "breadth_regional"] == 2
    assert analysis.loc[1, "breadth_regional_with_group"] == 3


def test_exposure_is_zero_when_no_regional_partner_has_a_pipeline():
    firms, links = network()
    links = links[links["partner_type"] != "suppliers"]  # firm 2 loses its pipeline
    analysis = Survey.from_frame(firms, links, home_country="NO").analysis_frame()
    first = analysis.set_index("firm_id").loc[1]
    # regional partners now: 4 (known, no pipeline) -> exposure 0; nothing unknown
    assert first["pipeline_exposure"] == 0
    assert first["pipeline_exposure_unknown_share"] == 0


def test_without_a_regional_scale_own_country_links_are_national():
    firms, links = network()
    survey = Survey.from_frame(
        firms, links, home_country="NO", scales=("national", "international")
    )
    scales = [None if pd.isna(s) else s for s in survey.links["scale"]]
    assert scales[:6] == ["national", "national", "international", "national"] + ["national"] * 2
    first = survey.analysis_frame().set_index("firm_id").loc[1]
    assert first["collab_national_consultants"] == 1
    # exposure runs through the local (here: national) partners: 2 yes, 3 no, 4 no of 3 known
    assert first["pipeline_exposure"] == pytest.approx(1 / 3)


def test_firm_country_column_overrides_home_country():
    firms, links = network()
    firms["country"] = ["SE", "NO", "NO", "NO"]
    survey = Survey.from_frame(firms, links, home_country="NO")
    first = survey.firms.set_index("firm_id").loc[1]
    # firm 1 is Swedish: its Norwegian partners are abroad
    assert first["collab_international_suppliers"] == 1
    assert first["collab_regional_suppliers"] == 0


@pytest.mark.parametrize(
    ("change", "pieces"),
    [
        (lambda links: links.assign(firm_id=[*links.firm_id[:-1], 99]), ["unknown firm", "row 11"]),
        (
            lambda links: links.assign(partner_type=["banks", *links.partner_type[1:]]),
            ["unknown partner type", "'banks'", "row 1"],
        ),
        (lambda links: links.drop(columns="partner_country"), ["missing column"]),
    ],
)
def test_link_errors_name_the_links_file(change, pieces):
    firms, links = network()
    with pytest.raises(InputError) as error:
        Survey.from_frame(
            firms, change(links), home_country="NO", source="firms.csv", links_source="links.csv"
        )
    message = str(error.value)
    assert message.startswith("links.csv")
    for piece in pieces:
        assert piece in message


def test_links_need_a_country_and_no_collaboration_columns_in_the_firms_file():
    firms, links = network()
    with pytest.raises(InputError, match="own country"):
        Survey.from_frame(firms, links)
    with pytest.raises(InputError, match="takes collaboration from its links"):
        Survey.from_frame(firms.assign(collab_regional_suppliers=1), links, home_country="NO")


def test_edge_list_files_through_the_norwegian_mapping(tmp_path):
    firms, links = network()
    firms_file, links_file = write_edge_list(tmp_path)
    survey = read_edge_list(firms_file, links_file, mapping=SHIPPED_MAPPINGS["norway"])
    expected = Survey.from_frame(firms, links, home_country="NO")
    got = survey.analysis_frame()
    want = expected.analysis_frame()
    assert plain(got["product"]) == [1, 0, 1, None]
    for column in ("breadth_regional", "any_international", "regime"):
        assert plain(got[column]) == plain(want[column])
    np.testing.assert_allclose(got["pipeline_exposure"], want["pipeline_exposure"])
    assert list(got["region"].cat.categories) == ["Oslo", "Bergen"]
    assert plain(survey.links["scale"]) == plain(expected.links["scale"])


def test_exposure_counts_a_surveyed_partner_with_a_missing_answer_as_unknown():
    from buzzpipe.survey.edge_list import pipeline_exposure

    links = pd.DataFrame(
        {
            "firm_id": [1, 1, 1, 2],
            "partner_id": ["2", "3", "4", "1"],
            "partner_type": ["suppliers", "customers", "suppliers", "suppliers"],
            "scale": ["regional", "regional", "regional", "national"],
        }
    )
    firm_keys = pd.Series(["1", "2", "3", "4"])
    has_pipeline = pd.Series([1, 1, pd.NA, 0], dtype="Int8")  # firm 3's answer is missing
    exposure = pipeline_exposure(links, firm_keys, has_pipeline, local_scale="regional")
    # firm 1: partners 2 (yes), 3 (unknown), 4 (no): 1 of 2 known, 1 of 3 unknown
    assert exposure.loc[0].tolist() == pytest.approx([0.5, 1 / 3])
    assert exposure.loc[1:].isna().all().all()
