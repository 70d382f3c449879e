"""Batched Newton: B weighted maximum-likelihood fits of one design, advanced together.

Used by the pairs and cluster bootstraps (``bootstrap.py``), the wild score bootstrap's
unrestricted and restricted fits (``wild_bootstrap.py``), the counterfactual bootstrap
(``study/counterfactuals.py``) and the few-clusters Monte Carlo. The weights form an n x B
matrix; every Newton step is a handful of matrix products over all active replicates at once
(gradients X'(w d), Hessians as (w h)' Z with Z the n x p(p+1)/2 products of columns), with the
per-row pieces from the families (``families.binary_terms``). Never a Python loop of fits.

::

    batch = newton_batch(X, y, weights_n_by_B, family="logit", start=estimate)
    batch.params            # p x B
    batch.converged, batch.full_rank, batch.separated, batch.iterations

BLAS runs on one thread inside (``kernel.one_blas_thread``): the products are small and two
threads contend on a shared machine.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from buzzpipe.estimate.families import binary_terms, get_family
from buzzpipe.estimate.kernel import one_blas_thread

__all__ = ["NewtonBatch", "newton_batch", "fitted_probability"]

_SATURATED = 1e-10  # a fitted probability this close to 0 or 1 marks a (quasi-)separated replicate
_NEARLY_SATURATED = 1e-6  # ... or this close, when the last Newton step was long
_DIVERGING_STEP = 1e-2  # a final Newton step this long (with a tiny decrement): separation
# warm starts: chord steps (the last Hessian kept) while the decrement is below CHORD_BELOW and
# each step shrinks it at least CHORD_SHRINK-fold
CHORD_BELOW = 1.0
CHORD_SHRINK = 4.0


# the column products behind a batch of Hessians (``_column_products``) are kept whole up to
# this many numbers (32 MiB), else made block by block (``hessians_by_blocks``)
PRODUCTS_KEPT = 1 << 22
PRODUCTS_BLOCK = 8192


def _score_terms(eta: np.ndarray, y: np.ndarray, family: str) -> tuple[np.ndarray, np.ndarray]:
    """d and h of :func:`binary_terms` without the log-likelihood, overwriting ``eta``.

    The Newton loop's hot path: for the logit one exponential (``_logistic``) and three passes
    (d = y - P, h = P (1 - P)) instead of the log-likelihood's guarded exponentials.
    """
    if family != "logit":
        return binary_terms(eta, y, family, need_loglike=False)[1:]
    prob = _logistic(eta, out=eta)
    curvature = 1.0 - prob
    curvature *= prob
    return np.subtract(y, prob, out=prob), curvature


def _logistic(eta: np.ndarray, out: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-eta) into ``out`` (which may be ``eta``) by numpy's vectorised exponential:
    measured here 16 times faster than ``scipy.special.expit`` on a 1,604 x 1,000 block (3.5
    against 58 ms), the same values to a few units in the last place. e^-eta overflows to inf
    for eta below -709, giving 0 as expit does."""
    np.negative(eta, out=out)
    with np.errstate(over="ignore"):
        np.exp(out, out=out)
    out += 1.0
    return np.reciprocal(out, out=out)


def fitted_probability(eta: np.ndarray, family: str, out: np.ndarray | None = None) -> np.ndarray:
    """P(y = 1) at the linear index eta (the family's cdf), into ``out`` where given (which may
    be ``eta``: a caller making many n x B arrays saves their page faults)."""
    return get_family(family).cdf(eta, out=out)


def replicate_probability(eta: np.ndarray, family: str, out: np.ndarray) -> np.ndarray:
    """:func:`fitted_probability` of many replicates (n x B) into ``out``: for the logit by
    numpy's vectorised exponential (:func:`_logistic`, about six times faster than
    ``scipy.special.expit`` on 1,604 x 199, the same to a few units in the last place); other
    families by their cdf. For a bootstrap's replicates; point predictions keep the cdf."""
    if family == "logit":
        return _logistic(eta, out=out)
    return fitted_probability(eta, family, out=out)


@dataclass
class NewtonBatch:
    """Estimates and flags of a batch of weighted fits of one design (one column per replicate)."""

    params: np.ndarray  # p x B
    loglike: np.ndarray | None  # B, when asked for
    converged: np.ndarray  # B, bool
    full_rank: np.ndarray  # B, bool
    separated: np.ndarray  # B, bool
    iterations: np.ndarray  # B, Newton steps taken
    hessian: np.ndarray | None = None  # B x p x p (minus the second derivative), if asked


def _column_products(
    X: np.ndarray, by_columns: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The n x p(p+1)/2 matrix of products X_j X_k (j <= k) that turns Hessians into one matmul.

    Column j times the columns j.. in one broadcast product each (the same products as
    gathering ``X[:, upper_j] * X[:, upper_k]``, without the two gathered copies).
    ``by_columns``: the same numbers stored column by column (Fortran order), each product a
    contiguous row of the transposed array (measured on a 1,604 x 16 design: 0.13 against
    0.50 ms, the row-major writes being strided), for a caller that keeps them and takes
    whole products out of them (the wild bootstrap); a matmul with them gives the same bits
    as with the row-major ones for two or more rows on the left (OpenBLAS, checked), and
    within rounding for one."""
    n, p = X.shape
    upper_j, upper_k = np.triu_indices(p)
    if by_columns:
        columns = np.ascontiguousarray(X.T)
        transposed = np.empty((len(upper_j), n))
        position = 0
        for j in range(p):
            np.multiply(columns[j], columns[j:], out=transposed[position : position + p - j])
            position += p - j
        return transposed.T, upper_j, upper_k
    products = np.empty((n, len(upper_j)))
    position = 0
    for j in range(p):
        np.multiply(X[:, j : j + 1], X[:, j:], out=products[:, position : position + p - j])
        position += p - j
    return products, upper_j, upper_k


def _hessians(products, upper_j, upper_k, weight_h: np.ndarray, p: int) -> np.ndarray:
    """B x p x p Hessians sum_i w_ib h_ib x_i x_i' from one (B x n) @ (n x p(p+1)/2) product."""
    return _symmetric(weight_h.T @ products, upper_j, upper_k, p)


def keeps_products(rows: int, columns: int) -> bool:
    """Whether a design of ``rows`` x ``columns`` has its column products kept whole: their
    rows x columns(columns + 1)/2 numbers at most ``PRODUCTS_KEPT`` (else they are made block
    by block, :func:`hessians_by_blocks`)."""
    return rows * (columns * (columns + 1) // 2) <= PRODUCTS_KEPT


def hessians_by_blocks(X: np.ndarray, weight_h: np.ndarray) -> np.ndarray:
    """B x p x p Hessians sum_i w_ib h_ib x_i x_i' (``_hessians``) from the column products of
    ``PRODUCTS_BLOCK`` rows at a time: for a sample whose n x p(p+1)/2 products would take more
    than ``PRODUCTS_KEPT`` numbers, which are then never held whole."""
    n, p = X.shape
    total = np.zeros((weight_h.shape[1], p, p))
    for first in range(0, n, PRODUCTS_BLOCK):
        stop = min(first + PRODUCTS_BLOCK, n)
        total += _hessians(*_column_products(X[first:stop]), weight_h[first:stop], p)
    return total


def _symmetric(flat: np.ndarray, upper_j, upper_k, p: int) -> np.ndarray:
    """B x p x p symmetric matrices from their B x p(p+1)/2 upper triangles, in the order of
    ``np.triu_indices(p)`` (``upper_j``, ``upper_k``: the column products' order).

    One gather along the rows of ``flat`` (entry (j, k) and (k, j) read the same column), about
    six times faster than scattering into both triangles; the gather's positions made once per
    p (``_gather_positions``: test inversion gathers hundreds of small batches).
    """
    return np.take(flat, _gather_positions(p), axis=1).reshape(flat.shape[0], p, p)


@functools.lru_cache(maxsize=64)
def _gather_positions(p: int) -> np.ndarray:
    """Where entry (j, k) of a p x p symmetric matrix sits among its upper triangle's entries
    in ``np.triu_indices(p)`` order (read-only, p * p positions)."""
    upper_j, upper_k = np.triu_indices(p)
    position = np.empty((p, p), dtype=np.intp)
    position[upper_j, upper_k] = np.arange(len(upper_j))
    position[upper_k, upper_j] = np.arange(len(upper_j))
    position = position.ravel()
    position.flags.writeable = False
    return position


def _rank_and_inverse(
    hessian: np.ndarray, compiled: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which of B symmetric p x p matrices are of full rank, judged at unit diagonal, their
    inverses and the traces of the scaled inverses (B x p x p, B, B).

    A column is redundant when its Cholesky pivot, 1 - R^2 of the column on the ones before it,
    falls below 1e-10. The factors (of the matrices scaled to unit diagonal) serve the inverses
    too. ``compiled``: ``compiled_batch.factor_inverse`` factors and inverts the matrices in
    groups, each scalar operation one vector operation over a group of replicates (measured on
    1,000 25 x 25 matrices: 3.7 ms against 12.1 ms for LAPACK's ``dpotrf`` on the batch and
    ``dpotri`` one matrix at a time, the same to about 1e-15 relative); where a factorisation
    fails (a matrix not positive definite) eigenvalues decide that matrix's rank and
    ``np.linalg.inv`` gives its inverse (zero where singular), its trace NaN. Otherwise LAPACK
    (:func:`_rank_and_factor`), where one failed factorisation sends the whole batch to the
    eigenvalues and ``np.linalg.inv``: the rounding of the fits that are not bootstraps (the
    wild bootstrap's restricted fits, whose statistic at a null equal to the estimate is
    rounding noise) stays as it was.
    """
    count = hessian.shape[0]
    hessian = np.ascontiguousarray(hessian, dtype=np.float64)
    if not compiled:
        full_rank, factor, scale = _rank_and_factor(hessian)
        if factor is None:
            square = hessian.copy()
            square[~full_rank] = np.eye(hessian.shape[1])
            return full_rank, _invert(square, np.arange(count), full_rank), np.full(count, np.nan)
        return full_rank, *_inverse_from_factor(factor, scale)
    from buzzpipe.estimate.compiled_batch import factor_inverse

    inverse = np.empty_like(hessian)
    trace, pivot = np.empty(count), np.empty(count)
    factored = factor_inverse(hessian, inverse, trace, pivot).astype(bool)
    positive = (np.einsum("bii->bi", hessian) > 0).all(axis=1)
    full_rank = positive & factored & (pivot > 1e-10)
    failed = np.flatnonzero(~factored)
    if failed.size:
        trace[failed] = np.nan
        diagonal = np.einsum("bii->bi", hessian[failed])
        scale = 1.0 / np.sqrt(np.where(diagonal > 0, diagonal, 1.0))
        scaled = hessian[failed] * scale[:, :, None] * scale[:, None, :]
        eigen = np.linalg.eigvalsh(scaled)
        full_rank[failed] = positive[failed] & (
            eigen[:, 0] > 1e-10 * np.maximum(eigen[:, -1], 1e-300)
        )
        invertible = np.ones(failed.size, dtype=bool)  # _invert marks the singular ones
        inverse[failed] = _invert(hessian[failed], np.arange(failed.size), invertible)
        full_rank[failed] &= invertible
    return full_rank, inverse, trace


def _rank_and_factor(hessian: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Which of B symmetric p x p matrices are of full rank (the rule of
    :func:`_rank_and_inverse`), with the Cholesky factors of the matrices scaled to unit diagonal
    (B x p x p lower triangles; None when some factorisation failed) and the scales 1/sqrt(H_jj),
    so that the inverses cost a triangular inversion each (:func:`_inverse_from_factor`)."""
    diagonal = np.einsum("bii->bi", hessian)
    positive = (diagonal > 0).all(axis=1)
    scale = 1.0 / np.sqrt(np.where(diagonal > 0, diagonal, 1.0))
    scaled = hessian * scale[:, :, None] * scale[:, None, :]
    try:
        factor = np.linalg.cholesky(scaled)
    except np.linalg.LinAlgError:
        eigen = np.linalg.eigvalsh(scaled)
        return positive & (eigen[:, 0] > 1e-10 * np.maximum(eigen[:, -1], 1e-300)), None, scale
    pivots = np.einsum("bii->bi", factor) ** 2
    return positive & (pivots.min(axis=1) > 1e-10), factor, scale


def _inverse_from_factor(factor: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverses of B matrices H = S^-1 L L' S^-1 (S = diag(scale)) from their scaled Cholesky
    factors L, and the traces of the scaled inverses (L L')^-1 (B): LAPACK's dpotri on each (a
    triangular inversion and product, half the work of the LU inverse numpy's ``inv`` makes),
    mirrored and unscaled. Measured on 1,000 25 x 25
    matrices: 7.5 ms against 13 ms for ``np.linalg.inv``, the same to about 1e-15 relative."""
    from scipy.linalg import lapack

    inverse = np.empty_like(factor)
    for position in range(factor.shape[0]):  # dpotri is not batched: one call per matrix
        inverse[position] = lapack.dpotri(factor[position], lower=1)[0]
    # dpotri fills the lower triangle and leaves the factor's upper one, zeros: mirror it
    inverse += np.tril(inverse, -1).transpose(0, 2, 1)
    trace = np.einsum("bii->b", inverse)
    inverse *= scale[:, :, None] * scale[:, None, :]  # s_i s_j: the result exactly symmetric
    return inverse, trace


_UNIT_ROUNDOFF_SINGLE = 2.0**-24
# chord gradients are summed in single precision while every replicate's last Newton decrement
# is at least this (far from the optimum; the last steps are always in double precision)
SINGLE_GRADIENT_ABOVE = 1e-6
# with ``single_in_blocks``, where the whole sample's single-precision sum fails the bound, the
# common start's Hessians are summed in single precision over this many rows at a time and the
# blocks' sums added in double precision (the bound then counts these rows, not n)
SINGLE_PRECISION_BLOCK = 512


def _single_precision_error(
    X: np.ndarray, curvature: np.ndarray, rows: int | None = None
) -> float | None:
    """A bound on the spectral norm of the error of a weighted Hessian summed in single
    precision, relative to its diagonal (the matrix scaled to unit diagonal); None where it is
    too large to help.

    Each entry sum_i w_i h_i x_ij x_ik, its terms rounded to float32 and summed over n rows in
    any order (``rows``: over blocks of at most that many rows, the blocks' sums then added in
    double precision, whose rounding is far below; n stands for ``rows`` below), is within
    gamma = (n + 3) u (u = 2^-24) of sum_i |terms|, at most
    sqrt(H_jj H_kk) by Cauchy-Schwarz, so the scaled entries (the diagonal too) are within
    2 gamma, and the scaled matrix within 2 gamma p in spectral norm (Frobenius bound). Weyl's
    inequality then gives: where this error times the trace of the computed scaled inverse (at
    least 1 / its smallest eigenvalue) is at most 1/2, the exact matrix is positive definite
    with every Cholesky pivot above 1 / (2 trace), so it is of full rank by ``_rank_and_inverse``'s
    rule, and the single-precision matrix steers the first step as well. The check is made
    replicate by replicate after the sum (the others are redone in double precision); here
    single precision is declined where even the full-sample matrix would fail it twice over.
    """
    n, p = X.shape
    error = 2.0 * (min(n, rows or n) + 3) * _UNIT_ROUNDOFF_SINGLE * p
    if error * p > 0.25:  # the trace of a scaled inverse is at least p
        return None
    gram = (X * curvature[:, None]).T @ X  # the full sample's Hessian at the common start
    root = np.sqrt(np.diag(gram))
    if not np.all(root > 0):
        return None
    try:
        trace = np.trace(np.linalg.inv(gram / np.outer(root, root)))
    except np.linalg.LinAlgError:
        return None
    return error if 0 < trace and trace * error <= 0.25 else None


def _quasi_newton_step(
    inverse: np.ndarray, gradient: np.ndarray, pairs: list[tuple[np.ndarray, ...]]
) -> np.ndarray:
    """BFGS steps (p x k) from k kept inverse (minus) Hessians (k x p x p) and the secant pairs
    (s, y, 1 / s'y) of the steps since (each p x k, p x k, k): the two-loop recursion, the
    same step as the BFGS-updated matrix without forming it (vector work per pair, not k p^2).
    A pair whose 1 / s'y is 0 (s'y <= 0, or from before a fresh Hessian) changes nothing."""
    q = gradient.copy()
    alphas = []
    for s, y, rho in reversed(pairs):
        alpha = rho * np.einsum("pb,pb->b", s, q)
        q -= alpha * y
        alphas.append(alpha)
    r = _times(inverse, q)
    for (s, y, rho), alpha in zip(pairs, reversed(alphas), strict=True):
        beta = rho * np.einsum("pb,pb->b", y, r)
        r += (alpha - beta) * s
    return r


def _times(matrices: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Each of k matrices (k x p x p) times its vector (p x k), as p x k: numpy's stacked
    ``matmul`` (measured for 1,000 of 25 x 25: 0.14 ms against 0.37 ms by ``einsum``)."""
    return np.matmul(matrices, vectors.T[:, :, None])[:, :, 0].T


def _invert(hessians: np.ndarray, replicates: np.ndarray, full_rank: np.ndarray) -> np.ndarray:
    """Inverses of k Hessians (k x p x p); one by one where the batch is singular, marking the
    singular replicates in ``full_rank`` (their inverse is zero: no step)."""
    try:
        return np.linalg.inv(hessians)
    except np.linalg.LinAlgError:
        out = np.zeros_like(hessians)
        for position in range(hessians.shape[0]):
            try:
                out[position] = np.linalg.inv(hessians[position])
            except np.linalg.LinAlgError:
                full_rank[replicates[position]] = False
        return out


def _farthest_weighted(eta: np.ndarray, w: np.ndarray, family: str) -> np.ndarray:
    """The largest |eta| over the rows of positive weight, column by column (B), wherever the
    separation flags can turn on it; elsewhere the largest over all rows (the flags then read
    the same).

    The flags only ask whether min(P, 1 - P) falls below ``_NEARLY_SATURATED`` (or
    ``_SATURATED``). The largest |eta| over all rows bounds the weighted one, so where it
    leaves min(P, 1 - P) at or above ``_NEARLY_SATURATED`` neither flag can turn; the masked
    maximum (a slow reduction over every row) is taken only for the other columns."""
    if eta.shape[0] == 0:
        return np.zeros(eta.shape[1])
    farthest = np.maximum(eta.max(axis=0), -eta.min(axis=0))
    far = np.flatnonzero(~(fitted_probability(-farthest, family) >= _NEARLY_SATURATED))
    if far.size:
        positive = w > 0 if w.shape[1] == 1 else w[:, far] > 0  # n x 1 serves every column
        farthest[far] = np.abs(eta[:, far]).max(axis=0, where=positive, initial=0.0)
    return farthest


@one_blas_thread
def newton_batch(
    X: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray | Callable[[int, int], np.ndarray],
    *,
    family: str = "logit",
    offset: np.ndarray | None = None,
    start: np.ndarray | None = None,
    tol: float = 1e-8,
    max_iter: int = 30,
    keep_hessian: bool = False,
    want_loglike: bool = False,
    row_block: int | None = None,
    products: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    single_in_blocks: bool = False,
) -> NewtonBatch:
    """Maximise B weighted log-likelihoods of one design together by Newton steps.

    ``offset`` is n (shared) or n x B (one per fit). ``weights`` is n x B (bootstrap counts
    times any sampling weights; an n x 1 column serves every fit), or a function of
    (first row, stop row) returning that block's rows of it: then, with ``row_block``, weights
    are drawn block by block at every step and never held whole (memory O(row_block x B)).
    ``start`` is p or p x B. A replicate stops when its Newton decrement g'H^{-1}g falls below
    ``tol`` (the last step is still taken); a long step that lowers the log-likelihood is halved.
    Replicates whose weighted design is rank deficient (a resample without any firm in some
    category) are flagged and not iterated. ``products``: ``_column_products(X)`` where the
    caller keeps it (a caller solving many batches of one design makes it once).
    ``single_in_blocks``: where the warm start's Hessians may not be summed in single precision
    over the whole sample (:func:`_single_precision_error`), sum them in single precision over
    ``SINGLE_PRECISION_BLOCK`` rows at a time, the blocks added in double precision, where that
    bound allows (the counterfactual bootstrap: about half a double-precision product's time);
    off, the fits are as before it came.

    Warm start (one ``start`` vector for many replicates held in memory, the bootstrap's case):
    the first step is at a point common to all replicates, so its gradients X' diag(d) W and
    Hessians (Z diag(h))' W are products with the weight matrix alone, no n x B pass. That
    Hessian (each replicate's own at the common start) is then kept, its inverse updated by
    BFGS from each step's change of gradient (the two-loop recursion over the steps taken:
    quasi-Newton steps, a gradient per step, superlinear convergence), while each step shrinks
    the decrement at least ``CHORD_SHRINK``-fold (a replicate that does not, such as one
    separating, gets a fresh Hessian and keeps one while its decrement is above
    ``CHORD_BELOW``); a replicate stops when its decrement falls below ``tol`` ** 2 (the last
    step still taken), which keeps the estimates within about 2e-11 of full Newton steps.
    No Hessian but the first is computed for a replicate that converges normally: on the
    pairs bootstrap's 1,604 x 25 design, 1,000 replicates take one Hessian product and eight
    gradients (the kept-Hessian chord steps before took two Hessian products and eight).
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    n, p = X.shape
    if callable(weights):
        draw_weights = weights
    else:
        weights = np.asarray(weights, dtype=float).reshape(n, -1)

        def draw_weights(first: int, stop: int) -> np.ndarray:
            return weights[first:stop]

    row_block = n if row_block is None else max(1, int(row_block))
    blocks = [(first, min(first + row_block, n)) for first in range(0, n, row_block)]
    if len(blocks) == 1 and callable(weights):  # one block: draw once, keep
        whole = np.asarray(draw_weights(0, n), dtype=float).reshape(n, -1)

        def draw_weights(first: int, stop: int) -> np.ndarray:
            return whole[first:stop]

    n_batch = np.asarray(draw_weights(0, min(1, n))).reshape(min(1, n), -1).shape[1]
    # the offset as n x 1 (shared) or n x B (one column per fit: restricted fits at many nulls)
    offset_all = np.zeros((n, 1)) if offset is None else np.asarray(offset, dtype=float)
    offset_all = offset_all.reshape(n, -1)
    per_fit_offset = offset_all.shape[1] > 1

    # one weight column of ones for every fit (the wild bootstrap's restricted fits without
    # sampling weights): multiplying the score terms by it changes no bit, so it is skipped
    unit_weights = not callable(weights) and n_batch == 1 and bool(np.all(weights == 1.0))
    if per_fit_offset and n_batch == 1 and not callable(weights):  # one weight column for all
        weights = np.broadcast_to(weights, (n, offset_all.shape[1]))
        n_batch = offset_all.shape[1]

    def offset_of(first: int, stop: int, cols: np.ndarray | None = None) -> np.ndarray:
        rows = offset_all[first:stop]
        if not per_fit_offset or cols is None or len(cols) == offset_all.shape[1]:
            return rows  # every fit's column (the active ones are always in order)
        return rows[:, cols]

    if start is None:
        params = np.zeros((p, n_batch))
    else:
        params = np.broadcast_to(np.asarray(start, dtype=float).reshape(p, -1), (p, n_batch)).copy()
    many = n_batch > p  # many replicates: Hessians from one product with the column products
    whole_products = products if len(blocks) == 1 else None  # kept by the caller: any batch
    if whole_products is None and many and len(blocks) == 1:
        whole_products = _column_products(X)
    warm = (
        many
        and whole_products is not None
        and not per_fit_offset
        and not callable(weights)
        and not keep_hessian
        and start is not None
        and np.asarray(start).size == p
    )
    # logit chord gradients by signs (warm starts, 0/1 outcomes): with s = 2y - 1, the score
    # y - P(eta) is s / (1 + e^(s eta)) and X'(w (y - P)) = X_s'(w / (1 + e^(X_s beta + s o)))
    # for X_s = s X (an exact sign change): three passes over the n x k block, no difference
    # of two large sums (X'(w y) - X'(w P) lost digits to cancellation near the optimum)
    signed = warm and family == "logit" and bool(np.all((y == 0.0) | (y == 1.0)))
    if signed:
        sign = 2.0 * y - 1.0
        X_signed = X * sign[:, None]
        signed_offset = None if offset is None else offset_all * sign[:, None]
        # one n x B workspace, reused by every chord gradient (double or single precision: its
        # first half as float32) and the separation pass: a fresh n x B array each time costs
        # its page faults (measured: about 4,600 a bootstrap of 1,604 x 1,000)
        workspace = np.empty(n * n_batch)
        signed_buffer = workspace.reshape(n, n_batch)

        def signed_single() -> tuple[np.ndarray, np.ndarray]:
            if "signed" not in common:
                common["signed"] = X_signed.astype(np.float32)
                common["single_buffer"] = workspace.view(np.float32)[: n * n_batch].reshape(
                    n, n_batch
                )
            return common["signed"], single_weights()
    elif warm and family == "logit":
        weighted_outcome = (X * y[:, None]).T @ weights  # = X'(w y), without an n x B product

    def block_hessians(first: int, stop: int, weight_h: np.ndarray) -> np.ndarray:
        X_block = X[first:stop]
        if not many and whole_products is None:  # a few fits: X' diag(w h) X each
            return np.stack(
                [(X_block * weight_h[:, [b]]).T @ X_block for b in range(weight_h.shape[1])]
            )
        products, upper_j, upper_k = whole_products or _column_products(X_block)
        return _hessians(products, upper_j, upper_k, weight_h, p)

    def accumulate(beta: np.ndarray, cols: np.ndarray, with_hessian: bool = True):
        """Gradient (p x k) and Hessians (k x p x p) of the replicates ``cols`` at ``beta``."""
        gradient = np.zeros((p, len(cols)))
        hessian = np.zeros((len(cols), p, p)) if with_hessian else None
        for first, stop in blocks:
            eta = X[first:stop] @ beta + offset_of(first, stop, cols)
            derivative, curvature = _score_terms(eta, y[first:stop, None], family)
            if not unit_weights:
                w = draw_weights(first, stop)
                if len(cols) < n_batch:
                    w = w[:, cols]
                derivative *= w
                if with_hessian:
                    curvature *= w
            gradient += X[first:stop].T @ derivative
            if with_hessian:
                hessian += block_hessians(first, stop, curvature)
        return gradient, hessian

    common: dict[str, np.ndarray] = {}  # the common start's curvature and float32 weights

    def at_common_start(beta: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
        """Gradients (p x B) and Hessians (B x p x p) of every replicate at one point, and
        whether the Hessians were summed in single precision (:func:`_single_precision_error`:
        the first step's matrices, checked replicate by replicate before they are used)."""
        eta = X @ beta + offset_all[:, 0]
        _, derivative, curvature = binary_terms(eta, y, family, need_loglike=False)
        common["curvature"] = curvature
        products, upper_j, upper_k = whole_products
        gradient = (X * derivative[:, None]).T @ weights
        common["error"] = _single_precision_error(X, curvature)
        block = n
        if common["error"] is None and single_in_blocks and n > SINGLE_PRECISION_BLOCK:
            block = SINGLE_PRECISION_BLOCK
            common["error"] = _single_precision_error(X, curvature, rows=block)
        single = common["error"] is not None
        if single:
            weighted = np.empty(products.shape, dtype=np.float32)  # one pass, cast on write
            np.multiply(products, curvature[:, None], out=weighted, casting="same_kind")
            if block == n:
                flat = (single_weights().T @ weighted).astype(np.float64)
            else:  # each block's sum in single precision, the blocks added in double
                flat = np.zeros((weights.shape[1], products.shape[1]))
                for first in range(0, n, block):
                    flat += (
                        single_weights()[first : first + block].T @ weighted[first : first + block]
                    )
        else:
            flat = weights.T @ (products * curvature[:, None])
        return gradient, _symmetric(flat, upper_j, upper_k, p), single

    def exact_common_hessians(cols: np.ndarray) -> np.ndarray:
        """Hessians (k x p x p) at the common start in double precision, replicates ``cols``."""
        products, upper_j, upper_k = whole_products
        flat = weights[:, cols].T @ (products * common["curvature"][:, None])
        return _symmetric(flat, upper_j, upper_k, p)

    def single_weights() -> np.ndarray:
        if "weights" not in common:
            common["weights"] = weights.astype(np.float32)
        return common["weights"]

    def gradient_only(cols: np.ndarray, rough: bool = False) -> np.ndarray:
        """Gradients (p x k) of the replicates ``cols``: a chord step needs no Hessian.

        ``rough``: in single precision (logit by signs only), about twice as fast.

        Logit: X'(w y) - X'(w P) over every replicate while most are still active (selecting
        the columns of the n x B weights would cost more than the replicates already done),
        over the ``cols`` alone once fewer than half remain.
        """
        if family != "logit":
            return accumulate(params[:, cols], cols, with_hessian=False)[0]
        every = 2 * len(cols) >= n_batch  # most replicates: all columns, no copies
        if signed:
            if rough:
                design, counts = signed_single()
                buffer = common["single_buffer"]
                beta = (params if every else params[:, cols]).astype(np.float32)
            else:
                design, counts, buffer = X_signed, weights, signed_buffer
                beta = params if every else params[:, cols]
            index = buffer[:, : n_batch if every else len(cols)]
            np.matmul(design, beta, out=index)
            if signed_offset is not None:
                index += signed_offset
            with np.errstate(over="ignore"):  # e^(s eta) = inf beyond 709: a zero score
                np.exp(index, out=index)
            index += 1.0
            np.divide(counts if every else counts[:, cols], index, out=index)
            score = (design.T @ index).astype(np.float64, copy=False)
            return score[:, cols] if every else score
        # w P = w / (1 + e^-eta) in three passes over the n x k block after the product:
        # -eta from the negated coefficients (exact), e^-eta, 1 + e^-eta, w / (1 + e^-eta)
        minus_eta = X @ -(params if every else params[:, cols])
        if offset is not None:
            minus_eta -= offset_all if every else offset_of(0, n, cols)
        with np.errstate(over="ignore"):  # e^-eta = inf for eta < -709: w P = 0, as expit's
            np.exp(minus_eta, out=minus_eta)
        minus_eta += 1.0
        weighted_prob = np.divide(weights if every else weights[:, cols], minus_eta, out=minus_eta)
        if every:
            return (weighted_outcome - X.T @ weighted_prob)[:, cols]
        return weighted_outcome[:, cols] - X.T @ weighted_prob

    def loglike_of(beta: np.ndarray, cols: np.ndarray) -> np.ndarray:
        total = np.zeros(len(cols))
        for first, stop in blocks:
            eta = X[first:stop] @ beta + offset_of(first, stop, cols)
            loglike_i, _, _ = binary_terms(eta, y[first:stop, None], family)
            total += np.einsum("nb,nb->b", draw_weights(first, stop)[:, cols], loglike_i)
        return total

    converged = np.zeros(n_batch, dtype=bool)
    iterations = np.zeros(n_batch, dtype=int)
    hessian_out = np.full((n_batch, p, p), np.nan) if keep_hessian else None
    full_rank = np.ones(n_batch, dtype=bool)
    diverging = np.zeros(n_batch, dtype=bool)
    active = np.arange(n_batch)
    first_step = True
    stale = np.zeros(n_batch, dtype=bool)  # chord step: keep the last Hessian (warm starts)
    previous = np.full(n_batch, np.inf)  # each active replicate's last decrement
    last_gradient = last_step = None  # p x active: the secant pair of the step just taken
    pairs: list[tuple[np.ndarray, ...]] = []  # (s, y, 1 / s'y) of the steps since the Hessian
    for _ in range(max_iter + 1):
        if active.size == 0:
            break
        single = False
        if warm and first_step:
            gradient, hessian, single = at_common_start(params[:, 0])
        elif stale.any():
            gradient = np.empty((p, active.size))
            chord, fresh = active[stale], active[~stale]
            # far from the optimum a chord gradient in single precision steers as well
            rough = signed and previous[chord].min() >= SINGLE_GRADIENT_ABOVE
            gradient[:, stale] = gradient_only(chord, rough)
            if fresh.size:
                gradient[:, ~stale], hessian[~stale] = accumulate(params[:, fresh], fresh)
        else:
            gradient, hessian = accumulate(params[:, active], active)
        refresh = ~stale
        if first_step:  # rank of each weighted design (h > 0, so the Hessian has the same rank)
            first_step = False
            full_rank[:], inverse, trace = _rank_and_inverse(hessian, compiled=warm)
            if single:  # redo in double precision where single could mislead (rank, step)
                redo = np.flatnonzero(~full_rank | ~(trace * common["error"] <= 0.5))
                if redo.size:
                    hessian[redo] = exact_common_hessians(redo)
                    full_rank[redo], inverse[redo], _ = _rank_and_inverse(hessian[redo])
            hessian[~full_rank] = np.eye(p)
            inverse[~full_rank] = np.eye(p)
            refresh = np.zeros_like(refresh)
        if refresh.any():  # factor only the Hessians that are new; chord steps reuse theirs
            inverse[refresh] = _invert(hessian[refresh], active[refresh], full_rank)
        if stale.any():  # kept inverses learn the curvature each step saw (BFGS)
            change = last_gradient - gradient
            along = np.einsum("pb,pb->b", last_step, change)
            rho = np.divide(1.0, along, out=np.zeros_like(along), where=along > 0)
            pairs.append((last_step, change, rho))
            for _s, _y, earlier in pairs:  # a fresh Hessian forgets the steps before it
                earlier[refresh] = 0.0
            step = _quasi_newton_step(inverse, gradient, pairs)
        else:
            pairs = []
            step = np.einsum("bij,jb->ib", inverse, gradient)
        decrement = np.einsum("pb,pb->b", gradient, step)
        done = (decrement < np.where(stale, tol * tol, tol)) | ~full_rank[active]
        if keep_hessian:
            hessian_out[active[done]] = hessian[done]
        converged[active[done]] = full_rank[active[done]]
        finishing = done & full_rank[active]  # take the last, tiny step: the error is then squared
        params[:, active[finishing]] += step[:, finishing]
        # a small decrement with a long step is a coefficient running off to infinity
        diverging[active[finishing]] = np.abs(step[:, finishing]).max(axis=0) > _DIVERGING_STEP
        keep = ~done
        if not keep.any() or iterations[active].max() >= max_iter:
            if keep_hessian:
                hessian_out[active[keep]] = hessian[keep]
            break
        shrink = decrement[keep] / previous[active[keep]]
        previous[active] = decrement
        active, step, decrement = active[keep], step[:, keep], decrement[keep]
        if not keep.all():
            inverse, gradient = inverse[keep], gradient[:, keep]
            # warm starts keep inverses; their Hessians are scratch space from here on (a fresh
            # one is written before it is read): no copy
            hessian = hessian[: int(keep.sum())] if warm else hessian[keep]
            pairs = [(s[:, keep], y[:, keep], rho[keep]) for s, y, rho in pairs]
        # quasi-Newton steps (warm starts): keep a replicate's inverse Hessian, updated by BFGS
        # from each step's change of gradient, after the first step (the Hessian at the common
        # start is each replicate's own there) and while its decrement is below CHORD_BELOW,
        # as long as each step shrinks the decrement at least CHORD_SHRINK-fold; a slow one (a
        # coefficient running off to infinity, which full Newton steps follow and flag) gets a
        # fresh Hessian
        stale = (
            warm
            & (shrink < 1.0 / CHORD_SHRINK)
            & ((decrement < CHORD_BELOW) | (iterations[active] == 0))
        )
        candidate = params[:, active] + step
        # a long step (decrement far above the chi-square(p) scale of a warm start's) is checked
        # and halved where the log-likelihood fell; the others are taken as they are
        risky = np.flatnonzero(decrement > 10.0 * p)
        if risky.size:
            old_ll = loglike_of(params[:, active[risky]], active[risky])
            length = np.ones(risky.size)
            for _halving in range(30):
                new_ll = loglike_of(candidate[:, risky], active[risky])
                worse = ~(new_ll >= old_ll - 1e-12 * np.abs(old_ll))
                if not worse.any():
                    break
                length[worse] *= 0.5
                halved = risky[worse]
                candidate[:, halved] = params[:, active[halved]] + length[worse] * step[:, halved]
        last_gradient, last_step = gradient, candidate - params[:, active]
        params[:, active] = candidate
        iterations[active] += 1

    farthest = np.zeros(n_batch)  # the largest |eta| of a row in the replicate
    loglike = np.zeros(n_batch) if want_loglike else None
    for first, stop in blocks:
        eta = X[first:stop] @ params if not signed else np.matmul(X, params, out=signed_buffer)
        if offset is not None:
            eta += offset_of(first, stop)
        w = draw_weights(first, stop)
        farthest = np.maximum(farthest, _farthest_weighted(eta, w, family))
        if want_loglike:
            loglike_i, _, _ = binary_terms(eta, y[first:stop, None], family)
            loglike += np.einsum("nb,nb->b", w, loglike_i)
    closest = fitted_probability(-farthest, family)  # min over rows of min(P, 1 - P)
    separated = (closest < _SATURATED) | (diverging & (closest < _NEARLY_SATURATED))
    return NewtonBatch(params, loglike, converged, full_rank, separated, iterations, hessian_out)
