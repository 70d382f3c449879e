"""Likelihood families for the Newton core: logit, probit, ordered logit and the LPM.

Each family answers, for one chunk of rows, the log-likelihood, its gradient and the **observed**
Hessian (Stata's choice; probit's expected-information IRLS differs), so the same Newton loop
serves an in-memory array, Parquet row groups or Dask partitions.

API (arrays float64; ``weights`` are sampling weights or ``None``; ``offset`` may be ``None``)::

    family = get_family("logit")          # "logit" | "probit" | "ologit" | "lpm"
    llf, gradient, hessian = family.loglike_chunk(beta, X, y, weights, offset)
    scores = family.scores(beta, X, y, offset)       # (n, k) unweighted per-observation scores
    probabilities = family.predict(beta, X, offset)  # ologit: (n, J) category probabilities

For ``ologit`` the parameter vector is ``[beta (p), cut1 .. cut(J-1)]`` and ``y`` holds category
codes 0 .. J-1 (``family.n_categories`` = J must be set, see :meth:`OrderedLogit.with_categories`).
Binary and ordinal families work on the log scale (``log_expit``, ``log_ndtr``) so that far-out
linear predictors do not round probabilities to 0 or 1.

Single-index families (logit, probit, LPM) also give their link (``cdf``, ``pdf``,
``pdf_slope``: F, f and f' of the index) and ``index_terms(eta, y)`` (per-row log-likelihood,
d ll / d eta and -d2 ll / d eta2), which the fused kernel (``kernel.py``), the batched Newton
solver, margins and the bootstraps all use: the link functions live here only.
The Hessian ``-X' diag(d) X`` (``d >= 0``) is formed by ``kernel.weighted_gram`` (BLAS ``syrk``;
the compiled tiles of ``gram.py`` from 100,000 rows).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import special

from buzzpipe.estimate.kernel import weighted_gram
from buzzpipe.estimate.reference import normal_pdf  # phi(u), owned there

__all__ = [
    "Family",
    "Logit",
    "Probit",
    "OrderedLogit",
    "LinearProbability",
    "get_family",
    "binary_terms",
    "logistic_cdf",
    "logistic_pdf",
    "logistic_pdf_slope",
    "logistic_values",
    "normal_pdf",
    "normal_pdf_slope",
]

_LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)
_SQRT_2PI = np.sqrt(2.0 * np.pi)


# --------------------------------------------------------------------------------------------
# Link functions: the one home of F (cdf), f (pdf) and f' (pdf_slope); margins, the bootstraps
# and the counterfactuals read them from here.
# --------------------------------------------------------------------------------------------


def logistic_cdf(u: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """F(u) = 1 / (1 + e^-u) (into ``out`` where given, which may be ``u``)."""
    return special.expit(u, out=out)


def logistic_pdf(u: np.ndarray) -> np.ndarray:
    """f(u) = F(u)(1 - F(u)), zero at +-infinity."""
    p = special.expit(u)
    return p * (1.0 - p)


def logistic_pdf_slope(u: np.ndarray) -> np.ndarray:
    """f'(u) = f(u)(1 - 2F(u))."""
    p = special.expit(u)
    return p * (1.0 - p) * (1.0 - 2.0 * p)


def logistic_values(u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """F(u), f(u) and f'(u) from one evaluation of F: the numbers of :func:`logistic_cdf`,
    :func:`logistic_pdf` and :func:`logistic_pdf_slope`, bit for bit (the same products)."""
    p = special.expit(u)
    density = p * (1.0 - p)
    return p, density, density * (1.0 - 2.0 * p)


def normal_pdf_slope(u: np.ndarray) -> np.ndarray:
    """phi'(u) = -u phi(u)."""
    return -u * np.exp(-0.5 * u * u) / _SQRT_2PI


def binary_terms(
    eta: np.ndarray,
    y: np.ndarray,
    family: str,
    need_loglike: bool = True,
    out: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Per-observation log-likelihood, first derivative and minus second derivative in eta.

    Logit: l = y eta - log(1 + e^eta), d = y - p, h = p (1 - p). Probit with q = 2y - 1:
    l = log Phi(q eta), d = q phi(eta) / Phi(q eta), h = d (d + eta): the observed, not the
    expected, information (Stata's choice). LPM (the Newton objective -r^2/2): d = r = y - eta,
    h = 1. Arrays broadcast (n x B works); ``eta`` is left unchanged. Without ``need_loglike``
    the log-likelihood is skipped (returned as None). ``out``: for the logit without the
    log-likelihood, three arrays of eta's shape that receive d, h and a scratch (the same
    numbers, no fresh n x B arrays: a caller evaluating many batches keeps them, and saves
    their page faults); ignored otherwise.
    """
    if family == "logit" and out is not None and not need_loglike:
        derivative, curvature, inverse = out
        small = np.abs(eta, out=curvature)
        np.negative(small, out=small)
        np.exp(small, out=small)
        np.add(small, 1.0, out=inverse)
        np.reciprocal(inverse, out=inverse)
        np.multiply(small, inverse, out=curvature)
        np.copyto(derivative, curvature)  # P(y = 1): e^eta / (1 + e^eta) below 0, else ...
        np.copyto(derivative, inverse, where=eta >= 0)  # ... 1 / (1 + e^-eta)
        np.subtract(y, derivative, out=derivative)
        curvature *= inverse
        return None, derivative, curvature
    if family == "logit":
        small = np.abs(eta)
        np.negative(small, out=small)
        np.exp(small, out=small)  # one exponential serves p, 1 - p and log(1 + e^eta)
        inverse = small + 1.0
        np.reciprocal(inverse, out=inverse)
        curvature = small * inverse
        derivative = np.where(eta >= 0, inverse, curvature)  # P(y = 1)
        np.subtract(y, derivative, out=derivative)
        curvature *= inverse
        if not need_loglike:
            return None, derivative, curvature
        loglike = np.log1p(small, out=small)
        loglike += np.maximum(eta, 0.0)
        np.subtract(y * eta, loglike, out=loglike)
        return loglike, derivative, curvature
    if family == "probit":
        signed = (2.0 * y - 1.0) * eta
        log_cdf = special.log_ndtr(signed)
        mills = np.exp(-0.5 * eta * eta - _LOG_SQRT_2PI - log_cdf)
        derivative = (2.0 * y - 1.0) * mills
        return log_cdf, derivative, derivative * (derivative + eta)
    if family == "lpm":
        residual = y - eta
        loglike = -0.5 * residual * residual if need_loglike else None
        return loglike, residual, np.ones_like(residual)
    from buzzpipe.errors import InputError

    raise InputError("unknown single-index family", value=family, expected="logit, probit or lpm")


def _linear_predictor(beta: np.ndarray, X: np.ndarray, offset: np.ndarray | None) -> np.ndarray:
    eta = X @ beta if X.shape[1] else np.zeros(X.shape[0])
    if offset is not None:
        eta = eta + offset
    return eta


@dataclass(frozen=True)
class Family:
    """Base class: one family's per-chunk likelihood pieces. Subclasses fill in the maths."""

    name: str = ""
    binary: bool = True  # outcome must be 0/1
    uses_t: bool = False  # small-sample t reference distribution (LPM only)
    single_index: bool = False  # likelihood depends on the row only through x'b (+ offset)

    def n_params(self, n_columns: int) -> int:
        """Number of parameters for a design with ``n_columns`` columns."""
        return n_columns

    def loglike_chunk(
        self,
        beta: np.ndarray,
        X: np.ndarray,
        y: np.ndarray,
        weights: np.ndarray | None,
        offset: np.ndarray | None,
    ) -> tuple[float, np.ndarray, np.ndarray]:
        raise NotImplementedError

    def scores(
        self, beta: np.ndarray, X: np.ndarray, y: np.ndarray, offset: np.ndarray | None
    ) -> np.ndarray:
        raise NotImplementedError

    def sums_and_scores(self, beta, X, y, weights, offset, *, hessian=True, scores=False):
        """(log-likelihood, gradient, Hessian or None, unweighted scores or None) of the chunk
        (the fused kernel's path for families that are not single-index)."""
        llf, gradient, full = self.loglike_chunk(beta, X, y, weights, offset)
        found = self.scores(beta, X, y, offset) if scores else None
        return llf, gradient, full if hessian else None, found

    def predict(self, beta: np.ndarray, X: np.ndarray, offset: np.ndarray | None) -> np.ndarray:
        raise NotImplementedError

    def start(self, X: np.ndarray, y: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
        """Starting values: zeros (an intercept, if any, is set by the caller)."""
        return np.zeros(self.n_params(X.shape[1]))

    # the link: F, f and f' of the index (the latent error's distribution for ordered logit)
    def cdf(self, u: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """F(u), into ``out`` where given (which may be ``u``)."""
        raise NotImplementedError

    def pdf(self, u: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def pdf_slope(self, u: np.ndarray) -> np.ndarray:
        raise NotImplementedError


@dataclass(frozen=True)
class _SingleIndex(Family):
    """Logit, probit and the LPM: per-row pieces are functions of eta = x'b + offset only."""

    single_index: bool = True

    def index_terms(
        self, eta: np.ndarray, y: np.ndarray, need_loglike: bool = True
    ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
        """Per-row log-likelihood, d ll / d eta and -d2 ll / d eta2 (see :func:`binary_terms`)."""
        return binary_terms(eta, y, self.name, need_loglike)

    def loglike_chunk(self, beta, X, y, weights, offset):
        from buzzpipe.estimate.kernel import block_sums

        sums = block_sums(self, beta, X, y, weights, offset)
        return sums.llf, sums.gradient, sums.hessian

    def scores(self, beta, X, y, offset):
        _, first, _ = self.index_terms(_linear_predictor(beta, X, offset), y, need_loglike=False)
        return X * first[:, None]

    def start(self, X, y, weights):
        return np.zeros(X.shape[1])


class _LogisticLink:
    """F, f and f' of the logistic distribution (logit and ordered logit)."""

    def cdf(self, u, out=None):
        return logistic_cdf(u, out)

    def pdf(self, u):
        return logistic_pdf(u)

    def pdf_slope(self, u):
        return logistic_pdf_slope(u)

    def link_values(self, u):
        """(F, f, f') of ``u`` from one evaluation of F (:func:`logistic_values`)."""
        return logistic_values(u)


@dataclass(frozen=True)
class Logit(_LogisticLink, _SingleIndex):
    """Logistic regression (Stata ``logit``)."""

    name: str = "logit"

    def predict(self, beta, X, offset):
        return special.expit(_linear_predictor(beta, X, offset))


@dataclass(frozen=True)
class Probit(_SingleIndex):
    """Probit regression (Stata ``probit``) with the observed, not expected, Hessian."""

    name: str = "probit"

    def predict(self, beta, X, offset):
        return special.ndtr(_linear_predictor(beta, X, offset))

    def cdf(self, u, out=None):
        return special.ndtr(u, out=out)

    def pdf(self, u):
        return normal_pdf(u)

    def pdf_slope(self, u):
        return normal_pdf_slope(u)


@dataclass(frozen=True)
class LinearProbability(_SingleIndex):
    """Linear probability model: OLS of a 0/1 outcome (Stata ``regress``).

    The Newton objective is ``-0.5 * sum(w * residual^2)``; one step from any start is exact.
    The Gaussian log-likelihood Stata reports (``e(ll)``) is computed by the fit afterwards.
    The link is the identity.
    """

    name: str = "lpm"
    binary: bool = True
    uses_t: bool = True

    def predict(self, beta, X, offset):
        return _linear_predictor(beta, X, offset)

    def cdf(self, u, out=None):
        if out is None:
            return u
        out[...] = u
        return out

    def pdf(self, u):
        return np.ones_like(u)

    def pdf_slope(self, u):
        return np.zeros_like(u)


@dataclass(frozen=True)
class OrderedLogit(_LogisticLink, Family):
    """Ordered logit (Stata ``ologit``): P(y <= j) = F(cut_j - x'beta), no intercept.

    Parameters are ``[beta, cut1, ..., cut(J-1)]``; ``y`` holds category codes 0 .. J-1.
    """

    name: str = "ologit"
    binary: bool = False
    n_categories: int = 0
    category_values: tuple = field(default=())

    def with_categories(self, values: tuple) -> OrderedLogit:
        """The family for an outcome whose sorted distinct values are ``values``."""
        return OrderedLogit(n_categories=len(values), category_values=tuple(values))

    def n_params(self, n_columns: int) -> int:
        return n_columns + self.n_categories - 1

    def _split(self, beta: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
        return beta[:p], beta[p:]

    def loglike_chunk(self, beta, X, y, weights, offset):
        llf, gradient, hessian, _ = self.sums_and_scores(beta, X, y, weights, offset)
        return llf, gradient, hessian

    def sums_and_scores(self, beta, X, y, weights, offset, *, hessian=True, scores=False):
        """(log-likelihood, gradient, Hessian or None, unweighted scores or None) of the chunk,
        the per-row pieces computed once for all of them, in two compiled loops
        (``gram.ordered_tails``, ``gram.ordered_pieces``) around numpy's exp and log1p, then the
        products with X by BLAS. Each row's upper and lower index is cut_j - eta and
        cut_{j-1} - eta (+-inf at the ends); log P = log(F(upper) - F(lower)) is taken on
        whichever tail keeps precision. The loops give the numbers of numpy's element-wise
        steps bit for bit (tests/estimate/test_families.py builds them so): on the fits' few
        thousand rows some forty array operations, each with its temporary, cost more than the
        arithmetic."""
        from buzzpipe.estimate import gram  # numba: loaded with the first ordered fit

        p = X.shape[1]
        slopes, cuts = self._split(beta, p)
        eta = _linear_predictor(slopes, X, offset)
        codes = y.astype(np.intp)
        padded = np.concatenate(([-np.inf], cuts, [np.inf]))
        n, k = eta.shape[0], self.n_categories - 1
        upper, lower, log_p, difference = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
        gram.ordered_tails(eta, codes, padded, upper, lower, log_p, difference)
        # log P = log F(u) + log1p(-exp(log F(l) - log F(u))), and 1 / P: numpy's functions
        np.exp(difference, out=difference)
        np.negative(difference, out=difference)
        np.log1p(difference, out=difference)
        log_p += difference
        inverse = np.exp(-log_p)
        d_eta, cut_scores = np.empty(n), np.zeros((n, k))
        curvature = cross = None
        if hessian:
            curvature, cross = np.empty(n), np.zeros((n, k))
        block = gram.ordered_pieces(
            upper, lower, inverse, codes, weights, d_eta, cut_scores, curvature, cross
        )
        # unit weights: each product by a weight of 1 is the value itself, so it is left out
        w = np.ones_like(log_p) if weights is None else weights
        gradient = np.empty(p + k)
        gradient[:p] = X.T @ (d_eta if weights is None else w * d_eta)
        gradient[p:] = cut_scores.T @ w
        found_scores = np.hstack([X * d_eta[:, None], cut_scores]) if scores else None
        llf = float((log_p if weights is None else w * log_p).sum())
        if not hessian:
            return llf, gradient, None, found_scores
        # second derivatives (see module notes), the weights already in curvature and cross
        full = np.empty((p + k, p + k))
        full[:p, :p] = -weighted_gram(X, curvature)
        full[:p, p:] = X.T @ cross
        full[p:, :p] = full[:p, p:].T
        full[p:, p:] = block.reshape(k, k)
        return llf, gradient, full, found_scores

    def scores(self, beta, X, y, offset):
        return self.sums_and_scores(beta, X, y, None, offset, hessian=False, scores=True)[3]

    def predict(self, beta, X, offset):
        p = X.shape[1]
        slopes, cuts = self._split(beta, p)
        eta = _linear_predictor(slopes, X, offset)
        cumulative = special.expit(cuts[None, :] - eta[:, None])
        cumulative = np.hstack(
            [np.zeros((eta.shape[0], 1)), cumulative, np.ones((eta.shape[0], 1))]
        )
        return np.diff(cumulative, axis=1)

    def start(self, X, y, weights):
        """Slopes zero, cut points at the logits of the cumulative category shares."""
        w = np.ones(y.shape[0]) if weights is None else weights
        shares = np.bincount(y.astype(np.intp), weights=w, minlength=self.n_categories)
        cumulative = np.cumsum(shares)[:-1] / shares.sum()
        return np.concatenate([np.zeros(X.shape[1]), special.logit(cumulative)])


_FAMILIES: dict[str, type[Family]] = {
    "logit": Logit,
    "probit": Probit,
    "ologit": OrderedLogit,
    "lpm": LinearProbability,
}


def get_family(name: str) -> Family:
    """The family called ``name``: "logit", "probit", "ologit" or "lpm" (Stata's command names)."""
    try:
        return _FAMILIES[name]()
    except KeyError:
        from buzzpipe.errors import InputError

        raise InputError(
            "unknown model family", value=name, expected="one of " + ", ".join(_FAMILIES)
        ) from None
