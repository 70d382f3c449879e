"""formulaic's specification written from the column types and levels (direct_specification)
equals, field by field, the one formulaic learns by materialising the formula; formulas and
columns outside what it writes are left to formulaic (``None``), and designs built through it
equal formulaic's bit for bit."""

import warnings

import numpy as np
import pandas as pd
import pytest
from formulaic import model_matrix

from buzzpipe.estimate import chunks, design
from buzzpipe.estimate.design import build_design
from buzzpipe.estimate.direct_specification import direct_specs


def described(spec) -> dict:
    """Every field of a formulaic ModelSpec, down to the factors' variables and the level types,
    as comparable values (their reprs where formulaic's objects compare loosely)."""
    fields = (
        "materializer",
        "materializer_params",
        "ensure_full_rank",
        "na_action",
        "output",
        "cluster_by",
        "transform_state",
    )
    out = {name: getattr(spec, name) for name in fields}
    out["formula"] = [
        (repr(term), [(f.expr, f.eval_method, f.kind, f.metadata) for f in term.factors])
        for term in spec.formula
    ]
    out["formula type"] = type(spec.formula)
    out["structure"] = [
        (
            repr(structure.term),
            [
                (
                    repr(scoped),
                    scoped.scale,
                    type(scoped.scale),
                    [
                        (
                            factor.factor.expr,
                            factor.reduced,
                            factor.factor.values,
                            sorted(
                                (str(v), sorted(r.value for r in v.roles), v.source)
                                for v in (factor.factor.variables or ())
                            ),
                        )
                        for factor in scoped.factors
                    ],
                )
                for scoped in structure.scoped_terms
            ],
            list(structure.columns),
        )
        for structure in spec.structure
    ]
    out["encoder state"] = [
        (name, kind, repr(state), [type(level) for level in state.get("categories", [])])
        for name, (kind, state) in spec.encoder_state.items()
    ]
    out["column names"] = list(spec.column_names)
    out["required variables"] = sorted(map(str, spec.required_variables))
    out["term indices"] = [(repr(term), columns) for term, columns in spec.term_indices.items()]
    return out


def survey_frame(seed: int = 1, n: int = 80) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "y": rng.integers(0, 2, n).astype(float),
            "y_int": rng.integers(0, 2, n),
            "y_nullable": pd.array(rng.integers(0, 2, n), dtype="Int8"),
            "a": rng.normal(size=n),
            "b": rng.integers(1, 9, n),
            "e": np.exp(rng.normal(size=n)),
            # unused and unsorted categories
            "g": pd.Categorical(rng.choice(list("zxy"), n), categories=list("zyxw")),
            "s": rng.choice(["q", "p", "r"], n).astype(object),
            "t": pd.array(rng.choice(["v", "u"], n), dtype="str"),
            "k": rng.integers(0, 3, n),
            "f": rng.choice([0.5, 1.0, 2.5], n),
            "flag": rng.integers(0, 2, n).astype(bool),
            "one": ["c"] * n,
            "codes": pd.Categorical(rng.integers(0, 3, n)),
            "count": pd.array(rng.integers(0, 3, n), dtype="Int16"),
            "share": pd.array(rng.uniform(size=n), dtype="Float64"),
            "x_1": rng.normal(size=n),
        }
    )


WRITTEN = [
    "y ~ a",
    "y ~ a + b + x_1 + count + share",
    "y ~ a + np.log(e) + log(e) + exp(a) + sqrt(e) + np.exp(a) + np.sqrt(e)",
    "y ~ C(g)",
    "y ~ g + codes + C(codes)",
    "y ~ s + t",
    "y ~ C(s) + C(t) + C(k) + C(f) + C(count)",
    "y_int ~ a + C(k)",
    "y_nullable ~ a + C(k)",
    "y ~ a:b",
    "y ~ a*b",
    "y ~ b:a + a:b",
    "y ~ a + a",
    "y ~ a:C(g)",
    "y ~ C(g) + a:C(g)",
    "y ~ a*C(g)",
    "y ~ (a + b):C(s) + C(s) + C(k)",
    "y ~ (a + b)*C(s) + C(k)",
    "y ~ C(g):C(s)",
    "y ~ C(g)*C(s)",
    "y ~ C(g) + C(s) + C(g):C(s)",
    "y ~ a:b:C(k) + C(k)",
    "y ~ C(k) + C(k):a + a",
    "y ~ s:t",
    "y ~ np.log(b) + b",
    "y ~ a + C(g) + np.log(e):C(s)",
]
LEFT_TO_FORMULAIC = [
    "y ~ flag",  # numpy booleans
    "y ~ C(flag)",
    "y ~ one",  # a single level
    "y ~ C(one)",
    "y ~ 0 + a",  # no intercept
    "y ~ a - 1",
    "y ~ center(a)",  # stateful
    "y ~ I(a**2)",
    "y ~ y + a",  # the outcome on the right
    "flag ~ a",  # a boolean or text outcome
    "s ~ a",
    "y ~ C(k, contr.sum)",  # other contrasts
]


def formulaic_specs(formula: str, data: pd.DataFrame):
    with np.errstate(divide="ignore", invalid="ignore"):
        return model_matrix(formula, data, context=chunks.FORMULA_CONTEXT, na_action="drop")


def assert_same_specs(formula: str, data: pd.DataFrame, rows: np.ndarray) -> None:
    written = direct_specs(formula, data, rows)
    assert written is not None, formula
    specs, names = written
    learnt = formulaic_specs(formula, data.iloc[np.flatnonzero(rows)])
    assert names == [str(name) for name in learnt.rhs.columns], formula
    for side in ("lhs", "rhs"):
        mine, theirs = getattr(specs, side), getattr(learnt.model_spec, side)
        assert described(mine) == described(theirs), (formula, side)
        assert mine == theirs and repr(mine) == repr(theirs), (formula, side)


@pytest.mark.parametrize("formula", WRITTEN)
def test_written_specifications_equal_formulaics(formula):
    data = survey_frame()
    assert_same_specs(formula, data, np.ones(len(data), dtype=bool))


def test_levels_are_those_of_the_usable_rows():
    """Missing values leave the sample first: a level only they hold is no level, and the rows
    passed (not the whole frame) decide the levels."""
    data = survey_frame(seed=2)
    data.loc[::7, "a"] = np.nan
    data.loc[3::9, "s"] = None
    data.loc[data["k"] == 2, "count"] = pd.NA
    for formula in ("y ~ a + C(s) + C(k) + g + count", "y ~ a*C(s)", "y ~ C(k) + a"):
        variables = chunks.parsed_specification(formula, data)[0]
        rows = chunks.usable_rows(data, variables, weights=None, cluster=None, offset=None)
        assert_same_specs(formula, data, rows)
    rows = (data["s"] != "r").to_numpy()
    assert_same_specs("y ~ C(s) + a:C(s)", data, rows)


def test_names_that_need_quoting():
    data = survey_frame().rename(columns={"a": "my a", "s": "s.x", "k": "class"})
    rows = np.ones(len(data), dtype=bool)
    for formula in ("y ~ `my a` + `class`", "y ~ `my a`:`s.x`"):
        assert_same_specs(formula, data, rows)
    for formula in ("y ~ C(`s.x`)", "y ~ np.log(`my a`)"):
        assert direct_specs(formula, data, rows) is None


@pytest.mark.parametrize("formula", LEFT_TO_FORMULAIC)
def test_other_formulas_are_left_to_formulaic(formula):
    data = survey_frame()
    assert direct_specs(formula, data, np.ones(len(data), dtype=bool)) is None


def test_a_column_named_like_a_function_is_left_to_formulaic():
    data = survey_frame().assign(log=1.0)
    assert direct_specs("y ~ a + C(k)", data, np.ones(len(data), dtype=bool)) is None


# (stateful and other contrasts: formulaic's own specification learnt on a few rows; a text
# outcome: an error either way)
FORMULAIC_DESIGNS = [
    f for f in LEFT_TO_FORMULAIC if f not in ("y ~ center(a)", "y ~ C(k, contr.sum)", "s ~ a")
]


@pytest.mark.parametrize("formula", WRITTEN + FORMULAIC_DESIGNS)
def test_designs_equal_formulaics_bit_for_bit(formula):
    """Through build_design (written or learnt specifications): formulaic's columns, names and
    values, missing values and a log(0) left out."""
    design._SPECIFICATIONS.clear()
    data = survey_frame(seed=5)
    data.loc[4, "a"] = np.nan
    data.loc[9, "e"] = 0.0
    built = build_design(formula, data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        learnt = formulaic_specs(formula, data.loc[built.row_ids])
    assert built.names == [str(name) for name in learnt.rhs.columns], formula
    expected = learnt.rhs.to_numpy(dtype=np.float64)
    assert built.X.dtype == np.float64
    assert np.array_equal(built.X, expected) and np.array_equal(
        np.signbit(built.X), np.signbit(expected)
    ), formula
    assert np.array_equal(built.y, learnt.lhs.to_numpy(dtype=np.float64)[:, 0])
    if formula in WRITTEN:  # (formulaic's own learnt on a few rows may differ in other cases)
        assert built.model_spec == learnt.rhs.model_spec
        assert built.outcome_spec == learnt.lhs.model_spec


def test_written_specifications_need_no_materialisation():
    data = survey_frame()
    design._SPECIFICATIONS.clear()
    materialised = []
    original = chunks.specification

    def counting(*arguments, **keywords):
        materialised.append(arguments[0])
        return original(*arguments, **keywords)

    chunks.specification, saved = counting, chunks.specification
    try:
        for formula in WRITTEN:
            build_design(formula, data)
        build_design("y ~ 0 + a + C(k)", data)
    finally:
        chunks.specification = saved
    assert materialised == ["y ~ 0 + a + C(k)"]


def test_a_right_hand_side_is_written_once_for_every_outcome():
    """The same right-hand side on rows of the same kinds and levels takes the specification
    written for another outcome: formulaic's own for each outcome."""
    data = survey_frame()
    rows = np.ones(len(data), dtype=bool)
    right = "a + C(g) + (b + np.log(e)):C(s)"
    first, _ = direct_specs(f"y ~ {right}", data, rows)
    for outcome in ("y_int", "y_nullable"):
        second, names = direct_specs(f"{outcome} ~ {right}", data, rows)
        assert second.rhs is first.rhs
        assert_same_specs(f"{outcome} ~ {right}", data, rows)
    fewer = direct_specs(f"y_int ~ {right}", data, (data["s"] != "r").to_numpy())[0]
    assert fewer.rhs is not first.rhs
    assert_same_specs(f"y_int ~ {right}", data, (data["s"] != "r").to_numpy())


def test_a_stateful_transform_learns_from_the_estimation_sample():
    """``center(a)`` with a missing ``a`` (and a missing outcome elsewhere) centres on the rows
    the model is fitted on, as centring the estimation sample by hand gives (statsmodels): one
    missing value no longer leaves no observation at all."""
    import statsmodels.api as sm

    import buzzpipe as bp

    rng = np.random.default_rng(4)
    n = 400
    frame = pd.DataFrame({"a": rng.normal(1.0, 1.0, n), "b": rng.normal(size=n)})
    frame["y"] = (rng.random(n) < 1 / (1 + np.exp(-(frame["a"] - 1.0)))).astype(float)
    frame.loc[3, "a"] = np.nan
    frame.loc[7, "y"] = np.nan
    fitted = bp.fit("y ~ center(a) + b", frame)
    sample = frame.dropna()
    assert fitted.nobs == len(sample) == n - 2
    centred = sm.add_constant(
        pd.DataFrame({"a": sample["a"] - sample["a"].mean(), "b": sample["b"]})
    )
    expected = sm.Logit(sample["y"], centred).fit(disp=0)
    np.testing.assert_allclose(fitted.params.to_numpy(), expected.params.to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(fitted.bse.to_numpy(), expected.bse.to_numpy(), rtol=1e-7)
