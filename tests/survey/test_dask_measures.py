"""Edge-list classification on Dask: the same collaboration answers as reading the links whole."""

import pandas as pd

from buzzpipe.survey import edge_list
from buzzpipe.survey.column_types import id_keys
from buzzpipe.survey.dask_measures import collaboration_on_dask
from buzzpipe.survey.schema import PARTNER_TYPES as TYPES
from buzzpipe.survey.schema import SCALES
from buzzpipe.synth.preset import load_preset
from buzzpipe.synth.write import write_survey


def test_links_classified_on_dask_give_the_in_memory_answers(tmp_path, dask_client) -> None:
    write_survey(
        load_preset("norway2010"),
        5,
        tmp_path / "firms.parquet",
        links_path=tmp_path / "links.parquet",
        firms=20_000,
        block_firms=5_000,
    )
    firms = pd.read_parquet(tmp_path / "firms.parquet")
    links = pd.read_parquet(tmp_path / "links.parquet")
    directory = edge_list.FirmDirectory(
        id_keys(firms["firm_id"]), firms["region"], firms["country"].astype("object")
    )
    whole = edge_list.CollaborationCounts(len(firms), scales=SCALES, partner_types=TYPES)
    canonical = edge_list.validate_links(links, directory, TYPES, source="links")
    whole.add(canonical, edge_list.classify_links(canonical, directory, scales=SCALES))
    on_dask = collaboration_on_dask(
        tmp_path / "links.parquet",
        directory,
        scales=SCALES,
        partner_types=TYPES,
        client=dask_client,
    )
    expected = whole.matrix()
    assert len(links) > 20_000 and int((expected == 1).sum().sum()) > 0
    pd.testing.assert_frame_equal(on_dask.matrix(), expected)


def test_an_edge_list_survey_read_on_dask_is_the_survey_read_whole(tmp_path, dask_client) -> None:
    """Collaboration answers, breadth, regimes and pipeline exposure through local partners:
    the links classified partition by partition on the cluster give the same analysis frame."""
    from buzzpipe.survey import read_edge_list

    write_survey(
        load_preset("norway2010"),
        6,
        tmp_path / "firms.parquet",
        links_path=tmp_path / "links.parquet",
        firms=3_000,
        block_firms=1_000,
    )
    whole = read_edge_list(tmp_path / "firms.parquet", tmp_path / "links.parquet")
    on_dask = read_edge_list(
        tmp_path / "firms.parquet", tmp_path / "links.parquet", client=dask_client
    )
    expected = whole.analysis_frame()
    assert expected["pipeline_exposure"].notna().sum() > 100
    pd.testing.assert_frame_equal(on_dask.analysis_frame(), expected)
