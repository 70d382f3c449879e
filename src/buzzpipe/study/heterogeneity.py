"""Heterogeneity: do the breadth effects differ by sector, and how do they vary by city-region?

Sector varies within regions: a model with breadth x sector interactions added to the controls
model, and a joint Wald test that every interaction is zero under firm-level robust errors
(which support joint tests; region-clustered errors with five regions would not). Where that
joint test is refused (rank), the controls model is fitted within each sector instead.

City-regions get no test and no verdict: a moderator that varies only between regions (such as
the number of surveyed firms, a feature of the sampling design rather than city size) fits a
line through five regional slopes, three residual degrees of freedom, and firm-level errors
overstate it (with slopes varying at random, independent of size, the old test rejected 16% at
a slope SD of 0.15 and 39% at 0.3). Instead each region's own slope of each breadth scale is
shown, with its interval, descriptively: the model ``by_region`` has the controls model's
terms (the region effects among them) with breadth replaced by breadth x region, one slope per
region and scale; its term records (``term_kinds``: breadth x the region's factor level) say
which slope each is, and the report draws them as a table and a figure.

Results: ``tests[outcome]["heterogeneity_sector"]`` (joint), and the models
``models[outcome]["by_region" | "by_sector"]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from buzzpipe.errors import BuzzpipeError
from buzzpipe.estimate.hypothesis_tests import wald_test
from buzzpipe.results import Estimate, Hypothesis, Inference, ModelResult, StudyResults
from buzzpipe.results.vocabulary import (
    HypothesisKind,
    ModelName,
    NotAssessedReason,
    StudyPart,
)
from buzzpipe.study import engine
from buzzpipe.study.models import (
    ModelSpecification,
    coefficient_terms,
    fit_model,
    model_result,
    rows_kept,
)
from buzzpipe.study.skipped import record_not_assessed


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
    """Fit the regional-slopes model (descriptive) and the sector model with its joint test."""
    data = sample.copy(deep=False)  # copy on write: the columns it sets are its own
    breadth_sum = " + ".join(breadth)
    # on dask counted per partition on the workers
    groups = {column: engine.current().nunique(sample, column) for column in ("region", "industry")}
    for column, model in (("region", REGION_SLOPES), ("industry", ModelName.BY_SECTOR)):
        if groups[column] < 2:
            record_not_assessed(
                results,
                outcome,
                StudyPart.HETEROGENEITY,
                f"every firm of the estimation sample is in the same {column}: no differences "
                "to show or test",
                model=model,
                cause=NotAssessedReason.NO_VARIATION,
            )
    if groups["region"] >= 2:
        formula = f"{outcome} ~ ({breadth_sum}):C(region) + " + " + ".join(controls)
        if _fit_and_record(results, REGION_SLOPES, outcome, formula, data, family, vcov):
            results.models[outcome][REGION_SLOPES].notes.append(REGION_SLOPES_NOTE)
    if groups["industry"] < 2:
        return
    formula = f"{outcome} ~ ({breadth_sum}) * C(industry) + " + " + ".join(controls)
    fitted = _fit_and_record(results, ModelName.BY_SECTOR, outcome, formula, data, family, vcov)
    if fitted is None:
        return
    try:
        test = joint_interaction_test(fitted, inference, "C(industry)")
    except BuzzpipeError as error:
        record_not_assessed(
            results,
            outcome,
            StudyPart.HETEROGENEITY,
            error,
            model=ModelName.BY_SECTOR,
            quantity=f"tests/{outcome}/heterogeneity_sector",
            detail=f"joint test heterogeneity_sector refused ({error}); separate estimates given",
        )
        separate_estimates(results, outcome, data, breadth, controls, family, vcov, "industry")
        return
    if test is not None:
        results.add_test(outcome, "heterogeneity_sector", test)


REGION_SLOPES = ModelName.BY_REGION
REGION_SLOPES_NOTE = (
    "descriptive: each city-region's own slope of each breadth scale (breadth x region, the "
    "region effects kept); no test and no verdict: with five regions a comparison of slopes "
    "across regions rests on five observations"
)


def region_slopes(model: ModelResult) -> dict[str, dict[str, Estimate]]:
    """breadth variable -> region -> its slope, from a ``by_region`` model's term records."""
    return {
        variable: by_region
        for variable, by_region in model.slopes_by_level("region").items()
        if variable.startswith("breadth_")
    }


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
    chosen = engine.current()  # on dask the levels and each level's rows found on the workers
    for level in chosen.unique(data, group_column):
        name = f"{group_column}={level}"
        # only fitted: on --engine dask the group's columns stay on the workers
        in_group = chosen.mask(data, level_rows, group_column, level, columns=[group_column])
        subset = rows_kept(data, in_group, reads=[])
        _fit_and_record(results, name, outcome, formula, subset, family, vcov)


def level_rows(rows: pd.DataFrame, column: str, level: Any) -> pd.Series:
    """Whether each of ``rows`` holds ``level`` in ``column``: a group's mask."""
    return rows[column] == level


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
        record_not_assessed(results, outcome, StudyPart.HETEROGENEITY, error, model=name)
        return None
    specification = ModelSpecification(name, outcome, formula, family, ())
    results.add_model(model_result(specification, fitted, vcov))
    return fitted
