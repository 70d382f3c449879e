"""The wild cluster score bootstrap against a reference written from the papers, not the module.

Kline and Santos (2012, "A score based approach to wild bootstrap inference", Journal of
Econometric Methods 1(1)) and Roodman, MacKinnon, Nielsen and Webb (2019, "Fast and wild",
Stata Journal 19(1), section 3.4) describe the score bootstrap after maximum likelihood as:

1. estimate the model with the null imposed (theta~);
2. take each observation's score s_i = d l_i / d theta at theta~ (a p-vector) and the Hessian;
3. perturb the scores with one weight per cluster, s*_i = v_g(i) s_i, keep the Hessian fixed;
4. compute the score (Lagrange multiplier) statistic from the perturbed scores exactly as from
   the actual ones: the restriction's direction a = H^{-1} R', the numerator a' sum_i s*_i, the
   cluster-robust variance a' Omega* a, with Omega* = G/(G-1) sum_g c*_g c*_g' built from the
   scores centred at their sample mean (c*_g = sum_{i in g} (s*_i - mean_j s*_j)), as Stata's
   cluster variance of a mean-zero estimating equation;
5. the symmetric bootstrap p-value is the share of draws at least as extreme as the actual
   statistic (a tie, the actual draw v = 1 among them when every draw is enumerated, counts).

Nothing below is taken from buzzpipe: the restricted fit is scipy's optimiser on a likelihood
written out here, the scores and observed Hessians are the analytic derivatives of that
likelihood (checked against finite differences), the draws are enumerated in an order of their
own, and each draw's statistic is computed from observation-level scores (no cluster-sum
shortcut, no recentring formula on cluster totals). The module's result must agree to 1e-8.
"""

import itertools
import math

import numpy as np
import pytest
from scipy import optimize, stats

from buzzpipe.estimate.wild_bootstrap import WildScoreBootstrap

WEBB_POINTS = np.array([-math.sqrt(1.5), -1, -math.sqrt(0.5), math.sqrt(0.5), 1, math.sqrt(1.5)])
RADEMACHER_POINTS = np.array([-1.0, 1.0])


# ---- the likelihood, written out ------------------------------------------------------------


def loglik_parts(family, eta, y):
    """Per observation: log-likelihood, d l / d eta, d^2 l / d eta^2 (observed)."""
    if family == "logit":
        p = 1 / (1 + np.exp(-eta))
        loglik = y * np.log(p) + (1 - y) * np.log1p(-p)
        return loglik, y - p, -p * (1 - p)
    # probit: l = y log Phi(eta) + (1 - y) log Phi(-eta)
    log_cdf, log_sf = stats.norm.logcdf(eta), stats.norm.logcdf(-eta)
    density = stats.norm.pdf(eta)
    up = density / np.exp(log_cdf)  # lambda(eta) = phi / Phi
    down = density / np.exp(log_sf)  # phi / Phi(-eta)
    first = np.where(y == 1, up, -down)
    second = np.where(y == 1, -up * (eta + up), -down * (down - eta))
    return y * log_cdf + (1 - y) * log_sf, first, second


def restricted_estimate(family, X, y, fixed):
    """Maximise the log-likelihood over the free coefficients, ``fixed`` = {column: value}."""
    p = X.shape[1]
    free = [j for j in range(p) if j not in fixed]

    def full(beta_free):
        beta = np.zeros(p)
        beta[free] = beta_free
        for j, value in fixed.items():
            beta[j] = value
        return beta

    def negative(beta_free):
        loglik, first, second = loglik_parts(family, X @ full(beta_free), y)
        Xf = X[:, free]
        return -loglik.sum(), -(Xf.T @ first), -(Xf.T * second) @ Xf

    if not free:
        return full(np.zeros(0))
    found = optimize.minimize(
        lambda b: negative(b)[0],
        np.zeros(len(free)),
        jac=lambda b: negative(b)[1],
        hess=lambda b: negative(b)[2],
        method="trust-exact",
        options={"gtol": 1e-10},
    )
    estimate = found.x
    for _ in range(3):  # polish to machine precision with plain Newton steps
        _, gradient, hessian = negative(estimate)
        estimate = estimate - np.linalg.solve(hessian, gradient)
    assert np.max(np.abs(negative(estimate)[1])) < 1e-8
    return full(estimate)


def scores_and_information(family, X, y, beta):
    """Observation scores (n x p) and the observed information -H (p x p) at ``beta``."""
    _, first, second = loglik_parts(family, X @ beta, y)
    return X * first[:, None], -(X.T * second) @ X


# ---- the score bootstrap, as the papers state it --------------------------------------------


def lm_statistic(perturbed, membership, directions):
    """Score statistic from observation-level (perturbed) scores: W = n' (A' Omega A)^{-1} n;
    ``membership`` is the n x G indicator matrix of the clusters."""
    G = membership.shape[1]
    total = perturbed.sum(axis=0)
    centred = perturbed - perturbed.mean(axis=0)
    by_cluster = membership.T @ centred
    omega = G / (G - 1) * by_cluster.T @ by_cluster
    numerator = directions.T @ total
    variance = directions.T @ omega @ directions
    return float(numerator @ np.linalg.solve(variance, numerator)), numerator


def reference_score_bootstrap(family, X, y, clusters, fixed, points):
    """Actual statistic (signed t for one restriction, W for several), every draw's, and p."""
    beta = restricted_estimate(family, X, y, fixed)
    scores, information = scores_and_information(family, X, y, beta)
    columns = sorted(fixed)
    directions = np.linalg.solve(information, np.eye(X.shape[1])[:, columns])
    labels = np.unique(clusters)
    index = np.searchsorted(labels, clusters)
    membership = (clusters[:, None] == labels[None, :]).astype(float)

    def statistic(v):
        W, numerator = lm_statistic(scores * v[index][:, None], membership, directions)
        return math.copysign(math.sqrt(W), numerator[0]) if len(columns) == 1 else W

    actual = statistic(np.ones(len(labels)))
    # enumerate every draw, last cluster's weight varying slowest (the module's order is not
    # assumed: distributions are compared sorted)
    draws = np.array(
        [statistic(np.array(v[::-1])) for v in itertools.product(points, repeat=len(labels))]
    )
    size = np.abs if len(columns) == 1 else np.sqrt
    extreme = size(draws) >= size(np.asarray(actual)) * (1 - 1e-9)
    return actual, draws, extreme.mean(), beta


def clustered_data(seed, family, n=500, n_clusters=5, effect=0.2):
    rng = np.random.default_rng(seed)
    clusters = np.sort(rng.integers(0, n_clusters, n))
    clusters[:n_clusters] = np.arange(n_clusters)
    x = rng.normal(size=n) + 0.6 * rng.normal(size=n_clusters)[clusters]
    X = np.column_stack([np.ones(n), x, rng.normal(size=n), rng.integers(0, 2, n)])
    eta = X @ np.array([0.1, effect, -0.3, 0.4]) + 0.3 * rng.normal(size=n_clusters)[clusters]
    if family == "logit":
        y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    else:
        y = (rng.random(n) < stats.norm.cdf(eta)).astype(float)
    return X, y, clusters


# ---- the reference's own derivatives, checked ------------------------------------------------


@pytest.mark.parametrize("family", ["logit", "probit"])
def test_reference_derivatives_are_the_likelihoods(family):
    X, y, _ = clustered_data(1, family, n=200)
    beta = np.array([0.2, -0.1, 0.3, 0.05])
    scores, information = scores_and_information(family, X, y, beta)

    def total(b):
        return loglik_parts(family, X @ b, y)[0].sum()

    h = 1e-6
    gradient = np.array([(total(beta + h * e) - total(beta - h * e)) / (2 * h) for e in np.eye(4)])
    np.testing.assert_allclose(scores.sum(axis=0), gradient, rtol=1e-6, atol=1e-6)
    hessian = np.array(
        [
            (
                scores_and_information(family, X, y, beta + h * e)[0].sum(axis=0)
                - scores_and_information(family, X, y, beta - h * e)[0].sum(axis=0)
            )
            / (2 * h)
            for e in np.eye(4)
        ]
    )
    np.testing.assert_allclose(-information, hessian, rtol=1e-5, atol=1e-5)


# ---- the module against it ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("family", "weight_type", "null_value", "n_clusters", "seed"),
    [
        ("logit", "webb", 0.0, 5, 11),
        ("logit", "rademacher", 0.1, 6, 12),
        ("probit", "webb", 0.0, 5, 13),
        ("probit", "rademacher", -0.2, 7, 14),
    ],
)
def test_single_restriction_matches_the_papers_bootstrap(
    family, weight_type, null_value, n_clusters, seed
):
    X, y, clusters = clustered_data(seed, family, n_clusters=n_clusters)
    points = WEBB_POINTS if weight_type == "webb" else RADEMACHER_POINTS
    actual, draws, p_value, beta = reference_score_bootstrap(
        family, X, y, clusters, {1: null_value}, points
    )
    module = WildScoreBootstrap(
        X, y, clusters, family=family, weight_type=weight_type, draws=len(points) ** n_clusters
    ).test(1, null_value)
    assert module.enumerated and module.n_draws == len(draws)
    assert module.statistic == pytest.approx(actual, rel=1e-8)
    np.testing.assert_allclose(np.sort(module.distribution), np.sort(draws), rtol=1e-7, atol=1e-9)
    assert module.p_value == pytest.approx(p_value, abs=1e-12)
    np.testing.assert_allclose(module.restricted_params, beta, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(
    ("family", "weight_type", "fixed", "seed"),
    [
        ("logit", "webb", {1: 0.0, 2: -0.3}, 21),
        ("probit", "rademacher", {1: 0.2, 3: 0.0}, 22),
    ],
)
def test_joint_restrictions_match_the_papers_bootstrap(family, weight_type, fixed, seed):
    X, y, clusters = clustered_data(seed, family, n=700, n_clusters=5)
    points = WEBB_POINTS if weight_type == "webb" else RADEMACHER_POINTS
    actual, draws, p_value, beta = reference_score_bootstrap(family, X, y, clusters, fixed, points)
    columns = sorted(fixed)
    module = WildScoreBootstrap(
        X, y, clusters, family=family, weight_type=weight_type, draws=len(points) ** 5
    ).joint_test(columns, [fixed[j] for j in columns])
    assert module.enumerated and module.restrictions == len(columns)
    assert module.statistic == pytest.approx(actual, rel=1e-7)
    np.testing.assert_allclose(np.sort(module.distribution), np.sort(draws), rtol=1e-7, atol=1e-9)
    assert module.p_value == pytest.approx(p_value, abs=1e-12)
    np.testing.assert_allclose(module.restricted_params, beta, rtol=1e-6, atol=1e-8)
