"""A chunked fit's row ids: a RangeIndex where the estimation sample is every row (nothing per
row kept on the client), the ids themselves where rows were dropped; the same fits and margins
either way."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import buzzpipe as bp
from buzzpipe.estimate.margins import _excluded_rows, margins
from buzzpipe.estimate.sources import FrameSource
from buzzpipe.estimate.streamed import fit_source, row_index, row_span
from buzzpipe.study.engine import StudyEngine


def test_row_span_is_a_range_only_for_consecutive_integer_ids() -> None:
    assert row_span(np.arange(5, 9, dtype=np.int64)) == range(5, 9)
    gap = np.array([5, 6, 8, 9], dtype=np.int64)
    assert row_span(gap) is gap
    looks_consecutive = np.array([0, 2, 1, 3], dtype=np.int64)  # last - first + 1 == size
    assert row_span(looks_consecutive) is looks_consecutive
    labels = np.array(["a", "b"], dtype=object)
    assert row_span(labels) is labels
    empty = np.zeros(0, dtype=np.int64)
    assert row_span(empty) is empty


def test_row_index_joins_ranges_and_falls_back_to_the_ids() -> None:
    empty = np.zeros(0, dtype=np.int64)
    joined = row_index([range(0, 3), empty, range(3, 7)])
    assert isinstance(joined, pd.RangeIndex) and list(joined) == list(range(7))
    apart = row_index([range(0, 3), range(4, 6)])
    assert not isinstance(apart, pd.RangeIndex)
    assert apart.dtype == np.int64 and list(apart) == [0, 1, 2, 4, 5]
    mixed = row_index([range(0, 2), np.array([5, 9], dtype=np.int64)])
    assert list(mixed) == [0, 1, 5, 9]
    assert list(row_index([empty])) == [] and row_index([empty]).dtype == np.int64


def _complete(n: int = 3_000, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n)})
    eta = 0.4 * frame.x1 - 0.3 * frame.x2
    frame["y"] = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    return frame


@pytest.mark.parametrize("dropped", [False, True])
def test_chunked_fit_and_margins_equal_memory_with_either_row_ids(dropped, tmp_path) -> None:
    frame = _complete()
    if dropped:
        frame.loc[[10, 1_500], "x1"] = np.nan
    memory = bp.fit("y ~ x1 + x2", frame, "logit", "robust")
    chunked = fit_source("y ~ x1 + x2", FrameSource(frame, block_rows=700), "logit", "robust")
    assert isinstance(chunked.row_ids, pd.RangeIndex) != dropped
    assert np.array_equal(np.asarray(chunked.row_ids), np.asarray(memory.row_ids))
    np.testing.assert_allclose(chunked.params, memory.params, rtol=0, atol=1e-10)
    excluded = _excluded_rows(chunked.row_ids, len(frame))
    assert list(excluded) == ([10, 1_500] if dropped else [])
    a = margins(memory, frame, variables=["x1"])
    path = tmp_path / "firms.parquet"
    frame.to_parquet(path, row_group_size=700)
    b = margins(chunked, str(path), variables=["x1"], engine="stream")  # excluded rows as above
    np.testing.assert_allclose(b.estimate, a.estimate, rtol=0, atol=1e-10)
    np.testing.assert_allclose(b.se, a.se, rtol=0, atol=1e-10)


def test_factor_margins_over_chunks_where_a_chunk_lacks_a_level() -> None:
    frame = _complete(n=2_000)
    rng = np.random.default_rng(5)
    sector = np.where(np.arange(2_000) < 1_200, rng.choice(["a", "b"], 2_000), "c")
    frame["sector"] = pd.Categorical(sector, categories=["a", "b", "c", "unused"])
    frame["y"] = ((frame.x1 + (frame.sector == "c") * 0.5 + rng.logistic(size=2_000)) > 0) * 1.0
    fit = bp.fit("y ~ x1 + C(sector)", frame, "logit", "robust")
    a = margins(fit, frame, variables=["sector"])
    b = margins(fit, FrameSource(frame, block_rows=500), variables=["sector"], engine="stream")
    assert list(a.table.index) == list(b.table.index)  # "c vs a" though rows 0-1199 lack c
    assert len(a.table) == 2  # the unused category is no level of the sample
    np.testing.assert_allclose(b.estimate, a.estimate, rtol=0, atol=1e-10)
    np.testing.assert_allclose(b.se, a.se, rtol=0, atol=1e-10)


def test_study_engine_fit_on_every_row_keeps_the_frames_own_labels() -> None:
    frame = _complete()
    frame.index = frame.index + 1_000  # labels, not positions
    engine = StudyEngine("stream")
    fitted = engine.fit("y ~ x1 + x2", frame, "logit", "robust", None)
    assert fitted.row_ids is frame.index
    positional = engine._positional(fitted, frame)
    assert isinstance(positional.row_ids, pd.RangeIndex) and len(positional.row_ids) == len(frame)
    part = frame.iloc[::2]
    fitted_part = engine.fit("y ~ x1 + x2", part, "logit", "robust", None)
    assert fitted_part.row_ids.equals(part.index)
    assert list(engine._positional(fitted_part, frame).row_ids[:3]) == [0, 2, 4]
