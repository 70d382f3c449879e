"""Diagnostics Stata users know: each has a data set that triggers it and one that does not."""

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from survey_builders import logit_firms

from buzzpipe.errors import EstimationError, InputError
from buzzpipe.estimate import fit


def firms(seed: int = 3, n: int = 400) -> pd.DataFrame:
    return logit_firms(seed, n, lambda data: 0.8 * data.x1 - 0.4 * data.x2)


def test_indicator_predicting_failure_is_dropped_with_statas_note():
    data = firms()
    data["mining"] = 0.0
    data.loc[data.index[:12], "mining"] = 1.0
    data.loc[data.index[:12], "y"] = 0.0
    result = fit("y ~ x1 + x2 + mining", data)
    assert "mining != 0 predicts failure perfectly; mining omitted and 12 obs not used" in (
        result.notes
    )
    assert "mining" not in result.params.index and result.nobs == len(data) - 12
    kept = data.iloc[12:]
    theirs = sm.Logit(kept.y, sm.add_constant(kept[["x1", "x2"]])).fit(disp=0, tol=1e-12)
    np.testing.assert_allclose(result.params.to_numpy(), theirs.params.to_numpy(), rtol=1e-8)
    assert result.row_ids.equals(kept.index)


def test_indicator_without_perfect_prediction_is_kept():
    data = firms()
    data["mining"] = 0.0
    data.loc[data.index[:12], "mining"] = 1.0
    data.loc[data.index[:6], "y"] = 0.0
    data.loc[data.index[6:12], "y"] = 1.0
    result = fit("y ~ x1 + x2 + mining", data)
    assert "mining" in result.params.index and result.nobs == len(data)
    assert not any("perfectly" in note for note in result.notes)


def test_factor_level_predicting_success_is_dropped():
    data = firms()
    data.loc[data.industry == "services", "y"] = 1.0
    result = fit("y ~ x1 + C(industry)", data)
    assert any(
        note.startswith("C(industry)[T.services] != 0 predicts success perfectly")
        for note in result.notes
    )
    assert result.nobs == int((data.industry != "services").sum())


def test_continuous_complete_separation_stops():
    data = firms()
    data["y"] = (data.x1 > 0.3).astype(float)
    with pytest.raises(EstimationError, match=r"x1 > .* predicts data perfectly"):
        fit("y ~ x1 + x2", data)


def test_quasi_complete_separation_by_a_combination_stops_naming_terms():
    data = firms()
    # y = 1 exactly where x1 + x2 > 0, except on the boundary where both outcomes occur
    data["y"] = (data.x1 + data.x2 > 0).astype(float)
    data.loc[data.index[:4], ["x1", "x2"]] = [[0.5, -0.5], [0.5, -0.5], [0.2, -0.2], [0.2, -0.2]]
    data.loc[data.index[:4], "y"] = [0.0, 1.0, 0.0, 1.0]
    with pytest.raises(EstimationError, match=r"separation.*x1, x2"):
        fit("y ~ x1 + x2", data)


def test_collinear_term_is_named_and_dropped():
    data = firms()
    data["x3"] = 2 * data.x1 - data.x2
    result = fit("y ~ x1 + x2 + x3", data)
    assert "x3 omitted because of collinearity" in result.notes
    base = fit("y ~ x1 + x2", data)
    np.testing.assert_allclose(result.params.to_numpy(), base.params.to_numpy(), rtol=1e-10)


def test_large_mean_small_spread_is_not_collinear():
    data = firms()
    data["year"] = 2010 + 1e-3 * data.x2 + 1e-3 * np.random.default_rng(1).normal(size=len(data))
    result = fit("y ~ x1 + year", data, family="lpm")
    assert "year" in result.params.index
    assert not any("collinearity" in note for note in result.notes)


def test_non_convergence_is_an_error_not_numbers():
    with pytest.raises(EstimationError, match="did not converge after 1 iterations"):
        fit("y ~ x1 + x2", firms(), max_iter=1)
    assert fit("y ~ x1 + x2", firms(), max_iter=20).converged


def test_listwise_deletion_is_counted():
    data = firms()
    data.loc[data.index[:7], "x2"] = np.nan
    data.loc[data.index[7:10], "employees"] = 0.0  # log(0) is missing, as in Stata
    data.loc[data.index[10:12], "region"] = np.nan
    result = fit("y ~ x1 + x2 + log(employees)", data, vcov={"cluster": "region"})
    assert result.nobs == len(data) - 12 and result.n_dropped_missing == 12
    assert result.notes[0].startswith("12 observations deleted")
    assert not result.row_ids.isin(data.index[:12]).any()


def test_few_clusters_warn_and_joint_tests_are_refused():
    data = firms()
    data["district"] = data.region % 4
    with pytest.warns(UserWarning, match="only 4 clusters"):
        result = fit("y ~ x1 + x2 + C(industry)", data, vcov={"cluster": "district"})
    assert not result.joint_tests_possible and result.model_test() is None
    assert any("joint Wald tests" in note for note in result.notes)
    assert "not available" in result.summary()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        many = fit("y ~ x1 + x2 + C(industry)", data, vcov={"cluster": "region"})
    assert many.joint_tests_possible and many.model_test() is not None


def test_single_cluster_is_an_error():
    data = firms().assign(country="NO")
    with pytest.raises(EstimationError, match="at least 2 clusters"):
        fit("y ~ x1", data, vcov={"cluster": "country"})


def test_bad_outcome_values_name_rows():
    data = firms()
    data.loc[data.index[5], "y"] = 2.0
    with pytest.raises(InputError, match=r"column 'y', row 5: .*\(got 2.0\); expected 0 or 1"):
        fit("y ~ x1", data)


def test_constant_outcome_is_an_error():
    with pytest.raises(EstimationError, match="does not vary"):
        fit("y ~ x1", firms().assign(y=1.0))


def test_missing_columns_and_bad_vcov_are_one_line_errors():
    with pytest.raises(InputError, match="weight column"):
        fit("y ~ x1", firms(), vcov="robust", weights="nope")
    with pytest.raises(InputError, match="unknown covariance type"):
        fit("y ~ x1", firms(), vcov="hc3")
    with pytest.raises(InputError, match="unknown model family"):
        fit("y ~ x1", firms(), family="poisson")
    with pytest.raises(InputError, match="cannot build the design"):
        fit("y ~ nope", firms())


def test_ordered_logit_indicator_in_the_top_category_is_dropped():
    rng = np.random.default_rng(8)
    n = 500
    data = pd.DataFrame({"x1": rng.normal(size=n), "pilot": 0.0})
    data["novelty"] = np.digitize(data.x1 + rng.logistic(size=n), [-0.5, 0.8])
    data.loc[data.index[:9], "pilot"] = 1.0
    data.loc[data.index[:9], "novelty"] = 2
    result = fit("novelty ~ x1 + pilot", data, family="ologit")
    assert "pilot != 0 predicts novelty = 2 perfectly; pilot omitted and 9 obs not used" in (
        result.notes
    )
    assert result.nobs == n - 9 and "pilot" not in result.params.index
    # the paired case: the same indicator spread over categories stays in the model
    data.loc[data.index[:3], "novelty"] = 0
    assert "pilot" in fit("novelty ~ x1 + pilot", data, family="ologit").params.index


def test_indicator_zero_cell_with_weights_is_found():
    """The 0 cell's counts come from totals minus the 1 cell's: exact enough with weights."""
    data = firms()
    data["weight"] = np.random.default_rng(4).uniform(0.3, 3.0, len(data))
    data["urban"] = 1.0
    data.loc[data.index[:15], "urban"] = 0.0
    data.loc[data.index[:15], "y"] = 1.0
    result = fit("y ~ x1 + urban", data, vcov="robust", weights="weight")
    assert "urban == 0 predicts success perfectly; urban omitted and 15 obs not used" in (
        result.notes
    )
    assert result.nobs == len(data) - 15


@pytest.mark.parametrize("family", ["logit", "probit", "ologit"])
def test_a_reference_level_that_predicts_perfectly_is_treated_like_any_other_level(family):
    """Stata's rule for a perfectly predicting category holds for the reference level too: its
    rows leave the sample with a note naming it, and the fit equals the one where the same level
    is not the reference."""
    from buzzpipe.estimate import fit

    rng = np.random.default_rng(4)
    n = 400
    region = rng.choice(["A", "B", "C"], n)
    x = rng.normal(size=n)
    y = (rng.normal(size=n) + 0.8 * x > 0).astype(float)
    if family == "ologit":
        y = y + (rng.normal(size=n) + x > 1.0)
    y[region == "A"] = 0.0
    fits = {}
    for order in (["A", "B", "C"], ["B", "A", "C"]):
        data = pd.DataFrame({"y": y, "x": x, "region": pd.Categorical(region, categories=order)})
        fits[order[0]] = fit("y ~ x + C(region)", data, family=family)
    as_reference, as_other = fits["A"], fits["B"]
    assert any("C(region) = A (the reference level) predicts" in n for n in as_reference.notes)
    assert as_reference.nobs == as_other.nobs == int((region != "A").sum())
    assert as_reference.llf == pytest.approx(as_other.llf, rel=1e-9)
    assert as_reference.params["x"] == pytest.approx(as_other.params["x"], rel=1e-7)


@pytest.mark.parametrize("seed", range(6))
def test_reference_separation_matches_counting_each_cells_outcome_values(seed):
    """``reference_separation`` reads whether a reference cell holds one outcome value by its
    minimum and maximum: the same rows kept and notes as counting the cell's values
    (``np.unique``), for empty cells, cells of one value (of the labels or not) and mixed
    cells, binary and ordered outcomes."""
    from buzzpipe.estimate import diagnostics

    rng = np.random.default_rng(seed)
    n = 200
    values = np.array([0.0, 1.0]) if seed % 2 == 0 else np.array([1.0, 2.0, 3.0])
    y = rng.choice(values, n)
    labels = None if seed % 2 == 0 else {1.0: "y = 1", 3.0: "y = 3"}
    cells, order = [], rng.permutation(n)
    for j, kind in enumerate(["empty", "one", "mixed", "one", "middle"]):
        rows = np.zeros(n, dtype=bool)
        if kind != "empty":  # the cells apart, so that each keeps its kind
            rows[order[15 * j : 15 * j + 15]] = True
        if kind == "one":
            y[rows] = values[j % len(values)]
        if kind == "middle":
            y[rows] = values[len(values) // 2]
        cells.append((f"f{j}", "a", rows))

    def counted(cells_):
        keep, notes = np.ones(n, dtype=bool), []
        for factor, level, rows in cells_:
            cell = keep & rows
            found, counts = np.unique(y[cell], return_counts=True)
            note = diagnostics.reference_note(
                factor,
                level,
                dict(zip(found, counts, strict=True)),
                int(keep.sum()),
                {0.0: "failure", 1.0: "success"} if labels is None else labels,
            )
            if note:
                notes.append(note)
                keep &= ~cell
        return keep, notes

    keep, notes = diagnostics.reference_separation(
        np.zeros((n, 1)), y, ["x"], None, labels=labels, cells=cells
    )
    expected_keep, expected_notes = counted(cells)
    np.testing.assert_array_equal(keep, expected_keep)
    assert notes == expected_notes
    assert notes  # some cell of one value was found
