"""Probability changes from the fit's design (issue 18, item 4): a data change whose columns
the design reads as they are is written into the fit's design; the result must be the design
the formula rebuilds from the changed data, bit for bit, and anything else must take the
formula path."""

import numpy as np
import pytest

from buzzpipe.results.vocabulary import Family
from buzzpipe.study.common_support import set_breadth, with_categories
from buzzpipe.study.models import (
    PRIMARY_INFERENCE,
    design_of,
    fit_model,
    fit_outcome_models,
    inference_of,
    marginal_effects,
)
from buzzpipe.study.probability_changes import (
    ChangeDesigns,
    apply_programme,
    average_change,
    compose,
    plus_one,
    sample_design,
)
from buzzpipe.study.sensitivity import memory_wild_bootstrap

SCALES = ("regional", "national", "international")
CONTROLS = "np.log(employees) + foreign_share + C(industry) + C(region) + openness"
FORMULAS = {  # formula -> whether every change below is a column edit
    "breadth_regional + breadth_national + breadth_international + " + CONTROLS: True,
    "breadth_regional * breadth_international + breadth_national + " + CONTROLS: True,
    " + ".join(f"C(breadth_category_{scale})" for scale in SCALES) + " + " + CONTROLS: True,
    "C(regime) + np.log(employees)": True,
    "any_international + breadth_regional_with_group + C(industry)": True,
    "np.log(breadth_international + 1) + breadth_regional": False,  # transformed: rebuilt
}
CHANGES = [
    *(plus_one(scale) for scale in SCALES),
    *(set_breadth(scale, value) for scale in SCALES for value in (0, 1, 2)),
    compose(plus_one("regional"), plus_one("international")),
]


@pytest.fixture(scope="module")
def sample(synthetic_frame):
    frame = synthetic_frame("norway2010", 5)
    found, _ = fit_outcome_models(frame, "product")
    return with_categories(found, SCALES)


@pytest.mark.parametrize("right", list(FORMULAS))
def test_edited_designs_are_the_rebuilt_designs_bit_for_bit(sample, right):
    fitted = fit_model(f"product ~ {right}", sample, Family.LOGIT, PRIMARY_INFERENCE)
    designs = ChangeDesigns(fitted, sample)
    edited = 0
    for change in CHANGES:
        rebuilt = np.asarray(fitted.design_matrix(change(sample)), dtype=float)
        found = designs.of(change)
        assert np.array_equal(found, rebuilt), change.key
        assert found.flags.f_contiguous == rebuilt.flags.f_contiguous  # products round alike
        edited += designs._edited(change) is not None
    if FORMULAS[right]:
        assert edited == len(CHANGES)
    else:  # the changes of breadth_international go through the formula
        assert edited < len(CHANGES)
    assert designs.of(None) is designs.of(None)  # the fit's design built once


def test_a_value_no_firm_has_is_rebuilt_through_the_formula(sample):
    right = " + ".join(f"C(breadth_category_{scale})" for scale in SCALES)
    data = sample[sample["breadth_category_international"] != 2]
    fitted = fit_model(f"product ~ {right}", data, Family.LOGIT, PRIMARY_INFERENCE)
    designs = ChangeDesigns(fitted, data)
    change = set_breadth("international", 2)
    assert designs._edited(change) is None  # no firm in category 2 to copy a row from
    with pytest.warns(Warning):  # the formula meets the unseen level as it did before
        rebuilt = np.asarray(fitted.design_matrix(change(data)), dtype=float)
    with pytest.warns(Warning):
        assert np.array_equal(designs.of(change), rebuilt, equal_nan=True)


def test_the_shared_design_of_the_sample_is_the_rebuilt_one(sample):
    """sample_design takes ChangeDesigns' design of the sample only for that fit on that very
    frame (else rebuilds it), and the parts given it (margins, the wild bootstrap) give what
    they give when they rebuild it themselves, bit for bit."""
    right = f"breadth_regional + breadth_national + breadth_international + {CONTROLS}"
    fitted = fit_model(f"product ~ {right}", sample, Family.LOGIT, PRIMARY_INFERENCE)
    other = fit_model(f"product ~ breadth_international + {CONTROLS}", sample, Family.LOGIT,
                      PRIMARY_INFERENCE)  # fmt: skip
    designs = ChangeDesigns(fitted, sample)
    shared = sample_design(fitted, sample, designs)
    assert shared is designs.of(None)
    rebuilt = np.asarray(fitted.design_matrix(sample), dtype=float)
    assert np.array_equal(shared, rebuilt)
    assert shared.flags.f_contiguous == rebuilt.flags.f_contiguous
    copy = sample.copy(deep=False)
    for fit, frame in ((other, sample), (fitted, copy)):  # not this fit, or not this frame
        found = sample_design(fit, frame, designs)
        assert found is not shared and np.array_equal(found, fit.design_matrix(frame))
    breadth = [f"breadth_{scale}" for scale in SCALES]
    inference = inference_of(PRIMARY_INFERENCE)
    given = marginal_effects(fitted, sample, breadth, inference, every=True, sample_design=shared)
    rebuilt = marginal_effects(fitted, sample, breadth, inference, every=True)
    assert given.keys() == rebuilt.keys()
    for key, estimate in given.items():
        assert (estimate.estimate, estimate.std_error, estimate.p_value) == (
            rebuilt[key].estimate,
            rebuilt[key].std_error,
            rebuilt[key].p_value,
        ), key
    with_shared = memory_wild_bootstrap(fitted, sample, "product", "logit", 1, 99, designs=designs)
    alone = memory_wild_bootstrap(fitted, sample, "product", "logit", 1, 99)
    assert with_shared.X is shared
    assert np.array_equal(with_shared.X, alone.X) and np.array_equal(
        with_shared.estimate, alone.estimate
    )
    for term in breadth:
        assert with_shared.test(term).p_value == alone.test(term).p_value


def test_a_plain_function_still_takes_the_formula_path(sample):
    fitted = fit_model(f"product ~ breadth_international + {CONTROLS}", sample, Family.LOGIT,
                       PRIMARY_INFERENCE)  # fmt: skip
    by_function = average_change(
        fitted, sample, "logit", lambda frame: apply_programme(frame, "international")
    )
    by_change = average_change(fitted, sample, "logit", plus_one("international"))
    assert by_function.value == by_change.value
    assert np.array_equal(by_function.gradient, by_change.gradient)


def test_a_data_change_called_on_a_frame_changes_only_its_columns(sample):
    for change in CHANGES:
        changed = change(sample)
        new = change.columns(sample, None)
        some = change.columns(sample, {"breadth_international", "regime"})
        assert set(some) <= set(new)  # the columns asked for (and the one it sets): the same
        assert all(some[name].equals(new[name]) for name in some)
        assert list(changed.columns) == list(sample.columns)
        for name in sample.columns:
            if name in new:
                assert changed[name].equals(new[name].rename(name)), (change.key, name)
                assert changed[name].dtype == sample[name].dtype or name == "regime"
            else:
                assert changed[name].equals(sample[name])


def test_value_codes_group_values_as_pandas_factorize():
    """The codes the row lookup keys on: numeric columns by numpy, equal values equal codes
    exactly where pandas' factorize gives equal codes; a missing value gives None; values past
    2^53 and non-numeric columns go through factorize."""
    import pandas as pd

    from buzzpipe.study.probability_changes import _value_codes

    cases = [
        (pd.Series([3, 0, 1, 3], dtype="Int8"), pd.Series([1, 1, 2, 0], dtype="Int8")),
        (pd.Series([0.5, -0.0, 2.0]), pd.Series([0.0, 2, 7], dtype="Int16")),
        (pd.Series([2**60, 1]), pd.Series([2**60 + 1, 1])),
        (pd.Series(["a", "b"], dtype="category"), pd.Series(["b", "b"], dtype="category")),
    ]
    for original, changed in cases:
        codes, count = _value_codes(original, changed)
        expected, uniques = pd.factorize(pd.concat([original, changed], ignore_index=True))
        assert count == len(uniques)
        assert np.array_equal(codes[:, None] == codes[None, :], expected[:, None] == expected)
    missing = pd.Series([1, None], dtype="Int8")
    assert _value_codes(missing, missing) is None
    assert _value_codes(pd.Series([1.0, np.nan]), pd.Series([1.0, 2.0])) is None


@pytest.mark.parametrize("seed", range(6))
def test_rows_with_finds_the_first_row_with_the_changed_values(seed):
    """For each firm, the first row of the sample whose values of the columns read equal the
    firm's changed values (-0.0 and 0.0 alike), by brute force; None where some firm's values
    are nowhere in the sample."""
    import pandas as pd

    from buzzpipe.study.probability_changes import Edited, _rows_with

    rng = np.random.default_rng(seed)
    n = 60
    sample = pd.DataFrame(
        {
            "a": pd.array(rng.integers(0, 4, n), dtype="Int16"),
            "b": rng.choice([-0.0, 0.0, 1.5, 2.0], n),
            "c": pd.Categorical(rng.choice(["x", "y", "z"], n)),
        }
    )
    new = {
        "a": pd.Series(pd.array(rng.integers(0, 4, n), dtype="Int16")),
        "b": pd.Series(rng.choice([0.0, -0.0, 1.5], n)),
    }
    changed = Edited(sample, new)
    names = ["a", "b", "c"]
    original = list(zip(*(sample[name].tolist() for name in names), strict=True))
    wanted = list(zip(*(changed[name].tolist() for name in names), strict=True))
    expected = [next((i for i, row in enumerate(original) if row == w), None) for w in wanted]
    rows = _rows_with(names, changed, sample)
    known: dict = {}  # the sample's codes kept for every change, as ChangeDesigns keeps them
    for _ in range(2):  # made, then read back
        kept = _rows_with(names, changed, sample, known)
        assert (kept is None) == (rows is None)
        assert rows is None or np.array_equal(kept, rows)
    named = {key for key in known if isinstance(key, str)}
    assert named == {"a", "b", "c"} and known["c"] is None  # not numeric: factorized
    assert ("rows", *names) not in known  # "c" factorized with the changed values: not kept
    numeric = ["a", "b"]
    kept = _rows_with(numeric, changed, sample, known)
    assert ("rows", *numeric) in known
    again = _rows_with(numeric, changed, sample, known)
    fresh = _rows_with(numeric, changed, sample)
    assert (kept is None) == (fresh is None) == (again is None)
    assert fresh is None or (np.array_equal(kept, fresh) and np.array_equal(again, fresh))
    if None in expected:
        assert rows is None
    else:
        assert rows.tolist() == expected
    missing = Edited(sample, {"a": pd.Series(pd.array([None] * n, dtype="Int16"))})
    assert _rows_with(names, missing, sample, known) is None
    absent = Edited(sample, {"b": pd.Series(np.full(n, 7.25))})
    assert _rows_with(names, absent, sample, known) is None
    assert _rows_with(names, Edited(sample, {}), sample).tolist() == [
        original.index(row) for row in original
    ]


def test_chunked_change_differences_make_the_hessians_of_the_memory_one(sample):
    """A chunked engine's difference of changes (``ChunkedChangeDifference``, chunks of 97
    rows) gives g, its gradient and, in the same pass, its Hessians as the in-memory
    ``ChangeDifference`` does (to rounding): the Hessians are made per chunk, so only m x p x p
    numbers per chunk travel (forward differences of the gradient at p x m moved coefficient
    vectors held several rows x (p m) arrays per chunk)."""
    from buzzpipe.estimate.sources import FrameSource
    from buzzpipe.study.probability_changes import change_difference, chunked_change_differences

    right = "breadth_regional + breadth_national + breadth_international + " + CONTROLS
    fitted = fit_model(f"product ~ {right}", sample, Family.LOGIT, PRIMARY_INFERENCE)
    first = (set_breadth("international", 1), set_breadth("international", 0))
    second = (set_breadth("regional", 1), set_breadth("regional", 0))
    memory = change_difference(fitted, sample, Family.LOGIT, first, second)
    (chunked,) = chunked_change_differences(
        FrameSource(sample, block_rows=97), fitted, Family.LOGIT, [(first, second)]
    )
    estimate = fitted.params.loc[list(fitted.x_names)].to_numpy(dtype=float)
    rng = np.random.default_rng(11)
    params = estimate[:, None] + 0.05 * rng.normal(size=(len(estimate), 3))
    expected = memory.many_with_hessians(params)
    found = chunked.many_with_hessians(params)
    assert len(sample) % 97 != 0 and found[2].shape == (3, len(estimate), len(estimate))
    for got, wanted in zip(found, expected, strict=True):
        np.testing.assert_allclose(got, wanted, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(chunked.many(params)[1], expected[1], rtol=1e-12, atol=1e-15)
    assert np.abs(expected[2]).max() > 1e-3  # the curvature is there to be matched


@pytest.mark.parametrize("right", [*FORMULAS, "breadth_regional + breadth_regional_copy"])
@pytest.mark.parametrize("how", ["plain", "weighted", "missing", "ordered", "large"])
def test_a_fits_kept_design_is_the_rebuilt_design_bit_for_bit(sample, right, how, monkeypatch):
    """fit_model keeps the design it estimated for design_of on that very frame where it has every
    row (a column left out, a collinear copy or the ordered logit's intercept, is left out of
    the rebuild too): the same numbers in the same layout, a fresh copy each time; a fit that
    left out a row (a missing value) keeps nothing, nor one above ``DESIGN_KEPT`` numbers. The
    entry goes with the fit."""
    import gc

    from buzzpipe.estimate import fitting
    from buzzpipe.study import models

    if how == "large":
        monkeypatch.setattr(fitting, "DESIGN_KEPT", len(sample))  # one column's numbers

    data = sample.assign(breadth_regional_copy=sample["breadth_regional"])
    if how == "weighted":
        data["weight"] = np.linspace(0.5, 2.0, len(data))
    if how == "missing":
        data.loc[data.index[5], "breadth_regional"] = np.nan
    outcome, family = (
        ("product_novelty", Family.OLOGIT) if how == "ordered" else ("product", Family.LOGIT)
    )
    fitted = fit_model(f"{outcome} ~ {right}", data, family, PRIMARY_INFERENCE)
    kept = id(fitted) in models._FIT_DESIGNS
    if how == "ordered" or "copy" in right:  # a column left out: the fit's columns are kept
        assert len(fitted.x_names) < len(fitted.model_spec.column_names) or not kept
    dropped = fitted.nobs < len(data) or how == "large"
    assert not (kept and dropped)
    if (right.startswith("breadth_regional + breadth_national") or "copy" in right) and not dropped:
        assert kept
    found = design_of(fitted, data)
    rebuilt = np.asarray(fitted.design_matrix(data), dtype=float)
    assert np.array_equal(found, rebuilt, equal_nan=True)
    assert found.flags.f_contiguous == rebuilt.flags.f_contiguous
    assert found is not design_of(fitted, data)
    found[:] = 0.0  # a copy: writing to it leaves the kept design alone
    assert np.array_equal(design_of(fitted, data), rebuilt, equal_nan=True)
    key = id(fitted)
    del fitted
    gc.collect()
    assert key not in models._FIT_DESIGNS


def _plain_difference_sums(designs, weights, family, params):
    """g, its gradient and Hessians at every column of ``params`` from the four whole designs,
    one design and one fit at a time (the definition ``difference_sums`` shortens)."""
    from buzzpipe.study.probability_changes import ChangeDifference, probability_and_density

    p, m = params.shape
    values, gradients, hessians = np.zeros(m), np.zeros((p, m)), np.zeros((m, p, p))
    for level, design in zip(ChangeDifference._levels(), designs, strict=True):
        for j in range(m):
            index = design @ params[:, j]
            probability, density = probability_and_density(index, family)
            slope = {
                Family.LOGIT: density * (1.0 - 2.0 * probability),
                Family.PROBIT: -index * density,
                Family.LPM: np.zeros_like(index),
            }[family]
            values[j] += level * (weights @ probability)
            gradients[:, j] += level * ((weights * density) @ design)
            hessians[j] += level * (design.T @ ((weights * slope)[:, None] * design))
    return values, gradients, hessians


def _first_partner_designs(rng, n: int, p: int, stepped: bool) -> tuple[list, np.ndarray]:
    """Four designs as the first-partner differences make them (first changed, its base, second
    changed, its base: column 2 set to 1 then 0, column 3 to 1 then 0 or back to as observed,
    ``stepped``), and weights summing to 1."""
    reference = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1))])
    observed = rng.integers(0, 4, size=(n, 2)).astype(float)  # two breadths as observed
    reference[:, 2], reference[:, 3] = 1.0, observed[:, 1]  # the first change: column 2 to 1 ...
    base = reference.copy()
    base[:, 2] = 0.0  # ... and its base to 0: a constant step
    second = reference.copy()
    second[:, 2], second[:, 3] = observed[:, 0], 1.0
    second_base = second.copy()
    second_base[:, 3] = 0.0 if stepped else observed[:, 0]  # a step, or not one
    weights = rng.uniform(0.5, 1.5, size=n)
    return [reference, base, second, second_base], weights / weights.sum()


@pytest.mark.parametrize("family", [Family.LOGIT, Family.PROBIT, Family.LPM])
@pytest.mark.parametrize("stepped", [True, False])
def test_difference_sums_are_the_four_designs_own_sums(family, stepped):
    """``difference_sums`` (every design's terms added row by row, the logit's exponential of a
    design that is another plus a constant step taken from that one) gives g, its gradient and
    its Hessians as the four designs' own sums do, fit by fit, to rounding; with the column
    products or block by block, and without the Hessians the same g and gradient bits."""
    from buzzpipe.estimate.batched_newton import _column_products
    from buzzpipe.study.probability_changes import (
        constant_steps,
        difference_sums,
        shared_designs,
    )

    rng = np.random.default_rng(23)
    n, p, m = 301, 6, 4
    designs, weights = _first_partner_designs(rng, n, p, stepped)
    params = 0.3 * rng.normal(size=(p, m))
    shared, differences = shared_designs(designs)
    union, steps = constant_steps(differences)
    assert union.tolist() == [2, 3]
    assert steps[0] is None and steps[2] is None
    assert steps[1][0] == 0 and steps[1][1].tolist() == [-1.0, 0.0]
    assert (steps[3] is not None) == stepped
    expected = _plain_difference_sums(designs, weights, family, params)
    products = _column_products(shared)
    kept = difference_sums(shared, differences, weights, family, params, products)
    blocked = difference_sums(shared, differences, weights, family, params, curvature=True)
    plain = difference_sums(shared, differences, weights, family, params)
    for found in (kept, blocked):
        for got, wanted in zip(found, expected, strict=True):
            np.testing.assert_allclose(got, wanted, rtol=1e-13, atol=1e-15)
        np.testing.assert_array_equal(found[0], plain[0])
        np.testing.assert_array_equal(found[1], plain[1])
    if family != Family.LPM:
        assert np.abs(expected[2]).max() > 1e-3  # the curvature is there to be matched


@pytest.mark.parametrize("family", [Family.LOGIT, Family.PROBIT, Family.LPM])
@pytest.mark.parametrize("stepped", [True, False])
def test_difference_sums_in_kept_arrays_are_the_fresh_arrays_bits(family, stepped, monkeypatch):
    """``difference_sums(scratch=)``: the m x n arrays kept in the caller's dict and reused by
    its later calls (more fits, then fewer, then more again; with the column products, block
    by block and without the Hessians) give the fresh arrays' numbers bit for bit, and none of
    the results is a kept array; where the arrays would take more than ``DIFFERENCE_KEPT``
    numbers nothing is kept."""
    from buzzpipe.estimate.batched_newton import _column_products
    from buzzpipe.study import probability_changes
    from buzzpipe.study.probability_changes import difference_sums, shared_designs

    rng = np.random.default_rng(29)
    n, p = 301, 6
    designs, weights = _first_partner_designs(rng, n, p, stepped)
    shared, differences = shared_designs(designs)
    products = _column_products(shared)
    scratch: dict = {}
    kept = None
    for m in (3, 9, 1, 9, 5):
        params = 0.4 * rng.normal(size=(p, m))
        for extra in ({"products": products}, {"curvature": True}, {}):
            fresh = difference_sums(shared, differences, weights, family, params, **extra)
            found = difference_sums(
                shared, differences, weights, family, params, scratch=scratch, **extra
            )
            assert len(found) == len(fresh)
            for got, wanted in zip(found, fresh, strict=True):
                np.testing.assert_array_equal(got, wanted)
                assert not np.shares_memory(got, scratch["flat"])
            kept = scratch["flat"] if kept is None else kept
            assert scratch["flat"] is kept  # one array, reused by every call
    monkeypatch.setattr(probability_changes, "DIFFERENCE_KEPT", 3 * n)  # below one array
    params = 0.4 * rng.normal(size=(p, 3))
    small: dict = {}
    found = difference_sums(shared, differences, weights, family, params, scratch=small)
    assert small == {}
    fresh = difference_sums(shared, differences, weights, family, params)
    for got, wanted in zip(found, fresh, strict=True):
        np.testing.assert_array_equal(got, wanted)


def test_a_step_too_large_for_its_exponential_takes_the_designs_own():
    """Where exp(-r b) of a constant step is not a positive finite number, the logit's
    exponential of that design is made from its own index (the same sums as without steps)."""
    from buzzpipe.study.probability_changes import (
        constant_steps,
        difference_sums,
        shared_designs,
    )

    rng = np.random.default_rng(5)
    n = 50
    reference = np.column_stack([np.ones(n), rng.normal(size=n), np.full(n, 1.0)])
    base = reference.copy()
    base[:, 2] = 0.0
    designs = [reference, base, reference.copy(), base.copy()]
    designs[2][:, 1] += 1.0  # the second change: a non-constant difference
    designs[2][:, 1] *= rng.uniform(0.5, 1.5, size=n)
    weights = np.full(n, 1.0 / n)
    shared, differences = shared_designs(designs)
    params = np.array([[0.1, 0.1], [0.2, 0.2], [0.3, -800.0]])  # exp(800) overflows
    with np.errstate(over="ignore"):  # the design's own exp(-x'b) overflows too: F = 0
        found = difference_sums(shared, differences, weights, Family.LOGIT, params)
    unstepped = (np.array([2]), [None, None, None, None])
    assert constant_steps(differences)[1][1] is not None
    with np.errstate(over="ignore"):
        plain = difference_sums(shared, differences, weights, Family.LOGIT, params, steps=unstepped)
    assert np.all(np.isfinite(found[0])) and np.all(np.isfinite(found[1]))
    np.testing.assert_array_equal(found[0][1], plain[0][1])
    np.testing.assert_array_equal(found[1][:, 1], plain[1][:, 1])
    np.testing.assert_allclose(found[0][0], plain[0][0], rtol=1e-14, atol=1e-16)


@pytest.mark.parametrize("family", [Family.LOGIT, Family.PROBIT])
def test_difference_sums_of_a_large_sample_are_made_in_row_blocks(family, monkeypatch):
    """A sample of more than ``DIFFERENCE_BLOCK`` rows whose column products are not kept has
    its sums made block by block (its m x n arrays never whole: each block's are, and no more
    rows than a block), to rounding the whole sample's sums; up to one block the same bits."""
    from buzzpipe.study import probability_changes
    from buzzpipe.study.probability_changes import difference_sums, shared_designs

    rng = np.random.default_rng(41)
    n, p, m = 301, 5, 3
    reference = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1))])
    reference[:, 2] = 1.0
    base = reference.copy()
    base[:, 2] = 0.0
    second = reference.copy()
    second[:, 3] = 1.0
    second_base = second.copy()
    second_base[:, 3] = 0.0
    shared, differences = shared_designs([reference, base, second, second_base])
    weights = rng.uniform(0.5, 1.5, size=n)
    weights /= weights.sum()
    params = 0.3 * rng.normal(size=(p, m))
    whole = difference_sums(shared, differences, weights, family, params, curvature=True)
    expected = _plain_difference_sums(
        [reference, base, second, second_base], weights, family, params
    )
    widest = []
    original = probability_changes._difference_sums

    def recorded(reference, *arguments):
        widest.append(reference.shape[0])
        return original(reference, *arguments)

    monkeypatch.setattr(probability_changes, "_difference_sums", recorded)
    monkeypatch.setattr(probability_changes, "DIFFERENCE_BLOCK", 64)
    blocked = difference_sums(shared, differences, weights, family, params, curvature=True)
    plain = difference_sums(shared, differences, weights, family, params)
    assert widest[:5] == [64, 64, 64, 64, 45] and max(widest) == 64
    for got, whole_sums, wanted in zip(blocked, whole, expected, strict=True):
        np.testing.assert_allclose(got, whole_sums, rtol=1e-13, atol=1e-16)
        np.testing.assert_allclose(got, wanted, rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(blocked[0], plain[0])
    np.testing.assert_array_equal(blocked[1], plain[1])
    monkeypatch.setattr(probability_changes, "DIFFERENCE_BLOCK", n)
    one_block = difference_sums(shared, differences, weights, family, params, curvature=True)
    for got, whole_sums in zip(one_block, whole, strict=True):
        np.testing.assert_array_equal(got, whole_sums)
