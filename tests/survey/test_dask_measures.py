"""Edge-list classification on Dask: the same collaboration answers as reading the links whole."""

import pandas as pd
import pytest

from buzzpipe.survey import edge_list
from buzzpipe.survey.column_types import id_keys
from buzzpipe.survey.dask_measures import collaboration_on_dask
from buzzpipe.survey.schema import PARTNER_TYPES as TYPES
from buzzpipe.survey.schema import SCALES
from buzzpipe.synth.preset import load_preset
from buzzpipe.synth.write import write_survey


def _draw(folder, seed: int, firms: int, block_firms: int) -> None:
    """A norway2010 edge-list survey drawn to folder/firms.parquet and folder/links.parquet."""
    write_survey(
        load_preset("norway2010"),
        seed,
        folder / "firms.parquet",
        links_path=folder / "links.parquet",
        firms=firms,
        block_firms=block_firms,
    )


def test_links_classified_on_dask_give_the_in_memory_answers(tmp_path, dask_client) -> None:
    _draw(tmp_path, 5, 20_000, 5_000)
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

    _draw(tmp_path, 6, 3_000, 1_000)
    whole = read_edge_list(tmp_path / "firms.parquet", tmp_path / "links.parquet")
    on_dask = read_edge_list(
        tmp_path / "firms.parquet", tmp_path / "links.parquet", client=dask_client
    )
    expected = whole.analysis_frame()
    assert expected["pipeline_exposure"].notna().sum() > 100
    pd.testing.assert_frame_equal(on_dask.analysis_frame(), expected)


def test_the_directory_pickles_its_id_keys_as_one_text_array() -> None:
    """The directory goes to every worker: unpickled it finds the same firms, regions and
    countries; pickled, its id keys travel beside the pickle (one Arrow text array), not as a
    Python str per firm inside it, twice (keys and index): the old pickle held about 25 bytes
    a firm in band, this one about 4 (the regions' and countries' references)."""
    import pickle

    import numpy as np

    firms = 10_000
    rng = np.random.default_rng(19)
    ids = pd.Series([f" F{n:06d}" for n in range(firms)], index=np.arange(firms) + 7)
    ids.iloc[3] = None  # a missing id: no firm there
    regions = pd.Series(pd.Categorical(rng.choice(["Oslo", "Bergen", None], firms)))
    countries = pd.Series(rng.choice(["NO", "SE"], firms)).astype("category").astype("object")
    directory = edge_list.FirmDirectory(id_keys(ids), regions, countries)
    out_of_band: list = []
    pickled = pickle.dumps(directory, protocol=5, buffer_callback=out_of_band.append)
    assert len(pickled) < 6 * firms and out_of_band
    back = pickle.loads(pickled, buffers=out_of_band)
    pd.testing.assert_series_equal(back.keys, directory.keys)
    asked = np.array(["F000001", "F009999", "nobody", None, *id_keys(ids).iloc[:100]], object)
    np.testing.assert_array_equal(back.positions(asked), directory.positions(asked))
    assert list(back.regions) == list(directory.regions)
    assert list(back.countries) == list(directory.countries)


def test_a_directory_of_integer_ids_makes_no_keys_until_links_are_looked_up() -> None:
    """Under --engine dask the client only ships the directory: made from the validated integer
    ids, categorical regions and countries, it holds no Python str per firm before a lookup,
    pickles them as their own buffers (the pickle itself under a byte a firm), and unpickled it
    finds the same firms, regions and countries as a directory of the ids' keys."""
    import pickle

    import numpy as np

    firms = 10_000
    rng = np.random.default_rng(20)
    ids = pd.Series(rng.permutation(10 * firms)[:firms].astype("int64"), index=np.arange(firms) + 3)
    regions = pd.Series(pd.Categorical(rng.choice([" Oslo", "Bergen", None], firms)))
    countries = pd.Series(rng.choice(["NO", "SE"], firms)).astype("category")
    directory = edge_list.FirmDirectory(ids, regions, countries)
    out_of_band: list = []
    pickled = pickle.dumps(directory, protocol=5, buffer_callback=out_of_band.append)
    assert directory._keys is None and directory._index is None  # nothing per firm made here
    assert len(pickled) < firms and out_of_band
    back = pickle.loads(pickled, buffers=out_of_band)
    eager = edge_list.FirmDirectory(
        id_keys(ids), regions, countries.astype("object")
    )  # as the directory was made before: the keys first
    pd.testing.assert_series_equal(back.keys, eager.keys)
    asked = np.array([str(ids.iloc[5]), "nobody", None, *id_keys(ids).iloc[::97]], object)
    np.testing.assert_array_equal(back.positions(asked), eager.positions(asked))
    np.testing.assert_array_equal(directory.positions(asked), eager.positions(asked))
    assert list(back.regions) == list(eager.regions)
    assert None in list(back.regions) and "Oslo" in list(back.regions)  # stripped as keys
    assert list(back.countries) == list(eager.countries)


def test_the_collaboration_matrix_is_the_answers_as_nullable_integers() -> None:
    """1 where yes, missing where only maybe, 0 otherwise: built straight as Int8, the same
    frame as through floats (``nullable_integers``)."""
    import numpy as np

    from buzzpipe.survey.measures import nullable_integers
    from buzzpipe.survey.schema import collab_column

    rng = np.random.default_rng(5)
    counts = edge_list.CollaborationCounts(1_000, scales=SCALES, partner_types=TYPES)
    counts._yes[...] = rng.random(counts._yes.shape) < 0.3
    counts._maybe[...] = rng.random(counts._maybe.shape) < 0.3
    index = pd.RangeIndex(1_000)
    expected = pd.DataFrame(
        {
            collab_column(scale, kind): nullable_integers(
                np.where(counts._yes[t, s], 1.0, np.where(counts._maybe[t, s], np.nan, 0.0)),
                index,
            )
            for t, kind in enumerate(TYPES)
            for s, scale in enumerate(SCALES)
        }
    )
    found = counts.matrix()
    pd.testing.assert_frame_equal(found, expected)
    assert found.isna().to_numpy().any() and found.eq(1).fillna(False).to_numpy().any()
    # the counts' own arrays, not copies; made again, the same answers
    first = found.iloc[:, 0].array
    assert np.shares_memory(first._data, counts._yes) and np.shares_memory(
        first._mask, counts._maybe
    )
    pd.testing.assert_frame_equal(counts.matrix(), expected)


def test_the_answers_of_rows_are_the_whole_counts_rows() -> None:
    """``answers_of_rows``: from the flat cells of several links partitions, each block of
    firms' answers are the whole count's rows there (types and values), an empty block too."""
    import numpy as np

    rng = np.random.default_rng(19)
    firms = 1_003
    whole = edge_list.CollaborationCounts(firms, scales=SCALES, partner_types=TYPES)
    cells = []
    for _ in range(3):  # three partitions' cells, overlapping
        part = edge_list.CollaborationCounts(firms, scales=SCALES, partner_types=TYPES)
        part._yes[...] = rng.random(part._yes.shape) < 0.05
        part._maybe[...] = rng.random(part._maybe.shape) < 0.05
        cells.append({"yes": np.flatnonzero(part._yes), "maybe": np.flatnonzero(part._maybe)})
        whole._yes |= part._yes
        whole._maybe |= part._maybe
    expected = whole.matrix()
    for start, stop in [(0, firms), (0, 250), (250, 500), (1_000, 1_003), (7, 7)]:
        rows = pd.RangeIndex(start, stop)
        found = edge_list.answers_of_rows(cells, firms, rows, scales=SCALES, partner_types=TYPES)
        pd.testing.assert_frame_equal(found, expected.iloc[start:stop], check_exact=True)
    assert expected.isna().to_numpy().any() and expected.eq(1).fillna(False).to_numpy().any()


def test_the_exposure_of_rows_is_the_whole_counts_shares() -> None:
    """``exposure_of_rows``: from the local partners of several links partitions (records and
    partners without an id, as ``ExposureCounts.partial`` gives them), each block of firms'
    pipeline exposure and unknown share are the whole count's there, bit for bit."""
    import numpy as np

    rng = np.random.default_rng(23)
    firms, links = 2_001, 1_500
    status = pd.Series(pd.array(rng.choice([0, 1, None], firms, p=[0.5, 0.3, 0.2]), dtype="Int8"))
    whole = edge_list.ExposureCounts(firms, local_scale="regional")
    parts = []
    for _ in range(3):
        records = np.zeros(links, dtype=edge_list._PAIR)
        records["firm"] = rng.integers(0, firms, links)
        records["partner"] = np.where(rng.random(links) < 0.8, rng.integers(0, firms, links), -1)
        records["partner_hash"] = np.where(records["partner"] < 0, rng.integers(1, 50, links), 0)
        records = np.unique(records[records["firm"] != records["partner"]])
        anonymous = np.zeros(firms, dtype="int64")
        np.add.at(anonymous, rng.integers(0, firms, 300), 1)
        at = np.flatnonzero(anonymous)
        parts.append({"records": records, "firms": at, "anonymous": anonymous[at]})
        whole.add_partial(records, at, anonymous[at])
    exposure, unknown = whole.shares(status)
    assert np.isnan(exposure).any() and (exposure > 0).any() and (unknown > 0).any()
    for start, stop in [(0, firms), (0, 700), (700, 1_400), (2_000, 2_001), (9, 9)]:
        rows = pd.RangeIndex(start, stop)
        found = edge_list.exposure_of_rows(parts, status, rows, local_scale="regional")
        np.testing.assert_array_equal(found[0], exposure[start:stop])
        np.testing.assert_array_equal(found[1], unknown[start:stop])


def test_an_edge_list_survey_kept_on_dask_never_gathers_its_answers(
    tmp_path, dask_client, monkeypatch
) -> None:
    """Read on Dask, the survey's collaboration answers stay on the workers (its firm table
    has none of them), and ``keep_on`` makes each partition's on its worker: the client never
    gathers them (their whole count, 42 bytes a firm, was held here from the survey stage
    until the table was sent), and the frame kept is the one derived here. Asked for here
    (``Survey.firms``), they are gathered: the same table as reading the links whole."""
    import dask.dataframe as dd

    from buzzpipe.study.engine import StudyEngine
    from buzzpipe.survey import dask_measures, read_edge_list

    _draw(tmp_path, 7, 3_000, 1_000)
    whole = read_edge_list(tmp_path / "firms.parquet", tmp_path / "links.parquet")
    expected = whole.analysis_frame()
    on_dask = read_edge_list(
        tmp_path / "firms.parquet", tmp_path / "links.parquet", client=dask_client
    )
    assert not any(name.startswith("collab_") for name in on_dask._parts.meta.columns)
    pd.testing.assert_frame_equal(on_dask.firms, whole.firms, check_exact=True)

    survey = read_edge_list(
        tmp_path / "firms.parquet", tmp_path / "links.parquet", client=dask_client
    )

    def gathered(self):
        raise AssertionError("the answers were gathered on the client")

    assert survey._exposure is None  # the local partners are counted on the workers too
    monkeypatch.setattr(dask_measures.CellsOnWorkers, "counts", gathered)
    monkeypatch.setattr(dask_measures.CellsOnWorkers, "exposure_counts", gathered)
    engine = StudyEngine("dask", _client=dask_client, partition_rows=700)
    survey.keep_on(engine)
    try:
        found = dask_client.compute(engine._frame[1]).result()
        sent = dd.from_pandas(expected, npartitions=1, sort=False).compute(scheduler="sync")
        pd.testing.assert_frame_equal(found, sent, check_exact=True)
        assert expected["pipeline_exposure"].notna().sum() > 100
        assert survey._collaboration is None and not survey._analysis.filter(like="collab_").size
        # the cells, local partners and partner status are let go on the workers once the
        # frame is made: kept in the frame's graph, they stayed there as long as the frame
        import time

        def inputs_held() -> set:
            held = {str(key) for keys in dask_client.has_what().values() for key in keys}
            return {key for key in held if key.startswith(("_entry", "_of_rows"))}

        for _ in range(100):
            if not inputs_held():
                break
            time.sleep(0.05)
        assert inputs_held() == set()
    finally:
        engine.close()


def test_partitions_answers_come_one_at_a_time_in_order(dask_client) -> None:
    """``DaskSource.map_each``: each partition's answer in partition order, as ``map_reduce``
    concatenates them; a caller that stops early leaves nothing computing."""
    import dask.dataframe as dd
    import numpy as np

    from buzzpipe.estimate.dask_engine import DaskSource

    frame = pd.DataFrame({"x": np.arange(1_000)})
    source = DaskSource(dd.from_pandas(frame, npartitions=4, sort=False), dask_client)

    def rows(chunk, where, first_row):
        return [(where, first_row, chunk["x"].to_numpy())]

    each = list(source.map_each(rows))
    assert [answer[0][:2] for answer in each] == [row[:2] for row in source.map_reduce(rows)]
    assert len(each) == 4
    np.testing.assert_array_equal(np.concatenate([a[0][2] for a in each]), frame["x"])
    first = next(iter(source.map_each(rows)))
    assert first[0][1] == 0


def test_bad_links_in_a_later_partition_are_refused_as_a_whole_read_refuses_them(
    tmp_path, dask_client
) -> None:
    """An unknown partner type in the second partition: the same one-line error as reading the
    links whole (the file, column, rows of the whole file and value), returned by the partition
    as an answer rather than a failed task (which the worker would log with a traceback)."""
    from buzzpipe.errors import InputError
    from buzzpipe.survey import read_edge_list
    from buzzpipe.survey.dask_measures import _cells_or_refusal

    _draw(tmp_path, 8, 2_000, 1_000)
    links = pd.read_parquet(tmp_path / "links.parquet")
    links["partner_type"] = links["partner_type"].astype("object")
    half = len(links) // 2
    links.loc[half + 7, "partner_type"] = "friends"
    folder = tmp_path / "links"
    folder.mkdir()
    links.iloc[:half].to_parquet(folder / "part-0.parquet", index=False)
    links.iloc[half:].to_parquet(folder / "part-1.parquet", index=False)
    whole = tmp_path / "links-whole.parquet"
    links.to_parquet(whole, index=False)
    with pytest.raises(InputError) as read_whole:
        read_edge_list(tmp_path / "firms.parquet", whole)
    with pytest.raises(InputError) as on_dask:
        read_edge_list(tmp_path / "firms.parquet", folder, client=dask_client)
    expected = str(read_whole.value).replace(str(whole), str(folder))
    assert str(on_dask.value) == expected and f"row {half + 8}" in expected
    firms = pd.read_parquet(tmp_path / "firms.parquet")
    directory = edge_list.FirmDirectory(firms["firm_id"], firms["region"], firms["country"])
    later = links.iloc[half:].reset_index(drop=True)
    refused = _cells_or_refusal(later, None, half, directory, SCALES, TYPES, "links")
    assert set(refused) == {"refused"} and "friends" in str(refused["refused"])


def test_the_analysis_frame_derived_on_the_workers_is_the_frame_derived_here(
    tmp_path, dask_client
) -> None:
    """``Survey.keep_on``: the firm table sent in partitions (500 rows) and each partition's
    measures made on a worker, pipeline exposure's shares sent beside it, give on the workers
    the frame ``analysis_frame`` derives here, column for column (types, categories, values);
    the client keeps the frame's length and no column of it, and no firm table."""
    import dask.dataframe as dd

    from buzzpipe.study.engine import StudyEngine
    from buzzpipe.survey import read_edge_list

    _draw(tmp_path, 6, 3_000, 1_000)
    expected = read_edge_list(tmp_path / "firms.parquet", tmp_path / "links.parquet")
    expected = expected.analysis_frame()
    survey = read_edge_list(
        tmp_path / "firms.parquet", tmp_path / "links.parquet", client=dask_client
    )
    engine = StudyEngine("dask", _client=dask_client, partition_rows=500)
    survey.keep_on(engine)
    try:
        _client_copy, kept, bounds = engine._frame
        assert kept.npartitions == 6 and list(bounds) == list(range(0, 3_001, 500))
        on_workers = dask_client.compute(kept).result()
        # the frame sent whole (keep_frame): Dask's own types (text as Arrow strings)
        sent = dd.from_pandas(expected, npartitions=1, sort=False).compute(scheduler="sync")
        pd.testing.assert_frame_equal(on_workers, sent, check_exact=True)
        assert expected["pipeline_exposure"].notna().sum() > 100
        here = survey.analysis_frame()
        # before, the survey held the whole frame here (and its firm table, sharing columns),
        # then the columns the study read here (28 bytes a firm)
        assert here.shape == (3_000, 0) and isinstance(here.index, pd.RangeIndex)
        assert here.memory_usage(deep=True).sum() < 1_000
        assert engine._frame[0] is survey._analysis and survey._firms is None
        assert len(survey) == 3_000
        with pytest.raises(RuntimeError, match="keep_on"):
            survey.firms  # noqa: B018
    finally:
        engine.close()


def test_a_frame_derived_here_before_it_is_kept_is_kept_the_same(dask_client) -> None:
    """``keep_on`` after ``analysis_frame`` (the exposure counts then spent): the frame derived
    here is sent, its measures made again on the workers, the same frame."""
    import dask.dataframe as dd

    import buzzpipe as bp
    from buzzpipe.study.engine import StudyEngine

    survey = bp.synthesize("norway2010", seed=2, firms=600)
    here = survey.analysis_frame()
    expected = dd.from_pandas(here, npartitions=1, sort=False).compute(scheduler="sync")
    engine = StudyEngine("dask", _client=dask_client, partition_rows=250)
    survey.keep_on(engine)
    try:
        found = dask_client.compute(engine._frame[1]).result()
        pd.testing.assert_frame_equal(found, expected, check_exact=True)
        with pytest.raises(RuntimeError, match="kept on the workers already"):
            survey.keep_on(engine)
    finally:
        engine.close()


@pytest.mark.parametrize("name", ["memory", "stream"])
def test_keep_on_another_engine_keeps_the_survey_whole(name) -> None:
    """``keep_on`` on an engine that is not dask connects to nothing and lets nothing go: the
    survey keeps its firm table and derives the whole frame here when asked."""
    import buzzpipe as bp
    from buzzpipe.study.engine import StudyEngine

    survey = bp.synthesize("norway2010", seed=2, firms=300)
    engine = StudyEngine(name)
    survey.keep_on(engine)
    assert engine._client is None and engine._frame is None
    pd.testing.assert_frame_equal(
        survey.firms, bp.synthesize("norway2010", seed=2, firms=300).firms
    )
    assert survey.analysis_frame().shape[1] > len(survey.firms.columns)


@pytest.mark.slow
def test_the_study_command_on_dask_derives_its_frame_on_the_workers(
    tmp_path, dask_client, monkeypatch
) -> None:
    """``buzzpipe study --engine dask`` (``study_file``) sends its survey's firm table to the
    workers as ``analyze`` does (``Survey.keep_on``): the analysis frame is derived there and
    never sent whole from the client (``keep_frame`` finds it kept), and results.json has the
    memory engine's numbers (1e-10)."""
    import json

    from json_differences import differences

    from buzzpipe.end_to_end import StudyOptions, study_file
    from buzzpipe.study.engine import StudyEngine
    from buzzpipe.study.specification import Specification

    _draw(tmp_path, 9, 1_500, 500)
    chosen = {
        "replications": 0,
        "sensitivity": False,
        "heterogeneity": False,
        "counterfactuals": False,
        "specification": Specification(outcomes=("product",)),
    }
    files = (tmp_path / "firms.parquet", tmp_path / "links.parquet")
    memory = study_file(files[0], tmp_path / "memory.json", links=files[1],
                        options=StudyOptions(**chosen))  # fmt: skip
    sent_whole = []
    keep_frame = StudyEngine.keep_frame

    def recorded(self, frame):
        sent_whole.append(self._frame is None)
        return keep_frame(self, frame)

    monkeypatch.setattr(StudyEngine, "keep_frame", recorded)
    on_dask = study_file(files[0], tmp_path / "dask.json", links=files[1],
                         options=StudyOptions(engine="dask", **chosen))  # fmt: skip
    assert sent_whole == [False]
    expected, found = (json.loads(r.to_json()) for r in (memory, on_dask))
    assert expected["models"] and differences(expected, found) == []
