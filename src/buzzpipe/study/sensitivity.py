"""The sensitivity column: region-clustered errors and the wild score bootstrap, single terms only.

Firms are sampled within a handful of fixed city-regions, so the primary inference is firm-level
robust. Clustering by region answers a different question (regions as draws from a population
of regions) and with five regions its covariance has rank four and over-rejects; the wild
cluster score bootstrap (Kline and Santos; Stata's ``boottest``) is the honest version of it.
Both are reported beside the primary errors for single coefficients, never for joint tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from buzzpipe.errors import BuzzpipeError
from buzzpipe.estimate.wild_bootstrap import WildScoreBootstrap
from buzzpipe.study.models import fit_model, inference_label, term_estimates
from buzzpipe.study.results import Estimate, Interval, ModelResult
from buzzpipe.survey.schema import WEIGHT

CLUSTER_VCOV = {"cluster": "region"}


def region_cluster_terms(
    formula: str, sample: pd.DataFrame, family: str, terms: Sequence[str]
) -> dict[str, Estimate]:
    """The terms refitted with region-clustered errors (G/(G-1), normal reference)."""
    fitted = fit_model(formula, sample, family, CLUSTER_VCOV)
    estimates = term_estimates(fitted, inference_label(CLUSTER_VCOV), terms)
    for estimate in estimates.values():
        estimate.note = " ".join(fitted.notes)
    return estimates


def wild_bootstrap_terms(
    fitted: Any,
    sample: pd.DataFrame,
    outcome: str,
    family: str,
    terms: Sequence[str],
    seed: int,
    draws: int = 9999,
    confidence_sets: bool = True,
) -> dict[str, Estimate]:
    """Wild cluster score bootstrap p-values by region for each term (logit and probit only),
    with 95% confidence sets by test inversion (possibly unbounded or disjoint)."""
    design = np.asarray(fitted.design_matrix(sample), dtype=float)
    names = list(map(str, fitted.params.index))
    bootstrap = WildScoreBootstrap(
        design,
        sample[outcome].to_numpy(dtype=float),
        sample["region"].to_numpy(),
        family=family,
        names=names,
        weights=sample[WEIGHT].to_numpy(dtype=float) if WEIGHT in sample.columns else None,
        draws=draws,
        seed=seed,
    )
    estimates = {}
    for term in terms:
        test = bootstrap.test(term)
        k = names.index(term)
        interval = None
        if confidence_sets:
            found = bootstrap.confidence_set(term)
            interval = Interval([(float(a), float(b)) for a, b in found.intervals], 0.95)
        estimates[term] = Estimate(
            estimate=float(bootstrap.estimate[k]),
            std_error=None,
            p_value=test.p_value,
            inference=f"wild score bootstrap by region ({test.weight_type})",
            interval=interval,
            statistic=test.statistic,
            hypothesis=f"b[{term}] = 0",
            note=" ".join(test.notes()),
        )
    return estimates


def add_sensitivity(
    result: ModelResult,
    fitted: Any,
    sample: pd.DataFrame,
    terms: Sequence[str],
    seed: int,
    draws: int = 9999,
) -> None:
    """Fill the model's sensitivity column (clustered errors; the bootstrap for binary models)."""
    try:
        result.sensitivity[inference_label(CLUSTER_VCOV)] = region_cluster_terms(
            result.formula, sample, result.family, terms
        )
    except BuzzpipeError as error:
        result.notes.append(f"region-clustered errors not computed: {error}")
    if result.family not in ("logit", "probit"):
        return
    try:
        result.sensitivity["wild score bootstrap"] = wild_bootstrap_terms(
            fitted, sample, result.outcome, result.family, terms, seed, draws
        )
    except BuzzpipeError as error:
        result.notes.append(f"wild score bootstrap not computed: {error}")
