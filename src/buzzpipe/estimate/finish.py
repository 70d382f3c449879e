"""The :class:`Fit` from a converged Newton result: Stata's conventions after estimation.

One helper for every engine: the in-memory fit (``fitting.py``) and the streamed and Dask fits
(``streamed.py``) differ in how they sum over the data, not in what they make of the sums.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from buzzpipe.estimate import diagnostics
from buzzpipe.estimate.covariance import (
    SandwichPieces,
    assemble,
    gaussian_loglike,
    invert_information,
    stata_factor,
)
from buzzpipe.estimate.families import Family, OrderedLogit
from buzzpipe.estimate.newton import NewtonResult
from buzzpipe.estimate.result import Fit

__all__ = ["finish_fit", "with_covariance"]


def finish_fit(
    family: Family,
    result: NewtonResult,
    names: list[str],
    pieces: SandwichPieces,
    *,
    vcov_type: str,
    nobs: int,
    weight_total: float,
    residual_ss: float | None,
    null: tuple[float, float],
    n_clusters: int | None,
    cluster_name: str | None,
    notes: list[str],
    formula: str,
    outcome: str,
    row_ids: pd.Index,
    model_spec,
    outcome_spec,
    weights: str | None,
    offset,
    n_dropped_missing: int,
) -> Fit:
    """The :class:`Fit` from a converged Newton result, whatever engine summed the data.

    Stata's conventions after estimation, shared by the in-memory, streamed and Dask fits: the
    bread (inverse information), the cluster notes, the LPM's residual variance (``residual_ss``,
    the unweighted residual sum of squares; ``None`` for the other families), Gaussian
    log-likelihoods and R2 for the LPM, the small-sample factor and the covariance.
    ``names`` are the estimated regressors' names (cut points are added for ordered logit);
    ``null`` is the constant-only model's (log-likelihood, residual sum of squares); ``pieces``
    the robust meat or cluster score sums at the estimate.
    """
    params = result.params
    k = family.n_params(len(names))
    all_names = list(names)
    if isinstance(family, OrderedLogit):
        all_names += [f"cut{j}" for j in range(1, family.n_categories)]
    bread = invert_information(result.hessian, all_names)
    residual_variance = None
    r2 = float("nan")
    llf = result.llf
    null_llf, null_rss = null
    if family.uses_t:
        rss = -2.0 * result.llf  # the LPM objective is -RSS/2
        residual_variance = residual_ss / (nobs - k)
        llf = gaussian_loglike(rss, nobs, weight_total)
        null_llf = gaussian_loglike(null_rss, nobs, weight_total)
        r2 = 1.0 - rss / null_rss
    covariance, meat, factor, joint_tests_possible = _covariance(
        vcov_type,
        bread,
        pieces,
        uses_t=family.uses_t,
        nobs=nobs,
        n_params=k,
        n_clusters=n_clusters,
        cluster_name=cluster_name,
        residual_variance=residual_variance,
        notes=notes,
    )
    index = pd.Index(all_names, dtype=object)  # built once: pandas' string inference is slow
    return Fit(
        family=family.name,
        formula=formula,
        outcome=outcome,
        params=pd.Series(params, index=index, name="coef"),
        vcov=pd.DataFrame(covariance, index=index, columns=index),
        llf=float(llf),
        llnull=float(null_llf),
        nobs=nobs,
        df_model=len([name for name in names if name != "Intercept"]),
        df_resid=nobs - k,
        iterations=result.iterations,
        converged=result.converged,
        vcov_type=vcov_type,
        cluster_var=cluster_name if vcov_type == "cluster" else None,
        n_clusters=n_clusters if vcov_type == "cluster" else None,
        uses_t=family.uses_t,
        bread=bread,
        meat=meat,
        cluster_score_sums=pieces.cluster_score_sums if vcov_type == "cluster" else None,
        vcov_factor=factor,
        row_ids=row_ids,
        model_spec=model_spec,
        outcome_spec=outcome_spec,
        x_names=list(names),
        weights=weights,
        offset=offset,
        n_dropped_missing=n_dropped_missing,
        notes=notes,
        r2=r2,
        category_values=getattr(family, "category_values", ()),
        family_model=family,
        joint_tests_possible=joint_tests_possible,
    )


def _covariance(
    vcov_type: str,
    bread: np.ndarray,
    pieces: SandwichPieces,
    *,
    uses_t: bool,
    nobs: int,
    n_params: int,
    n_clusters: int | None,
    cluster_name: str | None,
    residual_variance: float | None,
    notes: list[str],
) -> tuple[np.ndarray, np.ndarray | None, float, bool]:
    """(covariance, meat, Stata's factor, whether joint tests are possible) of ``vcov_type``
    from the bread and the sums at the estimate; the cluster notes go to ``notes``."""
    joint_tests_possible = True
    if vcov_type == "cluster":
        notes.extend(diagnostics.cluster_notes(n_clusters, n_params, cluster_name))
        joint_tests_possible = n_clusters > n_params
    factor = stata_factor(
        vcov_type,
        uses_t=uses_t,
        nobs=nobs,
        n_params=n_params,
        n_clusters=n_clusters,
        residual_variance=residual_variance,
    )
    covariance = assemble(vcov_type, bread, pieces, factor)
    meat = pieces.meat  # None for classical fits: no score pass is made for them
    if vcov_type == "cluster":
        meat = pieces.cluster_score_sums.T @ pieces.cluster_score_sums
    return covariance, meat, factor, joint_tests_possible


def with_covariance(
    fit: Fit,
    pieces: SandwichPieces,
    vcov_type: str,
    n_clusters: int | None = None,
    cluster_name: str | None = None,
) -> Fit:
    """``fit`` under the covariance ``vcov_type``, from its bread and ``pieces`` (the robust
    meat or the cluster score sums at its estimate, on its rows): what :func:`finish_fit` gives
    for the same Newton result under that covariance, its notes followed by the cluster notes.
    Not for the LPM, whose covariances read the residual variance."""
    family = fit.family_model
    if family is None or family.uses_t:
        raise ValueError("with_covariance takes a maximum-likelihood fit (not the LPM)")
    notes = list(fit.notes)
    covariance, meat, factor, joint_tests_possible = _covariance(
        vcov_type,
        fit.bread,
        pieces,
        uses_t=False,
        nobs=fit.nobs,
        n_params=len(fit.params),
        n_clusters=n_clusters,
        cluster_name=cluster_name,
        residual_variance=None,
        notes=notes,
    )
    index = fit.params.index
    clustered = vcov_type == "cluster"
    return replace(
        fit,
        vcov=pd.DataFrame(covariance, index=index, columns=index),
        vcov_type=vcov_type,
        cluster_var=cluster_name if clustered else None,
        n_clusters=n_clusters if clustered else None,
        meat=meat,
        cluster_score_sums=pieces.cluster_score_sums if clustered else None,
        vcov_factor=factor,
        notes=notes,
        joint_tests_possible=joint_tests_possible,
    )
