"""Exact sums: correctly rounded (``math.fsum``'s float) and the same whatever the chunking."""

import math
import pickle

import numpy as np
import pytest

from buzzpipe.estimate import exact_sums
from buzzpipe.estimate.exact_sums import ExactSum, exact_sum, group_sums
from buzzpipe.estimate.sources import tree_combine


def _values(kind: str, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "probabilities":  # the counterfactuals' w p: many exponents, all positive
        return rng.uniform(0.5, 3.0, n) * rng.beta(0.3, 2.0, n)
    if kind == "cancelling":  # large terms that cancel, leaving small ones: fsum's hard case
        big = rng.standard_normal(n // 2) * 1e16
        return rng.permutation(np.concatenate([big, -big, rng.standard_normal(n - 2 * (n // 2))]))
    # wide: from subnormal to 1e300, both signs
    return rng.standard_normal(n) * 10.0 ** rng.integers(-310, 300, n).astype(float)


CHUNKINGS = [[3000], [1000, 1000, 1000], [429] * 6 + [426], [1, 2, 997, 1500, 500], [2999, 1]]


@pytest.mark.parametrize("kind", ["probabilities", "cancelling", "wide"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_chunking_gives_the_correctly_rounded_sum_bit_for_bit(kind, seed):
    values = _values(kind, 3000, seed)
    expected = math.fsum(values)
    for sizes in CHUNKINGS:
        bounds = np.cumsum([0, *sizes])
        chunks = [exact_sum(values[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        in_order = sum(chunks, ExactSum())
        in_a_tree = tree_combine(chunks)  # the sources' and Dask's reduction
        backwards = sum(reversed(chunks), ExactSum())
        for total in (in_order, in_a_tree, backwards):
            assert total == in_order
            assert float(total).hex() == expected.hex()
    # numpy's pairwise sum is not exact where terms cancel: the test could fail
    if kind == "cancelling":
        assert any(
            sum(values[a : a + s].sum() for a, s in zip(np.cumsum([0, *c[:-1]]), c, strict=True))
            != expected
            for c in CHUNKINGS
        )


def test_group_sums_are_each_groups_fsum():
    rng = np.random.default_rng(5)
    values = _values("probabilities", 2000, 3)
    codes = rng.integers(0, 6, 2000)
    columns = (values, -values * 3.0, np.ones(2000))
    found = group_sums(columns, codes, 7)  # group 6 has no rows
    for group in range(7):
        members = codes == group
        for column, data in enumerate(columns):
            assert float(found[group][column]) == math.fsum(data[members])
    assert float(found[6][0]) == 0.0


def test_sums_of_more_rows_than_a_round_add_the_rounds_exactly(monkeypatch):
    monkeypatch.setattr(exact_sums, "_ROUND_ROWS", 7)
    values = _values("wide", 100, 4)
    codes = np.arange(100) % 3
    found = group_sums([values], codes, 3)
    for group in range(3):
        assert float(found[group][0]) == math.fsum(values[codes == group])


def test_the_exact_sum_rounds_once_and_travels():
    tiny = 2.0**-1074  # the smallest subnormal: 1 + tiny + tiny rounds to 1 term by term
    total = exact_sum(np.array([1.0, tiny, tiny, -1.0]))
    assert float(total) == 2 * tiny
    half_ulp = exact_sum(np.array([1.0, 2.0**-53, 2.0**-53]))
    assert float(half_ulp) == 1.0 + 2.0**-52  # numpy's sum gives 1.0
    assert float(exact_sum(np.array([1e308, 1e308]))) == math.inf
    copied = pickle.loads(pickle.dumps(total))
    assert copied == total and float(copied - total) == 0.0
    assert float(exact_sum(np.zeros(0))) == 0.0
    with pytest.raises(ValueError, match="not all finite"):
        exact_sum(np.array([1.0, math.nan]))


def test_whole_numbers_take_the_direct_path_and_give_the_same_sums(monkeypatch):
    rng = np.random.default_rng(6)
    counts = rng.integers(-1000, 1000, 5000).astype(float)
    codes = rng.integers(0, 4, 5000)
    direct = group_sums([counts], codes, 4)
    monkeypatch.setattr(exact_sums, "_WHOLE_LIMIT", 0.0)  # the split path for the same values
    split = group_sums([counts], codes, 4)
    for group in range(4):
        assert direct[group][0] == split[group][0]
        assert float(direct[group][0]) == math.fsum(counts[codes == group])
    big = np.array([2.0**60, 1.0, -(2.0**60)])  # whole but beyond 2^52: the split path
    assert float(exact_sum(big)) == 1.0


def test_columns_of_whole_and_fractional_values_each_take_their_path():
    rng = np.random.default_rng(7)
    n, groups = 4000, 5
    counts = rng.integers(0, 3, n).astype(float)  # whole: the direct path
    fractions = _values("probabilities", n, 8)  # the split path
    large = np.full(n, 2.0**60)  # whole, but its sums could pass 2^52: the split path
    large[::2] *= -1.0
    codes = rng.integers(0, groups, n)
    found = group_sums([fractions, counts, large, counts * 0.5], codes, groups)
    for group in range(groups):
        rows = codes == group
        expected = [fractions, counts, large, counts * 0.5]
        for column, values in enumerate(expected):
            assert float(found[group][column]) == math.fsum(values[rows]), (group, column)
            assert found[group][column] == group_sums([values], codes, groups)[group][0]
