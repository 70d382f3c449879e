"""Dask repeatability: arrays that distributed delivers at odd addresses are aligned before any
sum is taken, so a pass's numbers do not depend on how its messages were packed (issue 19).

distributed packs a message's small frames into one buffer and views them, so a parameter
vector, a p x p sum or a short column can arrive at an address that is not a multiple of 8.
numpy computes X'v and X'X with such an array through its own loops instead of BLAS's, with
another rounding: two Dask runs of one fit (200,000 rows, 8 partitions) differed in the last
digits. These tests make the odd addresses deliberately."""

import dataclasses

import numpy as np

from buzzpipe.estimate.chunks import DesignChunk
from buzzpipe.estimate.dask_engine import _task, aligned
from buzzpipe.estimate.families import get_family
from buzzpipe.estimate.wild_bootstrap import scores_and_informations


def unaligned(array: np.ndarray) -> np.ndarray:
    """A copy of ``array`` at an address one byte past a multiple of 64 (as a packed frame)."""
    buffer = np.empty(array.nbytes + 72, dtype=np.uint8)
    start = (-buffer.ctypes.data) % 64 + 1
    copy = np.frombuffer(buffer[start : start + array.nbytes].data, dtype=array.dtype)
    copy = copy.reshape(array.shape)
    copy[...] = array
    assert not copy.flags.aligned
    return copy


def chunk_and_params():
    rng = np.random.default_rng(3)
    n, p = 25_000, 20
    X = rng.normal(size=(n, p))
    y = (rng.random(n) < 0.4).astype(float)
    chunk = DesignChunk(X=X, y=y, weights=rng.uniform(0.5, 2.0, n), offset=None,
                        clusters=rng.integers(0, 9, n), row_ids=np.arange(n), n_rows=n,
                        n_usable=n, nonfinite=np.zeros(0, np.int64))  # fmt: skip
    return chunk, rng.normal(scale=0.1, size=(p, 3))


def test_a_task_given_unaligned_arrays_sums_as_with_aligned_ones():
    chunk, params = chunk_and_params()
    family = get_family("logit")
    expected = scores_and_informations(chunk, family, params)
    moved = dataclasses.replace(chunk, X=unaligned(chunk.X), y=unaligned(chunk.y))
    found = _task(scores_and_informations, moved, None, family, unaligned(params))
    for a, b in zip(found, expected, strict=True):
        assert a.tobytes() == b.tobytes()  # bit for bit


def test_aligned_copies_only_the_arrays_that_need_it():
    chunk, params = chunk_and_params()
    odd = unaligned(params)
    value = {"sums": (odd, params), "chunks": [dataclasses.replace(chunk, y=unaligned(chunk.y))]}
    found = aligned(value)
    assert found["sums"][0].flags.aligned and np.array_equal(found["sums"][0], params)
    assert found["sums"][1] is params
    moved = found["chunks"][0]
    assert moved.y.flags.aligned and np.array_equal(moved.y, chunk.y) and moved.X is chunk.X
    assert aligned(chunk) is chunk and aligned(params) is params
