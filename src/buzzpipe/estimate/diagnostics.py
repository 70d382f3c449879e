"""Diagnostics Stata users know: outcome checks, collinearity, separation and too few clusters.

Each check reads a :class:`~buzzpipe.estimate.design.Design` and returns what to drop plus notes in
Stata's words ("x != 0 predicts failure perfectly; x omitted and 37 obs not used", "x omitted
because of collinearity"), or raises when no sensible estimate exists (complete separation,
an outcome that does not vary, a single cluster).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import optimize

from buzzpipe.errors import EstimationError, InputError

__all__ = [
    "check_binary_outcome",
    "collinear_columns",
    "indicator_separation",
    "continuous_separation",
    "separating_direction",
    "cluster_notes",
    "FEW_CLUSTERS",
]

# below this many clusters, cluster-robust errors are unreliable (Cameron and Miller 2015)
FEW_CLUSTERS = 30
# 1 - R^2 of a column on the columns before it below this: the column is collinear
COLLINEARITY_TOLERANCE = 1e-9


def check_binary_outcome(y: np.ndarray, row_ids, outcome: str) -> None:
    """A 0/1 outcome that varies, or a clear error naming the bad rows."""
    bad = ~np.isin(y, (0.0, 1.0))
    if bad.any():
        rows = list(row_ids[bad])
        raise InputError(
            "the outcome of a binary model must be 0 or 1",
            column=outcome,
            rows=rows,
            value=float(y[bad][0]),
            expected="0 or 1",
        )
    if y.size == 0:
        raise EstimationError(f"no observations left to estimate the model of {outcome!r}")
    if np.all(y == y[0]):
        raise EstimationError(
            f"outcome {outcome!r} does not vary in the estimation sample "
            f"(all {y.size} observations are {int(y[0])})"
        )


def collinear_columns(
    X: np.ndarray, names: list[str], weights: np.ndarray | None = None
) -> list[str]:
    """Columns that are linear combinations of the columns before them (Stata drops the later one).

    Works on the centred cross-product matrix when the design has an intercept, so a column with
    a large mean and small spread is not mistaken for the constant.
    """
    w = np.ones(X.shape[0]) if weights is None else weights
    gram = X.T @ (X * w[:, None])
    has_intercept = "Intercept" in names
    if has_intercept:
        total = w.sum()
        means = (X.T @ w) / total
        centred = gram - total * np.outer(means, means)
        intercept = names.index("Intercept")
        centred[intercept, :] = gram[intercept, :]
        centred[:, intercept] = gram[:, intercept]
        # the intercept row/column is kept raw: it is dropped only if it is all zero
        gram = centred
    kept: list[int] = []
    dropped: list[str] = []
    factor = np.zeros((0, 0))
    for j in range(X.shape[1]):
        own = gram[j, j]
        if has_intercept and j != names.index("Intercept"):
            # the intercept was projected out by centring: use the centred block only
            others = [k for k in kept if names[k] != "Intercept"]
        else:
            others = kept
        if own <= 0 or not np.isfinite(own):
            dropped.append(names[j])
            continue
        if others:
            sub = gram[np.ix_(others, others)]
            cross = gram[others, j]
            try:
                factor = np.linalg.cholesky(sub)
                solved = np.linalg.solve(factor, cross)
                residual = own - solved @ solved
            except np.linalg.LinAlgError:
                residual = 0.0
        else:
            residual = own
        if residual / own < COLLINEARITY_TOLERANCE:
            dropped.append(names[j])
        else:
            kept.append(j)
    return dropped


def _is_indicator(column: np.ndarray) -> bool:
    return bool(np.isin(column, (0.0, 1.0)).all())


def indicator_separation(
    X: np.ndarray, y: np.ndarray, names: list[str]
) -> tuple[np.ndarray, list[str], list[str]]:
    """Indicators whose 1 (or 0) cell has only successes or only failures, as Stata's logit finds.

    Returns a row mask to keep, the names to omit and Stata-style notes. Repeats until no cell is
    perfectly predicted, because dropping rows can empty another indicator's cell.
    """
    keep = np.ones(y.shape[0], dtype=bool)
    omitted: list[str] = []
    notes: list[str] = []
    changed = True
    while changed:
        changed = False
        for j, name in enumerate(names):
            if name == "Intercept" or name in omitted:
                continue
            column = X[keep, j]
            if not _is_indicator(column):
                continue
            outcome = y[keep]
            for value, relation in ((1.0, "!= 0"), (0.0, "== 0")):
                cell = column == value
                if not cell.any() or cell.all():
                    continue
                cell_outcomes = outcome[cell]
                if np.all(cell_outcomes == cell_outcomes[0]):
                    result = "success" if cell_outcomes[0] == 1 else "failure"
                    n_cell = int(cell.sum())
                    notes.append(
                        f"{name} {relation} predicts {result} perfectly; "
                        f"{name} omitted and {n_cell} obs not used"
                    )
                    positions = np.flatnonzero(keep)[cell]
                    keep[positions] = False
                    omitted.append(name)
                    changed = True
                    break
    return keep, omitted, notes


def continuous_separation(X: np.ndarray, y: np.ndarray, names: list[str]) -> None:
    """Stop, as Stata does, when one regressor alone splits successes from failures."""
    success, failure = y == 1, y == 0
    for j, name in enumerate(names):
        column = X[:, j]
        if name == "Intercept" or _is_indicator(column):
            continue
        low_success, high_success = column[success].min(), column[success].max()
        low_failure, high_failure = column[failure].min(), column[failure].max()
        if high_failure < low_success:
            cut = (high_failure + low_success) / 2
            raise EstimationError(
                f"{name} > {cut:.4g} predicts data perfectly (complete separation: every "
                f"observation with {name} above {cut:.4g} is a success, every other a failure); "
                "the maximum likelihood estimate does not exist"
            )
        if high_success < low_failure:
            cut = (high_success + low_failure) / 2
            raise EstimationError(
                f"{name} < {cut:.4g} predicts data perfectly (complete separation: every "
                f"observation with {name} below {cut:.4g} is a success, every other a failure); "
                "the maximum likelihood estimate does not exist"
            )


def separating_direction(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """A direction b with (2y-1) x'b >= 0 for all rows and > 0 for some (Konis's linear program).

    Returns ``(b, separated_rows)`` or ``None`` when the data overlap (the estimate exists).
    """
    signed = X * (2.0 * y - 1.0)[:, None]
    scale = np.maximum(np.abs(X).max(axis=0), 1e-300)
    signed = signed / scale
    k = X.shape[1]
    result = optimize.linprog(
        c=-signed.sum(axis=0),
        A_ub=-signed,
        b_ub=np.zeros(signed.shape[0]),
        bounds=[(-1.0, 1.0)] * k,
        method="highs",
    )
    if result.status != 0 or -result.fun < 1e-7:
        return None
    direction = result.x
    margins = signed @ direction
    separated = margins > 1e-7
    if not separated.any():
        return None
    return direction / scale, separated


def cluster_notes(n_clusters: int, n_params: int, cluster_name: str) -> list[str]:
    """Warnings Stata users need about cluster-robust errors with few clusters."""
    if n_clusters < 2:
        raise EstimationError(
            f"cluster-robust errors need at least 2 clusters; {cluster_name!r} has {n_clusters}"
        )
    notes = []
    if n_clusters < FEW_CLUSTERS:
        message = (
            f"only {n_clusters} clusters in {cluster_name!r}: cluster-robust standard errors are "
            f"unreliable below {FEW_CLUSTERS} clusters (consider the wild cluster bootstrap)"
        )
        warnings.warn(message, stacklevel=3)
        notes.append(message)
    if n_clusters <= n_params:
        notes.append(
            f"the cluster-robust covariance has rank at most {n_clusters - 1} with {n_clusters} "
            f"clusters: joint Wald tests of more than {n_clusters - 1} restrictions are "
            "impossible and are not reported"
        )
    return notes
