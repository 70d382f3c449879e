"""Designs shared by the fits of one right-hand side on the same rows (``design.designs_shared``):
the fits are those of the plain build, bit for bit, and sharing stops where rows or columns
differ."""

import numpy as np
import pandas as pd
import pytest

from buzzpipe.estimate import chunks
from buzzpipe.estimate.design import build_design, cluster_codes, designs_shared
from buzzpipe.estimate.fitting import fit_with_design

pytestmark = pytest.mark.filterwarnings("ignore:only 3 clusters")

RIGHT = "x1 + np.log(employees) + share + C(industry) + C(region)"


def firms(seed: int = 11, n: int = 600) -> pd.DataFrame:
    """Columns of the analysis frame's kinds: float, nullable integer, categorical, weights."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    industry = rng.choice(["ict", "manufacturing", "services", "trade"], n)
    index = x1 + 0.4 * (industry == "ict")
    data = pd.DataFrame(
        {
            "x1": x1,
            "employees": np.exp(rng.normal(3, 1, n)),
            "share": rng.uniform(size=n),
            "industry": pd.Categorical(industry),
            "region": pd.Categorical(rng.choice(["Agder", "Bergen", "Oslo"], n)),
            "weight": rng.uniform(0.5, 2.0, n),
            "product": pd.array(rng.uniform(size=n) < 1 / (1 + np.exp(-index)), dtype="Int8"),
            "process": (rng.uniform(size=n) < 1 / (1 + np.exp(-0.5 * index))).astype(float),
            "novelty": pd.array(
                np.digitize(index + rng.logistic(size=n), [-1.0, 0.5, 1.5]), dtype="Int8"
            ),
        },
        index=pd.Index([f"firm{i}" for i in range(n)], name="firm_id"),
    )
    data["lpm"] = data["process"]
    return data


def fits(data: pd.DataFrame, models, vcov="robust", weights=None, deep=False):
    """(fit, design) of each (outcome, family) on a shallow copy of ``data`` each, as the
    battery's samples of every row are (``deep``: a copy of the columns each, as the parts'
    columns remade per outcome are)."""
    return [
        fit_with_design(f"{outcome} ~ {RIGHT}", data.copy(deep=deep), family, vcov, weights)
        for outcome, family in models
    ]


MODELS = [("product", "logit"), ("process", "probit"), ("novelty", "ologit"), ("lpm", "lpm")]


@pytest.mark.parametrize("deep", [False, True])
@pytest.mark.parametrize("weights", [None, "weight"])
@pytest.mark.parametrize("vcov", ["robust", {"cluster": "region"}])
def test_shared_designs_give_the_plain_fits_bit_for_bit(weights, vcov, deep):
    data = firms()
    plain = fits(data, MODELS, vcov, weights)
    with designs_shared():
        shared = fits(data, MODELS, vcov, weights, deep)
    for (expected, expected_X), (found, found_X) in zip(plain, shared, strict=True):
        assert found.family == expected.family and found.outcome == expected.outcome
        assert list(found.params.index) == list(expected.params.index)
        np.testing.assert_array_equal(found.params.to_numpy(), expected.params.to_numpy())
        np.testing.assert_array_equal(found.vcov.to_numpy(), expected.vcov.to_numpy())
        np.testing.assert_array_equal(found.bread, expected.bread)
        assert found.llf == expected.llf and found.llnull == expected.llnull
        assert found.notes == expected.notes and found.row_ids.equals(expected.row_ids)
        if expected_X is not None:
            np.testing.assert_array_equal(found_X, expected_X)
    # the binary models' designs are one array (read-only); the ordered logit's drops the
    # intercept from it
    binary = [design for (fit, design), (_, family) in zip(shared, MODELS, strict=True)
              if family != "ologit"]  # fmt: skip
    assert all(design is binary[0] for design in binary)
    assert not binary[0].flags.writeable


def test_a_design_is_shared_only_where_rows_and_columns_are_the_same():
    data = firms()
    formula = f"product ~ {RIGHT}"
    with designs_shared():
        first = build_design(formula, data.copy(deep=False))
        assert build_design(f"process ~ {RIGHT}", data.copy(deep=False)).X is first.X
        # a copy of the columns, the same rows selected anew: the same values, shared
        assert build_design(formula, data.copy(deep=True)).X is first.X
        assert build_design(formula, data.loc[data["x1"].notna()]).X is first.X
        # a different right-hand side, a changed column: built anew
        assert build_design("product ~ x1 + share", data).X is not first.X
        changed = data.copy(deep=False)
        changed.loc[changed.index[0], "x1"] = 5.0  # copy on write: the shared memory stays
        rebuilt = build_design(formula, changed)
        assert rebuilt.X is not first.X and rebuilt.X[0, 1] == 5.0 and first.X[0, 1] != 5.0
        # an outcome missing on a row: that row leaves the sample, so the design is its own
        missing = data.copy(deep=False)
        missing["process"] = missing["process"].where(np.arange(len(data)) != 3)
        own = build_design(f"process ~ {RIGHT}", missing)
        assert own.X is not first.X and own.nobs == len(data) - 1
    # outside the block nothing is shared
    assert build_design(formula, data).X is not build_design(formula, data).X


def test_columns_of_other_values_or_types_do_not_share_a_design():
    """Remade columns share a design only where their values are the same bit for bit: a sign
    of zero, the order of a categorical's levels, a nullable type or a missing value apart
    each give a design of their own (what a plain build gives)."""
    data = firms()
    data["zero"] = 0.0
    formula = "product ~ x1 + zero + C(industry)"
    changes = {
        "negative zero": lambda frame: frame.assign(zero=-0.0),
        "levels reordered": lambda frame: frame.assign(
            industry=frame["industry"].cat.reorder_categories(
                ["trade", "services", "manufacturing", "ict"]
            )
        ),
        "levels as text": lambda frame: frame.assign(industry=frame["industry"].astype(str)),
        "nullable floats": lambda frame: frame.assign(x1=frame["x1"].astype("Float64")),
        "one value": lambda frame: frame.assign(x1=frame["x1"].where(frame.index != "firm7", 9.0)),
    }
    with designs_shared():
        first = build_design(formula, data.copy(deep=True))
        for name, change in changes.items():
            changed = change(data.copy(deep=True))
            built = build_design(formula, changed)
            assert built.X is not first.X, name
            np.testing.assert_array_equal(built.X, build_design(formula, changed.copy()).X)
        assert build_design(formula, data.copy(deep=True)).X is first.X


@pytest.mark.parametrize(
    "first, second, same",
    [
        (pd.Series([0.0, 1.5]), pd.Series([0.0, 1.5]), True),
        (pd.Series([0.0, 1.5]), pd.Series([-0.0, 1.5]), False),
        (pd.Series([1.0, 2.0]), pd.Series([1, 2]), False),
        (pd.Series([1.0, 2.0]), pd.Series([1.0, 2.0, 3.0]), False),
        (pd.Series(pd.array([1, None], "Int8")), pd.Series(pd.array([1, None], "Int8")), True),
        (pd.Series(pd.array([1, 2], "Int8")), pd.Series(pd.array([1, None], "Int8")), False),
        (pd.Series(pd.Categorical(["a", "b"])), pd.Series(pd.Categorical(["a", "b"])), True),
        (
            pd.Series(pd.Categorical(["a", "b"], ["a", "b"])),
            pd.Series(pd.Categorical(["b", "a"], ["b", "a"])),  # the same codes, other values
            False,
        ),
        (pd.Series(["a", "b"], dtype=object), pd.Series(["a", "b"], dtype=object), False),
    ],
)
def test_same_values_compares_the_bits_of_columns(first, second, same):
    assert chunks.same_values(first, second) is same
    assert chunks.same_values(second, first) is same


@pytest.mark.parametrize(
    "values",
    [
        pd.Series(pd.Categorical(["Oslo", "Agder", "Oslo", "Bergen"], ["Oslo", "Bergen", "Agder"])),
        pd.Series(pd.Categorical(["b", "a", "b"], ["c", "b", "a", "d"])),  # unused categories
        pd.Series(pd.Categorical([3, 1, 3, 2], [3, 2, 1])),
        pd.Series(pd.Categorical(["b", None, "a"])),  # a missing value: pandas' answer
        pd.Series(["Oslo", "Agder", "Oslo"], dtype="str"),
        pd.Series([2.0, 1.0, 2.0, 5.0]),
    ],
)
def test_cluster_codes_are_pandas_factorize_of_the_values(values):
    for positions in (slice(None), np.array([2, 0, 1])):
        codes, labels = cluster_codes(values, positions)
        expected_codes, expected_labels = pd.factorize(values.to_numpy()[positions], sort=True)
        assert codes.dtype == np.intp
        np.testing.assert_array_equal(codes, expected_codes)
        np.testing.assert_array_equal(labels, np.asarray(expected_labels))
        assert labels.dtype == np.asarray(expected_labels).dtype


def test_the_separation_checks_of_shared_designs_are_each_outcomes_own():
    """One right-hand side, three outcomes: one with an industry's firms all failures (the
    indicator and its rows go), one with the reference region's firms all failures (its rows
    go), one with neither; each fit inside the block is its plain fit, notes and all."""
    data = firms(seed=3)
    trade = (data["industry"] == "trade").to_numpy()
    agder = (data["region"] == "Agder").to_numpy()
    data["cell"] = data["process"].where(~trade, 0.0)
    data["reference"] = data["process"].where(~agder, 0.0)
    models = [("cell", "logit"), ("reference", "logit"), ("process", "logit")]
    plain = fits(data, models)
    with designs_shared():
        shared = fits(data, models)
    for (expected, _), (found, _) in zip(plain, shared, strict=True):
        assert found.notes == expected.notes
        np.testing.assert_array_equal(found.params.to_numpy(), expected.params.to_numpy())
        np.testing.assert_array_equal(found.vcov.to_numpy(), expected.vcov.to_numpy())
        assert found.row_ids.equals(expected.row_ids)
    assert any("trade" in note for note in plain[0][0].notes)
    assert any("reference level" in note for note in plain[1][0].notes)
    assert not plain[2][0].notes


@pytest.mark.parametrize("kept", [True, False])
def test_a_specification_fixed_from_a_shared_designs_levels_is_the_plain_one(kept, monkeypatch):
    """A build that finds a shared design before its specification is fixed takes the shared
    build's levels (no pass over the rows for them) and, where no specification is kept
    (``kept`` False: a battery's first fits of a formula), the right-hand specification
    written for the shared build: its specification, design and outcome are the plain build's,
    with factors of a categorical, of an integer column in ``C()`` and of text, for every
    outcome of the right-hand side."""
    from buzzpipe.estimate import design as design_module
    from buzzpipe.estimate import direct_specification

    written = []
    direct_specs = direct_specification.direct_specs

    def spied(formula, frame, rows, right=None):
        found = direct_specs(formula, frame, rows, right)
        written.append((right is not None, found))
        return found

    monkeypatch.setattr(design_module, "direct_specs", spied)
    data = firms(seed=5)
    data["size_class"] = np.random.default_rng(5).integers(1, 4, len(data))
    data["sector"] = data["industry"].astype(object)
    right = "x1 + C(industry) + C(size_class) + C(sector) + C(region)"
    outcomes = ["product", "process", "lpm", "novelty"]
    plain = {outcome: build_design(f"{outcome} ~ {right}", data) for outcome in outcomes}
    if not kept:
        design_module._SPECIFICATIONS.clear()
        direct_specification._RIGHT_HANDS.clear()
        chunks._RHS_PLANS.clear()
    written.clear()
    with designs_shared():
        first = build_design(f"{outcomes[0]} ~ {right}", data.copy(deep=False)).X
        for outcome in outcomes * 2:
            built = build_design(f"{outcome} ~ {right}", data.copy(deep=False))
            assert built.X is first  # found before its specification was fixed
            expected = plain[outcome]
            assert built.names == expected.names
            assert list(built.model_spec.column_names) == list(expected.model_spec.column_names)
            assert built.model_spec.structure == expected.model_spec.structure
            np.testing.assert_array_equal(built.X, expected.X)
            np.testing.assert_array_equal(built.y, expected.y)
            assert built.row_ids.equals(expected.row_ids)
            assert built.outcome_spec.structure == expected.outcome_spec.structure
    # kept: every specification found by its key; else the first written whole, the other
    # outcomes' beside the shared right-hand side (the same object)
    assert [from_shared for from_shared, _ in written] == (
        [] if kept else [False, True, True, True]
    )
    assert all(found[0].rhs is written[0][1][0].rhs for _, found in written)
