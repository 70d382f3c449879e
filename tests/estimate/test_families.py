"""Family callbacks: gradients and observed Hessians against finite differences of the
log-likelihood, scores summing to the gradient, chunk sums equal to the whole, and the ordered
logit against statsmodels' OrderedModel (cut points transformed back from its parameterisation)."""

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, special

from buzzpipe.estimate import fit
from buzzpipe.estimate.families import get_family
from buzzpipe.estimate.kernel import weighted_gram
from buzzpipe.estimate.newton import accumulate, row_blocks


def problem(family_name: str, seed: int = 0, n: int = 300):
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.normal(size=(n, 3))])
    weights = rng.uniform(0.5, 2.0, n)
    offset = rng.normal(scale=0.3, size=n)
    family = get_family(family_name)
    if family_name == "ologit":
        X = X[:, 1:]
        y = rng.integers(0, 4, n).astype(float)
        family = family.with_categories((0.0, 1.0, 2.0, 3.0))
        beta = np.concatenate([rng.normal(scale=0.5, size=3), [-1.0, 0.2, 1.1]])
    else:
        y = (rng.uniform(size=n) < 0.4).astype(float)
        beta = rng.normal(scale=0.5, size=4)
    return family, beta, X, y, weights, offset


@pytest.mark.parametrize("name", ["logit", "probit", "lpm", "ologit"])
def test_gradient_and_hessian_match_finite_differences(name):
    family, beta, X, y, weights, offset = problem(name)

    def loglike(b):
        return family.loglike_chunk(b, X, y, weights, offset)[0]

    def gradient(b):
        return family.loglike_chunk(b, X, y, weights, offset)[1]

    _, g, H = family.loglike_chunk(beta, X, y, weights, offset)
    numeric_gradient = optimize.approx_fprime(beta, loglike, 1e-6)
    np.testing.assert_allclose(g, numeric_gradient, rtol=1e-5, atol=1e-4)
    numeric_hessian = np.column_stack(
        [(gradient(beta + h) - gradient(beta - h)) / 2e-6 for h in np.eye(beta.size) * 1e-6]
    )
    np.testing.assert_allclose(H, numeric_hessian, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(H, H.T, atol=1e-10)
    # per-observation scores sum to the gradient
    scores = family.scores(beta, X, y, offset)
    np.testing.assert_allclose((scores * weights[:, None]).sum(axis=0), g, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", ["logit", "probit", "lpm", "ologit"])
def test_chunk_sums_equal_the_whole(name):
    family, beta, X, y, weights, offset = problem(name, seed=1, n=1000)
    whole = family.loglike_chunk(beta, X, y, weights, offset)
    chunked = accumulate(family, beta, row_blocks(X, y, weights, offset, block_rows=77))
    assert chunked[0] == pytest.approx(whole[0], rel=1e-12)
    np.testing.assert_allclose(chunked[1], whole[1], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(chunked[2], whole[2], rtol=1e-10, atol=1e-10)


def test_probit_far_tail_stays_finite():
    family = get_family("probit")
    X = np.array([[1.0], [1.0]])
    llf, g, H = family.loglike_chunk(np.array([40.0]), X, np.array([0.0, 1.0]), None, None)
    assert np.isfinite(llf) and np.isfinite(g).all() and np.isfinite(H).all()
    # log Phi(-40) is about -804.6: a naive log(1 - Phi(40)) would be -inf
    assert llf == pytest.approx(special.log_ndtr(-40.0), rel=1e-12)


def test_ologit_probabilities_sum_to_one_and_match_cumulative_logits():
    family, beta, X, _, _, offset = problem("ologit")
    probabilities = family.predict(beta, X, offset)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-12)
    eta = X @ beta[:3] + offset
    np.testing.assert_allclose(
        probabilities[:, 0], special.expit(beta[3] - eta), rtol=1e-12, atol=1e-15
    )


def ordinal_firms(seed: int, n: int = 1000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n),
            "industry": rng.choice(["ict", "manufacturing", "services"], n),
            "region": rng.integers(0, 35, n),
        }
    )
    latent = 0.8 * data.x1 - 0.5 * data.x2 + 0.4 * (data.industry == "ict")
    latent += rng.logistic(size=n)
    data["novelty"] = np.digitize(latent, [-0.5, 0.7, 1.8])
    return data


def test_ologit_matches_statsmodels_ordered_model():
    from formulaic import model_matrix
    from statsmodels.miscmodels.ordinal_model import OrderedModel

    data = ordinal_firms(11)
    formula = "novelty ~ x1 + x2 + C(industry)"
    ours = fit(formula, data, family="ologit")
    X = model_matrix(formula, data).rhs.drop(columns="Intercept")
    theirs = OrderedModel(data.novelty.to_numpy(), X.to_numpy(), distr="logit").fit(
        method="bfgs", disp=0, maxiter=5000, gtol=1e-10
    )
    p = X.shape[1]
    assert list(ours.params.index) == list(X.columns) + ["cut1", "cut2", "cut3"]
    np.testing.assert_allclose(ours.params.iloc[:p], theirs.params[:p], rtol=1e-6)
    # statsmodels: first cut, then log increments
    cuts = theirs.model.transform_threshold_params(theirs.params)[1:-1]
    np.testing.assert_allclose(ours.params.iloc[p:], cuts, rtol=1e-6)
    assert ours.llf == pytest.approx(theirs.llf, rel=1e-8)
    # statsmodels differentiates numerically: standard errors of slopes agree to 1e-4
    np.testing.assert_allclose(ours.bse.iloc[:p], theirs.bse[:p], rtol=1e-4)
    # the cut points' errors via the delta method through statsmodels' transform
    jacobian = np.zeros((3, 3))
    increments = theirs.params[p:]
    for j in range(3):
        jacobian[j, 0] = 1.0
        for i in range(1, j + 1):
            jacobian[j, i] = np.exp(increments[i])
    their_cut_cov = jacobian @ theirs.cov_params()[p:, p:] @ jacobian.T
    np.testing.assert_allclose(
        ours.vcov.iloc[p:, p:].to_numpy(), their_cut_cov, rtol=1e-4, atol=1e-8
    )
    assert ours.llnull == pytest.approx(theirs.llnull, rel=1e-8)
    probabilities = ours.predict(data)
    np.testing.assert_allclose(probabilities.to_numpy(), theirs.predict(), rtol=1e-6, atol=1e-9)


def test_ologit_on_binary_outcome_is_logit_with_negated_intercept():
    """With two categories, ologit is logit: cut1 = -intercept (an independent identity)."""
    data = ordinal_firms(12)
    data["top"] = (data.novelty >= 2).astype(float)
    ordered = fit("top ~ x1 + x2", data, family="ologit", vcov={"cluster": "region"})
    binary = fit("top ~ x1 + x2", data, family="logit", vcov={"cluster": "region"})
    np.testing.assert_allclose(ordered.params[["x1", "x2"]], binary.params[["x1", "x2"]], 1e-9)
    assert ordered.params["cut1"] == pytest.approx(-binary.params["Intercept"], rel=1e-9)
    np.testing.assert_allclose(ordered.bse.to_numpy(), binary.bse[["x1", "x2", "Intercept"]], 1e-8)
    assert ordered.llf == pytest.approx(binary.llf, rel=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("categories", [2, 3, 5])
def test_ologit_chunk_sums_equal_the_cell_by_cell_construction(weighted, categories):
    """The ordered logit's gradient, Hessian and scores, bit for bit as built cell by cell
    (dense cut-point columns, the cut block by sequential ``np.add.at``): the pieces of each
    row are computed once for all of them, and the cut block is one ``bincount``."""
    rng = np.random.default_rng(categories + 10 * weighted)
    n, p, k = 250, 3, categories - 1
    X = rng.normal(size=(n, p))
    y = rng.integers(0, categories, n).astype(float)
    weights = rng.uniform(0.5, 2.0, n) if weighted else None
    offset = rng.normal(scale=0.3, size=n)
    family = get_family("ologit").with_categories(tuple(float(c) for c in range(categories)))
    beta = np.concatenate([rng.normal(scale=0.5, size=p), np.sort(rng.normal(size=k))])
    eta = X @ beta[:p] + offset
    padded = np.concatenate(([-np.inf], beta[p:], [np.inf]))
    codes = y.astype(np.intp)
    upper, lower = padded[codes + 1] - eta, padded[codes] - eta
    # the family's own per-row pieces (their formulas: the finite-difference test above)
    log_p, g_u, g_l, h_u, h_l = _plain_derivative_pieces(upper, lower)
    probability = np.exp(log_p)
    w = np.ones(n) if weights is None else weights

    def dense(upper_value, lower_value):
        out = np.zeros((n, k))
        for i in range(n):
            if codes[i] < k:
                out[i, codes[i]] = upper_value[i]
            if codes[i] > 0:
                out[i, codes[i] - 1] = lower_value[i]
        return out

    d_aa, d_bb, d_ab = h_u - g_u * g_u, -h_l - g_l * g_l, g_u * g_l
    block = np.zeros((k, k))
    up, low = codes < k, codes > 0
    both = up & low
    np.add.at(block, (codes[up], codes[up]), (w * d_aa)[up])
    np.add.at(block, (codes[low] - 1, codes[low] - 1), (w * d_bb)[low])
    np.add.at(block, (codes[both], codes[both] - 1), (w * d_ab)[both])
    np.add.at(block, (codes[both] - 1, codes[both]), (w * d_ab)[both])
    llf, gradient, hessian = family.loglike_chunk(beta, X, y, weights, offset)
    np.testing.assert_array_equal(hessian[p:, p:], block)  # the same sums in the same order
    np.testing.assert_allclose(gradient[p:], dense(g_u, -g_l).T @ w, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        hessian[:p, p:], X.T @ (dense(-(d_aa + d_ab), -(d_ab + d_bb)) * w[:, None]), rtol=1e-10
    )
    assert llf == pytest.approx(float((w * np.log(probability)).sum()), rel=1e-12)
    scores = family.scores(beta, X, y, offset)
    np.testing.assert_allclose(
        scores, np.hstack([X * (g_l - g_u)[:, None], dense(g_u, -g_l)]), rtol=1e-10, atol=1e-12
    )
    found = family.sums_and_scores(beta, X, y, weights, offset, hessian=False, scores=True)
    assert found[0] == llf and found[2] is None
    np.testing.assert_array_equal(found[1], gradient)
    np.testing.assert_array_equal(found[3], scores)


@pytest.mark.parametrize("name", ["logit", "probit", "ologit", "lpm"])
def test_cdf_into_an_array_equals_a_new_one(name):
    """F written into ``out`` (a separate array, or the index itself) is the new array's F bit
    for bit, and the input is left alone unless it is ``out``."""
    from buzzpipe.estimate.batched_newton import fitted_probability

    index = np.random.default_rng(3).normal(scale=4.0, size=(50, 7))
    index[0, :3] = [-800.0, 800.0, 0.0]
    kept = index.copy()
    family = get_family(name)
    expected = family.cdf(index)
    out = np.full_like(index, np.nan)
    assert family.cdf(index, out=out) is out and np.array_equal(out, expected)
    assert np.array_equal(index, kept)
    if name != "ologit":  # the binary models' fitted probability, in place
        assert np.array_equal(fitted_probability(index, name), expected)
        assert fitted_probability(index, name, out=index) is index
        assert np.array_equal(index, expected)


def test_logistic_values_are_the_three_functions_bit_for_bit():
    """F, f and f' from one evaluation of F (margins' link values) are the numbers of
    logistic_cdf, logistic_pdf and logistic_pdf_slope exactly, tails and infinities included."""
    from buzzpipe.estimate.families import (
        logistic_cdf,
        logistic_pdf,
        logistic_pdf_slope,
        logistic_values,
    )

    u = np.concatenate(
        [np.random.default_rng(3).normal(0, 6, 2000), [0.0, -0.0, 800.0, -800.0, np.inf, -np.inf]]
    )
    for values in (u, u.reshape(-1, 2)):
        cdf, pdf, slope = logistic_values(values)
        np.testing.assert_array_equal(cdf, logistic_cdf(values))
        np.testing.assert_array_equal(pdf, logistic_pdf(values))
        np.testing.assert_array_equal(slope, logistic_pdf_slope(values))


def _plain_derivative_pieces(upper, lower):
    """The ordered logit's per-row pieces by numpy's and scipy's element-wise functions (what
    ``OrderedLogit.sums_and_scores`` computed before its compiled loops): log P, g and h of the
    upper and lower index (h times 1 / P)."""
    flip = lower > 0  # F(u) - F(l) = F(-l) - F(-u): the upper tail where both are positive
    u, l_ = np.where(flip, -lower, upper), np.where(flip, -upper, lower)
    log_fu, log_fl = special.log_expit(u), special.log_expit(l_)
    log_p = log_fu + np.log1p(-np.exp(log_fl - log_fu))
    inv_p = np.exp(-log_p)
    cdf_upper, cdf_lower = special.expit(upper), special.expit(lower)
    f_upper, f_lower = cdf_upper * (1.0 - cdf_upper), cdf_lower * (1.0 - cdf_lower)
    g_upper, g_lower = f_upper * inv_p, f_lower * inv_p
    h_upper = np.where(np.isfinite(upper), f_upper * (1.0 - 2.0 * cdf_upper), 0.0)
    h_lower = np.where(np.isfinite(lower), f_lower * (1.0 - 2.0 * cdf_lower), 0.0)
    return log_p, g_upper, g_lower, h_upper * inv_p, h_lower * inv_p


def _plain_ologit_sums(family, beta, X, y, weights, offset, hessian, scores):
    """``OrderedLogit.sums_and_scores`` as numpy array operations (its code before the compiled
    loops of ``gram.ordered_tails`` and ``gram.ordered_pieces``)."""
    p, k = X.shape[1], family.n_categories - 1
    eta = X @ beta[:p] if offset is None else X @ beta[:p] + offset
    codes = y.astype(np.intp)
    padded = np.concatenate(([-np.inf], beta[p:], [np.inf]))
    upper, lower = padded[codes + 1] - eta, padded[codes] - eta
    log_p, g_u, g_l, h_u, h_l = _plain_derivative_pieces(upper, lower)
    has_upper, has_lower = codes < k, codes > 0
    n = codes.shape[0]

    def columns(upper_value, lower_value):
        out = np.zeros(n * k)
        out[np.flatnonzero(has_upper) * k + codes[has_upper]] = upper_value[has_upper]
        out[np.flatnonzero(has_lower) * k + codes[has_lower] - 1] = lower_value[has_lower]
        return out.reshape(n, k)

    w = np.ones_like(log_p) if weights is None else weights
    d_eta = -(g_u - g_l)
    gradient = np.empty(p + k)
    gradient[:p] = X.T @ (d_eta if weights is None else w * d_eta)
    cut_scores = columns(g_u, -g_l)
    gradient[p:] = cut_scores.T @ w
    found = np.hstack([X * d_eta[:, None], cut_scores]) if scores else None
    llf = float((log_p if weights is None else w * log_p).sum())
    if not hessian:
        return llf, gradient, None, found
    d_aa, d_bb, d_ab = h_u - g_u * g_u, -h_l - g_l * g_l, g_u * g_l
    full = np.empty((p + k, p + k))
    curvature = -(d_aa + 2.0 * d_ab + d_bb)
    full[:p, :p] = -weighted_gram(X, curvature if weights is None else curvature * w)
    cross = columns(-(d_aa + d_ab), -(d_ab + d_bb))
    full[:p, p:] = X.T @ (cross if weights is None else cross * w[:, None])
    full[p:, :p] = full[:p, p:].T
    if weights is not None:
        d_aa, d_bb, d_ab = w * d_aa, w * d_bb, w * d_ab
    both = has_upper & has_lower
    cells = np.concatenate(
        [
            codes[has_upper] * (k + 1),
            (codes[has_lower] - 1) * (k + 1),
            codes[both] * k + (codes[both] - 1),
            (codes[both] - 1) * k + codes[both],
        ]
    )
    values = np.concatenate([d_aa[has_upper], d_bb[has_lower], d_ab[both], d_ab[both]])
    full[p:, p:] = np.bincount(cells, weights=values, minlength=k * k).reshape(k, k)
    return llf, gradient, full, found


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("categories", [2, 3, 5])
@pytest.mark.parametrize("scale", [0.5, 8.0, 60.0])
def test_ologit_compiled_pieces_are_the_element_wise_numbers_bit_for_bit(
    weighted, categories, scale
):
    """``OrderedLogit.sums_and_scores`` (its per-row pieces in two compiled loops) gives the
    numbers of numpy's and scipy's element-wise steps bit for bit: log-likelihood, gradient,
    Hessian and scores, with and without weights, offset and Hessian, on indices in the middle,
    in both tails (``scale``: where the upper tail is taken and where P rounds to 0 or 1) and
    with categories that nobody holds."""
    rng = np.random.default_rng(categories + 10 * weighted + int(scale))
    n, p, k = 400, 4, categories - 1
    X = rng.normal(size=(n, p))
    X[:, 0] = rng.integers(0, 2, n)
    y = rng.integers(0, categories, n).astype(float)
    y[: n // 10] = 0.0
    weights = rng.uniform(0.5, 2.0, n) if weighted else None
    family = get_family("ologit").with_categories(tuple(float(c) for c in range(categories)))
    beta = np.concatenate([rng.normal(scale=scale, size=p), np.sort(rng.normal(size=k) * 2)])
    for offset in (None, rng.normal(scale=0.3, size=n)):
        for hessian, scores in ((True, False), (False, True), (True, True)):
            found = family.sums_and_scores(
                beta, X, y, weights, offset, hessian=hessian, scores=scores
            )
            plain = _plain_ologit_sums(family, beta, X, y, weights, offset, hessian, scores)
            assert found[0] == plain[0] or (np.isnan(found[0]) and np.isnan(plain[0]))
            for mine, theirs in zip(found[1:], plain[1:], strict=True):
                if theirs is None:
                    assert mine is None
                else:
                    np.testing.assert_array_equal(mine, theirs)
