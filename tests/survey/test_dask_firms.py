"""A Parquet firms file read and checked on the Dask workers (``survey/dask_firms.py``): the
survey a whole read makes, the same one-line errors for bad values in any partition, and no
firm table or firm directory on the client."""

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

import buzzpipe as bp
from buzzpipe.errors import InputError
from buzzpipe.study.engine import StudyEngine
from buzzpipe.survey import edge_list, read_edge_list, read_survey, readers

FILES = 3


def _firm_level(seed: int = 3, firms: int = 1_200) -> pd.DataFrame:
    """A firm-level survey with its categories as plain text: a spelling variant ("oslo ")
    in the last file only, merged over the whole file."""
    frame = bp.synthesize("norway2010", seed=seed, firms=firms, edge_list=False).firms
    frame["region"] = frame["region"].astype("object")
    frame["industry"] = frame["industry"].astype("object")
    last = frame.index[-firms // FILES :]
    oslo = last[frame.loc[last, "region"].eq("Oslo").to_numpy()][:7]
    frame.loc[oslo, "region"] = "oslo "
    return frame


def _edge_list(seed: int = 4, firms: int = 1_500) -> tuple[pd.DataFrame, pd.DataFrame]:
    drawn = bp.synthesize("norway2010", seed=seed, firms=firms)
    frame = drawn.firms.loc[:, ~drawn.firms.columns.str.startswith("collab_")].copy()
    frame["region"] = frame["region"].astype("object")
    frame["country"] = frame["country"].astype("object")
    return frame, drawn.links


def _write(frame: pd.DataFrame, folder, sizes=None):
    """The frame in FILES Parquet files of a folder (sizes: rows of each but the last)."""
    folder.mkdir(exist_ok=True)
    bounds = np.cumsum([0, *(sizes or [len(frame) // FILES] * (FILES - 1))]).tolist()
    bounds.append(len(frame))
    for number, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        frame.iloc[start:stop].to_parquet(folder / f"part-{number}.parquet", index=False)
    return folder


def _same_survey(found, expected) -> None:
    pd.testing.assert_frame_equal(found.analysis_frame(), expected.analysis_frame())
    assert found.notes == expected.notes
    assert found.spellings == expected.spellings
    assert found.category_rules == expected.category_rules
    assert found.reference == expected.reference
    assert (found.scales, found.partner_types) == (expected.scales, expected.partner_types)
    assert len(found) == len(expected)


def _on_client_refused(monkeypatch) -> None:
    """The firms file read whole, or the firm directory made, on the client: a failure (the
    workers are other processes, their modules intact)."""

    def read_here(*args, **kwargs):
        raise AssertionError("the firms file was read on the client")

    def directory_here(self, *args):
        raise AssertionError("the firm directory was made on the client")

    monkeypatch.setattr(readers, "read_table", read_here)
    monkeypatch.setattr(edge_list.FirmDirectory, "__init__", directory_here)


def test_a_firm_level_file_read_on_the_workers_is_the_file_read_whole(
    tmp_path, dask_client, monkeypatch
) -> None:
    """Three files (ids, categories and a spelling variant spanning them): the survey a whole
    read gives (frame, notes, merged spellings, references); its table kept on the workers
    in partitions of its own, the analysis frame derived there in pieces that span them."""
    folder = _write(_firm_level(), tmp_path / "firms")
    expected = read_survey(folder)
    assert expected.notes and "'oslo' read as 'Oslo' (7 firms)" in expected.notes[0]
    _on_client_refused(monkeypatch)
    found = read_survey(folder, client=dask_client)
    assert found._firms is None and len(found._parts.futures) == FILES
    assert found.notes == expected.notes and found.spellings == expected.spellings
    engine = StudyEngine("dask", _client=dask_client, partition_rows=500)
    found.keep_on(engine)
    try:
        _client_copy, kept, bounds = engine._frame
        assert kept.npartitions == 3 and list(bounds) == [0, 400, 800, 1_200]
        sent = dd.from_pandas(expected.analysis_frame(), npartitions=1, sort=False)
        pd.testing.assert_frame_equal(
            dask_client.compute(kept).result(), sent.compute(scheduler="sync"), check_exact=True
        )
    finally:
        engine.close()
    monkeypatch.undo()
    _same_survey(read_survey(folder, client=dask_client), expected)


def test_an_edge_list_read_on_the_workers_is_the_survey_read_whole(
    tmp_path, dask_client, monkeypatch
) -> None:
    """Firms in three files of unequal sizes, links in one: the firm directory made on the
    workers from the checked partitions classifies the links as the whole read does."""
    firms, links = _edge_list()
    folder = _write(firms, tmp_path / "firms", sizes=[300, 700])
    links.to_parquet(tmp_path / "links.parquet", index=False)
    expected = read_edge_list(folder, tmp_path / "links.parquet")
    assert expected.analysis_frame()["pipeline_exposure"].notna().sum() > 100
    _on_client_refused(monkeypatch)
    found = read_edge_list(folder, tmp_path / "links.parquet", client=dask_client)
    engine = StudyEngine("dask", _client=dask_client, partition_rows=600)
    found.keep_on(engine)
    try:
        kept = engine._frame[1]
        sent = dd.from_pandas(expected.analysis_frame(), npartitions=1, sort=False)
        pd.testing.assert_frame_equal(
            dask_client.compute(kept).result(), sent.compute(scheduler="sync"), check_exact=True
        )
        assert found.reference == expected.reference and found.notes == expected.notes
    finally:
        engine.close()
    monkeypatch.undo()
    _same_survey(read_edge_list(folder, tmp_path / "links.parquet", client=dask_client), expected)


def _late(frame: pd.DataFrame, column: str, value, at=(-5,)) -> pd.DataFrame:
    frame = frame.copy()
    if isinstance(value, str):  # a column of text (one type in a Parquet file)
        frame[column] = frame[column].map(lambda v: None if pd.isna(v) else str(v))
    for row in at:
        frame.iloc[row, frame.columns.get_loc(column)] = value
    return frame


def _bad_firm_level() -> dict:
    frame = _firm_level(seed=5, firms=900)
    middle = [350, 500]  # rows in the second file (rows 351 and 501 of the whole file)
    both = _late(frame, "employees", -3.0, at=[100])  # an earlier check in a later file wins
    both = _late(both, "region", None, at=[700])
    twice = frame.copy()
    twice.iloc[800, 0] = twice.iloc[20, 0]  # a repeat across the first and last files
    twice.iloc[650, 0] = twice.iloc[400, 0]
    novelty = frame.copy()
    product = novelty.columns.get_loc("product")
    novelty.iloc[[450, 820], product] = 0
    novelty.iloc[[450, 820], novelty.columns.get_loc("new_to_market")] = 1
    return {
        "out of range": _late(frame, "employees", -1.0, at=middle),
        "earlier column": both,
        "duplicate ids": twice,
        "not binary": _late(frame, "collab_regional_suppliers", 2, at=[599, 899]),
        "not a number": _late(frame, "foreign_share", "much", at=[301]),
        "new to market": novelty,
    }


@pytest.mark.parametrize("case", list(_bad_firm_level()))
def test_a_bad_value_in_a_later_file_is_refused_as_a_whole_read_refuses_it(
    tmp_path, dask_client, case
) -> None:
    """The same one-line error as reading the files whole: the first failing check by the
    order a whole read checks in, the rows of every file failing it, numbered in the whole
    file."""
    folder = _write(_bad_firm_level()[case], tmp_path / "firms")
    with pytest.raises(InputError) as whole:
        read_survey(folder)
    with pytest.raises(InputError) as on_dask:
        read_survey(folder, client=dask_client)
    assert str(on_dask.value) == str(whole.value)
    assert str(folder) in str(whole.value)


def test_the_mapping_and_the_links_refuse_as_a_whole_read_does(tmp_path, dask_client) -> None:
    """A code the mapping does not list in the second file, a reference category no firm has,
    a firm without a country in the last file of an edge-list survey: the whole read's
    errors."""
    frame = _firm_level(seed=6, firms=900)
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(
        '[columns]\nproduct = { column = "product", codes = { 0 = 0, 1 = 1 } }\n'
        'region = { column = "region", reference = "Atlantis" }\n'
    )
    coded = _write(_late(frame, "product", 7, at=[333, 700]), tmp_path / "coded")
    for folder in (coded, _write(frame, tmp_path / "plain")):
        with pytest.raises(InputError) as whole:
            read_survey(folder, mapping=mapping)
        with pytest.raises(InputError) as on_dask:
            read_survey(folder, mapping=mapping, client=dask_client)
        assert str(on_dask.value) == str(whole.value)
    assert "Atlantis" in str(whole.value)
    firms, links = _edge_list(seed=7, firms=900)
    folder = _write(_late(firms, "country", None, at=[620, 899]), tmp_path / "firms")
    links.to_parquet(tmp_path / "links.parquet", index=False)
    with pytest.raises(InputError) as whole:
        read_edge_list(folder, tmp_path / "links.parquet")
    with pytest.raises(InputError) as on_dask:
        read_edge_list(folder, tmp_path / "links.parquet", client=dask_client)
    assert str(on_dask.value) == str(whole.value) and "rows 621, 900" in str(whole.value)


@pytest.mark.parametrize("links", [True, False])
def test_the_study_of_firms_files_read_on_the_workers_has_the_memory_numbers(
    tmp_path, dask_client, links, monkeypatch
) -> None:
    """``buzzpipe study --engine dask`` of three firms files (an edge-list survey, and a
    firm-level one with a spelling variant in its last file), read and checked on the
    workers: results.json has the memory engine's numbers (1e-10)."""
    import json

    from json_differences import differences

    from buzzpipe.end_to_end import StudyOptions, study_file
    from buzzpipe.study.specification import Specification

    if links:
        firms, drawn_links = _edge_list(seed=9, firms=1_500)
        drawn_links.to_parquet(tmp_path / "links.parquet", index=False)
    else:
        firms = _firm_level(seed=9, firms=1_500)
    folder = _write(firms, tmp_path / "firms", sizes=[400, 700])
    off = dict.fromkeys(("sensitivity", "heterogeneity", "counterfactuals"), False)
    chosen = {"replications": 0, "specification": Specification(outcomes=("product",)), **off}
    given = {"links": tmp_path / "links.parquet"} if links else {}
    memory = study_file(folder, tmp_path / "memory.json", options=StudyOptions(**chosen), **given)
    _on_client_refused(monkeypatch)
    on_dask = study_file(
        folder, tmp_path / "dask.json", options=StudyOptions(engine="dask", **chosen), **given
    )
    expected, found = (json.loads(r.to_json()) for r in (memory, on_dask))
    assert expected["models"] and differences(expected, found) == []


def test_a_survey_described_from_its_chunks_brings_no_ids_here(dask_client) -> None:
    """``DescribeTable.add(chunks=)``: the survey's ids were checked unique when it was read
    (whole, or bucket by bucket on the workers): no hash of them comes to the client (8 bytes
    a firm), and such a table describes that one survey alone."""
    from buzzpipe.survey.describe import DescribeTable

    survey = bp.synthesize("norway2010", seed=5, firms=800)
    expected = bp.describe(survey)
    engine = StudyEngine("dask", _client=dask_client, partition_rows=300)
    survey.keep_on(engine)
    try:
        table = DescribeTable()
        table.add(survey, chunks=engine.frame_source())
        assert table._id_hashes == []
        pd.testing.assert_frame_equal(table.result(), expected, check_exact=True)
        with pytest.raises(RuntimeError, match="described alone"):
            table.add(survey, chunks=engine.frame_source())
    finally:
        engine.close()
