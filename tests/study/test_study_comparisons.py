"""Pipelines versus buzz, complementarity, spill-over, heterogeneity and the sensitivity column,
each checked against a direct computation (re-prediction, Wald inversion, statsmodels)."""

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels_design import float_columns, statsmodels_exog

from buzzpipe.estimate.wild_bootstrap import WildScoreBootstrap
from buzzpipe.results import Inference, StudyResults
from buzzpipe.results.vocabulary import InferenceKind
from buzzpipe.study.complementarity import assess_complementarity, with_regime_categories
from buzzpipe.study.heterogeneity import assess_heterogeneity
from buzzpipe.study.models import control_terms, fit_outcome_models, inference_of, model_result
from buzzpipe.study.pipelines_vs_buzz import compare_pipelines_and_buzz
from buzzpipe.study.sensitivity import add_sensitivity
from buzzpipe.study.spillover import assess_spillover, leave_one_out_share

ROBUST = Inference("robust")

Z = stats.norm.ppf(0.975)


def expit(x):
    return 1.0 / (1.0 + np.exp(-x))


@pytest.fixture(scope="module")
def frame(synthetic_frame):
    return synthetic_frame("norway2010", 5)


@pytest.fixture(scope="module")
def product(frame):
    sample, fits = fit_outcome_models(frame, "product")
    return sample, fits["controls"][1]


@pytest.fixture(scope="module")
def compared(product):
    sample, fitted = product
    results = StudyResults()
    compare_pipelines_and_buzz(results, "product", fitted, sample, "logit", ROBUST)
    return results


def test_wald_test_of_international_against_regional_by_hand(product, compared):
    _, fitted = product
    b, v = fitted.params, fitted.vcov
    i, r = "breadth_international", "breadth_regional"
    difference = b[i] - b[r]
    se = math.sqrt(v.loc[i, i] + v.loc[r, r] - 2 * v.loc[i, r])
    test = compared.tests["product"]["international_minus_regional"]
    assert test.estimate == pytest.approx(difference, rel=1e-12)
    assert test.std_error == pytest.approx(se, rel=1e-12)
    assert test.p_value == pytest.approx(2 * stats.norm.sf(abs(difference / se)), rel=1e-9)
    assert "international_minus_national" in compared.tests["product"]


def _in_fieller_set(a, b, vaa, vab, vbb, theta):
    """Direct inversion: the Wald test of a - theta b = 0 does not reject at 5%."""
    return (a - theta * b) ** 2 <= Z**2 * (vaa - 2 * theta * vab + theta**2 * vbb)


def test_coefficient_ratio_fieller_set_equals_wald_inversion(product, compared):
    _, fitted = product
    b, v = fitted.params, fitted.vcov
    i, r = "breadth_international", "breadth_regional"
    ratio = compared.descriptions["product"]["ratio_international_regional"]
    assert ratio.estimate == pytest.approx(b[i] / b[r])
    assert math.isnan(ratio.p_value)  # described, not tested
    for theta in np.linspace(-200, 200, 4001):
        inside = _in_fieller_set(b[i], b[r], v.loc[i, i], v.loc[i, r], v.loc[r, r], theta)
        assert ratio.interval.contains(theta) == inside


def test_probability_changes_equal_re_prediction_and_numerical_gradients(product, compared):
    sample, fitted = product
    plus = sample.copy()
    below = (sample["breadth_international"] < 6).astype(int)  # a firm at six is held there
    plus["breadth_international"] = plus["breadth_international"] + below
    plus["breadth_international_with_group"] = plus["breadth_international_with_group"] + below
    by_hand = float(np.mean(fitted.predict(plus)) - np.mean(fitted.predict(sample)))
    change = compared.descriptions["product"]["probability_change_international"]
    assert change.estimate == pytest.approx(by_hand, rel=1e-12)

    x0 = fitted.design_matrix(sample)
    x1 = fitted.design_matrix(plus)
    beta = fitted.params[fitted.x_names].to_numpy()

    def mean_change(params):
        return np.mean(expit(x1 @ params) - expit(x0 @ params))

    step = 1e-6
    gradient = np.array(
        [
            (mean_change(beta + step * e) - mean_change(beta - step * e)) / (2 * step)
            for e in np.eye(len(beta))
        ]
    )
    vcov = fitted.vcov.loc[fitted.x_names, fitted.x_names].to_numpy()
    assert change.std_error == pytest.approx(math.sqrt(gradient @ vcov @ gradient), rel=1e-6)

    regional = compared.descriptions["product"]["probability_change_regional"]
    ratio = compared.descriptions["product"]["probability_ratio_international_regional"]
    assert ratio.estimate == pytest.approx(change.estimate / regional.estimate, rel=1e-12)
    assert ratio.interval.kind in ("bounded", "unbounded", "two_rays")

    # the difference of the two changes: re-prediction, and a numerical gradient of it
    difference = compared.descriptions["product"]["probability_difference_international_regional"]
    assert difference.estimate == pytest.approx(change.estimate - regional.estimate, rel=1e-10)
    plus_regional = sample.copy()
    below_regional = (sample["breadth_regional"] < 6).astype(int)  # held at the cap of six
    for column in ("breadth_regional", "breadth_regional_with_group"):
        plus_regional[column] = plus_regional[column] + below_regional
    x2 = fitted.design_matrix(plus_regional)

    def mean_difference(params):
        return np.mean(expit(x1 @ params) - expit(x2 @ params))

    gradient = np.array(
        [
            (mean_difference(beta + step * e) - mean_difference(beta - step * e)) / (2 * step)
            for e in np.eye(len(beta))
        ]
    )
    assert difference.std_error == pytest.approx(math.sqrt(gradient @ vcov @ gradient), rel=1e-6)
    assert difference.interval.kind == "bounded"
    ((low, high),) = difference.interval.segments
    assert low < difference.estimate < high


def _regenerate_outcome(frame: pd.DataFrame, eta: np.ndarray, seed: int) -> pd.DataFrame:
    data = frame.copy()
    data["product"] = np.random.default_rng(seed).binomial(1, expit(eta)).astype(float)
    return data


def _complementarity(frame: pd.DataFrame) -> StudyResults:
    sample, _ = fit_outcome_models(frame, "product")
    controls, _ = control_terms(sample)
    results = StudyResults()
    assess_complementarity(results, "product", sample, controls, "logit", "robust", ROBUST)
    return results


def test_supermodularity_is_the_regime_combination_with_a_one_sided_p(frame):
    results = _complementarity(frame)
    test = results.tests["product"]["supermodularity"]
    sample, _ = fit_outcome_models(frame, "product")
    data = with_regime_categories(sample)
    data = data.assign(
        **{c: data[c].astype(float) for c in ["product", "breadth_regional", "breadth_national"]}
    )
    controls, _ = control_terms(sample)
    reference = smf.logit("product ~ C(regime) + " + " + ".join(controls), data).fit(
        disp=0, tol=1e-12
    )
    p = reference.params
    expected = p["C(regime)[T.both]"] - p["C(regime)[T.local_only]"] - p["C(regime)[T.global_only]"]
    assert test.estimate == pytest.approx(expected, rel=1e-6)
    assert test.alternative == "greater"
    assert test.p_value == pytest.approx(stats.norm.sf(test.estimate / test.std_error), rel=1e-9)
    # the one-sided 95% bound: estimate - z_0.95 se, up to +inf; it excludes 0 iff p < 0.05
    assert test.interval.segments == [
        (pytest.approx(test.estimate - stats.norm.ppf(0.95) * test.std_error, rel=1e-12), math.inf)
    ]
    assert test.interval.level == 0.95
    assert (test.interval.low > 0) == (test.p_value < 0.05)
    assert "log-odds" in test.note and "choose their regime" in test.note
    assert "interaction_regional_international" in results.tests["product"]


def test_complements_and_substitutes_are_detected_when_built_in(frame):
    both = (frame["breadth_regional"] > 0) & (frame["breadth_international"] > 0)
    base = -0.6 + 0.2 * frame["breadth_international"].astype(float)
    complements = _regenerate_outcome(frame, base + 1.2 * both, seed=1)
    substitutes = _regenerate_outcome(frame, base - 1.2 * both, seed=2)
    assert _complementarity(complements).tests["product"]["supermodularity"].p_value < 0.01
    reverse = _complementarity(substitutes).tests["product"]["supermodularity"].p_value
    assert 1 - reverse < 0.01


def test_ai_norton_double_difference_is_tested_against_statsmodels_and_a_numerical_gradient(
    frame,
):
    """The probability-scale interaction (a verdict row of its own): its value by re-prediction
    from statsmodels' fit, its delta-method error from a numerical gradient of that re-prediction
    and statsmodels' HC0 covariance times n / (n - 1) (Stata's robust), its p two-sided."""
    results = _complementarity(frame)
    tested = results.tests["product"]["interaction_probability_regional_international"]
    assert "interaction_probability_regional_international" not in results.descriptions.get(
        "product", {}
    )
    sample, _ = fit_outcome_models(frame, "product")
    data = with_regime_categories(sample)
    data = data.assign(
        **{c: data[c].astype(float) for c in data.columns if pd.api.types.is_integer_dtype(data[c])}
    )
    controls, _ = control_terms(sample)
    formula = (
        "product ~ breadth_regional * breadth_international + breadth_national + "
        + " + ".join(controls)
    )
    reference = smf.logit(formula, data).fit(disp=0, cov_type="HC0", tol=1e-12)
    n = reference.nobs
    covariance = np.asarray(reference.cov_params()) * n / (n - 1)
    exog = reference.model.exog
    names = reference.model.exog_names
    regional = names.index("breadth_regional")
    international = names.index("breadth_international")
    both = names.index("breadth_regional:breadth_international")

    def double_difference(beta):
        def predicted(dr, di):  # +1 below the cap of six partner types, held at it
            x = exog.copy()
            r = x[:, regional] + dr * (x[:, regional] < 6)
            i = x[:, international] + di * (x[:, international] < 6)
            x[:, regional], x[:, international], x[:, both] = r, i, r * i
            return expit(x @ beta)

        return np.mean(predicted(1, 1) - predicted(1, 0) - predicted(0, 1) + predicted(0, 0))

    beta = np.asarray(reference.params)
    expected = double_difference(beta)
    step = 1e-6
    gradient = np.array(
        [
            (double_difference(beta + step * e) - double_difference(beta - step * e)) / (2 * step)
            for e in np.eye(len(beta))
        ]
    )
    se = math.sqrt(gradient @ covariance @ gradient)
    assert tested.estimate == pytest.approx(expected, rel=1e-6)
    assert tested.std_error == pytest.approx(se, rel=1e-4)
    assert tested.alternative == "two-sided"
    assert tested.p_value == pytest.approx(2 * stats.norm.sf(abs(expected / se)), rel=1e-3)
    interaction = results.tests["product"]["interaction_regional_international"]
    assert interaction.estimate == pytest.approx(
        reference.params["breadth_regional:breadth_international"], rel=1e-6
    )


def test_leave_one_out_share_by_hand():
    data = pd.DataFrame(
        {
            "region": ["a", "a", "a", "b", "b", "a"],
            "industry": ["x", "x", "x", "x", "y", "y"],
            "breadth_international": [1, 0, 2, 3, 0, 1],
        }
    )
    share, cell = leave_one_out_share(data)
    assert share.iloc[:3].tolist() == [0.5, 1.0, 0.5]
    assert share.iloc[3:].isna().all()  # alone in their cells
    assert cell.nunique() == 4


def _spillover(frame: pd.DataFrame) -> StudyResults:
    controls, columns = control_terms(frame)
    results = StudyResults()
    breadth = ["breadth_regional", "breadth_national", "breadth_international"]
    assess_spillover(results, "product", frame, breadth, controls, columns, "logit")
    return results


def test_spillover_through_links_is_found_when_built_in_and_not_when_absent(frame):
    exposure = frame["pipeline_exposure"].astype(float).fillna(0.0)
    base = -0.4 + 0.2 * frame["breadth_international"].astype(float)
    with_spill = _regenerate_outcome(frame, base + 2.0 * exposure, seed=3)
    without = _regenerate_outcome(frame, base, seed=4)
    results = _spillover(with_spill)
    found = results.tests["product"]
    assert found["spillover_exposure"].estimate > 0 and found["spillover_exposure"].p_value < 0.01
    assert "links" in found["spillover_exposure"].note
    assert "spillover_exposure_own_pipeline" in found
    # the small group without pipelines is estimated, or the reason it is not is on record
    assert "spillover_exposure_no_pipeline" in found or any(
        n.term == "spillover_exposure_no_pipeline" for n in results.meta.not_assessed()
    )
    assert _spillover(without).tests["product"]["spillover_exposure"].p_value > 0.001


def test_spillover_without_links_tests_between_cells_and_keeps_the_cell_clustered_fit(frame):
    from buzzpipe.study.spillover import CELL_CLUSTERED

    no_links = frame.drop(columns=["pipeline_exposure", "pipeline_exposure_unknown_share"])
    results = _spillover(no_links)
    primary = results.tests["product"]["spillover_exposure"]
    assert primary.inference.kind == InferenceKind.BETWEEN_CELLS
    assert "leave-one-out" in primary.note
    pooled = results.tests["product"][CELL_CLUSTERED]
    assert pooled.inference.short() == "cluster(region_industry_cell)"


def test_heterogeneity_has_a_sector_test_and_regional_slopes_without_a_test(product):
    """Sector (varies within regions) keeps its joint test; city-regions get one slope per region
    and scale, equal to statsmodels' fit of breadth x region (Stata's robust errors), and no
    test: five regional slopes cannot support one."""
    from buzzpipe.study.heterogeneity import REGION_SLOPES, region_slopes

    sample, _ = product
    controls, _ = control_terms(sample)
    results = StudyResults()
    breadth = ["breadth_regional", "breadth_national", "breadth_international"]
    assess_heterogeneity(results, "product", sample, breadth, controls, "logit", "robust", ROBUST)
    assert "heterogeneity_region_size" not in results.tests["product"]
    assert "by_region_size" not in results.models["product"]
    model = results.models["product"][REGION_SLOPES]
    assert any("no test and no verdict" in note for note in model.notes)
    slopes = region_slopes(model)
    regions = sorted(map(str, sample["region"].unique()))
    assert set(slopes) == set(breadth)
    assert all(sorted(by_region) == regions for by_region in slopes.values())
    data = sample.copy()
    for column in data.columns:
        if pd.api.types.is_integer_dtype(data[column].dtype):
            data[column] = data[column].astype(float)
    formula = "product ~ (" + " + ".join(breadth) + "):C(region) + " + " + ".join(controls)
    reference = smf.logit(formula, data).fit(disp=0, cov_type="HC0", tol=1e-12)
    n = reference.nobs
    for term in breadth:
        for region in regions:
            name = f"{term}:C(region)[{region}]"
            assert slopes[term][region].estimate == pytest.approx(
                reference.params[name], rel=1e-6, abs=1e-8
            )
            assert slopes[term][region].std_error == pytest.approx(
                reference.bse[name] * math.sqrt(n / (n - 1)), rel=1e-5
            )
    sector = results.tests["product"]["heterogeneity_sector"]
    assert sector.df == 3 * (sample["industry"].nunique() - 1)
    assert 0 <= sector.p_value <= 1


def test_heterogeneity_by_sector_is_detected_when_built_in(frame):
    manufacturing = (frame["industry"] == frame["industry"].cat.categories[0]).astype(float)
    eta = (
        -0.5
        + 0.1 * frame["breadth_international"]
        + 0.8 * manufacturing * frame["breadth_international"].astype(float)
    )
    data = _regenerate_outcome(frame, eta.astype(float), seed=6)
    sample, _ = fit_outcome_models(data, "product")
    controls, _ = control_terms(sample)
    results = StudyResults()
    breadth = ["breadth_regional", "breadth_national", "breadth_international"]
    assess_heterogeneity(results, "product", sample, breadth, controls, "logit", "robust", ROBUST)
    assert results.tests["product"]["heterogeneity_sector"].p_value < 0.01


def test_sensitivity_column_agrees_with_the_bootstraps_own_cluster_errors(frame):
    sample, fits = fit_outcome_models(frame, "product")
    specification, fitted = fits["controls"]
    result = model_result(specification, fitted, "robust")
    terms = ["breadth_regional", "breadth_international"]
    add_sensitivity(result, fitted, sample, terms, seed=1, draws=999)
    clustered = result.sensitivity[InferenceKind.CLUSTER]
    bootstrap = WildScoreBootstrap(
        fitted.design_matrix(sample),
        sample["product"].to_numpy(dtype=float),
        sample["region"].to_numpy(),
        names=list(fitted.x_names),
        draws=999,
    )
    for term in terms:
        assert clustered[term].std_error == pytest.approx(
            bootstrap.cluster_robust_se(term), rel=1e-6
        )
        wild = result.sensitivity[InferenceKind.WILD_SCORE_BOOTSTRAP][term]
        assert 1.0 / 999 <= wild.p_value <= 1.0
        assert wild.inference.weights == "webb" and wild.inference.clusters == 5
    assert any("5 clusters" in note for note in clustered["breadth_regional"].note.split(". "))


def test_margins_plus_one_agrees_with_the_studys_own_probability_change(product, compared):
    from buzzpipe.study.models import marginal_effects

    sample, fitted = product
    effects = marginal_effects(fitted, sample, ["breadth_international"], ROBUST)
    margins_change = effects["breadth_international: +1"]
    own = compared.descriptions["product"]["probability_change_international"]
    assert margins_change.estimate == pytest.approx(own.estimate, rel=1e-10)
    assert margins_change.std_error == pytest.approx(own.std_error, rel=1e-6)
    assert "breadth_international: dy/dx" in effects


def test_refused_joint_test_falls_back_to_separate_estimates_by_sector(product):
    sample, _ = product
    controls, _ = control_terms(sample)
    results = StudyResults()
    breadth = ["breadth_regional", "breadth_national", "breadth_international"]
    clustered = {"cluster": "region"}  # five clusters: rank 4, fewer than the 15 restrictions
    assess_heterogeneity(
        results, "product", sample, breadth, controls, "logit", clustered, inference_of(clustered)
    )
    assert "heterogeneity_sector" not in results.tests.get("product", {})
    (refused,) = results.meta.not_assessed()
    assert (refused.part, refused.model) == ("heterogeneity", "by_sector")
    assert "separate estimates given" in refused.reason
    separate = [name for name in results.models["product"] if name.startswith("industry=")]
    assert len(separate) == sample["industry"].nunique()
    one = results.models["product"][separate[0]]
    assert "C(industry)" not in one.formula and one.nobs < len(sample)
    assert "by_region" in results.models["product"]  # descriptive slopes: no test to refuse


def test_wild_bootstrap_confidence_set_agrees_with_its_p_values(frame):
    sample, fits = fit_outcome_models(frame, "product")
    fitted = fits["controls"][1]
    from buzzpipe.study.sensitivity import wild_bootstrap_terms

    term = "breadth_international"
    found = wild_bootstrap_terms(fitted, sample, "product", "logit", [term], seed=2, draws=999)
    interval = found[term].interval
    assert interval is not None and interval.kind in ("bounded", "unbounded", "two_rays")
    assert interval.contains(found[term].estimate)
    assert interval.contains(0.0) == (found[term].p_value > 0.05)


def _cell_survey(seed: int, spillover: float) -> pd.DataFrame:
    """Cells of three firms (30 regions x 30 industries); innovation depends strongly on the
    firm's own pipeline and, with ``spillover`` > 0, on its cell peers' pipelines."""
    rng = np.random.default_rng(seed)
    regions, industries, per_cell = 30, 30, 3
    n = regions * industries * per_cell
    cell = np.arange(n) // per_cell
    international = rng.binomial(3, 0.25, n)
    own = (international > 0).astype(float)
    peers = (np.bincount(cell, weights=own)[cell] - own) / (per_cell - 1)
    return pd.DataFrame(
        {
            "region": pd.Categorical([f"r{c // industries:02d}" for c in cell]),
            "industry": pd.Categorical([f"i{c % industries:02d}" for c in cell]),
            "employees": rng.integers(11, 400, n).astype(float),
            "foreign_share": rng.uniform(0, 1, n),
            "breadth_regional": rng.binomial(5, 0.4, n),
            "breadth_national": rng.binomial(5, 0.3, n),
            "breadth_international": international,
            "product": rng.binomial(1, 0.15 + 0.4 * own + spillover * peers).astype(float),
        }
    )


def _cell_spillover(data: pd.DataFrame) -> dict:
    controls = ["np.log(employees)", "foreign_share", "C(industry)", "C(region)"]
    columns = ["employees", "foreign_share", "industry", "region"]
    results = StudyResults()
    breadth = ["breadth_regional", "breadth_national", "breadth_international"]
    assess_spillover(results, "product", data, breadth, controls, columns, "lpm")
    return results.tests["product"]


def test_leave_one_out_models_hold_a_strong_own_effect_apart_from_spillover():
    """No spill-over but a strong own-pipeline effect: the three exposure estimates stay within
    3.5 standard errors of zero; with a spill-over built in, the pooled estimate finds it."""
    null = _cell_spillover(_cell_survey(12, spillover=0.0))
    for name in ("spillover_exposure", "spillover_exposure_own_pipeline"):
        assert abs(null[name].estimate) < 3.5 * null[name].std_error, name
    no_pipeline = null["spillover_exposure_no_pipeline"]
    assert abs(no_pipeline.estimate) < 3.5 * no_pipeline.std_error
    found = _cell_spillover(_cell_survey(13, spillover=0.35))
    assert found["spillover_exposure"].estimate > 0 and found["spillover_exposure"].p_value < 0.01
    pooled = found["spillover_exposure_cell_clustered"]
    assert pooled.estimate > 0 and pooled.inference.short() == "cluster(region_industry_cell)"


def test_equality_across_outcomes_refuses_a_copy_and_detects_a_difference(frame):
    from buzzpipe.study.across_outcomes import compare_across_outcomes

    data = frame.copy()
    data["product_copy"] = data["product"]
    international = data["breadth_international"].astype(float)
    data["process"] = np.random.default_rng(7).binomial(1, expit(-1.5 + 0.9 * international))
    fits = {}
    for outcome in ("product", "product_copy", "process"):
        _, outcome_fits = fit_outcome_models(data, outcome)
        fits[outcome] = outcome_fits["controls"][1]
    same = StudyResults()
    compare_across_outcomes(same, {k: fits[k] for k in ("product", "product_copy")}, data, ROBUST)
    # identical models: the difference has no variance, so the test is refused, with the reason
    assert "equal_breadth_international" not in same.tests.get("across_outcomes", {})
    assert any("zero variance" in note.text for note in same.meta.notes)
    different = StudyResults()
    compare_across_outcomes(different, {k: fits[k] for k in ("product", "process")}, data, ROBUST)
    assert different.tests["across_outcomes"]["equal_breadth_international"].p_value < 1e-4
    assert different.tests["across_outcomes"]["equal_breadth_regional"].p_value > 1e-4
    assert "coefficients_equal_breadth_international" in different.tests["across_outcomes"]


def test_equal_effects_across_outcomes_are_a_wald_test_of_the_probability_changes(frame):
    """The across-outcomes test compares the +1-partner probability changes, not the logit
    coefficients: its statistic equals a direct computation from statsmodels' predictions (the
    changes, their gradients by central differences) and suest's joint covariance."""
    from buzzpipe.estimate.suest import suest
    from buzzpipe.study.across_outcomes import compare_across_outcomes
    from buzzpipe.study.probability_changes import BREADTH_CAP

    data = frame.copy()
    international = data["breadth_international"].astype(float)
    data["process"] = np.random.default_rng(8).binomial(1, expit(-0.5 + 0.3 * international))
    fits = {}
    for outcome in ("product", "process"):
        _, outcome_fits = fit_outcome_models(data, outcome)
        fits[outcome] = outcome_fits["controls"][1]
    results = StudyResults()
    compare_across_outcomes(results, fits, data, ROBUST)
    test = results.tests["across_outcomes"]["equal_breadth_international"]
    stacked = suest(list(fits.values()), data, names=list(fits))
    names = list(map(str, stacked.params.index))
    values, gradients = [], []
    for label, fitted in fits.items():
        sample = data.loc[pd.Index(fitted.row_ids)]
        reference = smf.logit(fitted.formula, float_columns(sample)).fit(disp=0, tol=1e-12)
        changed = float_columns(sample)
        column = changed["breadth_international"]
        changed["breadth_international"] = np.where(column < BREADTH_CAP, column + 1, column)

        def mean_change(beta, reference=reference, sample=sample, changed=changed):
            exog_changed = statsmodels_exog(reference, changed)
            exog_observed = statsmodels_exog(reference, float_columns(sample))
            return float(
                np.mean(reference.model.predict(beta, exog_changed))
                - np.mean(reference.model.predict(beta, exog_observed))
            )

        beta = reference.params.to_numpy()
        values.append(mean_change(beta))
        gradient = np.zeros(len(names))
        for index, name in enumerate(reference.params.index):
            step = np.zeros(len(beta))
            step[index] = 1e-6
            slope = (mean_change(beta + step) - mean_change(beta - step)) / 2e-6
            gradient[names.index(f"{label}:{name}")] = slope
        gradients.append(gradient)
    contrast = gradients[1] - gradients[0]
    variance = contrast @ stacked.vcov.to_numpy() @ contrast
    statistic = (values[1] - values[0]) ** 2 / variance
    assert test.statistic == pytest.approx(statistic, rel=1e-4)
    assert test.df == 1 and test.p_value == pytest.approx(stats.chi2.sf(statistic, 1), rel=1e-3)
    coefficients = results.tests["across_outcomes"]["coefficients_equal_breadth_international"]
    assert coefficients.statistic != pytest.approx(test.statistic, rel=1e-2)


def test_partner_type_joint_tests_equal_a_hand_wald_statistic(frame):
    from buzzpipe.study.partner_types import partner_type_tests

    _, fits = fit_outcome_models(frame, "product")
    fitted = fits["partner_types"][1]
    results = StudyResults()
    partner_type_tests(results, "product", fitted, ROBUST)
    test = results.tests["product"]["partner_types_international"]
    names = [n for n in fitted.params.index if n.startswith("collab_international_")]
    assert len(names) == 6 and test.df == 6  # the own group is left out
    b = fitted.params[names].to_numpy()
    v = fitted.vcov.loc[names, names].to_numpy()
    statistic = float(b @ np.linalg.solve(v, b))
    assert test.statistic == pytest.approx(statistic, rel=1e-10)
    assert test.p_value == pytest.approx(stats.chi2.sf(statistic, 6), rel=1e-10)
    assert {"partner_types_regional", "partner_types_national"} <= set(results.tests["product"])


@pytest.mark.parametrize("outcome", ["product", "product_novelty"])
def test_region_clustered_terms_from_the_robust_fit_equal_the_refit(frame, outcome, monkeypatch):
    """The sensitivity column's clustered errors taken from the robust fit (only the covariance
    computed, on its design of the sample) are the refit's, every field of every estimate."""
    from buzzpipe.study import sensitivity
    from buzzpipe.study.probability_changes import ChangeDesigns
    from buzzpipe.study.sensitivity import region_cluster_terms

    sample, fits = fit_outcome_models(frame, outcome)
    specification, fitted = fits["controls"]
    terms = ["breadth_regional", "breadth_international"]
    arguments = (specification.formula, sample, specification.family, terms)
    refitted = region_cluster_terms(*arguments)

    def no_refit(*_arguments, **_options):
        raise AssertionError("refitted although the robust fit was given")

    monkeypatch.setattr(sensitivity, "fit_model", no_refit)
    for designs in (None, ChangeDesigns(fitted, sample)):
        assert region_cluster_terms(*arguments, robust=fitted, designs=designs) == refitted
    assert "5 clusters" in refitted["breadth_regional"].note


@pytest.mark.parametrize("kind", ["category", "ordered", "other categories", "object", "str"])
def test_regime_categories_recode_a_categorical_as_its_values(kind):
    """A regime column is recoded exactly as its values as objects are (the same codes,
    categories and dtype), without a warning: a categorical of regimes (its own category order,
    unordered or ordered, a missing value, a category no firm has) directly, one with other
    categories (pandas deprecates recoding those) as objects. (A value outside the regimes is
    deprecated by pandas as a Categorical's value: not tested.)"""
    from buzzpipe.survey.schema import REGIMES

    values = ["both", "none", None, "local_only", "both", "none"]
    order = ["global_only", "both", "none", "local_only"]
    if kind == "other categories":
        order = [*order, "elsewhere"]
    if kind in ("category", "ordered", "other categories"):
        regime = pd.Series(pd.Categorical(values, categories=order, ordered=kind == "ordered"))
    else:
        regime = pd.Series(values, dtype=kind)
    frame = pd.DataFrame({"regime": regime, "x": range(len(values))})
    found = with_regime_categories(frame)["regime"]
    expected = pd.Categorical(regime.astype(object), categories=list(REGIMES))
    assert found.dtype == expected.dtype and not found.cat.ordered
    assert np.array_equal(found.cat.codes.to_numpy(), expected.codes)
    assert frame["regime"].equals(regime)  # the input left alone


def test_equal_effects_across_outcomes_read_the_frame_or_a_reordered_copy_alike(frame):
    """The across-outcomes +1 test on the very frame the models were fitted on (every row in
    order: no copy of the frame made) gives the numbers of a reordered copy with the estimation
    rows selected by label."""
    from buzzpipe.estimate.suest import suest
    from buzzpipe.study.across_outcomes import equal_effects_test

    fits = {}
    for outcome in ("product", "process"):
        _sample, models = fit_outcome_models(frame, outcome)
        fits[outcome] = models["controls"][1]
    labels = list(fits)
    assert all(fitted.row_ids.equals(frame.index) for fitted in fits.values())
    stacked = suest([fits[label] for label in labels], frame, names=labels)
    direct = equal_effects_test(stacked, fits, labels, frame, "regional")
    reordered = frame.iloc[::-1]
    other = equal_effects_test(stacked, fits, labels, reordered, "regional")
    assert direct.effects == pytest.approx(other.effects, rel=1e-14, abs=0)
    assert direct.statistic == pytest.approx(other.statistic, rel=1e-12)


@pytest.mark.parametrize("family", ["logit", "lpm"])
def test_combination_estimate_gives_lincoms_numbers_without_its_table(frame, family):
    """The parts' combinations (``combination_estimate``: lincom's numbers read without its
    tables) are lincom's estimate, standard error, statistic, p-value and interval bit for
    bit, under the normal reference (logit) and the t reference (the linear probability
    model); an equation is refused as lincom refuses it."""
    from buzzpipe.errors import InputError
    from buzzpipe.estimate import fit
    from buzzpipe.estimate.hypothesis_tests import lincom
    from buzzpipe.study.pipelines_vs_buzz import combination_estimate

    sample, _ = fit_outcome_models(frame, "product")
    controls, _ = control_terms(sample)
    fitted = fit(
        "product ~ breadth_regional + breadth_national + breadth_international + "
        + " + ".join(controls),
        sample,
        family=family,
        vcov="robust",
    )
    for expression in (
        "breadth_international - breadth_regional",
        "2*breadth_international - breadth_regional/3 + 0.5",
        "_b[breadth_national]",
    ):
        found = combination_estimate(fitted, expression, ROBUST)
        expected = lincom(fitted, expression)
        statistic = expected.table["t" if family == "lpm" else "z"].iloc[0]
        assert (found.estimate, found.std_error, found.p_value, found.statistic) == (
            expected.estimate,
            expected.se,
            expected.p_value,
            float(statistic),
        )
        assert found.interval.segments == [expected.ci]
    with pytest.raises(InputError, match="not an equation"):
        combination_estimate(fitted, "breadth_regional = 0", ROBUST)
