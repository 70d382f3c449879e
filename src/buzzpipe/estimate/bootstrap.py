"""Batched pairs and cluster bootstraps for binary-outcome models (logit, probit).

All replicates advance together: the bootstrap weights form an n x B matrix, every Newton step is
a handful of matrix products over all active replicates at once (gradients X'(w d), Hessians as
(w h)' Z with Z the n x p(p+1)/2 products of columns), and each replicate starts at the
full-sample estimate, so most converge in two or three steps. Never a Python loop of fits.

Weights come from :mod:`buzzpipe.estimate.random_weights`, keyed by (seed, row id, replicate) for
the pairs bootstrap and (seed, cluster label, replicate) for the cluster bootstrap, so a chunk of
rows gets the same weights whatever the chunking. Each replicate carries convergence, rank and
separation flags; failed replicates are counted and left out of the standard errors, as Stata does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special

from buzzpipe import __version__
from buzzpipe.errors import EstimationError, InputError
from buzzpipe.estimate import random_weights

BINARY_FAMILIES = ("logit", "probit")
MIN_CLUSTERS_FOR_CLUSTER_BOOTSTRAP = 10
_SATURATED = 1e-10  # a fitted probability this close to 0 or 1 marks a (quasi-)separated replicate
_NEARLY_SATURATED = 1e-6  # ... or this close, when the last Newton step was long
_DIVERGING_STEP = 1e-2  # a final Newton step this long (with a tiny decrement): separation
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
REUSE_HESSIAN_BELOW = 1e-4  # warm starts: chord steps once every Newton decrement is below this


def binary_terms(
    eta: np.ndarray, y: np.ndarray, family: str, need_loglike: bool = True
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Per-observation log-likelihood, first derivative and minus second derivative in eta.

    Logit: l = y eta - log(1 + e^eta), d = y - p, h = p (1 - p). Probit with q = 2y - 1:
    l = log Phi(q eta), d = q phi(eta) / Phi(q eta), h = d (d + eta): the observed, not the
    expected, information (Stata's choice). Arrays broadcast (n x B works). Without
    ``need_loglike`` the logit's log-likelihood is skipped (returned as None).
    """
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
    raise InputError("unknown family for the bootstrap", value=family, expected="logit or probit")


def _score_terms(eta: np.ndarray, y: np.ndarray, family: str) -> tuple[np.ndarray, np.ndarray]:
    """d and h of :func:`binary_terms` without the log-likelihood, overwriting ``eta``.

    The Newton loop's hot path: for the logit one ``expit`` and three passes (d = y - P,
    h = P (1 - P)) instead of the log-likelihood's guarded exponentials.
    """
    if family != "logit":
        return binary_terms(eta, y, family, need_loglike=False)[1:]
    prob = special.expit(eta, out=eta)
    curvature = 1.0 - prob
    curvature *= prob
    return np.subtract(y, prob, out=prob), curvature


def fitted_probability(eta: np.ndarray, family: str) -> np.ndarray:
    """P(y = 1) at the linear index eta."""
    return special.expit(eta) if family == "logit" else special.ndtr(eta)


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


def _column_products(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The n x p(p+1)/2 matrix of products X_j X_k (j <= k) that turns Hessians into one matmul."""
    upper_j, upper_k = np.triu_indices(X.shape[1])
    return X[:, upper_j] * X[:, upper_k], upper_j, upper_k


def _hessians(products, upper_j, upper_k, weight_h: np.ndarray, p: int) -> np.ndarray:
    """B x p x p Hessians sum_i w_ib h_ib x_i x_i' from one (B x n) @ (n x p(p+1)/2) product."""
    return _symmetric(weight_h.T @ products, upper_j, upper_k, p)


def _symmetric(flat: np.ndarray, upper_j, upper_k, p: int) -> np.ndarray:
    """B x p x p symmetric matrices from their B x p(p+1)/2 upper triangles.

    One gather along the rows of ``flat`` (entry (j, k) and (k, j) read the same column), about
    six times faster than scattering into both triangles.
    """
    position = np.empty((p, p), dtype=np.intp)
    position[upper_j, upper_k] = np.arange(len(upper_j))
    position[upper_k, upper_j] = np.arange(len(upper_j))
    return np.take(flat, position.ravel(), axis=1).reshape(flat.shape[0], p, p)


def _full_rank(hessian: np.ndarray) -> np.ndarray:
    """Which of B symmetric p x p matrices are of full rank, judged at unit diagonal.

    A column is redundant when its Cholesky pivot, 1 - R^2 of the column on the ones before it,
    falls below 1e-10 (eigenvalues decide when the factorisation itself fails).
    """
    diagonal = np.einsum("bii->bi", hessian)
    positive = (diagonal > 0).all(axis=1)
    scale = 1.0 / np.sqrt(np.where(diagonal > 0, diagonal, 1.0))
    scaled = hessian * scale[:, :, None] * scale[:, None, :]
    try:
        pivots = np.einsum("bii->bi", np.linalg.cholesky(scaled)) ** 2
        return positive & (pivots.min(axis=1) > 1e-10)
    except np.linalg.LinAlgError:
        eigen = np.linalg.eigvalsh(scaled)
        return positive & (eigen[:, 0] > 1e-10 * np.maximum(eigen[:, -1], 1e-300))


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
) -> NewtonBatch:
    """Maximise B weighted log-likelihoods of one design together by Newton steps.

    ``weights`` is n x B (bootstrap counts times any sampling weights), or a function of
    (first row, stop row) returning that block's rows of it: then, with ``row_block``, weights
    are drawn block by block at every step and never held whole (memory O(row_block x B)).
    ``start`` is p or p x B. A replicate stops when its Newton decrement g'H^{-1}g falls below
    ``tol`` (the last step is still taken); a long step that lowers the log-likelihood is halved.
    Replicates whose weighted design is rank deficient (a resample without any firm in some
    category) are flagged and not iterated.

    Warm start (one ``start`` vector for many replicates held in memory, the bootstrap's case):
    the first step is at a point common to all replicates, so its gradients X' diag(d) W and
    Hessians (Z diag(h))' W are products with the weight matrix alone, no n x B pass. Once a
    replicate's decrement is below ``REUSE_HESSIAN_BELOW`` (and its step short: not separating)
    its last Hessian is kept (chord steps:
    a gradient per step, linear convergence at a rate of the order of the distance already
    covered), and a replicate stops when its decrement falls below ``tol`` ** 2 (the last step
    still taken), which keeps the estimates within about 1e-12 of full Newton steps.
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
    offset_all = np.zeros(n) if offset is None else np.asarray(offset, dtype=float)
    if start is None:
        params = np.zeros((p, n_batch))
    else:
        params = np.broadcast_to(np.asarray(start, dtype=float).reshape(p, -1), (p, n_batch)).copy()
    many = n_batch > p  # many replicates: Hessians from one product with the column products
    whole_products = _column_products(X) if many and len(blocks) == 1 else None
    warm = (
        whole_products is not None
        and not callable(weights)
        and not keep_hessian
        and start is not None
        and np.asarray(start).size == p
    )
    if warm:
        weighted_outcome = X.T @ (weights * y[:, None]) if family == "logit" else None

    def block_hessians(first: int, stop: int, weight_h: np.ndarray) -> np.ndarray:
        X_block = X[first:stop]
        if not many:  # a few fits: X' diag(w h) X each
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
            eta = X[first:stop] @ beta + offset_all[first:stop, None]
            derivative, curvature = _score_terms(eta, y[first:stop, None], family)
            w = draw_weights(first, stop)
            if len(cols) < n_batch:
                w = w[:, cols]
            derivative *= w
            gradient += X[first:stop].T @ derivative
            if with_hessian:
                curvature *= w
                hessian += block_hessians(first, stop, curvature)
        return gradient, hessian

    def at_common_start(beta: np.ndarray):
        """Gradients (p x B) and Hessians (B x p x p) of every replicate at one point."""
        eta = X @ beta + offset_all
        _, derivative, curvature = binary_terms(eta, y, family, need_loglike=False)
        products, upper_j, upper_k = whole_products
        gradient = (X * derivative[:, None]).T @ weights
        flat = weights.T @ (products * curvature[:, None])
        return gradient, _symmetric(flat, upper_j, upper_k, p)

    def gradient_only(cols: np.ndarray) -> np.ndarray:
        """Gradients (p x k) of the replicates ``cols``: a chord step needs no Hessian.

        Logit: X'(w y) - X'(w P) over every replicate (selecting the columns of the n x B
        weights would cost more than the replicates already done), then the ``cols``.
        """
        if family != "logit":
            return accumulate(params[:, cols], cols, with_hessian=False)[0]
        prob = X @ params
        prob += offset_all[:, None]
        special.expit(prob, out=prob)
        prob *= weights
        return (weighted_outcome - X.T @ prob)[:, cols]

    def loglike_of(beta: np.ndarray, cols: np.ndarray) -> np.ndarray:
        total = np.zeros(len(cols))
        for first, stop in blocks:
            eta = X[first:stop] @ beta + offset_all[first:stop, None]
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
    for _ in range(max_iter + 1):
        if active.size == 0:
            break
        if warm and first_step:
            gradient, hessian = at_common_start(params[:, 0])
        elif stale.any():
            gradient = np.empty((p, active.size))
            chord, fresh = active[stale], active[~stale]
            gradient[:, stale] = gradient_only(chord)
            if fresh.size:
                gradient[:, ~stale], hessian[~stale] = accumulate(params[:, fresh], fresh)
        else:
            gradient, hessian = accumulate(params[:, active], active)
        if first_step:  # rank of each weighted design (h > 0, so the Hessian has the same rank)
            full_rank[:] = _full_rank(hessian)
            hessian[~full_rank] = np.eye(p)
            first_step = False
        try:
            step = np.linalg.solve(hessian, gradient.T[:, :, None])[:, :, 0].T
        except np.linalg.LinAlgError:  # a Hessian became singular along the way: solve one by one
            step = np.zeros_like(gradient)
            for position in range(active.size):
                try:
                    step[:, position] = np.linalg.solve(hessian[position], gradient[:, position])
                except np.linalg.LinAlgError:
                    full_rank[active[position]] = False
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
        active, step, decrement = active[keep], step[:, keep], decrement[keep]
        hessian = hessian[keep]
        # chord steps only near the optimum: a small decrement with a long step is a coefficient
        # running off to infinity (separation), which full Newton steps follow and flag
        stale = (decrement < REUSE_HESSIAN_BELOW) & (np.abs(step).max(axis=0) < _DIVERGING_STEP)
        stale &= warm
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
        params[:, active] = candidate
        iterations[active] += 1

    farthest = np.zeros(n_batch)  # the largest |eta| of a row in the replicate
    loglike = np.zeros(n_batch) if want_loglike else None
    for first, stop in blocks:
        eta = X[first:stop] @ params + offset_all[first:stop, None]
        w = draw_weights(first, stop)
        size = np.abs(eta)
        size[w <= 0] = 0.0
        farthest = np.maximum(farthest, size.max(axis=0))
        if want_loglike:
            loglike_i, _, _ = binary_terms(eta, y[first:stop, None], family)
            loglike += np.einsum("nb,nb->b", w, loglike_i)
    closest = fitted_probability(-farthest, family)  # min over rows of min(P, 1 - P)
    separated = (closest < _SATURATED) | (diverging & (closest < _NEARLY_SATURATED))
    return NewtonBatch(params, loglike, converged, full_rank, separated, iterations, hessian_out)


@dataclass
class BootstrapResult:
    """Replicate estimates of a pairs or cluster bootstrap and what happened to each replicate."""

    kind: str  # "pairs" or "cluster"
    scheme: str  # "poisson" or "multinomial"
    names: list[str]
    estimate: np.ndarray  # full-sample estimate, p
    replicates: np.ndarray  # B x p
    converged: np.ndarray
    full_rank: np.ndarray
    separated: np.ndarray
    seed: int
    n_clusters: int | None = None
    cluster_var: str | None = None
    notes: list[str] = field(default_factory=list)
    version: str = __version__  # of buzzpipe, so results say what produced them

    @property
    def failed(self) -> np.ndarray:
        """Replicates left out: not converged, rank deficient or separated."""
        return ~self.converged | ~self.full_rank | self.separated

    @property
    def n_failed(self) -> int:
        return int(self.failed.sum())

    @property
    def n_replicates(self) -> int:
        return int(self.replicates.shape[0])

    @property
    def vcov(self) -> np.ndarray:
        """Covariance of the successful replicates (divisor B - 1, as Stata's bootstrap)."""
        good = self.replicates[~self.failed]
        if good.shape[0] < 2:
            raise EstimationError(
                f"only {good.shape[0]} of {self.n_replicates} bootstrap replicates succeeded; "
                "no bootstrap standard errors"
            )
        return np.cov(good, rowvar=False, ddof=1).reshape(len(self.names), len(self.names))

    @property
    def bse(self) -> np.ndarray:
        return np.sqrt(np.diag(self.vcov))

    def percentile_interval(self, alpha: float = 0.05) -> np.ndarray:
        """p x 2 percentile intervals from the successful replicates."""
        good = self.replicates[~self.failed]
        return np.quantile(good, [alpha / 2, 1 - alpha / 2], axis=0).T

    def as_record(self, alpha: float = 0.05) -> dict:
        """JSON-ready fields for results.json (replicate estimates left out)."""
        interval = self.percentile_interval(alpha)
        return {
            "inference": f"{self.kind} bootstrap",
            "scheme": self.scheme,
            "terms": list(self.names),
            "estimate": self.estimate.tolist(),
            "bootstrap_se": self.bse.tolist(),
            "percentile_interval": interval.tolist(),
            "replicates": self.n_replicates,
            "failed": self.n_failed,
            "not_converged": int((~self.converged).sum()),
            "rank_deficient": int((~self.full_rank).sum()),
            "separated": int(self.separated.sum()),
            "n_clusters": self.n_clusters,
            "cluster_var": self.cluster_var,
            "seed": self.seed,
            "version": self.version,
            "notes": list(self.notes),
        }

    def summary(self) -> str:
        """Plain-text table that says which inference it reports and how many replicates failed."""
        what = (
            f"{self.kind} bootstrap ({self.scheme} weights), {self.n_replicates} replicates, "
            f"seed {self.seed}"
        )
        if self.kind == "cluster":
            what += f", resampling {self.n_clusters} clusters of {self.cluster_var or 'clusters'}"
        lines = [what]
        if self.n_failed:
            lines.append(
                f"Note: {self.n_failed} of {self.n_replicates} replicates failed "
                f"({int((~self.converged).sum())} not converged, "
                f"{int((~self.full_rank).sum())} rank deficient, "
                f"{int(self.separated.sum())} separated) and are left out."
            )
        lines.extend(self.notes)
        interval = self.percentile_interval()
        width = max(12, *(len(name) for name in self.names))
        lines.append(
            f"{'term':<{width}} {'estimate':>11} {'boot se':>11} {'2.5%':>11} {'97.5%':>11}"
        )
        for index, name in enumerate(self.names):
            lines.append(
                f"{name:<{width}} {self.estimate[index]:>11.5f} {self.bse[index]:>11.5f} "
                f"{interval[index, 0]:>11.5f} {interval[index, 1]:>11.5f}"
            )
        return "\n".join(lines)


def _replicate_weights(scheme: str, seed: int, unit_ids, replicates: np.ndarray, n_units: int):
    if scheme == "poisson":
        return random_weights.poisson_weights(seed, unit_ids, replicates)
    if scheme == "multinomial":
        return random_weights.multinomial_counts(seed, n_units, replicates)
    raise InputError("unknown bootstrap scheme", value=scheme, expected="poisson or multinomial")


def run_bootstrap(
    X: np.ndarray,
    y: np.ndarray,
    *,
    family: str = "logit",
    names: Sequence[str] | None = None,
    weights: np.ndarray | None = None,
    offset: np.ndarray | None = None,
    row_ids: np.ndarray | None = None,
    clusters: np.ndarray | None = None,
    cluster_var: str | None = None,
    replicates: int = 1000,
    seed: int = 0,
    scheme: str = "poisson",
    batch_size: int = 1000,
    row_block: int | None = None,
    force: bool = False,
    progress: bool | None = None,
    tol: float = 1e-8,
    max_iter: int = 30,
) -> BootstrapResult:
    """Pairs bootstrap (``clusters`` None) or cluster bootstrap of a logit/probit, batched.

    Replicate b weights row i by ``c_ib * w_i``, where c_ib is its resample count (Poisson(1)
    keyed by (seed, row id, b), or a multinomial resample of n rows; for the cluster bootstrap the
    count belongs to the row's cluster) and w_i the sampling weight. Replicates run in batches of
    ``batch_size`` columns, each batch warm-started at the full-sample estimate. With
    ``row_block`` the Poisson weights are drawn block by block at every Newton step and never
    held whole (memory O(row_block x batch_size)), as a stream of chunks would; ``progress``
    shows a tqdm bar (default: when more than one batch). The cluster bootstrap is refused below
    10 clusters unless ``force``: most replicates would then miss a whole region.
    """
    if family not in BINARY_FAMILIES:
        raise InputError(
            "unknown family for the bootstrap", value=family, expected="logit or probit"
        )
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    n, p = X.shape
    names = list(names) if names is not None else [f"x{j}" for j in range(p)]
    base_weights = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    if replicates < 2:
        raise InputError("too few bootstrap replicates", value=replicates, expected="at least 2")
    full = newton_batch(X, y, base_weights, family=family, offset=offset, tol=tol, max_iter=100)
    if not (full.converged[0] and full.full_rank[0]):
        raise EstimationError("the full-sample fit did not converge; no bootstrap is possible")
    estimate = full.params[:, 0]
    notes: list[str] = []
    if clusters is None:
        kind = "pairs"
        unit_ids = np.arange(n) if row_ids is None else np.asarray(row_ids)
        unit_of_row = np.arange(n)
        n_units = n
        n_clusters = None
    else:
        kind = "cluster"
        unit_ids, unit_of_row = np.unique(np.asarray(clusters), return_inverse=True)
        n_units = n_clusters = len(unit_ids)
        if n_clusters < MIN_CLUSTERS_FOR_CLUSTER_BOOTSTRAP and not force:
            raise EstimationError(
                f"cluster bootstrap refused: only {n_clusters} clusters"
                f"{f' of {cluster_var}' if cluster_var else ''}; with fewer than "
                f"{MIN_CLUSTERS_FOR_CLUSTER_BOOTSTRAP} most replicates miss a whole cluster "
                "(region) and the bootstrap distribution is degenerate. Use the wild score "
                "bootstrap, or pass force=True"
            )
        if n_clusters < MIN_CLUSTERS_FOR_CLUSTER_BOOTSTRAP:
            notes.append(
                f"Warning: cluster bootstrap forced with only {n_clusters} clusters; "
                f"P(a replicate misses a given cluster) = {(1 - 1 / n_clusters) ** n_clusters:.2f}."
            )
    batches = [
        np.arange(s, min(s + batch_size, replicates)) for s in range(0, replicates, batch_size)
    ]
    show = progress if progress is not None else len(batches) > 1
    iterator = batches
    if show:
        from tqdm.auto import tqdm

        iterator = tqdm(batches, desc=f"{kind} bootstrap", unit="batch")
    estimates = np.empty((replicates, p))
    converged = np.empty(replicates, dtype=bool)
    full_rank = np.empty(replicates, dtype=bool)
    separated = np.empty(replicates, dtype=bool)
    for batch in iterator:
        if scheme == "poisson" and kind == "pairs" and row_block is not None:

            def weights_of_rows(first: int, stop: int, batch=batch) -> np.ndarray:
                counts = random_weights.poisson_weights(seed, unit_ids[first:stop], batch)
                return counts * base_weights[first:stop, None]

            replicate_weights = weights_of_rows
        else:  # cluster counts are G x B, multinomial counts need every unit: draw once
            counts = _replicate_weights(scheme, seed, unit_ids, batch, n_units)[unit_of_row]
            replicate_weights = counts * base_weights[:, None]
        fitted = newton_batch(
            X,
            y,
            replicate_weights,
            row_block=row_block,
            family=family,
            offset=offset,
            start=estimate,
            tol=tol,
            max_iter=max_iter,
        )
        estimates[batch] = fitted.params.T
        converged[batch] = fitted.converged
        full_rank[batch] = fitted.full_rank
        separated[batch] = fitted.separated
    return BootstrapResult(
        kind=kind,
        scheme=scheme,
        names=names,
        estimate=estimate,
        replicates=estimates,
        converged=converged,
        full_rank=full_rank,
        separated=separated,
        seed=seed,
        n_clusters=n_clusters,
        cluster_var=cluster_var,
        notes=notes,
    )


def design_of_fit(fit, data: pd.DataFrame, cluster: str | None = None):
    """The estimation sample of a core ``Fit`` rebuilt from ``data`` (same rows, same columns).

    A Fit keeps no data, so bootstraps rebuild the design through the core's ``build_design``
    with the fit's formula, weights and offset, then keep the fit's row ids and term names.
    """
    from buzzpipe.estimate.design import build_design

    offset = fit.offset if isinstance(fit.offset, str) else None
    design = build_design(fit.formula, data, weights=fit.weights, cluster=cluster, offset=offset)
    missing = fit.row_ids.difference(design.row_ids)
    if len(missing):
        raise InputError(
            "the data lack rows of the fit's estimation sample",
            rows=list(missing[:5]),
            expected="the data the model was fitted on",
        )
    design = design.subset(
        keep_rows=np.asarray(design.row_ids.isin(fit.row_ids)), keep_columns=fit.x_names
    )
    if fit.offset is not None and not isinstance(fit.offset, str):
        design.offset = np.asarray(fit.offset, dtype=float)
    return design


def bootstrap_fit(
    fit,
    data: pd.DataFrame,
    *,
    cluster: str | None = None,
    replicates: int = 1000,
    seed: int = 0,
    **options,
) -> BootstrapResult:
    """Pairs bootstrap of a core ``Fit`` (or cluster bootstrap by the column ``cluster``).

    Rows are keyed by the data's row ids, so the same seed gives the same replicates whatever
    the row order. Options as :func:`run_bootstrap`.
    """
    if fit.family not in BINARY_FAMILIES:
        raise InputError(
            "the batched bootstrap covers binary models",
            value=fit.family,
            expected="logit or probit",
        )
    design = design_of_fit(fit, data, cluster)
    return run_bootstrap(
        design.X,
        design.y,
        family=fit.family,
        names=design.names,
        weights=design.weights,
        offset=design.offset,
        row_ids=np.asarray(design.row_ids) if design.row_ids.dtype.kind in "iu" else design.row_ids,
        clusters=design.clusters,
        cluster_var=cluster,
        replicates=replicates,
        seed=seed,
        **options,
    )
