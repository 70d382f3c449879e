"""Batched pairs and cluster bootstraps for binary-outcome models (logit, probit).

All replicates advance together in the batched Newton solver (``batched_newton.py``): the
bootstrap weights form an n x B matrix and each replicate starts at the full-sample estimate, so
most converge in two or three steps. Never a Python loop of fits.

Weights come from :mod:`buzzpipe.estimate.random_weights`, keyed by (seed, row id, replicate) for
the pairs bootstrap and (seed, cluster label, replicate) for the cluster bootstrap, so a chunk of
rows gets the same weights whatever the chunking. Each replicate carries convergence, rank and
separation flags; failed replicates are counted and left out of the standard errors, as Stata does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from buzzpipe import __version__
from buzzpipe.errors import EstimationError, InputError
from buzzpipe.estimate import random_weights
from buzzpipe.estimate.batched_newton import newton_batch
from buzzpipe.estimate.kernel import one_blas_thread

if TYPE_CHECKING:
    from buzzpipe.estimate.result import Fit

BINARY_FAMILIES = ("logit", "probit")
MIN_CLUSTERS_FOR_CLUSTER_BOOTSTRAP = 10


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


@one_blas_thread
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
                return counts if weights is None else counts * base_weights[first:stop, None]

            replicate_weights = weights_of_rows
        else:  # cluster counts are G x B, multinomial counts need every unit: draw once
            counts = _replicate_weights(scheme, seed, unit_ids, batch, n_units)
            if kind == "cluster":
                counts = counts[unit_of_row]
            # without sampling weights the counts are the weights (no product with ones)
            replicate_weights = counts if weights is None else counts * base_weights[:, None]
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
    fit: Fit,
    data: pd.DataFrame,
    *,
    cluster: str | None = None,
    replicates: int = 1000,
    seed: int = 0,
    **options: Any,
) -> BootstrapResult:
    """Pairs (or cluster) bootstrap of a logit or probit fit, replicates refitted in batches.

    Parameters
    ----------
    fit : Fit
        A logit or probit fit (:func:`buzzpipe.fit`).
    data : pandas.DataFrame
        The data the model was fitted on.
    cluster : str, optional
        Resample whole clusters of this column instead of rows (refused with too few clusters).
    replicates : int, default 1000
        Bootstrap replicates B.
    seed : int, default 0
        Resample counts are keyed by (seed, row id, replicate), so the same seed gives the same
        replicates whatever the row order.
    **options
        ``scheme`` ("poisson" or "multinomial"), ``batch_size``, ``row_block``, ``progress``,
        ``tol``, ``max_iter``, ``force`` (see ``buzzpipe.estimate.bootstrap.run_bootstrap``).

    Returns
    -------
    BootstrapResult
        ``estimate``, ``replicates`` (B x p), ``bse``, ``vcov``, ``percentile_interval()`` and
        which replicates failed (not converged, rank deficient, separated) and were left out.

    Notes
    -----
    A replicate weights row i by its resample count times its sampling weight; replicates run in
    batches, each warm-started at the full-sample estimate, never as a Python loop of fits.

    Examples
    --------
    >>> import buzzpipe as bp
    >>> firms = bp.synthesize("norway2010", seed=1, firms=500).analysis_frame()
    >>> product = bp.fit("product ~ breadth_regional + breadth_international + log(employees)",
    ...                  firms, vcov="robust")
    >>> draws = bp.bootstrap(product, firms, replicates=99, seed=1)
    >>> draws.n_replicates, draws.n_failed
    (99, 0)
    >>> print(draws.bse.round(2))
    [0.49 0.07 0.1  0.15]
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
