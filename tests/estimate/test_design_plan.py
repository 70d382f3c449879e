"""Designs built without formulaic (plain columns, log/exp/sqrt, treatment-coded factors and
their products; specifications written from the column types and levels where they can be)
equal formulaic's own materialisation bit for bit, and data it cannot plan goes through
formulaic as before."""

import warnings

import numpy as np
import pandas as pd
import pytest
from formulaic import model_matrix

from buzzpipe.errors import InputError
from buzzpipe.estimate import chunks, design
from buzzpipe.estimate.design import build_design, rebuild_matrix

FORMULAS = [
    "y ~ x1 + log(employees) + C(industry) + C(region)",
    "y ~ x1 * x2 + np.log(employees) + C(industry) + count",
    "y ~ (x1 + x2) * C(industry) + C(region) + sqrt(employees)",
    "y ~ C(industry):C(region) + label",
    "y ~ 0 + C(industry) + x1:x2:count + exp(x2)",
    "y ~ C(size) + x1:C(region) + flag",
    "y ~ center(x1) + C(industry)",
    "y ~ x2 + count + C(region)",
    "y ~ x1 + count",
]


def frame(seed: int = 3, n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n),
            "count": pd.array(rng.integers(0, 6, n), dtype="Int16"),
            "employees": np.exp(rng.normal(3, 1, n)),
            "industry": pd.Categorical(rng.choice(["b", "a", "c", "d"], n), ["d", "a", "b", "c"]),
            "region": rng.choice(["Oslo", "Bergen", "Agder"], n),
            "label": rng.choice(["p", "q"], n),
            "size": rng.integers(1, 4, n),
            "flag": rng.integers(0, 2, n).astype(float),
        }
    )
    data["y"] = (rng.uniform(size=n) < 0.4).astype(float)
    return data


def formulaic_design(formula: str, data: pd.DataFrame, names: list[str]) -> np.ndarray:
    matrices = model_matrix(formula, data, context=chunks.FORMULA_CONTEXT, na_action="drop")
    return matrices.rhs[names].to_numpy(dtype=np.float64)


@pytest.fixture(autouse=True)
def empty_caches():
    for cache in (design._SPECIFICATIONS, design._REBUILD_PLANS):
        cache.clear()
    yield


def test_designs_equal_formulaic_bit_for_bit_in_any_order():
    data = frame()
    for order in (FORMULAS, FORMULAS[::-1]):
        design._SPECIFICATIONS.clear()
        for formula in order:
            built = build_design(formula, data)
            expected = formulaic_design(formula, data.loc[built.row_ids], built.names)
            fresh = model_matrix(formula, data, context=chunks.FORMULA_CONTEXT).rhs
            assert built.names == [str(name) for name in fresh.columns], formula
            assert np.array_equal(built.X, expected), formula
            assert np.array_equal(np.signbit(built.X), np.signbit(expected)), formula
            assert list(built.model_spec.column_names) == built.names
            assert set(built.model_spec.encoder_state) == set(fresh.model_spec.encoder_state)


def test_a_specification_is_made_once_per_formula_roles_and_levels():
    """The same formula on a sample of the same types and levels takes the kept specification
    (formulaic's, for a formula it must learn); other roles or levels make their own."""
    data = frame()
    materialised = []
    original = chunks.specification

    def counting(*arguments, **keywords):
        materialised.append(arguments[0])
        return original(*arguments, **keywords)

    formula = "y ~ 0 + C(region) + x1:x2:count + exp(x2)"
    chunks.specification, saved = counting, chunks.specification
    try:
        first = build_design(formula, data)
        again = build_design(formula, data)
        clustered = build_design(formula, data, cluster="label")
        fewer = build_design(formula, data[data["region"] != "Agder"])
    finally:
        chunks.specification = saved
    assert materialised == [formula] * 3
    assert again.model_spec is first.model_spec
    assert clustered.names == first.names and len(fewer.names) == len(first.names) - 1
    fresh = model_matrix(formula, data, context=chunks.FORMULA_CONTEXT)
    assert np.array_equal(again.X, fresh.rhs.to_numpy(dtype=np.float64))


def test_rebuild_equals_formulaic_with_missing_values_and_new_levels():
    data = frame()
    changed = data.copy()
    changed.loc[:4, "x1"] = np.nan
    changed.loc[5:8, "region"] = np.nan
    for formula in FORMULAS:
        built = build_design(formula, data)
        for new in (data, changed, data.iloc[:3]):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                expected = built.model_spec.get_model_matrix(
                    new, na_action="ignore", context=chunks.FORMULA_CONTEXT
                )[built.names].to_numpy(dtype=np.float64)
            assert np.array_equal(
                rebuild_matrix(built.model_spec, built.names, new), expected, equal_nan=True
            )


def test_a_rebuilt_design_is_column_major_as_formulaic_gives_it():
    """The same numbers in the same layout: BLAS sums a row-major matrix in another order, and a
    wild bootstrap's restricted fit at the edge of separation went from a nearly singular
    information (formulaic's column-major design) to an exactly singular one (a row-major copy)."""
    data = frame()
    for formula in FORMULAS:
        built = build_design(formula, data)
        expected = built.model_spec.get_model_matrix(
            data, na_action="ignore", context=chunks.FORMULA_CONTEXT
        )[built.names].to_numpy(dtype=np.float64)
        rebuilt = rebuild_matrix(built.model_spec, built.names, data)
        assert expected.flags.f_contiguous and rebuilt.flags.f_contiguous, formula


def test_a_level_the_specification_does_not_know_is_an_error_in_a_chunk():
    data = frame()
    spec = build_design("y ~ x1 + C(region)", data)
    specification = chunks.specification(
        "y ~ x1 + C(region)",
        data.iloc[:60],
        variables=["region", "x1", "y"],
        level_variables=["region"],
        stateful=False,
    )
    assert specification.names == spec.names
    with pytest.raises(InputError, match="factor level"):
        chunks.build_chunk(specification, data.assign(region="Tromso"))


def test_level_codes_of_a_categorical_equal_get_indexer_of_its_values():
    """A categorical column's codes mapped through its categories give what get_indexer of the
    values gives: missing values and categories that are not levels are -1, levels that are not
    categories are never hit, and row selections apply."""
    values = pd.Categorical(
        ["Oslo", None, "Bergen", "Agder", "Oslo", "Tromsø", None],
        categories=["Tromsø", "Oslo", "Agder", "Bergen"],
    )
    for column in (pd.Series(values), pd.Series(values.astype(object))):
        for levels in (["Agder", "Bergen", "Oslo"], ["Oslo", "Bergen", "Agder", "Tromsø", "x"]):
            for rows in (slice(None), np.array([4, 1, 3, 3])):
                expected = pd.Index(levels).get_indexer(column.to_numpy()[rows])
                found = chunks.level_codes(column, levels, rows)
                np.testing.assert_array_equal(found, expected)
        assert (chunks.level_codes(column, ["Agder"], slice(None)) == -1).sum() == 6
    numbers = pd.Series(pd.Categorical([3, 1, None, 2, 3], categories=[3, 2, 1]))
    for levels in ([1, 2, 3], [2, 5]):
        expected = pd.Index(levels).get_indexer(numbers.to_numpy())
        np.testing.assert_array_equal(chunks.level_codes(numbers, levels, slice(None)), expected)


def test_designs_built_inside_one_reading_equal_those_built_alone():
    """Inside ``chunks.reading(frame)`` each column is read once and shared by every design
    built on that frame: the same designs bit for bit as built alone, missing values, a factor
    of strings and a transform left out (log(0)) included; the shared arrays are read-only."""
    data = frame()
    data.loc[3, "x1"] = np.nan
    data.loc[7, "count"] = pd.NA
    data.loc[11, "employees"] = 0.0
    alone = [build_design(formula, data) for formula in FORMULAS]
    rebuilt_alone = [rebuild_matrix(d.model_spec, d.names, data) for d in alone]
    reads = []
    original = pd.DataFrame.__getitem__

    def counting(self, key):
        if self is data and isinstance(key, str):
            reads.append(key)
        return original(self, key)

    pd.DataFrame.__getitem__ = counting
    try:
        with chunks.reading(data):
            shared = [build_design(formula, data) for formula in FORMULAS]
            rebuilt = [rebuild_matrix(d.model_spec, d.names, data) for d in shared]
            values = chunks.float_values(data, "count")
    finally:
        pd.DataFrame.__getitem__ = original
    for one, other in zip(alone, shared, strict=True):
        assert one.names == other.names
        assert np.array_equal(one.X, other.X) and np.array_equal(one.y, other.y)
        assert one.row_ids.equals(other.row_ids)
    for one, other in zip(rebuilt_alone, rebuilt, strict=True):
        assert np.array_equal(one, other, equal_nan=True)
    assert not values.flags.writeable and np.isnan(values[7])
    # formulas planned without formulaic (the others have formulaic read the frame itself):
    # each column taken from the frame once however many designs read it
    reads.clear()
    pd.DataFrame.__getitem__ = counting
    try:
        with chunks.reading(data):
            for formula in (FORMULAS[0], FORMULAS[1], FORMULAS[7], FORMULAS[8]):
                built = build_design(formula, data)
                rebuild_matrix(built.model_spec, built.names, data)
    finally:
        pd.DataFrame.__getitem__ = original
    assert sorted(reads) == sorted(set(reads))


def test_a_frame_read_inside_a_nested_block_is_let_go_when_it_ends():
    """A frame registered by a nested block is read afresh after that block: a change made to
    it then is seen (the outer block's frames stay shared until their block ends)."""
    data, other = frame(), frame(seed=4)
    with chunks.reading(data):
        with chunks.reading(other):
            before = chunks.float_values(other, "x1")
        other["x1"] = other["x1"] + 1.0
        after = chunks.float_values(other, "x1")
        np.testing.assert_array_equal(after, before + 1.0)
        assert chunks.float_values(data, "x1") is chunks.float_values(data, "x1")
    assert chunks._READS.get() is None
