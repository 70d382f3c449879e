"""Heterogeneity: do the breadth effects differ by city-region size or by sector?

Each is a model with breadth x moderator interactions added to the controls model, and a joint
Wald test that every interaction is zero under firm-level robust errors (which support joint
tests; region-clustered errors with five regions would not). City-region size is the log of the
(weighted) number of surveyed firms in the region, a stated proxy, centred at its (weighted) mean
over firms, so the breadth main effects of that model are the effects in a region of mean log
size (uncentred, they were the effects in a region of one firm); the model's notes say so. It
varies only between regions, so its main effect is absorbed by the region fixed effects and only
the interactions enter. Where a joint test is refused (rank), the controls model is fitted
within each region or sector instead and reported as separate estimates.

Results: ``tests[outcome]["heterogeneity_region_size"]``, ``..["heterogeneity_sector"]``
(joint), and the interaction models as ``models[outcome]["by_region_size" | "by_sector"]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from buzzpipe.errors import BuzzpipeError
from buzzpipe.estimate.hypothesis_tests import wald_test
from buzzpipe.results import Estimate, Hypothesis, Inference, StudyResults
from buzzpipe.results.vocabulary import HypothesisKind, NoteKind
from buzzpipe.study.models import (
    ModelSpecification,
    coefficient_terms,
    fit_model,
    model_result,
)
from buzzpipe.survey.schema import WEIGHT

REGION_SIZE = "region_size"


def region_size(frame: pd.DataFrame) -> pd.Series:
    """Log of the (weighted) number of surveyed firms in each firm's region."""
    weights = _weights(frame)
    totals = weights.groupby(frame["region"], observed=True).transform("sum")
    return np.log(totals.astype(float)).rename(REGION_SIZE)


def _weights(frame: pd.DataFrame) -> pd.Series:
    return frame[WEIGHT] if WEIGHT in frame.columns else pd.Series(1.0, index=frame.index)


def centred_region_size(frame: pd.DataFrame) -> tuple[pd.Series, float]:
    """Log region size minus its (weighted) mean over firms, and that mean."""
    size = region_size(frame)
    mean = float(np.average(size, weights=_weights(frame).astype(float)))
    return (size - mean).rename(REGION_SIZE), mean


def joint_interaction_test(fitted: Any, inference: Inference, moderator: str) -> Estimate | None:
    """Joint Wald test that every breadth x moderator interaction of the fit is zero."""
    terms = [name for name in map(str, fitted.params.index) if ":" in name and moderator in name]
    if not terms:
        return None
    test = wald_test(fitted, [f"{term} = 0" for term in terms])
    hypothesis = Hypothesis(
        HypothesisKind.INTERACTIONS_ZERO,
        terms=coefficient_terms(fitted, terms),
        moderator=moderator,
        count=len(terms),
    )
    return Estimate.joint_test(test, inference, hypothesis)


def assess_heterogeneity(
    results: StudyResults,
    outcome: str,
    sample: pd.DataFrame,
    breadth: Sequence[str],
    controls: Sequence[str],
    family: str,
    vcov: Any,
    inference: Inference,
) -> None:
    """Fit the two interaction models and record their joint tests."""
    data = sample.copy()
    data[REGION_SIZE], mean_size = centred_region_size(data)
    centring_note = (
        f"{REGION_SIZE} = log(surveyed firms in the region) - {mean_size:.4f}, centred at its "
        f"mean over firms (a region of {math.exp(mean_size):.0f} firms on the geometric mean): "
        "the breadth terms are the effects in a region of mean log size"
    )
    breadth_sum = " + ".join(breadth)
    designs = (
        (
            "by_region_size",
            "heterogeneity_region_size",
            REGION_SIZE,
            f"{outcome} ~ {breadth_sum} + ({breadth_sum}):{REGION_SIZE} + " + " + ".join(controls),
        ),
        (
            "by_sector",
            "heterogeneity_sector",
            "C(industry)",
            f"{outcome} ~ ({breadth_sum}) * C(industry) + " + " + ".join(controls),
        ),
    )
    for model_name, test_name, moderator, formula in designs:
        if data[moderator if moderator == REGION_SIZE else "industry"].nunique() < 2:
            continue
        fitted = _fit_and_record(results, model_name, outcome, formula, data, family, vcov)
        if fitted is None:
            continue
        if moderator == REGION_SIZE:
            results.models[outcome][model_name].notes.append(centring_note)
        try:
            test = joint_interaction_test(fitted, inference, moderator)
        except BuzzpipeError as error:
            results.note(
                NoteKind.NOT_ASSESSED,
                f"{outcome}: joint test {test_name} refused ({error}); separate estimates given",
                outcome=outcome,
                quantity=f"tests/{outcome}/{test_name}",
                reason=str(error),
            )
            group_column = "region" if moderator == REGION_SIZE else "industry"
            separate_estimates(
                results, outcome, data, breadth, controls, family, vcov, group_column
            )
            continue
        if test is not None:
            results.add_test(outcome, test_name, test)


def separate_estimates(
    results: StudyResults,
    outcome: str,
    data: pd.DataFrame,
    breadth: Sequence[str],
    controls: Sequence[str],
    family: str,
    vcov: Any,
    group_column: str,
) -> None:
    """The controls model fitted within each group (``models[outcome]["<column>=<level>"]``),
    for when a joint test of the interactions cannot be supported."""
    own_term = f"C({group_column})"
    terms = [*breadth, *[term for term in controls if term != own_term]]
    formula = f"{outcome} ~ " + " + ".join(terms)
    for level in data[group_column].dropna().unique():
        name = f"{group_column}={level}"
        subset = data.loc[data[group_column] == level]
        _fit_and_record(results, name, outcome, formula, subset, family, vcov)


def _fit_and_record(
    results: StudyResults,
    name: str,
    outcome: str,
    formula: str,
    data: pd.DataFrame,
    family: str,
    vcov: Any,
) -> Any | None:
    """Fit one model and add it to ``results.models``; a model the core refuses becomes a note
    (``"<outcome>: <name>: <error>"``) and None, so the battery goes on without it."""
    try:
        fitted = fit_model(formula, data, family, vcov)
    except BuzzpipeError as error:
        results.note(
            NoteKind.NOT_ASSESSED,
            f"{outcome}: {name}: {error}",
            outcome=outcome,
            model=name,
            reason=str(error),
        )
        return None
    specification = ModelSpecification(name, outcome, formula, family, ())
    results.add_model(model_result(specification, fitted, vcov))
    return fitted
