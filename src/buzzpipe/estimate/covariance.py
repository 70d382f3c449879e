"""Covariance pieces and Stata's small-sample conventions (the table in DESIGN.md).

A fit keeps the bread (inverse of minus the observed Hessian), the robust meat (sum of outer
products of the weighted per-observation scores) and the cluster score sums (G x k); the
covariance is ``factor * bread @ meat @ bread`` (or ``factor * bread`` for classical)::

    family     vcov        factor                              reference
    ML         classical   1                                   normal
    ML         robust      N/(N-1)                             normal
    ML         cluster     G/(G-1)                             normal
    LPM (OLS)  classical   s^2 = RSS/(N-K)                     t(N-K)
    LPM        robust      N/(N-K)                  (HC1)      t(N-K)
    LPM        cluster     G/(G-1) * (N-1)/(N-K)               t(G-1)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from buzzpipe.errors import EstimationError, InputError

__all__ = [
    "SandwichPieces",
    "invert_information",
    "meat_from_chunks",
    "stata_factor",
    "assemble",
    "parse_vcov",
    "gaussian_loglike",
]


def invert_information(hessian: np.ndarray, names: list[str]) -> np.ndarray:
    """The bread: (-H)^{-1}, by Cholesky; a clear error if the information is singular."""
    k = hessian.shape[0]
    if k == 0:
        return np.zeros((0, 0))
    scale = np.sqrt(np.abs(np.diag(hessian)))
    scale[~(scale > 0)] = 1.0
    try:
        lower = np.linalg.cholesky(-hessian / np.outer(scale, scale))
        inverse_lower = np.linalg.solve(lower, np.eye(k))
        bread = (inverse_lower.T @ inverse_lower) / np.outer(scale, scale)
    except np.linalg.LinAlgError:
        raise EstimationError(
            "the information matrix is singular at the estimate (terms: "
            + ", ".join(names)
            + "); some parameter is not identified"
        ) from None
    return (bread + bread.T) / 2


@dataclass
class SandwichPieces:
    """Sums over the estimation sample that every covariance is built from."""

    meat: np.ndarray | None  # sum_i s_i s_i' of weighted scores (robust covariances only)
    cluster_score_sums: np.ndarray | None  # G x k, or None without clusters


def meat_from_chunks(family: Any, params: np.ndarray, source: Any) -> np.ndarray:
    """The robust meat summed chunk by chunk over a chunk source (see ``newton.py``), so a
    streamed Parquet file or Dask partitions give it without holding the data."""
    from buzzpipe.estimate.kernel import chunk_sums

    return chunk_sums(family, params, source, hessian=False, meat=True, need_loglike=False).meat


def stata_factor(
    vcov_type: str,
    *,
    uses_t: bool,
    nobs: int,
    n_params: int,
    n_clusters: int | None = None,
    residual_variance: float | None = None,
) -> float:
    """Stata's multiplier for ``vcov_type`` ("classical" | "robust" | "cluster")."""
    if vcov_type == "classical":
        return float(residual_variance) if uses_t else 1.0
    if vcov_type == "robust":
        return nobs / (nobs - n_params) if uses_t else nobs / (nobs - 1)
    if vcov_type == "cluster":
        assert n_clusters is not None
        factor = n_clusters / (n_clusters - 1)
        if uses_t:
            factor *= (nobs - 1) / (nobs - n_params)
        return factor
    raise ValueError(vcov_type)


def assemble(
    vcov_type: str, bread: np.ndarray, pieces: SandwichPieces, factor: float
) -> np.ndarray:
    """The covariance matrix: ``factor * bread`` or ``factor * bread @ meat @ bread``."""
    if vcov_type == "classical":
        return factor * bread
    meat = pieces.meat
    if vcov_type == "cluster":
        sums = pieces.cluster_score_sums
        meat = sums.T @ sums
    vcov = factor * (bread @ meat @ bread)
    return (vcov + vcov.T) / 2


def parse_vcov(vcov: str | Mapping[str, str]) -> tuple[str, str | None]:
    """("classical" | "robust" | "cluster", cluster column or None) from the ``vcov`` argument."""
    if isinstance(vcov, str) and vcov in ("classical", "robust"):
        return vcov, None
    if isinstance(vcov, Mapping) and set(vcov) == {"cluster"} and isinstance(vcov["cluster"], str):
        return "cluster", vcov["cluster"]
    raise InputError(
        "unknown covariance type",
        value=vcov,
        expected="'classical', 'robust' or {'cluster': '<column>'}",
    )


def gaussian_loglike(rss: float, nobs: int, weight_total: float) -> float:
    """Stata's ``regress`` e(ll); with weights, weights rescaled to sum to N."""
    rss_normalised = rss * nobs / weight_total
    return -0.5 * nobs * (np.log(2 * np.pi) + np.log(rss_normalised / nobs) + 1.0)
