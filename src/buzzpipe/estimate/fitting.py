"""The one entry point: ``fit(formula, data, family, vcov, weights)`` -> :class:`Fit`.

::

    from buzzpipe.estimate import fit
    result = fit("product ~ breadth_international + log(employees) + C(industry)", firms,
                 family="logit", vcov={"cluster": "region"}, weights="weight")
    result.params, result.bse, result.summary(), result.odds_ratios()

Steps: formula -> design (listwise deletion), Stata's diagnostics (outcome coding, collinearity,
perfect prediction), Newton over row blocks of the design (``newton.py``), then Stata's covariance
conventions (``covariance.py``) and the constant-only model for the pseudo-R2.
``fit_design`` runs the same on a ready :class:`Design` (for callers that build designs
themselves).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from os import PathLike
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from buzzpipe.errors import (
    EstimationError,
    InputError,
    NonConvergenceError,
    NoVariationError,
    SeparationError,
    TooFewError,
)
from buzzpipe.estimate import diagnostics
from buzzpipe.estimate.covariance import (
    SandwichPieces,
    parse_vcov,
)
from buzzpipe.estimate.design import Design, build_design, cluster_codes, shared_derived
from buzzpipe.estimate.diagnostics import DETERMINED
from buzzpipe.estimate.families import Family, OrderedLogit, get_family
from buzzpipe.estimate.finish import finish_fit, with_covariance
from buzzpipe.estimate.kernel import blas_threads, block_sums
from buzzpipe.estimate.newton import NewtonResult, newton, row_blocks
from buzzpipe.estimate.result import Fit

__all__ = [
    "fit",
    "fit_design",
    "fit_with_design",
    "prepare_design",
    "parse_vcov",
    "refit_covariance",
    "reparametrised_fit",
]

# fit_with_design hands out the fit's design up to this many numbers (512 KiB: a survey's
# designs, 1,604 x 22 at most in the battery; at 20,000 rows three columns, at 100,000 none,
# so the study's memory at scale, tests/study/test_memory_at_scale.py, is as before)
DESIGN_KEPT = 1 << 16
# the separation linear program runs on designs up to LP_MAX_ROWS (DETERMINED: diagnostics.py)
LP_MAX_ROWS = 200_000
# rows of the linear predictor at a time when the completely determined rows are counted
DETERMINED_BLOCK_ROWS = 65_536


def prepare_design(design: Design, family: Family) -> tuple[Design, Family, list[str]]:
    """Stata's checks before estimation: outcome coding, collinear terms, perfect prediction.

    Returns the design to estimate (rows and terms dropped as Stata would), the family (ordered
    logit with its categories) and the notes.
    """
    notes: list[str] = []
    if design.n_dropped_missing:
        notes.append(
            f"{design.n_dropped_missing} observations deleted (missing values, non-finite "
            "transforms or zero weight)"
        )
    if family.binary:
        diagnostics.check_binary_outcome(design.y, design.row_ids, design.outcome)
    elif design.y.size == 0:
        raise TooFewError(f"no observations left to estimate the model of {design.outcome!r}")

    def drop_collinear(current: Design) -> Design:
        # X'WX and the collinear columns depend on X and the weights alone: made once for a
        # design shared by several fits (design.designs_shared)
        if current.gram is None:
            gram = shared_derived(
                current, "gram", lambda: diagnostics.cross_products(current.X, current.weights)
            )
            current = replace(current, gram=gram)
        dropped = shared_derived(
            current,
            "collinear",
            lambda: diagnostics.collinear_columns(
                current.X, current.names, current.weights, current.gram
            ),
        )
        if not dropped:
            return current
        notes.extend(f"{name} omitted because of collinearity" for name in dropped)
        return current.subset(keep_columns=[n for n in current.names if n not in dropped])

    design = drop_collinear(design)
    if family.name in ("logit", "probit"):
        keep, reference_notes = diagnostics.reference_separation(
            design.X, design.y, design.names, design.model_spec, cells=_reference_rows(design)
        )
        if reference_notes:
            notes.extend(reference_notes)
            design = drop_collinear(design.subset(keep_rows=keep))
            diagnostics.check_binary_outcome(design.y, design.row_ids, design.outcome)
        keep, omitted, separation_notes = diagnostics.indicator_separation(
            design.X, design.y, design.names, design.weights, indicator=_indicators(design)
        )
        if omitted:
            notes.extend(separation_notes)
            design = design.subset(
                keep_rows=keep, keep_columns=[n for n in design.names if n not in omitted]
            )
            diagnostics.check_binary_outcome(design.y, design.row_ids, design.outcome)
            design = drop_collinear(design)
        # one continuous regressor that splits the outcomes is looked for only when estimation
        # shows trouble (see _diagnose_separation): the check costs as much as a Newton step
    if isinstance(family, OrderedLogit):
        values = np.unique(design.y)
        if values.size < 2:
            raise NoVariationError(
                f"outcome {design.outcome!r} does not vary in the estimation sample"
            )
        design, notes_extreme = _ordinal_separation(design, values)
        notes.extend(notes_extreme)
        values = np.unique(design.y)
        family = family.with_categories(tuple(values.tolist()))
        codes = np.searchsorted(values, design.y).astype(np.float64)
        design = design.subset(keep_columns=[n for n in design.names if n != "Intercept"])
        design.y = codes
    if design.X.shape[1] == 0 and not isinstance(family, OrderedLogit):
        raise EstimationError("no regressors left to estimate")
    return design, family, notes


def _reference_rows(design: Design) -> list[tuple[str, str, np.ndarray]]:
    """The reference cells' rows of the design's factors (they depend on X alone: made once
    for a shared design, ``design.shared_derived``)."""
    return shared_derived(
        design,
        "reference cells",
        lambda: diagnostics.reference_cell_rows(design.X, design.names, design.model_spec),
    )


def _indicators(design: Design) -> np.ndarray:
    """Which columns of the design are 0/1 indicators (made once for a shared design)."""
    return shared_derived(design, "indicators", lambda: diagnostics.indicator_columns(design.X))


def _ordinal_separation(design: Design, values: np.ndarray) -> tuple[Design, list[str]]:
    """Indicators whose cell lies wholly in the lowest or the highest category (the slope would
    be infinite): drop the rows and the term, as for the binary models."""
    notes: list[str] = []
    outcome = design.outcome
    keep, found = diagnostics.reference_separation(
        design.X,
        design.y,
        design.names,
        design.model_spec,
        labels={values[0]: f"{outcome} = {values[0]:g}", values[-1]: f"{outcome} = {values[-1]:g}"},
        cells=_reference_rows(design),
    )
    if found:  # a factor's reference level wholly in the lowest or highest category
        notes.extend(found)
        design = design.subset(keep_rows=keep)
        collinear = diagnostics.collinear_columns(design.X, design.names, design.weights)
        notes.extend(f"{name} omitted because of collinearity" for name in collinear)
        design = design.subset(keep_columns=[n for n in design.names if n not in collinear])
    # "failure" of (y > lowest) is the lowest category; "success" of (y == highest) the highest
    for above_lowest, labels in (
        (True, {"failure": f"{outcome} = {values[0]:g}"}),
        (False, {"success": f"{outcome} = {values[-1]:g}"}),
    ):
        binary = design.y > values[0] if above_lowest else design.y == values[-1]
        keep, omitted, found = diagnostics.indicator_separation(
            design.X,
            binary.astype(np.float64),
            design.names,
            design.weights,
            labels=labels,
            indicator=_indicators(design),
        )
        if omitted:
            notes.extend(found)
            design = design.subset(
                keep_rows=keep, keep_columns=[n for n in design.names if n not in omitted]
            )
    if np.unique(design.y).size < 2:
        raise SeparationError(f"outcome {outcome!r} does not vary once perfectly predicted rows go")
    return design, notes


def _start(family: Family, design: Design) -> np.ndarray:
    """Starting values: the constant-only solution for the intercept, zeros elsewhere."""
    start = family.start(design.X, design.y, design.weights)
    if family.name in ("logit", "probit") and "Intercept" in design.names:
        if design.weights is None:  # the same sums as with unit weights, without a row vector
            share = design.y.sum() / design.y.shape[0]
        else:
            share = (design.weights * design.y).sum() / design.weights.sum()
        share = float(np.clip(share, 1e-6, 1 - 1e-6))
        link = special.logit if family.name == "logit" else special.ndtri
        start[design.names.index("Intercept")] = link(share)
    return start


def _run_newton(
    family: Family,
    design: Design,
    X: np.ndarray,
    start: np.ndarray,
    tol: float,
    max_iter: int,
    initial: tuple[float, np.ndarray, np.ndarray] | None = None,
) -> NewtonResult:
    chunks = row_blocks(X, design.y, design.weights, design.offset)
    return newton(family, chunks, start, tol=tol, max_iter=max_iter, initial=initial)


def initial_evaluation(
    family: Family, design: Design, start: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray] | None:
    """Log-likelihood, gradient and Hessian at the start without a full pass, where X'WX is known.

    At the constant-only start of a logit every row has the same curvature p(1-p), so the
    Hessian is -p(1-p) X'WX; the LPM's Hessian is -X'WX at any point. The gradient needs only
    X'(w y), one matrix-vector product. ``None`` where this shortcut does not apply.
    """
    if design.gram is None or design.offset is not None:
        return None
    if design.weights is None:  # unit weights: w y is y, without a row vector of ones
        weighted_outcome, total = design.y, float(design.y.shape[0])
    else:
        weighted_outcome = design.weights * design.y
        total = float(design.weights.sum())
    X_weighted_outcome = design.X.T @ weighted_outcome
    if family.name == "lpm" and not np.any(start):
        return -0.5 * float(weighted_outcome @ design.y), X_weighted_outcome, -design.gram
    if family.name != "logit" or "Intercept" not in design.names:
        return None
    intercept = design.names.index("Intercept")
    others = np.delete(start, intercept)
    if np.any(others):
        return None
    share = float(special.expit(start[intercept]))
    successes = float(weighted_outcome.sum())
    llf = successes * np.log(share) + (total - successes) * np.log1p(-share)
    gradient = X_weighted_outcome - share * design.gram[:, intercept]
    return llf, gradient, -share * (1.0 - share) * design.gram


def _separation_error(design: Design, count_text: str) -> SeparationError | None:
    """An error naming what separates the outcomes: one regressor (Stata's "x > c predicts data
    perfectly", raised directly) or a combination found by the linear program."""
    diagnostics.continuous_separation(design.X, design.y, design.names)
    if design.nobs > LP_MAX_ROWS:
        return None
    found = diagnostics.separating_direction(design.X, design.y)
    if found is None:
        return None
    direction, separated = found
    scale = np.abs(direction * np.abs(design.X).max(axis=0))
    terms = [
        name for name, size in zip(design.names, scale, strict=True) if size > 1e-6 * scale.max()
    ]
    successes = int(design.y[separated].sum())
    failures = int(separated.sum()) - successes
    return SeparationError(
        f"{count_text}: quasi-complete separation: {failures} failures and {successes} successes "
        f"are perfectly predicted by a combination of {', '.join(terms)}; the maximum "
        "likelihood estimate does not exist (drop or merge these terms, or the cells they isolate)"
    )


def _check_determined(family: Family, design: Design, params: np.ndarray, notes: list[str]) -> None:
    """Stata's "N failures and M successes completely determined", or stop on separation."""
    if isinstance(family, OrderedLogit):
        probabilities = family.predict(params, design.X, design.offset)
        observed = probabilities[np.arange(design.nobs), design.y.astype(np.intp)]
        determined = observed > 1 - DETERMINED
        if determined.any():
            notes.append(
                f"{int(determined.sum())} observations completely determined: some coefficients "
                "may be infinite (separation); check the cells of the terms with huge estimates"
            )
        return
    if family.name not in ("logit", "probit"):
        return
    # P(observed) > 1 - DETERMINED, on the linear predictor (cheaper than the probabilities)
    bound = (
        special.logit(1 - DETERMINED) if family.name == "logit" else special.ndtri(1 - DETERMINED)
    )
    # by blocks of rows: no row-sized linear predictor beside the design
    determined = np.empty(design.nobs, dtype=bool)
    for start in range(0, design.nobs, DETERMINED_BLOCK_ROWS):
        rows = slice(start, start + DETERMINED_BLOCK_ROWS)
        eta = design.X[rows] @ params
        if design.offset is not None:
            eta += design.offset[rows]
        determined[rows] = np.where(design.y[rows] == 1, eta > bound, eta < -bound)
    if not determined.any():
        return
    error = _separation_error(design, "the model cannot be estimated")
    if error is not None:
        raise error
    successes = int(design.y[determined].sum())
    notes.append(
        f"{int(determined.sum()) - successes} failures and {successes} successes completely "
        "determined"
    )


def _closed_form_null(family: Family, design: Design) -> tuple[float, float] | None:
    """The constant-only model without an offset: fitted shares equal observed shares."""
    if family.name in ("logit", "probit") and design.weights is None:
        total = float(design.nobs)  # unit weights' sums, without a row vector of ones
        share = design.y.sum() / total
        llf = float(total * (share * np.log(share) + (1 - share) * np.log1p(-share)))
        return llf, -2.0 * llf
    w = np.ones_like(design.y) if design.weights is None else design.weights
    total = w.sum()
    if family.name in ("logit", "probit"):
        share = (w * design.y).sum() / total
        llf = float(total * (share * np.log(share) + (1 - share) * np.log1p(-share)))
        return llf, -2.0 * llf
    if isinstance(family, OrderedLogit):
        shares = np.bincount(design.y.astype(np.intp), weights=w, minlength=family.n_categories)
        shares = shares[shares > 0] / total
        llf = float(total * (shares * np.log(shares)).sum())
        return llf, -2.0 * llf
    if family.uses_t:
        mean = (w * design.y).sum() / total
        rss = float((w * (design.y - mean) ** 2).sum())
        return -0.5 * rss, rss
    return None


def _null_loglike(family: Family, design: Design, tol: float, max_iter: int) -> tuple[float, float]:
    """(log-likelihood, residual sum of squares for the LPM) of the constant-only model."""
    if design.offset is None and ("Intercept" in design.names or isinstance(family, OrderedLogit)):
        closed = _closed_form_null(family, design)
        if closed is not None:
            return closed
    if "Intercept" in design.names or isinstance(family, OrderedLogit):
        columns = 0 if isinstance(family, OrderedLogit) else 1
        X0 = np.ones((design.nobs, columns))
        start = family.start(X0, design.y, design.weights)
        result = _run_newton(family, design, X0, start, tol, max_iter)
        if not result.converged:
            raise NonConvergenceError("the constant-only model did not converge")
        return result.llf, -2.0 * result.llf
    X0 = np.zeros((design.nobs, 0))
    llf, _, _ = family.loglike_chunk(np.zeros(0), X0, design.y, design.weights, design.offset)
    return llf, -2.0 * llf


def _sandwich_pieces(
    family: Family, design: Design, params: np.ndarray, vcov_type: str
) -> SandwichPieces:
    """The pass over the data that the covariance needs at the estimate, and no other: the
    robust meat, or the cluster score sums (one fused kernel pass); nothing for classical."""
    if vcov_type == "classical":
        return SandwichPieces(meat=None, cluster_score_sums=None)
    cluster = vcov_type == "cluster"
    sums = block_sums(
        family,
        params,
        design.X,
        design.y,
        design.weights,
        design.offset,
        hessian=False,
        meat=not cluster,
        cluster_codes=design.clusters if cluster else None,
        n_clusters=design.n_clusters if cluster else 0,
        need_loglike=False,
    )
    return SandwichPieces(meat=sums.meat, cluster_score_sums=sums.cluster_score_sums)


# designs up to this many rows are fitted with BLAS on one thread: their small products run
# several times slower when two threads contend on a shared machine
PIN_THREADS_BELOW_ROWS = 200_000


def fit_design(
    design: Design,
    family: Family,
    vcov_type: str = "classical",
    *,
    notes: list[str] | None = None,
    tol: float = 1e-8,
    max_iter: int = 100,
) -> Fit:
    """Estimate a prepared design (see :func:`prepare_design`) and build the :class:`Fit`.

    BLAS runs on one thread for designs below ``PIN_THREADS_BELOW_ROWS`` rows, whatever the
    environment says (see ``kernel.blas_threads``).
    """
    with blas_threads(_thread_limit(design)):
        return _fit_design(design, family, vcov_type, notes, tol, max_iter)


def _thread_limit(design: Design) -> int | None:
    return 1 if design.nobs < PIN_THREADS_BELOW_ROWS else None


def _fit_design(
    design: Design,
    family: Family,
    vcov_type: str,
    notes: list[str] | None,
    tol: float,
    max_iter: int,
) -> Fit:
    notes = list(notes or [])
    if design.weights is not None and vcov_type == "classical":
        raise InputError(
            "sampling weights (Stata's pweight) need robust or cluster standard errors",
            column=design.weights_name,
            expected="vcov='robust' or vcov={'cluster': '<column>'}",
        )
    if vcov_type == "cluster" and design.clusters is None:
        raise InputError("a cluster covariance needs the design's cluster column")
    k = family.n_params(design.X.shape[1])
    if design.nobs <= k:
        raise TooFewError(
            f"{design.nobs} observations are too few for {k} parameters in the model of "
            f"{design.outcome!r}"
        )
    start = _start(family, design)
    result = _run_newton(
        family,
        design,
        design.X,
        start,
        tol,
        max_iter,
        initial=initial_evaluation(family, design, start),
    )
    if not result.converged:
        count_text = (
            f"the {family.name} model of {design.outcome!r} did not converge after "
            f"{result.iterations} iterations ({result.message})"
        )
        if family.name in ("logit", "probit"):
            error = _separation_error(design, count_text)
            if error is not None:
                raise error
        raise NonConvergenceError(
            count_text + "; estimates are not reported (check for separation, scaling or "
            "collinearity, or raise max_iter)"
        )
    params = result.params
    _check_determined(family, design, params, notes)

    pieces = _sandwich_pieces(family, design, params, vcov_type)
    residual_ss = None
    if family.uses_t:
        residual = design.y - family.predict(params, design.X, design.offset)
        residual_ss = float(residual @ residual)
    return finish_fit(
        family,
        result,
        list(design.names),
        pieces,
        vcov_type=vcov_type,
        nobs=design.nobs,
        weight_total=float(design.nobs if design.weights is None else design.weights.sum()),
        residual_ss=residual_ss,
        null=_null_loglike(family, design, tol, max_iter),
        n_clusters=design.n_clusters,
        cluster_name=design.cluster_name,
        notes=notes,
        formula=design.formula,
        outcome=design.outcome,
        row_ids=design.row_ids,
        model_spec=design.model_spec,
        outcome_spec=design.outcome_spec,
        weights=design.weights_name,
        offset=design.offset_name if design.offset_name is not None else design.offset,
        n_dropped_missing=design.n_dropped_missing,
    )


def refit_covariance(
    fitted: Fit, data: pd.DataFrame, X: np.ndarray, vcov: str | Mapping[str, str]
) -> Fit | None:
    """``fitted`` under the covariance ``vcov`` without estimating it again: what
    ``fit(fitted.formula, data, fitted.family, vcov, fitted.weights)`` gives, where that refit
    uses the same rows. The same design gives the same Newton steps and so the same estimate and
    bread; only the covariance's pass over the rows is made (on ``X``, the fit's design of
    ``data``, e.g. ``fitted.design_matrix(data)``). ``data``: the data ``fitted`` was fitted
    on. ``None`` where the refit could differ: a row the fit left out (missing values, or
    ``data`` not the fit's), a missing cluster value (the refit leaves the row out), an offset,
    or the LPM (its covariances read the residuals); then fit again. The notes: the fit's,
    then the cluster notes."""
    vcov_type, cluster = parse_vcov(vcov)
    family = fitted.family_model
    if family is None or family.uses_t or fitted.offset is not None or fitted.model_spec is None:
        return None
    every_row = fitted.nobs == len(data) and not fitted.n_dropped_missing
    if not every_row or not fitted.row_ids.equals(data.index):
        return None
    if X.shape != (fitted.nobs, len(fitted.x_names)):
        raise InputError(
            "X is not the fit's design of the data",
            value=str(X.shape),
            expected=f"({fitted.nobs}, {len(fitted.x_names)})",
        )
    clusters = labels = None
    if cluster is not None:
        if cluster not in data.columns:
            raise InputError("the cluster column is not in the data", column=cluster)
        values = data[cluster]
        if values.isna().any():
            return None
        clusters, labels = cluster_codes(values)
    # the layout of the fit's own design, so that X @ b sums in the same order: as built
    # (row-major), or column-major where the fit left out some of the built columns (numpy's
    # selection of columns, ``Design.subset``, gives a column-major array)
    every_column = [str(name) for name in fitted.model_spec.column_names] == fitted.x_names
    X = np.ascontiguousarray(X, np.float64) if every_column else np.asfortranarray(X, np.float64)
    y = data[fitted.outcome].to_numpy(dtype=np.float64)
    if fitted.category_values:  # ordered logit: the categories' codes, as estimated
        y = np.searchsorted(np.asarray(fitted.category_values, dtype=np.float64), y)
        y = y.astype(np.float64)
    design = Design(
        formula=fitted.formula,
        outcome=fitted.outcome,
        y=y,
        X=X,
        names=list(fitted.x_names),
        row_ids=fitted.row_ids,
        n_dropped_missing=fitted.n_dropped_missing,
        model_spec=fitted.model_spec,
        weights=None
        if fitted.weights is None
        else pd.to_numeric(data[fitted.weights]).to_numpy(np.float64),
        weights_name=fitted.weights,
        clusters=clusters,
        cluster_labels=labels,
        cluster_name=cluster,
    )
    with blas_threads(_thread_limit(design)):
        pieces = _sandwich_pieces(family, design, fitted.params.to_numpy(), vcov_type)
    return with_covariance(fitted, pieces, vcov_type, design.n_clusters, cluster)


def reparametrised_fit(
    fitted: Fit,
    transform: np.ndarray,
    names: list[str],
    formula: str,
    model_spec: Any,
    outcome_spec: Any,
) -> Fit:
    """``fitted`` in the parameters b' = T b of the same model, whose design of the same rows is
    X' = X T^{-1}: the reparametrised ``formula`` with its specifications (as its design's
    build gives them) and columns (``names``, without cut points). Newton's iterates move with
    the parameters (its steps are affine invariant, the start here too), so the fit of the
    reparametrised formula reaches T b with the bread T B T' up to rounding: what the refit
    gives without its Newton steps. The covariance is carried the same way (T V T'); a caller
    that needs another covariance takes it from :func:`refit_covariance` on the design X'."""
    index = pd.Index([*names, *map(str, fitted.params.index[len(fitted.x_names) :])], dtype=object)
    inverse = np.linalg.inv(transform)  # the design's map, X' = X inverse
    meat = None if fitted.meat is None else inverse.T @ fitted.meat @ inverse
    sums = fitted.cluster_score_sums
    return replace(
        fitted,
        formula=formula,
        params=pd.Series(transform @ fitted.params.to_numpy(), index=index, name="coef"),
        vcov=pd.DataFrame(
            transform @ fitted.vcov.to_numpy() @ transform.T, index=index, columns=index
        ),
        bread=transform @ fitted.bread @ transform.T,
        meat=meat,
        cluster_score_sums=None if sums is None else sums @ inverse,
        model_spec=model_spec,
        outcome_spec=outcome_spec,
        x_names=list(names),
        notes=list(fitted.notes),
    )


def fit(
    formula: str,
    data: pd.DataFrame | str | PathLike,  # or a dask DataFrame
    family: str = "logit",
    vcov: str | Mapping[str, str] = "classical",
    weights: str | None = None,
    *,
    offset: str | np.ndarray | None = None,
    tol: float = 1e-8,
    max_iter: int = 100,
    engine: str | None = None,
    scheduler: str | None = None,
) -> Fit:
    """Fit a logit, probit, ordered logit or linear probability model as Stata would.

    Parameters
    ----------
    formula : str
        A formulaic formula, ``"outcome ~ terms"``: ``log(x)``, ``C(industry)`` (factor, the
        lowest code as reference), ``a:b`` and ``a*b`` interactions.
    data : pandas.DataFrame, Parquet path (file, folder or glob) or dask DataFrame
        One row per observation; rows with a missing value in a used column are left out
        (listwise deletion), as Stata does.
    family : {"logit", "probit", "ologit", "lpm"}, default "logit"
        The model; ``"lpm"`` is least squares on a 0/1 outcome (Stata's ``regress``).
    vcov : {"classical", "robust"} or dict, default "classical"
        The covariance: the inverse observed information, the sandwich (Stata's ``vce(robust)``)
        or ``{"cluster": column}`` (``vce(cluster column)``), with Stata's small-sample factors.
    weights : str, optional
        A sampling-weight column (Stata's ``pweight``); needs a robust or cluster covariance.
    offset : str or numpy.ndarray, optional
        A column name, or one value per data row, added to the linear predictor.
    tol : float, default 1e-8
        Convergence tolerance of the Newton steps (scaled gradient).
    max_iter : int, default 100
        The most Newton steps before the fit is declared not converged.
    engine : {"memory", "stream", "dask"}, optional
        "stream" reads Parquet row groups one at a time; "dask" sums over partitions on the
        cluster at ``scheduler`` (or $DASK_SCHEDULER_ADDRESS, else a local one). By default
        "stream" for a path, "dask" for a dask DataFrame, else "memory" (docs/scale.md).
    scheduler : str, optional
        A Dask scheduler address, ``tcp://host:port``.

    Returns
    -------
    Fit
        The estimates, their covariance and what later steps need (see :class:`Fit`).

    Notes
    -----
    Maximum likelihood by Newton steps on the observed Hessian. Collinear terms are dropped and
    perfect predictors refused with Stata's notes. Covariance multipliers: robust N/(N-1) after
    maximum likelihood and N/(N-K) for the LPM; cluster G/(G-1) (times (N-1)/(N-K) for the LPM).
    LPM tests use t(N-K), or t(G-1) when clustered; the others the normal reference.

    Examples
    --------
    >>> import buzzpipe as bp
    >>> firms = bp.synthesize("norway2010", seed=1, firms=500).analysis_frame()
    >>> product = bp.fit("product ~ breadth_regional + breadth_international + log(employees)",
    ...                  firms, vcov="robust")
    >>> print(product.params.round(3).to_string())
    Intercept               -0.855
    breadth_regional        -0.026
    breadth_international    0.292
    log(employees)           0.159
    >>> print(product.bse.round(3).to_string())
    Intercept                0.484
    breadth_regional         0.065
    breadth_international    0.097
    log(employees)           0.153
    """
    from buzzpipe.estimate import engines

    engine = engines.check_engine(engine or engines.default_engine(data))
    if engine != "memory":
        from buzzpipe.estimate.streamed import fit_source

        source = engines.source_for(data, engine, scheduler=scheduler)
        return fit_source(
            formula, source, family, vcov, weights, offset=offset, tol=tol, max_iter=max_iter
        )
    data = engines.load_frame(data)
    vcov_type, cluster = parse_vcov(vcov)
    family_model = get_family(family)
    if weights is not None and vcov_type == "classical":
        raise InputError(
            "sampling weights (Stata's pweight) need robust or cluster standard errors",
            column=weights,
            expected="vcov='robust' or vcov={'cluster': '<column>'}",
        )
    return _fit_frame(
        formula, data, family_model, vcov_type, cluster, weights, offset, tol, max_iter
    )[0]


def _fit_frame(
    formula: str,
    data: pd.DataFrame,
    family_model: Family,
    vcov_type: str,
    cluster: str | None,
    weights: str | None,
    offset: str | np.ndarray | None,
    tol: float,
    max_iter: int,
) -> tuple[Fit, np.ndarray | None]:
    """The in-memory :func:`fit` and the design it estimated where that has every row of
    ``data`` (its columns the fit's, collinear ones left out; at most ``DESIGN_KEPT`` numbers),
    else None."""
    built = build_design(formula, data, weights=weights, cluster=cluster, offset=offset)
    with blas_threads(_thread_limit(built)):
        design, family_model, notes = prepare_design(built, family_model)
        fitted = fit_design(
            design, family_model, vcov_type, notes=notes, tol=tol, max_iter=max_iter
        )
    every_row = not built.n_dropped_missing and len(data) == design.nobs
    return fitted, design.X if every_row and design.X.size <= DESIGN_KEPT else None


def fit_with_design(
    formula: str,
    data: pd.DataFrame,
    family: str = "logit",
    vcov: str | Mapping[str, str] = "classical",
    weights: str | None = None,
    *,
    tol: float = 1e-8,
    max_iter: int = 100,
) -> tuple[Fit, np.ndarray | None]:
    """:func:`fit` on a pandas frame in memory, with the design matrix the fit estimated where
    it is the fit's design of every row of ``data`` (``fit.design_matrix(data)``'s numbers;
    the fit's columns, row-major as built or column-major where the fit left some out) and at
    most ``DESIGN_KEPT`` numbers; else None. For a caller that would otherwise rebuild that
    design through the formula (the study, ``models.design_of``)."""
    vcov_type, cluster = parse_vcov(vcov)
    if weights is not None and vcov_type == "classical":
        return fit(formula, data, family, vcov, weights), None  # fit's error
    return _fit_frame(
        formula, data, get_family(family), vcov_type, cluster, weights, None, tol, max_iter
    )
