"""The wild cluster score bootstrap of one smooth restriction g(b) = 0 (a difference of average
probability changes, issue 16), checked three ways:

- a linear g is the coefficient test it restates: b_k = c is ``test(k, c)``, b_1 - b_2 = 0 is the
  test of one coefficient of the reparametrised design (same statistic to 1e-9, same p);
- the restricted fit is the constrained maximum scipy's SLSQP finds on statsmodels'
  log-likelihood, and g(b~) = 0;
- the statistic and every draw equal a plain computation from statsmodels' scores and Hessian
  at the restricted fit and g's gradient by central differences, looped over every draw.
"""

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import optimize
from test_wild_bootstrap import WEBB, clustered_sample, plain_statistics

from buzzpipe.errors import EstimationError
from buzzpipe.estimate.wild_bootstrap import FIT_FOUND, WildScoreBootstrap


def first_step_difference(X, first, second):
    """g(b): mean F(b | x_first = 1) - mean F(b | x_first = 0) minus the same for column
    ``second`` (F logistic), with its gradient (what study/common_support.py tests)."""

    def link(eta):
        return 1 / (1 + np.exp(-eta))

    def designs(column):
        high, low = X.copy(), X.copy()
        high[:, column], low[:, column] = 1.0, 0.0
        return high, low

    pairs = [(1.0, *designs(first)), (-1.0, *designs(second))]

    def restriction(b):
        value, gradient = 0.0, np.zeros(len(b))
        for sign, high, low in pairs:
            for level, design in ((1.0, high), (-1.0, low)):
                p = link(design @ b)
                value += sign * level * p.mean()
                gradient += sign * level * (p * (1 - p)) @ design / len(p)
        return value, gradient

    return restriction


def count_sample(seed, n=700, n_clusters=5):
    """Two count regressors (breadth-like, 0..4) with a cluster component, a control."""
    rng = np.random.default_rng(seed)
    clusters = rng.integers(0, n_clusters, n)
    clusters[:n_clusters] = np.arange(n_clusters)
    shock = rng.normal(size=n_clusters)
    first = rng.binomial(4, 0.3 + 0.05 * shock[clusters].clip(-2, 2))
    second = rng.binomial(4, 0.4, n)
    X = np.column_stack([np.ones(n), first, second, rng.normal(size=n)])
    index = X @ np.array([-0.8, 0.35, 0.2, 0.3]) + 0.3 * shock[clusters]
    y = (rng.random(n) < 1 / (1 + np.exp(-index))).astype(float)
    return X, y, clusters


@pytest.mark.parametrize(("family", "null_value"), [("logit", 0.0), ("probit", 0.3)])
def test_a_coefficient_restriction_is_the_coefficient_test(family, null_value):
    X, y, clusters = clustered_sample(4, family=family)
    wild = WildScoreBootstrap(X, y, clusters, family=family)
    direction = np.eye(X.shape[1])[1]

    def restriction(b):
        return b[1] - null_value, direction

    general = wild.restriction_test(restriction)
    coefficient = wild.test(1, null_value)
    assert general.statistic == pytest.approx(coefficient.statistic, rel=1e-9)
    assert general.p_value == coefficient.p_value
    np.testing.assert_allclose(general.distribution, coefficient.distribution, rtol=1e-8)
    np.testing.assert_allclose(general.restricted_params, coefficient.restricted_params, atol=1e-9)
    assert general.rounds <= 2  # a linear restriction: one round, the second confirms


def test_a_difference_of_coefficients_is_the_reparametrised_coefficient_test():
    X, y, clusters = count_sample(11)
    wild = WildScoreBootstrap(X, y, clusters)
    direction = np.array([0.0, 1.0, -1.0, 0.0])
    general = wild.restriction_test(lambda b: (b[1] - b[2], direction))
    # b1 x1 + b2 x2 = (b1 - b2) x1 + b2 (x1 + x2): the coefficient on x1 is the difference
    reparametrised = X.copy()
    reparametrised[:, 2] = X[:, 1] + X[:, 2]
    coefficient = WildScoreBootstrap(reparametrised, y, clusters).test(1, 0.0)
    assert general.statistic == pytest.approx(coefficient.statistic, rel=1e-9)
    assert general.p_value == coefficient.p_value


@pytest.fixture(scope="module")
def nonlinear():
    X, y, clusters = count_sample(7)
    wild = WildScoreBootstrap(X, y, clusters, weight_type="webb")
    restriction = first_step_difference(X, 1, 2)
    return X, y, clusters, wild, restriction, wild.restriction_test(restriction)


def constrained_maximum(model, start, restriction):
    """The maximum of statsmodels' log-likelihood subject to restriction(b) = 0, by SLSQP."""
    found = optimize.minimize(
        lambda b: -model.loglike(b),
        start,
        jac=lambda b: -model.score(b),
        method="SLSQP",
        constraints=[{"type": "eq", "fun": restriction}],
        options={"ftol": 1e-14, "maxiter": 500},
    )
    assert found.success
    return found


def test_the_restricted_fit_is_the_constrained_maximum(nonlinear):
    X, y, _, wild, restriction, test = nonlinear
    assert abs(restriction(wild.estimate)[0]) > 0.02  # the null is not true in the sample
    model = sm.Logit(y, X)
    found = constrained_maximum(model, wild.estimate, lambda b: restriction(b)[0])
    assert abs(restriction(test.restricted_params)[0]) < 1e-12
    np.testing.assert_allclose(test.restricted_params, found.x, atol=2e-5)
    assert model.loglike(test.restricted_params) >= model.loglike(found.x) - 1e-9
    assert test.rounds > 2  # a nonlinear g takes more than the linear one's rounds


def test_the_statistic_and_every_draw_equal_a_plain_computation(nonlinear):
    X, y, clusters, _, restriction, test = nonlinear
    b = test.restricted_params
    model = sm.Logit(y, X)
    scores = model.score_obs(b)
    information = -model.hessian(b)
    step = 1e-6  # g's gradient by central differences, not the closed form the code uses
    gradient = np.array(
        [
            (restriction(b + step * e)[0] - restriction(b - step * e)[0]) / (2 * step)
            for e in np.eye(len(b))
        ]
    )
    partialled = scores @ np.linalg.solve(information, gradient)
    actual, draws, expected = plain_statistics(partialled, clusters, WEBB)
    assert test.statistic == pytest.approx(actual, rel=1e-6)
    np.testing.assert_allclose(test.distribution, draws, rtol=1e-5, atol=1e-8)
    assert test.p_value == pytest.approx(expected, abs=1.0 / len(draws) + 1e-12)


def test_the_statistic_has_the_sign_of_the_estimated_difference(nonlinear):
    _, _, _, wild, restriction, test = nonlinear
    assert np.sign(test.statistic) == np.sign(restriction(wild.estimate)[0])


def test_a_restriction_without_a_gradient_is_an_estimation_error():
    X, y, clusters = count_sample(3)
    wild = WildScoreBootstrap(X, y, clusters)
    with pytest.raises(EstimationError, match="gradient is zero"):
        wild.restriction_test(lambda b: (0.1, np.zeros(len(b))))


# The 95% set of a restriction's values by inverting its test (issue 16): {c : p(c) > 0.05},
# p(c) the p-value of ``restriction_test`` of g(b) = c.


@pytest.fixture(scope="module")
def restriction_set(nonlinear):
    _, _, _, wild, restriction, _ = nonlinear
    return wild.restriction_confidence_set(restriction, name="difference")


def test_at_each_end_of_the_restriction_set_p_crosses_alpha(nonlinear, restriction_set):
    """Every finite end is where the test's own p crosses 0.05, within the inversion's
    tolerance (1e-7 of g's standard error): p > 0.05 just inside, <= 0.05 just outside."""
    _, _, _, wild, restriction, test = nonlinear
    assert restriction_set.bounded and not restriction_set.disjoint
    (lower, upper) = restriction_set.intervals[0]
    estimate = restriction(wild.estimate)[0]
    assert restriction_set.estimate == estimate and lower < estimate < upper
    assert (lower < 0.0 < upper) == (test.p_value > 0.05)  # the verdict's test, inverted
    gradient = restriction(wild.estimate)[1]
    step = 1e-7 * float(np.sqrt(gradient @ wild._cluster_robust_vcov() @ gradient))
    for inside, outside in ((lower + step, lower - step), (upper - step, upper + step)):
        assert wild.restriction_test(restriction, null_value=inside).p_value > 0.05
        assert wild.restriction_test(restriction, null_value=outside).p_value <= 0.05
    for _bound, p_inside, p_outside in restriction_set.bound_p_values:
        assert p_outside <= 0.05 < p_inside


def test_the_batched_restricted_fits_are_the_tests_own(nonlinear):
    """The set's restricted fits (all nulls solved together) are ``restriction_test``'s, one
    null at a time: the same p-value and statistic at every null."""
    _, _, _, wild, restriction, _ = nonlinear
    centre = restriction(wild.estimate)[0]
    nulls = centre + np.array([-0.2, -0.1, -0.03, 0.0, 0.02, 0.08, 0.15])
    pvalues, statistics, _, outcome, params = wild._restriction_inversion(
        restriction, nulls, None, "two-sided"
    )
    assert (outcome == FIT_FOUND).all()
    for j, c in enumerate(nulls):
        one = wild.restriction_test(restriction, null_value=c)
        np.testing.assert_allclose(params[:, j], one.restricted_params, atol=1e-9)
        assert statistics[j] == pytest.approx(one.statistic, rel=1e-8)
        assert pvalues[j] == one.p_value


def test_a_coefficient_as_a_restriction_gives_the_coefficients_set():
    """g(b) = b_1: the restriction's set is ``confidence_set(1)``, the same machinery over the
    same tests, to the inversion's tolerance."""
    X, y, clusters = clustered_sample(51, n=1200, n_clusters=8, effect=0.3)
    wild = WildScoreBootstrap(X, y, clusters)
    direction = np.eye(X.shape[1])[1]
    coefficient = wild.confidence_set(1)
    general = wild.restriction_confidence_set(lambda b: (b[1], direction))
    scale = wild.cluster_robust_se(1)
    assert len(general.intervals) == len(coefficient.intervals)
    for mine, theirs in zip(general.intervals, coefficient.intervals, strict=True):
        np.testing.assert_allclose(mine, theirs, atol=2e-7 * scale)


def test_the_restriction_set_is_a_brute_force_grid_of_plain_tests(nonlinear, restriction_set):
    """Independent check: on a grid of values c, the restricted fit by scipy's SLSQP on
    statsmodels' log-likelihood under g(b) = c, statsmodels' scores and Hessian there, g's
    gradient by central differences and every one of the 7,776 Webb draws in a plain loop give
    p(c); the set holds exactly the grid values with p(c) > 0.05 (values within 1e-3 of an end,
    where SLSQP's 1e-5 accuracy could flip a tie, left out)."""
    X, y, clusters, wild, restriction, _ = nonlinear
    (lower, upper) = restriction_set.intervals[0]
    width = upper - lower
    grid = np.linspace(lower - 0.6 * width, upper + 0.6 * width, 15)
    grid = grid[np.minimum(np.abs(grid - lower), np.abs(grid - upper)) > 1e-3]
    model = sm.Logit(y, X)
    start = wild.estimate
    inside = []
    for c in grid:
        found = optimize.minimize(
            lambda b: -model.loglike(b),
            start,
            jac=lambda b: -model.score(b),
            method="SLSQP",
            constraints=[{"type": "eq", "fun": lambda b, c=c: restriction(b)[0] - c}],
            options={"ftol": 1e-14, "maxiter": 500},
        )
        assert found.success
        b = found.x
        step = 1e-6
        gradient = np.array(
            [
                (restriction(b + step * e)[0] - restriction(b - step * e)[0]) / (2 * step)
                for e in np.eye(len(b))
            ]
        )
        partialled = model.score_obs(b) @ np.linalg.solve(-model.hessian(b), gradient)
        _, _, p_value = plain_statistics(partialled, clusters, WEBB)
        inside.append(p_value > 0.05)
    expected = [lower <= c <= upper for c in grid]
    assert inside == expected
    assert any(inside) and not all(inside)  # the grid reaches both sides of both ends


def test_a_large_samples_information_is_summed_in_blocks_to_the_same_set(monkeypatch, nonlinear):
    """Where the column products would be large they are made block by block: the same
    restricted fits and p-values as from the products held whole (here forced on 700 rows)."""
    X, y, clusters, _, restriction, _ = nonlinear
    nulls = restriction(WildScoreBootstrap(X, y, clusters).estimate)[0] + np.array([-0.1, 0.05])
    whole = WildScoreBootstrap(X, y, clusters)._restriction_inversion(
        restriction, nulls, None, "two-sided"
    )
    from buzzpipe.estimate import batched_newton

    monkeypatch.setattr(batched_newton, "PRODUCTS_KEPT", 0)  # keeps_products' rule
    monkeypatch.setattr(batched_newton, "PRODUCTS_BLOCK", 128)  # hessians_by_blocks' rows
    blocked = WildScoreBootstrap(X, y, clusters)._restriction_inversion(
        restriction, nulls, None, "two-sided"
    )
    np.testing.assert_allclose(blocked[4], whole[4], atol=1e-10)
    np.testing.assert_array_equal(blocked[0], whole[0])


def test_one_owner_imposes_coefficient_and_linear_restrictions():
    """``constrained_fit`` owns every restricted fit: fixing coefficients is its case R = e_k
    (``restricted_fit``, several columns at once included), a row of R its single linear
    restriction (``linearly_restricted_fit``), and several general rows are imposed exactly,
    at the constrained maximum SLSQP finds on statsmodels' log-likelihood."""
    X, y, clusters = count_sample(11)
    wild = WildScoreBootstrap(X, y, clusters)
    fixed = wild.restricted_fit([1, 3], [0.2, -0.1])
    assert fixed[[1, 3]].tolist() == [0.2, -0.1]
    same = wild.constrained_fit(np.eye(4)[[1, 3]], [0.2, -0.1], wild.estimate)
    np.testing.assert_allclose(same, fixed, rtol=0, atol=1e-12)
    row = np.array([0.0, 1.0, -1.0, 0.5])
    assert np.array_equal(
        wild.linearly_restricted_fit(row, 0.1, wild.estimate),
        wild.constrained_fit(row[None, :], [0.1], wild.estimate),
    )
    R = np.array([[0.0, 1.0, -1.0, 0.0], [0.3, 0.0, 1.0, 2.0]])
    r = np.array([0.05, -0.4])
    found = wild.constrained_fit(R, r, wild.estimate)
    np.testing.assert_allclose(R @ found, r, rtol=0, atol=1e-12)
    model = sm.Logit(y, X)
    best = constrained_maximum(model, wild.estimate, lambda b: R @ b - r)
    np.testing.assert_allclose(found, best.x, atol=2e-5)
    assert model.loglike(found) >= model.loglike(best.x) - 1e-9
    with pytest.raises(EstimationError, match="full row rank"):
        wild.constrained_fit(np.array([[0.0, 1.0, 1.0, 0.0], [0.0, 2.0, 2.0, 0.0]]), r, fixed)


# The rule for degenerate nulls (wild_bootstrap._rounding_zeroed): at the null equal to the
# estimate the scores sum to zero up to rounding, so t is a ratio of rounding errors; below
# ZERO_STATISTIC it counts as zero, with the draws below it at that null, on every path.


@pytest.mark.parametrize("tie_rule", ["inclusive", "strict"])
def test_the_null_at_the_estimate_has_one_p_value_on_every_path(tie_rule):
    """At c = the estimate every path (the single test, the batched p-values of test
    inversion, the restriction test and its batched inversion, coefficient and restriction
    alike) gives t below the tolerance and p = 1 under the inclusive rule, and under the
    strict rule the share of draws that are not constant (the six constant Webb vectors tie
    t exactly): 1 - 6 / 6^5 with five clusters, every draw enumerated."""
    from buzzpipe.estimate.wild_bootstrap import ZERO_STATISTIC

    X, y, clusters = count_sample(3)
    wild = WildScoreBootstrap(X, y, clusters, tie_rule=tie_rule)
    assert wild.enumerated and wild.n_draws == 6**5
    expected = 1.0 if tie_rule == "inclusive" else 1.0 - 6 / 6**5
    centre = float(wild.estimate[1])
    single = wild.test(1, centre)
    assert abs(single.statistic) < ZERO_STATISTIC
    pvalues, statistics, _ = wild._inversion(1, np.array([centre - 0.1, centre]), "two-sided")
    assert abs(statistics[1]) < ZERO_STATISTIC and pvalues[0] < 1.0
    restriction = first_step_difference(X, 1, 2)
    value = restriction(wild.estimate)[0]
    general = wild.restriction_test(restriction, null_value=value)
    batched = wild._restriction_inversion(restriction, np.array([value]), None, "two-sided")
    line = wild.restriction_test(lambda b: (b[1], np.eye(4)[1]), null_value=centre)
    assert [single.p_value, pvalues[1], general.p_value, batched[0][0], line.p_value] == [
        expected
    ] * 5


def test_a_statistic_above_the_tolerance_is_compared_as_it_is():
    """The rule changes nothing where t is not rounding noise: a null 1e-6 standard errors
    from the estimate (|t| about 1e-6) is compared draw by draw as computed, and a plain
    count over the draws gives its p."""
    X, y, clusters = count_sample(3)
    wild = WildScoreBootstrap(X, y, clusters)
    near = float(wild.estimate[1]) + 1e-6 * wild.cluster_robust_se(1)
    test = wild.test(1, near)
    assert 1e-7 < abs(test.statistic) < 1e-5
    plain = np.mean(np.abs(test.distribution) >= abs(test.statistic) * (1 - 1e-10))
    assert test.p_value == plain


# Restricted fits under a nonlinear restriction (``restricted_fits_under``): Newton steps on the
# Lagrangian, the restriction's curvature included, checked against scipy's SLSQP on
# statsmodels' log-likelihood from the same start (the unrestricted estimate).


def first_step_change_difference(X, first, second):
    """``first_step_difference`` as the study builds it (``ChangeDifference``: g, its gradient
    and its Hessian in closed form)."""
    from buzzpipe.study.probability_changes import ChangeDifference

    def designs(column):
        high, low = X.copy(), X.copy()
        high[:, column], low[:, column] = 1.0, 0.0
        return high, low

    return ChangeDifference(designs(first), designs(second), np.full(len(X), 1 / len(X)), "logit")


@pytest.fixture(scope="module")
def far_nulls():
    """The nonlinear fixture's restriction at 3 to 40 delta-method standard errors from its
    estimate, each restricted fit started at the unrestricted estimate (the grid's far nulls:
    the step without the restriction's curvature left the ones at 12 and 20 unsettled after
    60 steps and reported them as diverging)."""
    X, y, clusters = count_sample(7)
    wild = WildScoreBootstrap(X, y, clusters, weight_type="webb")
    restriction = first_step_difference(X, 1, 2)
    value, gradient = restriction(wild.estimate)
    scale = float(np.sqrt(gradient @ wild._robust_vcov() @ gradient))
    offsets = np.array([-40.0, -20.0, -12.0, -3.0, 6.0, 12.0, 20.0, 40.0])
    return X, y, wild, restriction, value + scale * offsets


@pytest.mark.parametrize("closed_form", [False, True])
def test_the_restricted_fits_under_g_are_slsqps_constrained_maxima(far_nulls, closed_form):
    """Every null up to 20 standard errors out has its restricted fit: g(b) = c to 1e-12 and
    the coefficients SLSQP's (on statsmodels' log-likelihood, from the same start) to 1e-8,
    whether g's Hessian comes by differences of its gradient (a plain callable) or in closed
    form (``ChangeDifference.many_with_hessians``)."""
    from buzzpipe.estimate.wild_bootstrap import FIT_DIVERGES

    X, y, wild, restriction, nulls = far_nulls
    used = first_step_change_difference(X, 1, 2) if closed_form else restriction
    params, outcome = wild.restricted_fits_under(used, nulls)
    assert outcome[1:-1].tolist() == [FIT_FOUND] * 6
    model = sm.Logit(y, X)
    for j in range(1, len(nulls) - 1):
        found = params[:, j]
        assert abs(restriction(found)[0] - nulls[j]) < 1e-12
        best = optimize.minimize(
            lambda b: -model.loglike(b),
            wild.estimate,
            jac=lambda b: -model.score(b),
            method="SLSQP",
            constraints=[
                {
                    "type": "eq",
                    "fun": lambda b, c=nulls[j]: restriction(b)[0] - c,
                    "jac": lambda b: restriction(b)[1],
                }
            ],
            options={"ftol": 1e-16, "maxiter": 1000},
        )
        assert best.success
        np.testing.assert_allclose(found, best.x, rtol=0, atol=1e-8)
        assert model.loglike(found) >= model.loglike(best.x) - 1e-9
    # at 40 standard errors the fit runs into separation: a linear index beyond 36
    assert outcome[[0, -1]].tolist() == [FIT_DIVERGES] * 2
    assert (np.abs(X @ params[:, [0, -1]]).max(axis=0) > 36).all()


def test_the_lagrangian_steps_settle_a_fit_in_a_few(far_nulls, monkeypatch):
    """Where the fit exists the steps settle it quadratically: the nulls within 12 standard
    errors, from the unrestricted estimate, in at most 8 evaluations each (the step without
    the restriction's curvature shrank by a factor of about 0.8 a step: 30 to 100 steps)."""
    _, _, wild, restriction, nulls = far_nulls
    seen = []
    original = wild._scores_and_informations

    def counted(params, with_loglike=False):
        seen.append(params.shape[1])
        return original(params, with_loglike)

    monkeypatch.setattr(wild, "_scores_and_informations", counted)
    _, outcome = wild.restricted_fits_under(restriction, nulls[2:6])
    assert (outcome == FIT_FOUND).all()
    assert len(seen) <= 8


def test_the_closed_form_hessian_of_a_change_difference_is_its_gradients_slope():
    """``ChangeDifference.many_with_hessians``: g and its gradient as ``many`` gives them, and
    the Hessian the central differences of the gradient (to 1e-7), logit and probit."""
    from buzzpipe.study.probability_changes import ChangeDifference

    X, _, _ = count_sample(7)
    logit = first_step_change_difference(X, 1, 2)
    rng = np.random.default_rng(3)
    params = np.array([-0.8, 0.35, 0.2, 0.3])[:, None] + 0.5 * rng.normal(size=(4, 3))
    probit = ChangeDifference(logit.first, logit.second, logit.weights, "probit")
    for restriction in (logit, probit):
        values, gradients, hessians = restriction.many_with_hessians(params)
        expected_values, expected_gradients = restriction.many(params)
        np.testing.assert_array_equal(values, expected_values)
        np.testing.assert_array_equal(gradients, expected_gradients)
        step = 1e-6
        for j in range(params.shape[1]):
            at = params[:, j]
            differences = np.column_stack(
                [
                    (restriction(at + step * e)[1] - restriction(at - step * e)[1]) / (2 * step)
                    for e in np.eye(4)
                ]
            )
            np.testing.assert_allclose(hessians[j], differences, rtol=0, atol=1e-7)
            np.testing.assert_allclose(hessians[j], hessians[j].T, rtol=0, atol=1e-15)


def test_a_large_samples_change_difference_hessians_are_made_block_by_block(monkeypatch):
    """Where the reference design's column products would take more than PRODUCTS_KEPT
    numbers, ``many_with_hessians`` keeps none (their n x p(p+1)/2 numbers at a million firms
    were 1.2 GiB of the study's peak) and makes the Hessians block by block: g and its gradient
    the same bits, the Hessians equal to the kept products' to rounding."""
    from buzzpipe.estimate import batched_newton

    X, _, _ = count_sample(7)
    rng = np.random.default_rng(5)
    params = np.array([-0.8, 0.35, 0.2, 0.3])[:, None] + 0.5 * rng.normal(size=(4, 3))
    kept = first_step_change_difference(X, 1, 2)
    expected = kept.many_with_hessians(params)
    assert "_reference_products" in kept.__dict__
    monkeypatch.setattr(batched_newton, "PRODUCTS_KEPT", 10)  # keeps_products' rule
    monkeypatch.setattr(batched_newton, "PRODUCTS_BLOCK", 64)  # several blocks, one short
    blocked = first_step_change_difference(X, 1, 2)
    values, gradients, hessians = blocked.many_with_hessians(params)
    assert "_reference_products" not in blocked.__dict__
    np.testing.assert_array_equal(values, expected[0])
    np.testing.assert_array_equal(gradients, expected[1])
    np.testing.assert_allclose(hessians, expected[2], rtol=1e-12, atol=1e-14)
    assert X.shape[0] % 64 != 0


def test_a_grid_value_without_a_fit_is_noted_by_why():
    """The set's note names what was seen: separation (diverging coefficients) or a fit that
    did not settle, never one for the other."""
    from buzzpipe.estimate.wild_bootstrap import (
        FIT_DIVERGES,
        FIT_UNSETTLED,
        _left_out_notes,
    )

    grid = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    notes = _left_out_notes(grid, np.array([FIT_DIVERGES, FIT_FOUND, FIT_FOUND, 0, 0]))
    assert len(notes) == 1 and "diverge" in notes[0] and "(-2 to -2)" in notes[0]
    notes = _left_out_notes(grid, np.array([0, 0, 0, FIT_UNSETTLED, FIT_DIVERGES]))
    assert len(notes) == 2
    assert "did not settle" in notes[1] and "diverge" not in notes[1] and "(1 to 1)" in notes[1]
    assert _left_out_notes(grid, np.zeros(5, dtype=np.int8)) == []


def test_each_restricted_fit_gives_its_paths_slope(far_nulls):
    """``restricted_fits_under(slopes=)`` gives db/dc at each fit (W^{-1} R / R W^{-1} R from
    its last step): central differences of the fits themselves agree to 1e-3 of the slope (W
    holds g's Hessian where the fit's last long step ended: CURVATURE_KEPT_WITHIN), so a
    later batch of the restriction's set starts on the cubic Hermite between found fits."""
    _, _, wild, restriction, nulls = far_nulls
    inner = nulls[2:6]
    slopes = np.full((len(wild.estimate), inner.size), np.nan)
    params, outcome = wild.restricted_fits_under(restriction, inner, slopes=slopes)
    assert (outcome == FIT_FOUND).all()
    h = 1e-5 * (nulls[4] - nulls[3])
    above, _ = wild.restricted_fits_under(restriction, inner + h, params)
    below, _ = wild.restricted_fits_under(restriction, inner - h, params)
    np.testing.assert_allclose(slopes, (above - below) / (2 * h), rtol=1e-3, atol=1e-9)


def test_unit_weights_skipped_give_a_restriction_sets_bits():
    """Without sampling weights the restricted fits' scores and informations and the
    partialled cluster scores under g(b) = c skip multiplying by the weights (all 1): the
    restriction set is the same bits as with the multiplication made."""
    X, y, clusters = count_sample(17, n=500, n_clusters=6)
    restriction = first_step_difference(X, 1, 2)
    found, pieces = [], []
    for unit in (True, False):
        wild = WildScoreBootstrap(X, y, clusters, weight_type="webb")
        wild._unit_weights = unit
        moved = np.random.default_rng(3).normal(scale=0.05, size=(X.shape[1], 4))
        params = wild.estimate[:, None] + moved
        pieces.append(
            (
                *wild._scores_and_informations(params),
                *wild._restricted_cluster_scores(restriction, params),
            )
        )
        found.append(wild.restriction_confidence_set(restriction))
    for mine, theirs in zip(*pieces, strict=True):
        np.testing.assert_array_equal(mine, theirs)
    assert found[0].intervals == found[1].intervals
    assert found[0].bound_p_values == found[1].bound_p_values
    assert found[0].notes == found[1].notes


@pytest.mark.parametrize("seed", [7, 8, 9])
def test_the_stop_rule_of_the_lagrangian_steps_moves_no_bound_beyond_the_tolerance(
    seed, monkeypatch
):
    """Test inversion's Lagrangian steps stop where a step moves b by at most
    ``INVERSION_STEP`` (the p-values, counts of draws, do not read further): the restriction's
    set is the one the steps iterated to 1e-10 give, each bound within the inversion's
    tolerance (1e-7 of g's standard error), on several samples."""
    import math

    from test_wild_bootstrap import _exhaustive_fits, assert_same_set_within_tolerance

    X, y, clusters = count_sample(seed)
    restriction = first_step_difference(X, 1, 2)
    fast = WildScoreBootstrap(X, y, clusters, weight_type="webb").restriction_confidence_set(
        restriction, name="difference"
    )
    _exhaustive_fits(monkeypatch)
    wild = WildScoreBootstrap(X, y, clusters, weight_type="webb")
    exhaustive = wild.restriction_confidence_set(restriction, name="difference")
    value, gradient = restriction(wild.estimate)
    scale = math.sqrt(float(gradient @ wild._robust_vcov() @ gradient))
    assert_same_set_within_tolerance(fast, exhaustive, scale)
    # the grid's statistics (a bound moves by about their change, in standard errors): 8e-11
    # at most measured; steps stopped at 1e-4 instead of 1e-7 moved them by 2e-8
    grid = value + scale * np.concatenate([np.linspace(-6, 6, 13), [-40, -20, -12, 12, 20, 40]])
    exhaustive_statistics = wild._restriction_inversion(restriction, grid, None, "two-sided")[1]
    monkeypatch.undo()
    statistics = WildScoreBootstrap(X, y, clusters, weight_type="webb")._restriction_inversion(
        restriction, grid, None, "two-sided"
    )[1]
    np.testing.assert_allclose(statistics, exhaustive_statistics, rtol=0, atol=1e-9)


# Test inversion under g(b) = c (``restriction_confidence_set``): the grid's nulls start on the
# tangent of the restricted estimates' path at the estimate (``_restriction_tangent``), and a
# later batch's null whose first Lagrangian step from its start is below SETTLED_RESTRICTION is
# taken as found there, its scores read from that step's information
# (``restricted_fits_under(settled=)``). The reference: neither (``_old_restriction_path``).


def _old_restriction_path(wild):
    """Every null fitted by the Lagrangian steps from starts interpolated between the fits
    found, the grid's from the estimate (no tangent), none taken where it starts."""
    wild._settles_starts = False
    wild._restriction_tangent = lambda gradient: np.full(len(wild.estimate), np.nan)
    return wild


@pytest.mark.parametrize(("seed", "n"), [(7, 700), (8, 700), (9, 700), (12, 700), (3, 250)])
def test_settled_restriction_nulls_give_the_sets_of_every_null_fitted(seed, n):
    """The restriction's set (two-sided, on several samples, a small one among them; each has
    two to four grid values whose fits diverge, noted and left out) has the same pieces,
    notes, ends and p-values at its bounds as with every null fitted from the estimate's
    starts, each bound within the inversion's tolerance (1e-7 of g's standard error), and
    some of bisection's nulls were found at their starts."""
    import math

    from test_wild_bootstrap import assert_same_set_within_tolerance

    X, y, clusters = count_sample(seed, n=n)
    restriction = first_step_change_difference(X, 1, 2)
    wild = WildScoreBootstrap(X, y, clusters, weight_type="webb")
    found_at_start = []
    fits = wild.restricted_fits_under

    def counting(*args, settled=None, **kwargs):
        found = fits(*args, settled=settled, **kwargs)
        found_at_start.append(settled["columns"].size if settled else 0)
        return found

    wild.restricted_fits_under = counting
    fast = wild.restriction_confidence_set(restriction, name="difference")
    old = _old_restriction_path(WildScoreBootstrap(X, y, clusters, weight_type="webb"))
    expected = old.restriction_confidence_set(restriction, name="difference")
    value, gradient = restriction(wild.estimate)
    scale = math.sqrt(float(gradient @ wild._robust_vcov() @ gradient))
    assert_same_set_within_tolerance(fast, expected, scale)
    assert [row[1:] for row in fast.bound_p_values] == [row[1:] for row in expected.bound_p_values]
    assert sum(found_at_start[1:]) > 0


def test_restriction_nulls_settled_at_their_starts_are_the_restricted_maxima():
    """Starts at the restricted maxima (fits iterated to 1e-12) are found there, not moved, and
    their statistics and p-values are those of the nulls fitted (1e-9 relative); a start moved
    off its path (by 0.05) is fitted, to the maximum (1e-8), not taken."""
    from buzzpipe.estimate.wild_bootstrap import INVERSION_STEP

    X, y, clusters = count_sample(7)
    restriction = first_step_change_difference(X, 1, 2)
    wild = WildScoreBootstrap(X, y, clusters, weight_type="webb")
    value, gradient = restriction(wild.estimate)
    scale = float(np.sqrt(gradient @ wild._robust_vcov() @ gradient))
    nulls = value + scale * np.array([-2.1, -0.6, 0.9, 2.4])
    exact, outcome = wild.restricted_fits_under(restriction, nulls, tol=1e-12)
    assert (outcome == FIT_FOUND).all()
    starts = exact.copy()
    starts[:, -1] += 0.05
    settled = {}
    params, outcome = wild.restricted_fits_under(
        restriction, nulls, starts, tol=INVERSION_STEP, settled=settled
    )
    assert (outcome == FIT_FOUND).all()
    assert settled["columns"].tolist() == [0, 1, 2]
    np.testing.assert_array_equal(params[:, :3], starts[:, :3])
    np.testing.assert_allclose(params[:, 3], exact[:, 3], rtol=0, atol=1e-8)
    fast = wild._restriction_inversion(restriction, nulls, starts, "two-sided")
    old = _old_restriction_path(WildScoreBootstrap(X, y, clusters, weight_type="webb"))
    fitted = old._restriction_inversion(restriction, nulls, starts, "two-sided")
    np.testing.assert_allclose(fast[1], fitted[1], rtol=1e-9)
    np.testing.assert_array_equal(fast[0], fitted[0])


def test_the_restricted_paths_tangent_at_the_estimate_is_its_slope():
    """``_restriction_tangent``: db/dc of the restricted fits at c = g(b^), by central
    differences of fits iterated to 1e-12 (1e-5 of the slope): the grid's inner nulls start on
    it."""
    X, y, clusters = count_sample(8)
    restriction = first_step_change_difference(X, 1, 2)
    wild = WildScoreBootstrap(X, y, clusters, weight_type="webb")
    value, gradient = restriction(wild.estimate)
    scale = float(np.sqrt(gradient @ wild._robust_vcov() @ gradient))
    h = 1e-3 * scale
    fits, outcome = wild.restricted_fits_under(restriction, [value - h, value + h], tol=1e-12)
    assert (outcome == FIT_FOUND).all()
    tangent = wild._restriction_tangent(gradient)
    difference = (fits[:, 1] - fits[:, 0]) / (2 * h)
    np.testing.assert_allclose(tangent, difference, rtol=1e-5, atol=1e-5 * np.abs(tangent).max())
