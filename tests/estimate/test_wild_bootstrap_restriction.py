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
from buzzpipe.estimate.wild_bootstrap import WildScoreBootstrap


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


def test_the_restricted_fit_is_the_constrained_maximum(nonlinear):
    X, y, _, wild, restriction, test = nonlinear
    assert abs(restriction(wild.estimate)[0]) > 0.02  # the null is not true in the sample
    model = sm.Logit(y, X)
    found = optimize.minimize(
        lambda b: -model.loglike(b),
        wild.estimate,
        jac=lambda b: -model.score(b),
        method="SLSQP",
        constraints=[{"type": "eq", "fun": lambda b: restriction(b)[0]}],
        options={"ftol": 1e-14, "maxiter": 500},
    )
    assert found.success
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
