"""The spill-over association's placebo and confounding bound (issue 16, item 1).

Checked against statsmodels (the cell placebo's variance-component score test from the null
GLM's residuals and the extended model's information; the partner-sorting logit and its robust
error) and against a direct computation (the bound's residual spread), and on the generator's
confounders: a strong cell shock and full homophily
are flagged on a survey where nothing spills over. Their size over many seeds is measured in
``bench/spillover_confounders.py`` (docs/synthetic_surveys.md).
"""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from bands import Claim, at_least, states, two_sided
from formulaic import model_matrix
from scipy import stats
from statsmodels_design import float_columns

from buzzpipe.results import StudyResults
from buzzpipe.study.models import breadth_terms, control_terms
from buzzpipe.study.spillover import (
    BOUND,
    CELL,
    COMPOSITION,
    EXCLUSION,
    EXPOSURE,
    LEAVE_ONE_OUT,
    PLACEBO,
    assess_spillover,
    cell_clustering_test,
    leave_one_out_parts,
    partner_sorting_test,
    regional_pool_share,
)
from buzzpipe.synth import synthesize

SHOCK = {"confounding.cell_shock_pipeline": 1.5, "confounding.cell_shock_outcome": 0.5}


def frame_of(seed: int, links: bool, overrides=None) -> pd.DataFrame:
    return synthesize("norway2010", seed, edge_list=links, overrides=overrides).analysis_frame()


def spillover(frame: pd.DataFrame, outcomes=("product",), results=None, **options) -> StudyResults:
    """The outcomes' spill-over part as the study runs it (``options`` to assess_spillover,
    such as ``placebo_only``)."""
    controls, control_columns = control_terms(frame)
    results = StudyResults()
    for outcome in outcomes:
        assess_spillover(
            results,
            outcome,
            frame,
            breadth_terms(frame),
            controls,
            control_columns,
            "logit",
            **options,
        )
    return results


def others_and_controls(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    controls, _ = control_terms(frame)
    others = [term for term in breadth_terms(frame) if term != "breadth_international"]
    return others, controls


def cells_frame(frame: pd.DataFrame) -> pd.DataFrame:
    data = frame.copy()
    data[LEAVE_ONE_OUT], data[EXCLUSION], data[CELL] = leave_one_out_parts(frame)
    return data.dropna(subset=[LEAVE_ONE_OUT, "product"])


def test_the_cell_clustering_placebo_is_lins_score_test_from_statsmodels_pieces():
    """Without links: the variance-component score test of a random effect per cell in the
    number of kinds of international partner (a binomial logit of 0-6 as the null model), from
    statsmodels' pieces: the null GLM (successes and failures) and the extended model with 30
    cell dummies at the null parameters (cell effects 0): the cells' score is the residuals
    summed by cell, each firm's efficient score (its cell score less its projection on the
    null parameters' scores through the extended model's information) gives the robust
    covariance C; T = the sum of squared cell sums against a scaled chi-squared with
    Satterthwaite's scale and df."""
    data = cells_frame(frame_of(5, links=False))
    others, controls = others_and_controls(data)
    mine = cell_clustering_test(data, others, controls)
    y = data["breadth_international"].to_numpy(float)
    exog = np.asarray(model_matrix(" + ".join([*others, *controls]), data), dtype=float)
    endog = np.column_stack([y, 6.0 - y])
    null = sm.GLM(endog, exog, family=sm.families.Binomial()).fit(tol=1e-12)
    dummies = pd.get_dummies(data[CELL], dtype=float).to_numpy()
    extended = sm.GLM(endog, np.column_stack([exog, dummies]), family=sm.families.Binomial())
    at = np.r_[null.params, np.zeros(dummies.shape[1])]
    information = -extended.hessian(at)
    scores = extended.score_obs(at)
    k = exog.shape[1]
    assert scores[:, k:].sum(axis=0) == pytest.approx(
        dummies.T @ (y - 6.0 * null.fittedvalues), abs=1e-8
    )
    efficient = scores[:, k:] - scores[:, :k] @ np.linalg.solve(
        information[:k, :k], information[:k, k:]
    )
    covariance = efficient.T @ efficient
    sums = scores[:, k:].sum(axis=0)
    scale = np.trace(covariance @ covariance) / np.trace(covariance)
    df = np.trace(covariance) ** 2 / np.trace(covariance @ covariance)
    assert mine.statistic == pytest.approx(sums @ sums / scale, rel=1e-6)
    assert mine.p_value == pytest.approx(stats.chi2.sf(sums @ sums / scale, df), rel=1e-6)
    assert mine.df == round(df) and f"{df:.4g} df" in mine.note
    assert mine.hypothesis.cells == 30 and mine.hypothesis.firms == len(data)
    assert mine.inference.kind == "robust"


def test_the_partner_sorting_placebo_is_a_statsmodels_logit_with_statas_robust_error():
    """With links: own pipeline status on the share of local partners with pipelines less the
    leave-one-out pipeline share of the firm's region (what partners drawn at random from the
    other firms of the region would give), the estimate and its robust error (sandwich x
    n / (n - 1), Stata's) as statsmodels gives them; the region's share by hand, firm by
    firm."""
    frame = frame_of(6, links=True)
    others, controls = others_and_controls(frame)
    data = frame.dropna(subset=[EXPOSURE, "product", *others]).copy()
    mine = partner_sorting_test(data, EXPOSURE, others, controls)
    data["own_pipeline"] = (data["breadth_international"] > 0).astype(float)
    status, region = data["own_pipeline"].to_numpy(), data["region"].to_numpy()
    pool = np.array(
        [
            (status[region == region[i]].sum() - status[i]) / ((region == region[i]).sum() - 1)
            for i in range(len(data))
        ]
    )
    data["beyond_random"] = data[EXPOSURE] - pool
    formula = "own_pipeline ~ " + " + ".join(["beyond_random", *others, *controls])
    theirs = smf.logit(formula, float_columns(data)).fit(disp=0, method="newton", tol=1e-12)
    n = theirs.nobs
    bread = np.linalg.inv(-theirs.model.hessian(theirs.params))
    scores = theirs.model.score_obs(theirs.params)
    robust = bread @ scores.T @ scores @ bread * n / (n - 1)
    position = list(theirs.params.index).index("beyond_random")
    assert mine.estimate == pytest.approx(theirs.params["beyond_random"], rel=1e-6)
    assert mine.std_error == pytest.approx(np.sqrt(robust[position, position]), rel=1e-5)
    assert mine.hypothesis.firms == n == len(data)


def test_the_links_placebos_null_is_the_regions_leave_one_out_pipeline_share():
    """Why the links placebo centres the exposure: a firm is never its own partner, so with
    partners drawn at random from its region the expected share of its partners with pipelines
    is the region's share without itself, (S_r - x_i) / (n_r - 1), one pipeline lower for a
    firm that has one. The study puts that share, over all surveyed firms, beside the exposure
    (by hand here)."""
    frame = frame_of(6, links=True)
    results = spillover(frame, placebo_only=True)
    pool = regional_pool_share(frame)
    status = (frame["breadth_international"] > 0).astype(float)
    for _region, rows in frame.groupby("region"):
        total, count = status[rows.index].sum(), len(rows)
        expected = (total - status[rows.index]) / (count - 1)
        assert pool[rows.index].to_numpy() == pytest.approx(expected.to_numpy(), rel=1e-12)
    placebo = results.tests["product"][PLACEBO]
    assert "less the leave-one-out pipeline share of the firm's region" in placebo.note


def test_the_bound_is_the_estimate_times_the_exposures_residual_spread_over_cells():
    """Without links: |estimate| x the residual SD of the cells' composition given region and
    industry (least squares over the cells, df = cells - 11), and the interval's end at zero
    strength, by hand."""
    frame = frame_of(7, links=False, overrides=SHOCK)
    results = spillover(frame)
    test = results.tests["product"]["spillover_exposure"]
    bound = results.descriptions["product"][BOUND]
    data = cells_frame(frame)
    data[COMPOSITION] = data[LEAVE_ONE_OUT] + data[EXCLUSION]
    cells = data.groupby(CELL)[[COMPOSITION, "region", "industry"]].first()
    fitted = smf.ols(f"{COMPOSITION} ~ C(region) + C(industry)", float_columns(cells)).fit()
    spread = np.sqrt(fitted.ssr / fitted.df_resid)
    assert bound.estimate == pytest.approx(abs(test.estimate) * spread, rel=1e-9)
    low, high = bound.interval.segments[0]
    (test_low, test_high) = test.interval.segments[0]
    critical = (test_high - test_low) / (2 * test.std_error)
    assert high == bound.estimate
    assert low == pytest.approx(max(0.0, abs(test.estimate) - critical * test.std_error) * spread)


def test_a_strong_cell_shock_is_flagged_and_a_survey_without_one_is_not():
    """Nothing spills over in either survey; a cell shock in pipelines (1.5) and innovation
    (0.5) makes the association and the placebo both reject, where the same seed without it
    leaves the placebo quiet."""
    shocked = spillover(frame_of(9, links=False, overrides=SHOCK)).tests["product"]
    plain = spillover(frame_of(9, links=False)).tests["product"]
    assert shocked[PLACEBO].p_value < 0.001 and plain[PLACEBO].p_value > 0.05
    assert shocked["spillover_exposure"].p_value < 0.05
    assert "placebo" in shocked[PLACEBO].note


def test_full_homophily_is_flagged_by_the_sorting_placebo():
    """With links: partners chosen on latent openness (homophily 1), here with openness
    driving international partners four times as strongly as in norway2010 (2.0), make
    partners' pipelines predict one's own; partners drawn at random do not (same seed)."""
    strong = {"collaboration.openness_slope.international": 2.0}
    sorted_ = spillover(frame_of(12, links=True, overrides={**strong, "links.homophily": 1.0}))
    random_ = spillover(frame_of(12, links=True, overrides=strong))
    assert sorted_.tests["product"][PLACEBO].p_value < 0.01
    assert random_.tests["product"][PLACEBO].p_value > 0.05
    assert sorted_.tests["product"][PLACEBO].estimate > 0


def test_a_placebo_that_cannot_be_computed_is_a_not_assessed_note(monkeypatch):
    """The placebo's failure leaves the association's test standing and says why, as a
    not-assessed note of the spill-over part naming the placebo's quantity."""
    from buzzpipe.errors import EstimationError
    from buzzpipe.study import spillover as module

    def fails(*args, **kwargs):
        raise EstimationError("no cell variation beyond region and industry to test")

    monkeypatch.setattr(module, "cell_clustering_test", fails)
    results = spillover(frame_of(9, links=False))
    assert PLACEBO not in results.tests["product"]
    assert "spillover_exposure" in results.tests["product"]
    notes = [note for note in results.meta.not_assessed() if note.quantity]
    assert [note.quantity for note in notes] == ["tests/product/spillover_placebo"]
    assert notes[0].part == "spillover" and "placebo was not computed" in notes[0].text


WEAK_SHOCK = {"confounding.cell_shock_pipeline": 0.25, "confounding.cell_shock_outcome": 0.15}
PLACEBO_SIZE_SEEDS = 450
PLACEBO_POWER_SEEDS = 200
PLACEBO_SIZE = Claim(
    "5% placebos rejecting an unconfounded survey",
    two_sided(PLACEBO_SIZE_SEEDS, 0.05),
    0.05,
    (("size 10%", 0.10), ("size 1%", 0.01)),
)
PLACEBO_POWER = Claim(
    "placebos flagging the weaker cell shock (measured power 0.63)",
    at_least(PLACEBO_POWER_SEEDS, 0.63),
    0.63,
    (("the own-status placebo's power (0.49)", 0.49),),
)


def cell_placebo_p(seed: int, overrides=None) -> float:
    """The placebo's p-value without links, as the study computes it (product outcome)."""
    frame = frame_of(seed, links=False, overrides=overrides)
    results = spillover(frame, placebo_only=True)
    assert "spillover_exposure" not in results.tests["product"]  # the placebo alone
    return results.tests["product"][PLACEBO].p_value


@pytest.mark.slow
@states(PLACEBO_SIZE, PLACEBO_POWER)
def test_the_cell_placebo_holds_its_size_and_flags_the_weaker_cell_shock():
    """Without links, over many surveys (never one seed): on unconfounded norway2010 surveys
    the placebo rejects about 5% (measured 50 of 1,000 seeds, 5.0%, in
    bench/spillover_confounders.py), and with the weaker cell shock (0.25 in the pipeline
    propensity, 0.15 in the outcomes) it flags at least half (measured 0.630 over 300
    seeds; the own-status placebo it replaced flagged 0.49 of the same surveys). Seeds apart
    from the bench's: on these, measured 24 of 450 and 110 of 200 (at the band's edge; the
    weaker shock's rate over the 720 surveys measured is 0.617).

    5% placebos rejecting an unconfounded survey: 12 to 35 of 450; correct (0.05) passes with
    probability 0.990; size 10% fails with probability 0.936; size 1% fails with probability
    0.997.
    placebos flagging the weaker cell shock (measured power 0.63): at least 110 of 200; correct
    (0.63) passes with probability 0.991; the own-status placebo's power (0.49) fails with
    probability 0.948.
    """
    rejects = sum(cell_placebo_p(20_000 + seed) < 0.05 for seed in range(PLACEBO_SIZE_SEEDS))
    PLACEBO_SIZE.band.check(rejects, "placebo rejections, unconfounded")
    flagged = sum(
        cell_placebo_p(30_000 + seed, WEAK_SHOCK) < 0.05 for seed in range(PLACEBO_POWER_SEEDS)
    )
    PLACEBO_POWER.band.check(flagged, "placebo rejections, weaker cell shock")


LINK_PLACEBO_SIZE_SEEDS = 450
LINK_PLACEBO_POWER_SEEDS = 50
STRONG_SORTING = {"collaboration.openness_slope.international": 2.0, "links.homophily": 1.0}
LINK_PLACEBO_SIZE = Claim(
    "5% links placebos rejecting uniform partners",
    two_sided(LINK_PLACEBO_SIZE_SEEDS, 0.05),
    0.05,
    (("size 10%", 0.10), ("size 1%", 0.01)),
)
LINK_PLACEBO_POWER = Claim(
    "links placebos flagging full homophily on a strong capability (measured 300 of 300)",
    at_least(LINK_PLACEBO_POWER_SEEDS, 0.99),
    0.99,
    (("a placebo blind to sorting (0.05)", 0.05),),
)


@pytest.mark.slow
@states(LINK_PLACEBO_SIZE, LINK_PLACEBO_POWER)
def test_the_links_placebo_holds_its_size_centred_and_flags_full_homophily():
    """With links, over many surveys: with partners drawn uniformly in the region (norway2010)
    the placebo rejects about 5% (measured 48 of 1,000, seeds 80,300-81,299) and its z is
    centred on zero within 3 Monte Carlo errors (measured -0.049, error 0.031; the raw share's
    z averaged -0.154 over the same seeds, the exclusion bias the centring removes); with
    partners chosen on a capability that drives international partners strongly (slope 2.0,
    full homophily) it flags nearly every survey. Seeds apart from the bench's: on these,
    measured 17 of 450 (z mean -0.005, sd 0.982) and 50 of 50.

    5% links placebos rejecting uniform partners: 12 to 35 of 450; correct (0.05) passes with
    probability 0.990; size 10% fails with probability 0.936; size 1% fails with probability
    0.997.
    links placebos flagging full homophily on a strong capability (measured 300 of 300): at
    least 47 of 50; correct (0.99) passes with probability 0.998; a placebo blind to sorting
    (0.05) fails with probability 1.000.
    """
    z, rejects = [], 0
    for seed in range(LINK_PLACEBO_SIZE_SEEDS):
        frame = frame_of(40_000 + seed, links=True)
        placebo = spillover(frame, placebo_only=True).tests["product"][PLACEBO]
        z.append(placebo.estimate / placebo.std_error)
        rejects += placebo.p_value < 0.05
    LINK_PLACEBO_SIZE.band.check(rejects, "links placebo rejections, uniform partners")
    z = np.array(z)
    print(f"links placebo z: mean {z.mean():+.3f}, sd {z.std(ddof=1):.3f}")
    assert abs(z.mean()) < 3 * z.std(ddof=1) / np.sqrt(z.size)
    flagged = 0
    for seed in range(LINK_PLACEBO_POWER_SEEDS):
        frame = frame_of(41_000 + seed, links=True, overrides=STRONG_SORTING)
        placebo = spillover(frame, placebo_only=True).tests["product"][PLACEBO]
        flagged += placebo.p_value < 0.05 and placebo.estimate > 0
    LINK_PLACEBO_POWER.band.check(flagged, "links placebo flags, full homophily")


@pytest.mark.parametrize("links", [True, False])
def test_null_design_is_formulaics(links):
    """The placebo's and the bound's null design (built by the fits' design builder) is
    formulaic's model matrix of the same terms bit for bit: values, names and column-major
    layout (so the products computed from it round alike); without the own-pipeline column
    and with a missing value it is formulaic's own (the missing value its error)."""
    from buzzpipe.study.spillover import OWN_PIPELINE, _null_design

    frame = frame_of(11, links)
    controls, _ = control_terms(frame)
    others = [t for t in breadth_terms(frame) if t != "breadth_international"]
    data = frame.assign(**{OWN_PIPELINE: (frame["breadth_international"] > 0).astype(float)})
    expected = model_matrix(" + ".join([*others, *controls]), data, na_action="raise")
    design, names = _null_design(data, others, controls)
    assert names == [str(name) for name in expected.columns]
    assert np.array_equal(design, np.asarray(expected, dtype=float))
    assert design.flags.f_contiguous
    plain, plain_names = _null_design(data.drop(columns=OWN_PIPELINE), others, controls)
    assert plain_names == names and np.array_equal(plain, design)
    missing = data.copy()
    missing.loc[missing.index[3], "openness"] = np.nan
    with pytest.raises(Exception, match="(?i)missing|null|nan"):
        _null_design(missing, others, controls)


def test_regional_pool_share_is_the_grouped_leave_one_out_share():
    """The region's leave-one-out pipeline share, counted per region with numpy, equals the
    pandas group computation it replaced bit for bit: firms of unknown status, a firm without
    a region and a region of one firm included."""
    frame = frame_of(5, True)
    frame.loc[frame.index[:40:4], "breadth_international"] = pd.NA
    frame["region"] = frame["region"].astype(object)
    frame.loc[frame.index[7], "region"] = None
    frame.loc[frame.index[9], "region"] = "Alone"
    international = frame["breadth_international"]
    pipeline = (international > 0).astype(float).where(international.notna())
    region = frame["region"].astype(str)
    total = pipeline.groupby(region).transform("sum")
    size = pipeline.groupby(region).transform("count").astype(float)
    expected = (total - pipeline) / (size - 1.0)
    expected[(size <= 1) | pipeline.isna()] = np.nan
    share = regional_pool_share(frame)
    assert share.name == "pipeline_share_of_region_leave_one_out"
    assert share.index.equals(frame.index)
    assert np.array_equal(share.to_numpy(), expected.to_numpy(dtype=float), equal_nan=True)
    assert np.isnan(share.iloc[9]) and np.isnan(share.iloc[0])


def test_regional_pool_share_of_a_categorical_region_groups_its_text():
    """A categorical region is grouped through its categories' text, with no text column per
    firm: the same shares bit for bit as the region as text (objects), with a missing region,
    a category no firm has, and two categories of one text (1 and "1") that are one region."""
    frame = frame_of(5, True)
    frame.loc[frame.index[:40:4], "breadth_international"] = pd.NA
    names = frame["region"].astype(object).to_numpy(copy=True)
    names[7] = None
    names[9:60:5] = 1
    names[10:60:5] = "1"
    others = [name for name in pd.unique(names) if isinstance(name, str) and name != "1"]
    categorical = frame.assign(region=pd.Categorical(names, categories=["unused", 1, "1", *others]))
    assert isinstance(categorical["region"].dtype, pd.CategoricalDtype)
    as_text = frame.assign(region=pd.Series(names, index=frame.index, dtype=object))
    expected = regional_pool_share(as_text).to_numpy()
    found = regional_pool_share(categorical).to_numpy()
    assert np.array_equal(found, expected, equal_nan=True)
    assert np.isnan(found[7]) and np.isfinite(found[9]) and found[9] == found[10]


@pytest.mark.parametrize("links", [True, False])
def test_outcomes_with_the_same_rows_share_one_placebo_and_bound(links, monkeypatch):
    """The placebo and the bound's residual SD do not read the outcome: outcomes whose rows
    are the same share them (``placebos``, kept across outcomes), each outcome getting its own
    copy equal to what it would compute alone; an outcome with other rows (one firm's outcome
    missing) gets its own."""
    import buzzpipe.study.spillover as spillover_module

    frame = frame_of(7, links=links)
    frame.loc[frame.index[3], "new_to_market"] = np.nan  # other rows for this outcome
    test = "cell_clustering_test" if not links else "partner_sorting_test"
    calls = []
    original = getattr(spillover_module, test)
    monkeypatch.setattr(spillover_module, test, lambda *a: calls.append(1) or original(*a))

    shared = spillover(frame, ("product", "process", "new_to_market"), placebos={})
    assert len(calls) == 2  # product and process share one; new_to_market has its own rows
    for outcome in ("product", "process", "new_to_market"):
        alone = spillover(frame, (outcome,))
        for kind, name in (("tests", PLACEBO), ("descriptions", BOUND)):
            mine, theirs = getattr(shared, kind)[outcome][name], getattr(alone, kind)[outcome][name]
            assert repr(mine) == repr(theirs)
    assert shared.tests["product"][PLACEBO] is not shared.tests["process"][PLACEBO]
    assert (
        shared.tests["product"][PLACEBO].inference is not shared.tests["process"][PLACEBO].inference
    )
