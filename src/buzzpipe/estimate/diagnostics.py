"""Diagnostics Stata users know: outcome checks, collinearity, separation and too few clusters.

Each check reads a :class:`~buzzpipe.estimate.design.Design` and returns what to drop plus notes in
Stata's words ("x != 0 predicts failure perfectly; x omitted and 37 obs not used", "x omitted
because of collinearity"), or raises when no sensible estimate exists (complete separation,
an outcome that does not vary, a single cluster).
"""

from __future__ import annotations

import warnings

import numpy as np

from buzzpipe.errors import (
    EstimationError,
    InputError,
    NoVariationError,
    SeparationError,
    TooFewError,
)
from buzzpipe.estimate.kernel import weighted_gram

__all__ = [
    "check_binary_outcome",
    "collinear_columns",
    "indicator_separation",
    "continuous_separation",
    "separating_direction",
    "column_ranges",
    "indicator_cells",
    "cross_products",
    "cluster_notes",
    "FEW_CLUSTERS",
]

# rows whose fitted probability of the observed outcome is this close to 1 are "completely
# determined" (Stata's note)
DETERMINED = 1e-10
# below this many clusters, cluster-robust errors are unreliable (Cameron and Miller 2015)
FEW_CLUSTERS = 30
# 1 - R^2 of a column on the columns before it below this: the column is collinear
COLLINEARITY_TOLERANCE = 1e-9


def check_binary_outcome(y: np.ndarray, row_ids, outcome: str) -> None:
    """A 0/1 outcome that varies, or a clear error naming the bad rows."""
    bad = ~((y == 0.0) | (y == 1.0))
    if bad.any():
        rows = list(row_ids[bad])
        raise InputError(
            "a binary model needs a 0/1 outcome",
            column=outcome,
            rows=rows,
            value=float(y[bad][0]),
            expected="0 or 1",
        )
    if y.size == 0:
        raise TooFewError(f"no observations left to estimate the model of {outcome!r}")
    if np.all(y == y[0]):
        raise NoVariationError(
            f"outcome {outcome!r} does not vary in the estimation sample "
            f"(all {y.size} observations are {int(y[0])})"
        )


def cross_products(X: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """X' W X in row blocks (the symmetric product); W the sampling weights or the identity."""
    return weighted_gram(X, weights)


def collinear_columns(
    X: np.ndarray,
    names: list[str],
    weights: np.ndarray | None = None,
    gram: np.ndarray | None = None,
) -> list[str]:
    """Columns that are linear combinations of the columns before them (Stata drops the later one).

    Works on the centred cross-product matrix when the design has an intercept, so a column with
    a large mean and small spread is not mistaken for the constant. ``gram`` (X'WX), when given,
    saves the pass over the data.
    """
    gram = cross_products(X, weights) if gram is None else gram.copy()
    has_intercept = "Intercept" in names
    if has_intercept:
        # centre every other column: the intercept's row and column become (total, 0, ..., 0);
        # the intercept's row of X'WX holds the weighted column sums
        intercept = names.index("Intercept")
        total = gram[intercept, intercept]
        means = gram[:, intercept] / total
        gram = gram - total * np.outer(means, means)
        gram[intercept, :] = 0.0
        gram[:, intercept] = 0.0
        gram[intercept, intercept] = total
    # sweep the columns in order; a column whose remaining variance is a tiny share of its own
    # (1 - R^2 on the columns kept before it) is collinear and is not swept
    own = np.diag(gram).copy()
    if np.all(own > 0) and np.all(np.isfinite(own)):
        # fast path: Cholesky pivots squared are each column's variance left after the columns
        # before it, the very quantity the sweep below tests
        try:
            pivots = np.diag(np.linalg.cholesky(gram / np.sqrt(np.outer(own, own))))
            if np.all(pivots * pivots >= COLLINEARITY_TOLERANCE):
                return []
        except np.linalg.LinAlgError:
            pass
    dropped: list[str] = []
    for j in range(X.shape[1]):
        pivot = gram[j, j]
        if not (own[j] > 0 and np.isfinite(own[j])) or pivot / own[j] < COLLINEARITY_TOLERANCE:
            dropped.append(names[j])
            continue
        column = gram[:, j].copy()
        gram -= np.outer(column, column) / pivot
        gram[j, :] = 0.0
        gram[:, j] = 0.0
    return dropped


def column_ranges(X: np.ndarray, y: np.ndarray, block_rows: int = 65_536) -> dict[str, np.ndarray]:
    """Per column, in one blocked pass: is it 0/1, and its min and max among successes and failures.

    These answer both separation checks: an indicator's 1 cell holds only failures when the
    successes' maximum is 0, and a continuous column separates when the ranges do not overlap.
    """
    k = X.shape[1]
    ranges = {
        "indicator": np.ones(k, dtype=bool),
        "success_min": np.full(k, np.inf),
        "success_max": np.full(k, -np.inf),
        "failure_min": np.full(k, np.inf),
        "failure_max": np.full(k, -np.inf),
    }
    for start in range(0, X.shape[0], block_rows):
        block, outcome = X[start : start + block_rows], y[start : start + block_rows]
        ranges["indicator"] &= ((block == 0.0) | (block == 1.0)).all(axis=0)
        for label, rows in (("success", block[outcome == 1]), ("failure", block[outcome == 0])):
            if rows.shape[0]:
                ranges[label + "_min"] = np.minimum(ranges[label + "_min"], rows.min(axis=0))
                ranges[label + "_max"] = np.maximum(ranges[label + "_max"], rows.max(axis=0))
    return ranges


def indicator_columns(X: np.ndarray, block_rows: int = 8_192) -> np.ndarray:
    """Which columns of ``X`` are 0/1 indicators (booleans, one per column). A column leaves the
    candidates at its first block holding another value."""
    indicator = np.ones(X.shape[1], dtype=bool)
    for start in range(0, X.shape[0], block_rows):
        candidates = np.flatnonzero(indicator)
        if candidates.size == 0:
            break
        block = X[start : start + block_rows, candidates]
        indicator[candidates] = ((block == 0.0) | (block == 1.0)).all(axis=0)
    return indicator


def indicator_cells(
    X: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray | None = None,
    block_rows: int = 8_192,
    indicator: np.ndarray | None = None,
) -> dict[str, np.ndarray | float]:
    """Which columns are 0/1 indicators, and their cells' weighted success and failure counts.

    Continuous columns drop out at their first value other than 0 or 1, so the comparisons and
    the two-column product X'[w y, w (1 - y)] touch mostly the indicators. Sums of non-negative
    terms are exactly zero only when every term is, so an empty cell is found exactly.
    ``indicator``: :func:`indicator_columns` of ``X`` where the caller has it.
    """
    k = X.shape[1]
    indicator = indicator_columns(X, block_rows) if indicator is None else indicator
    ones = np.zeros((k, 2))
    totals = np.zeros(2)
    columns = np.flatnonzero(indicator)
    for start in range(0, X.shape[0], block_rows):  # blocks: no row-sized temporaries
        yb = y[start : start + block_rows]
        outcomes = np.column_stack([yb, 1.0 - yb])
        if weights is not None:
            outcomes *= weights[start : start + block_rows, None]
        totals += outcomes.sum(axis=0)
        if columns.size:
            ones[columns] += X[start : start + block_rows, columns].T @ outcomes
    return {
        "indicator": indicator,
        "ones_success": ones[:, 0],
        "ones_failure": ones[:, 1],
        "total_success": float(totals[0]),
        "total_failure": float(totals[1]),
    }


def indicator_separation(
    X: np.ndarray,
    y: np.ndarray,
    names: list[str],
    weights: np.ndarray | None = None,
    *,
    labels: dict[str, str] | None = None,
    indicator: np.ndarray | None = None,
) -> tuple[np.ndarray, list[str], list[str]]:
    """Indicators whose 1 (or 0) cell has only successes or only failures, as Stata's logit finds.

    Returns a row mask to keep, the names to omit and Stata-style notes. Repeats until no cell is
    perfectly predicted, because dropping rows can empty another indicator's cell. ``labels``
    names the outcomes in the notes and, when it lacks "success" or "failure", leaves cells of
    that outcome alone (the ordered logit checks only its extreme categories). ``indicator``:
    :func:`indicator_columns` of ``X`` where the caller has it.
    """
    labels = {"success": "success", "failure": "failure"} if labels is None else labels
    keep = np.ones(y.shape[0], dtype=bool)
    omitted: list[str] = []
    notes: list[str] = []
    cells = indicator_cells(X, y, weights, indicator=indicator)
    while True:
        found = separated_cell(cells, names, omitted, labels)
        if found is None:
            return keep, omitted, notes
        j, value, relation, result = found
        cell = keep & (X[:, j] == value)
        notes.append(
            f"{names[j]} {relation} predicts {labels[result]} perfectly; "
            f"{names[j]} omitted and {int(cell.sum())} obs not used"
        )
        keep &= ~cell
        omitted.append(names[j])
        cells = indicator_cells(X[keep], y[keep], None if weights is None else weights[keep])


def reference_separation(
    X: np.ndarray,
    y: np.ndarray,
    names: list[str],
    model_spec: object,
    labels: dict[float, str] | None = None,
    cells: list[tuple[str, str, np.ndarray]] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """A factor's reference level whose firms all fail (or all succeed): as for any other level
    (Stata's rule), its rows leave the estimation sample with a note naming it; the factor's
    indicators then lose one to collinearity, so another level becomes the reference.

    Returns the rows to keep and the notes. The reference level is the one of the factor's
    levels (from the formulaic ``model_spec``) that has no indicator column. ``labels``: the
    outcome values that count (an ordered outcome's lowest and highest) and their names.
    ``cells``: :func:`reference_cell_rows` of ``X`` where the caller has them.
    """
    labels = {0.0: "failure", 1.0: "success"} if labels is None else labels
    keep = np.ones(y.shape[0], dtype=bool)
    notes: list[str] = []
    if cells is None:
        cells = reference_cell_rows(X, names, model_spec)
    for factor, level, rows in cells:
        cell = keep & rows
        held = y[cell]
        # the note reads whether the cell holds one outcome value: its counts by value where it
        # does (min equals max; np.unique's sort of the cell is not needed), else any two
        # values' (no note either way)
        if held.size == 0 or held.min() == held.max():
            counts = {held[0]: held.size} if held.size else {}
        else:
            counts = {held.min(): 1, held.max(): 1}
        note = reference_note(factor, level, counts, int(keep.sum()), labels)
        if note:
            notes.append(note)
            keep &= ~cell
    return keep, notes


def reference_cell_rows(
    X: np.ndarray, names: list[str], model_spec: object
) -> list[tuple[str, str, np.ndarray]]:
    """(factor, reference level, its rows: where the factor's indicators are all 0) for each
    factor of :func:`reference_cells`."""
    return [
        (factor, level, X[:, columns].sum(axis=1) == 0)
        for factor, level, columns in reference_cells(names, model_spec)
    ]


def reference_cells(names: list[str], model_spec: object) -> list[tuple[str, str, list[int]]]:
    """(factor, reference level, positions in ``names`` of its indicators) for each factor of
    ``model_spec`` whose indicators are all in ``names`` but one level's (its reference): the
    reference cell is the rows where those indicators are all 0."""
    found = []
    contrasts = getattr(model_spec, "factor_contrasts", None) or {}
    for factor, state in contrasts.items():
        prefix = f"{factor}[T."
        columns = [j for j, n in enumerate(names) if n.startswith(prefix) and ":" not in n]
        levels = [str(level) for level in getattr(state, "levels", ())]
        absent = [lv for lv in levels if f"{prefix}{lv}]" not in names]
        if columns and len(absent) == 1:
            found.append((str(factor), absent[0], columns))
    return found


def reference_note(
    factor: str, level: str, counts: dict, rows: int, labels: dict[float, str]
) -> str | None:
    """The note when a reference cell (its rows' outcome values -> counts) holds one outcome of
    ``labels`` and rows remain outside it (``rows``: the sample's); ``None`` when it is kept."""
    held = [value for value, count in counts.items() if count]
    in_cell = int(sum(counts.values()))
    if len(held) != 1 or held[0] not in labels or rows - in_cell <= 0:
        return None
    return (
        f"{factor} = {level} (the reference level) predicts {labels[held[0]]} perfectly; "
        f"its {in_cell} obs not used"
    )


def separated_cell(
    cells: dict, names: list[str], omitted: list[str], labels: dict[str, str]
) -> tuple[int, float, str, str] | None:
    """The first indicator cell holding only successes or only failures (see
    :func:`indicator_separation`): (column, cell value, relation, outcome) or ``None``."""
    # the 0 cell's counts are totals minus the 1 cell's: zero up to rounding of the sums
    tolerance = 1e-9 * (cells["total_success"] + cells["total_failure"])
    for j, name in enumerate(names):
        if name == "Intercept" or name in omitted or not cells["indicator"][j]:
            continue
        s1, f1 = cells["ones_success"][j], cells["ones_failure"][j]
        s0, f0 = cells["total_success"] - s1, cells["total_failure"] - f1
        for condition, candidate in (
            (s1 == 0 and f1 > 0, (j, 1.0, "!= 0", "failure")),
            (f1 == 0 and s1 > 0, (j, 1.0, "!= 0", "success")),
            (f0 <= tolerance and s0 > tolerance, (j, 0.0, "== 0", "success")),
            (s0 <= tolerance and f0 > tolerance, (j, 0.0, "== 0", "failure")),
        ):
            if condition and candidate[3] in labels:
                return candidate
    return None


def continuous_separation(
    X: np.ndarray, y: np.ndarray, names: list[str], ranges: dict[str, np.ndarray] | None = None
) -> None:
    """Stop, as Stata does, when one regressor alone splits successes from failures."""
    ranges = column_ranges(X, y) if ranges is None else ranges
    for j, name in enumerate(names):
        if name == "Intercept" or ranges["indicator"][j]:
            continue
        low_success, high_success = ranges["success_min"][j], ranges["success_max"][j]
        low_failure, high_failure = ranges["failure_min"][j], ranges["failure_max"][j]
        for separated, direction, cut in (
            (high_failure < low_success, ">", (high_failure + low_success) / 2),
            (high_success < low_failure, "<", (high_success + low_failure) / 2),
        ):
            if separated:
                side = "above" if direction == ">" else "below"
                raise SeparationError(
                    f"{name} {direction} {cut:.4g} predicts data perfectly (complete "
                    f"separation: every observation with {name} {side} {cut:.4g} is a "
                    "success, every other a failure); the maximum likelihood estimate does "
                    "not exist"
                )


def separating_direction(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """A direction b with (2y-1) x'b >= 0 for all rows and > 0 for some (Konis's linear program).

    Returns ``(b, separated_rows)`` or ``None`` when the data overlap (the estimate exists).
    """
    from scipy import optimize  # here: scipy.optimize costs 0.15 s to import, rarely needed

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
        # pointing at the estimator's caller of finish_fit (via finish._covariance)
        warnings.warn(message, stacklevel=4)
        notes.append(message)
    if n_clusters <= n_params:
        notes.append(
            f"the cluster-robust covariance has rank at most {n_clusters - 1} with {n_clusters} "
            f"clusters: joint Wald tests of more than {n_clusters - 1} restrictions are "
            "impossible and are not reported"
        )
    return notes
