"""Spill-over's placebo and confounding bound on the chunked engines: sums over the sample's
chunks (p x p and cells x p tables are all that reach the client), memory's numbers to 1e-10.

20,000 firms of ``norway2010``, with links (the partner-sorting placebo, the bound over firms)
and without (the cell clustering placebo, the bound over cells): streamed in uneven blocks of
997 rows, and on the session's 2-worker LocalCluster in 1 and 7 partitions. Neither the null's
design nor its fitted means over the whole sample are built on the client there.
"""

import functools
import math

import pytest
from test_spillover_placebo import spillover as spillover_of

from buzzpipe.study import spillover
from buzzpipe.study.engine import StudyEngine, using
from buzzpipe.synth import synthesize

FIRMS = 20_000


@functools.cache
def _frame(links: bool):
    return synthesize("norway2010", 2010, firms=FIRMS, edge_list=links).analysis_frame()


def _parts(frame) -> dict:
    """The product outcome's all-firms test, its placebo and bound, as the study runs them."""
    results = spillover_of(frame, primary_only=True)
    tests = results.tests["product"]
    return {
        "primary": tests["spillover_exposure"],
        "placebo": tests[spillover.PLACEBO],
        "bound": results.descriptions["product"][spillover.BOUND],
    }


@functools.cache
def _memory(links: bool) -> dict:
    return _parts(_frame(links))


def _no_design_on_the_client(monkeypatch) -> None:
    def refused(*_args, **_kwargs):
        raise AssertionError("the null's design of the whole sample built on the client")

    monkeypatch.setattr(spillover, "_null_design", refused)
    monkeypatch.setattr(spillover, "_binomial_null", refused)


def _close(a, b) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return a == b or abs(a - b) <= 1e-10 * max(1.0, abs(a))


def _same(memory: dict, chunked: dict) -> None:
    for part, expected in memory.items():
        found = chunked[part]
        for field in ("estimate", "std_error", "p_value", "statistic"):
            assert _close(getattr(expected, field), getattr(found, field)), (part, field)
        assert found.df == expected.df, part
        assert found.note == expected.note, part
        assert found.hypothesis == expected.hypothesis, part
        assert (expected.interval is None) == (found.interval is None), part
        if expected.interval is not None:
            ends = [end for segment in expected.interval.segments for end in segment]
            others = [end for segment in found.interval.segments for end in segment]
            assert len(ends) == len(others) and all(map(_close, ends, others)), part


@pytest.mark.parametrize("links", [True, False], ids=["links", "cells"])
def test_streamed_in_uneven_blocks_the_placebo_and_bound_are_memorys(links, monkeypatch):
    memory = _memory(links)
    assert memory["placebo"].p_value is not None and memory["bound"].estimate > 0
    _streamed_in_blocks(monkeypatch, 997)
    _no_design_on_the_client(monkeypatch)
    with using(StudyEngine("stream")):
        chunked = _parts(_frame(links))
    _same(memory, chunked)


@pytest.mark.parametrize("partitions", [1, 7])
@pytest.mark.parametrize("links", [True, False], ids=["links", "cells"])
def test_on_dask_the_placebo_and_bound_are_memorys(links, partitions, dask_client, monkeypatch):
    memory = _memory(links)
    frame = _frame(links)
    chosen = StudyEngine("dask", _client=dask_client, partition_rows=-(-len(frame) // partitions))
    _no_design_on_the_client(monkeypatch)
    with using(chosen):
        chosen.keep_frame(frame)
        assert chosen._frame[1].npartitions == partitions
        chunked = _parts(frame)
    _same(memory, chunked)


def test_a_chunk_cell_sums_are_placed_by_the_cells_labels_not_the_chunks_order():
    """The cells x p sums of one chunk whose firms are of a few cells only (and not in label
    order) land in those cells' rows: the chunk's sums equal the whole sample's restricted to
    its cells, computed directly."""
    import numpy as np

    from buzzpipe.estimate.chunks import DesignChunk

    rng = np.random.default_rng(5)
    X = np.column_stack([np.ones(40), rng.normal(size=40)])
    y = rng.integers(0, 7, size=40).astype(float)
    codes = rng.choice([4, 1], size=40)
    chunk = DesignChunk(X, y, None, None, codes, np.arange(40), 40, 40, np.array([], int))
    params = np.array([-1.0, 0.3])
    found = spillover._chunk_cell_sums(chunk, params, 6.0, 5)
    mean = 6.0 / (1.0 + np.exp(-(X @ params)))
    residuals = y - mean
    weight = mean * (1.0 - mean / 6.0)
    dummies = (codes[:, None] == np.arange(5)[None, :]).astype(float)
    assert np.allclose(found["cross"], dummies.T @ (X * weight[:, None]), rtol=1e-13)
    assert np.allclose(found["residual_cross"], dummies.T @ (X * residuals[:, None] ** 2))
    assert np.allclose(found["cell_sums"], dummies.T @ residuals, rtol=1e-13, atol=1e-13)
    assert np.allclose(found["cell_squares"], dummies.T @ residuals**2, rtol=1e-13)
    assert not found["cell_sums"][[0, 2, 3]].any()


def _streamed_in_blocks(monkeypatch, rows: int) -> None:
    from buzzpipe.estimate.sources import FrameSource

    original = FrameSource.__init__
    monkeypatch.setattr(
        FrameSource, "__init__", lambda self, data, block_rows=rows: original(self, data, rows)
    )


def _between_cells_case(case: str):
    """A survey without links where a cell's firms share one outcome, or whose cells are all
    of one size (the exclusion term then constant within cells)."""
    from test_study_spillover import INDUSTRIES, REGIONS, spillover_survey

    if case == "a cell of one outcome":
        frame = spillover_survey(6, spillover=0.0)
        first = (frame["region"] == REGIONS[0]) & (frame["industry"] == INDUSTRIES[0])
        frame.loc[first, "product"] = 0.0
        return frame
    frame = spillover_survey(5, spillover=0.0, n=400)
    frame = frame.groupby(["region", "industry"], observed=True).head(4)
    return frame.groupby(["region", "industry"], observed=True).filter(lambda c: len(c) == 4)


@pytest.mark.parametrize("case", ["a cell of one outcome", "cells of one size"])
def test_the_tests_between_cells_stream_with_memorys_cells(case, monkeypatch):
    """Without links, every spill-over record (the tests between cells of all firms and of
    each group, the pooled ones, the naive estimate, the placebo and the bound) streamed in
    97-row blocks: memory's to 1e-10, where a cell whose firms share one outcome leaves the
    between-cells fit (the cells' ranges summed over the chunks) and where cells of one size
    move the exclusion term to the cells' level."""
    from json_differences import differences
    from test_study_spillover import spillover_results

    from buzzpipe.results.contract import encode

    frame = _between_cells_case(case)
    memory = spillover_results(frame)
    _streamed_in_blocks(monkeypatch, 97)
    _no_design_on_the_client(monkeypatch)
    with using(StudyEngine("stream")):
        streamed = spillover_results(frame)
    for records in ("tests", "descriptions"):
        expected, found = encode(getattr(memory, records)), encode(getattr(streamed, records))
        assert expected["product"] and differences(expected, found) == []
    note = memory.tests["product"]["spillover_exposure"].note
    if case == "a cell of one outcome":
        assert "1 cell whose firms all share one outcome left out" in note
    else:
        assert "spillover_exposure" in memory.tests["product"]


@pytest.mark.parametrize("case", ["a cell of one outcome", "cells of one size"])
def test_the_tests_between_cells_on_dask_read_no_column_on_the_client(
    case, dask_client, monkeypatch
):
    """Without links on dask, the client's frame holding no column: the cells' leave-one-out
    parts are made on the workers from the cells' counts summed over partitions, the complete
    rows, own pipeline status and the groups selected there, whether the exclusion term varies
    and the cells whose firms share one outcome found there: every record memory's (1e-10).
    Before, spill-over without links read the outcome, breadth, region and industry here."""
    from json_differences import differences
    from test_study_spillover import spillover_results

    from buzzpipe.results.contract import encode

    frame = _between_cells_case(case)
    frame = frame.reset_index(drop=True)
    memory = spillover_results(frame)

    def refused(*_args, **_kwargs):
        raise AssertionError("the leave-one-out parts made on the client")

    monkeypatch.setattr(spillover, "leave_one_out_parts", refused)
    _no_design_on_the_client(monkeypatch)
    chosen = StudyEngine("dask", _client=dask_client, partition_rows=-(-len(frame) // 3))
    with using(chosen):
        chosen.keep_frame(frame)
        narrow = frame.iloc[:, :0]
        chosen._frame = (narrow, *chosen._frame[1:])
        on_dask = spillover_results(narrow)
    for records in ("tests", "descriptions"):
        expected, found = encode(getattr(memory, records)), encode(getattr(on_dask, records))
        assert expected["product"] and differences(expected, found) == []


def test_with_links_the_groups_rows_stay_on_the_workers_with_memorys_numbers(
    dask_client, monkeypatch
):
    """With links, the rows are only fitted: on dask the complete rows, the own-pipeline and
    no-pipeline groups and the placebo's rows are selected from the kept frame on the workers,
    the client holding their positions and no column of theirs (they were copies of the
    spill-over columns), and the regional pool, own pipeline status and the placebo's exposure
    beyond the pool are made there too (they were firm-level columns made here), with a client
    frame of no column. Every record is memory's. The client's frame lacks the
    link exposure and its unknown share: before, spill-over read them here (without them it
    took the cells path)."""
    frame = _frame(True)

    def records(results) -> dict:
        return {**results.tests["product"], **results.descriptions["product"]}

    memory = records(spillover_of(frame))
    chosen = StudyEngine("dask", _client=dask_client, partition_rows=-(-len(frame) // 3))
    made = []
    original = StudyEngine.rows_on_workers

    def recorded(self, data, keep, reads):
        found = original(self, data, keep, reads)
        made.append(None if found is None else list(found.columns))
        return found

    monkeypatch.setattr(StudyEngine, "rows_on_workers", recorded)

    def refused(*_args, **_kwargs):
        raise AssertionError("a firm-level column of the regional pool made on the client")

    monkeypatch.setattr(spillover, "regional_pool_share", refused)
    with using(chosen):
        chosen.keep_frame(frame)
        # as the survey stage keeps it on dask: no column here, the link exposure and its
        # unknown share on the workers alone (read there: the rows with links, the share's mean)
        narrow = frame.iloc[:, :0]
        chosen._frame = (narrow, *chosen._frame[1:])
        on_dask = records(spillover_of(narrow))
    # the complete rows and the two groups (and the placebo's rows where some lack the pool):
    # no column here
    assert len(made) >= 3 and all(columns == [] for columns in made), made
    assert "spillover_exposure_own_pipeline" in memory
    assert "spillover_exposure_no_pipeline" in memory
    assert "mean share of partners of unknown status" in memory["spillover_exposure"].note
    assert memory.keys() == on_dask.keys()
    _same(memory, on_dask)
