"""One category however a file is read: batches of a streamed file (``describe FILE``), batches
of a links file and partitions of links on Dask merge names that differ only in case, accents
or spaces as the whole file read at once does (before, each batch merged under its own majority
spelling, so the described table had both 'Bergen' and 'bergen' columns; Dask refused what the
in-memory reader matched)."""

import pandas as pd
import pytest

from buzzpipe.survey import read_edge_list, read_survey
from buzzpipe.survey.describe import describe
from buzzpipe.survey.readers import describe_file
from buzzpipe.synth import synthesize


def _split_spelling(tmp_path):
    """A survey whose first half spells Bergen mostly 'Bergen' and whose second half mostly
    'bergen', and whose industries are spelt 'retail' in one half and 'Retail' in the other."""
    frame = synthesize("norway2010", 3, firms=400, edge_list=False).firms.copy()
    frame["region"] = frame["region"].astype(str)
    frame["industry"] = frame["industry"].astype(str)
    half = len(frame) // 2
    second = [i for i in frame.index[frame["region"] == "Bergen"] if i >= half]
    frame.loc[second[: len(second) * 3 // 4], "region"] = "bergen"
    first_industry = frame["industry"].iloc[0]
    lower = frame["industry"] == first_industry
    frame.loc[lower & (frame.index < half), "industry"] = first_industry.lower()
    frame.loc[lower & (frame.index >= half), "industry"] = first_industry.upper()
    path = tmp_path / "split.csv"
    frame.to_csv(path, index=False)
    return path, half


def test_a_file_described_in_batches_is_the_file_described_whole(tmp_path):
    path, half = _split_spelling(tmp_path)
    whole = describe(read_survey(path))
    streamed = describe_file(path, batch_rows=half // 3)
    assert list(streamed.columns) == list(whole.columns)
    assert "bergen" not in streamed.columns
    pd.testing.assert_frame_equal(streamed, whole)
    note = streamed.attrs["note"]
    assert "column 'region': names that differ only in case, accents or spaces" in note
    assert "'bergen' read as 'Bergen'" in note
    survey_note = [n for n in read_survey(path).notes if "column 'region'" in n][0]
    assert survey_note in note  # the same words and counts as the whole file's reading


def _edge_list(tmp_path, partitions: int):
    firms = pd.DataFrame({"firm_id": range(1, 9), "region": ["Bergen", "Oslo"] * 4,
                          "country": "NO", "industry": "retail", "employees": 10,
                          "foreign_share": 0.0, "product": [1, 0] * 4})  # fmt: skip
    links = pd.DataFrame({"firm_id": [1, 3, 5, 7, 2, 4], "partner_id": range(11, 17),
                          "partner_type": "suppliers",
                          "partner_region": ["bergen", "Bergen", "bergen", "BERGEN", "Oslo",
                                             "oslo"],
                          "partner_country": "NO"})  # fmt: skip
    firms.to_csv(tmp_path / "f.csv", index=False)
    links.to_csv(tmp_path / "l.csv", index=False)
    folder = tmp_path / "links"
    folder.mkdir()
    for number, start in enumerate(range(0, len(links), len(links) // partitions)):
        part = links.iloc[start : start + len(links) // partitions]
        part.to_parquet(folder / f"part-{number:03d}.parquet", index=False)
    return tmp_path / "f.csv", tmp_path / "l.csv", folder


def _matched_note(survey) -> str:
    (note,) = [n for n in survey.notes if "partner_region" in n]
    return note.split(": ", 1)[1]  # without the file's name, which differs by reader


def test_links_matched_in_batches_give_one_note_with_all_their_links(tmp_path):
    firms, links, _ = _edge_list(tmp_path, 3)
    whole = read_edge_list(firms, links)
    batched = read_edge_list(firms, links, batch_rows=2)
    pd.testing.assert_frame_equal(batched.analysis_frame(), whole.analysis_frame())
    assert _matched_note(batched) == _matched_note(whole)
    assert "'bergen' read as 'Bergen' (2 links)" in _matched_note(batched)
    assert "'BERGEN' read as 'Bergen' (1 link)" in _matched_note(batched)
    assert "'oslo' read as 'Oslo' (1 link)" in _matched_note(batched)


@pytest.mark.usefixtures("dask_client")
def test_links_on_dask_are_matched_as_in_memory(tmp_path, dask_client):
    firms, links, folder = _edge_list(tmp_path, 3)
    whole = read_edge_list(firms, links)
    on_dask = read_edge_list(firms, folder, client=dask_client)
    pd.testing.assert_frame_equal(on_dask.analysis_frame(), whole.analysis_frame())
    assert _matched_note(on_dask) == _matched_note(whole)
