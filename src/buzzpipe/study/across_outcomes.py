"""Across outcomes: is the effect of a kind of partner the same for product and process innovation?

The binary outcomes' controls models are stacked with Stata's ``suest`` (joint robust covariance
from the stacked scores, firms matched by row id; each model keeps its own estimation sample)
and each breadth coefficient is tested equal across them. Results:
``tests["across_outcomes"]["equal_<term>"]``, a chi-squared test with (outcomes - 1) df.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from buzzpipe.errors import BuzzpipeError
from buzzpipe.estimate.suest import suest
from buzzpipe.results import Estimate, Hypothesis, Inference, StudyResults
from buzzpipe.results.vocabulary import HypothesisKind, InferenceMethod, StudyPart
from buzzpipe.study.models import coefficient_terms
from buzzpipe.study.skipped import record_not_assessed

SECTION = "across_outcomes"


def compare_across_outcomes(
    results: StudyResults, fits: Mapping[str, Any], data: pd.DataFrame, inference: Inference
) -> None:
    """Equality tests of every shared breadth coefficient across the outcomes' models."""
    if len(fits) < 2:
        return
    labels = list(fits)
    try:
        stacked = suest([fits[label] for label in labels], data, names=labels)
    except BuzzpipeError as error:
        detail = f"suest across outcomes not run: {error}"
        record_not_assessed(results, "", StudyPart.ACROSS_OUTCOMES, error, detail=detail)
        return
    shared = set.intersection(*(set(map(str, fits[label].params.index)) for label in labels))
    for term in sorted(name for name in shared if name.startswith("breadth_")):
        try:
            test = stacked.test_equal(term)
        except BuzzpipeError as error:
            record_not_assessed(
                results,
                "",
                StudyPart.ACROSS_OUTCOMES,
                error,
                term=term,
                quantity=f"tests/{SECTION}/equal_{term}",
            )
            continue
        results.add_test(
            SECTION,
            f"equal_{term}",
            Estimate.joint_test(
                test,
                inference.derived(InferenceMethod.SUEST),
                Hypothesis(
                    HypothesisKind.EQUAL_ACROSS_OUTCOMES,
                    terms=coefficient_terms(fits[labels[0]], [term]),
                    outcomes=list(labels),
                ),
                note=str(stacked.overlap),
            ),
        )
