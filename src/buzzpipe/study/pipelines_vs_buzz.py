"""Pipelines versus buzz: is one more kind of international partner worth more than a local one?

The primary test is the Wald test of b_international = b_regional (and = b_national) in the
controls model, under its primary inference. Described beside it, never used for a verdict: the
ratio b_international / b_local with its Fieller set (possibly unbounded or two rays: the delta
method is wrong when the denominator is near zero, which is the "four times as powerful" case),
and the ratio of the +1-partner changes in the probability of innovating.

Results go to ``tests[outcome]["international_minus_<scale>"]`` and
``descriptions[outcome]["ratio_international_<scale>"]``,
``descriptions[outcome]["probability_change_<scale>"]``,
``descriptions[outcome]["probability_ratio_international_<scale>"]``,
``descriptions[outcome]["probability_difference_international_<scale>"]``: the difference of the
two +1-partner changes in the probability of innovating, with a delta-method interval. Unlike
the ratio it stays bounded when the local change is indistinguishable from zero, so it is the
readable comparison for "as much as four times more powerful" (issue 15).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from buzzpipe.errors import BuzzpipeError
from buzzpipe.estimate.fieller import fieller_ratio
from buzzpipe.estimate.hypothesis_tests import inference_columns, linear_combination
from buzzpipe.results import Estimate, Hypothesis, Inference, Interval, StudyResults
from buzzpipe.results.vocabulary import HypothesisKind, InferenceMethod, StudyPart
from buzzpipe.study.models import coefficient_terms
from buzzpipe.study.probability_changes import (
    BINARY_FAMILIES,
    ChangeDesigns,
    ProbabilityChange,
    average_changes,
    change_estimate,
    fieller_interval,
    plus_one,
    ratio_estimate,
)
from buzzpipe.study.skipped import record_not_assessed
from buzzpipe.survey.schema import breadth_column

GLOBAL_SCALE = "international"
LOCAL_SCALES = ("regional", "national")


def combination_estimate(
    fitted: Any, expression: str, inference: Inference, hypothesis: Hypothesis | None = None
) -> Estimate:
    """Stata's ``lincom`` of an expression, as an Estimate with a two-sided p-value;
    ``hypothesis`` is the record of what the expression says."""
    value, variance, df = linear_combination(fitted, expression)  # lincom's, without tables
    columns = inference_columns(np.array([value]), np.array([[variance]]), df)
    return Estimate(
        estimate=value,
        std_error=float(columns["se"][0]),
        p_value=float(columns["p"][0]),
        inference=inference,
        interval=Interval.bounded(float(columns["ci_lower"][0]), float(columns["ci_upper"][0])),
        statistic=float(columns["z" if df is None else "t"][0]),
        hypothesis=hypothesis,
    )


def compare_pipelines_and_buzz(
    results: StudyResults,
    outcome: str,
    fitted: Any,
    sample: pd.DataFrame,
    family: str,
    inference: Inference,
    *,
    designs: ChangeDesigns | None = None,
) -> None:
    """Add the Wald tests and the described ratios for one outcome's controls model
    (``designs``: the fit's :class:`ChangeDesigns` on ``sample``, shared with other parts)."""
    names = set(map(str, fitted.params.index))
    global_term = breadth_column(GLOBAL_SCALE)
    if global_term not in names:
        return
    global_change = None
    if family in BINARY_FAMILIES:
        # each scale's +1 at once: in memory the fit's design edited for each, on a chunked
        # engine one pass over the sample's chunks (no design of it on the client)
        scales = [GLOBAL_SCALE, *(s for s in LOCAL_SCALES if breadth_column(s) in names)]
        changes = average_changes(
            fitted,
            sample,
            family,
            {scale: (plus_one(scale), None) for scale in scales},
            designs=designs,
        )
        global_change = changes[GLOBAL_SCALE]
        results.add_description(
            outcome,
            f"probability_change_{GLOBAL_SCALE}",
            change_estimate(fitted, global_change, inference, _plus_one(fitted, GLOBAL_SCALE)),
        )
    for scale in LOCAL_SCALES:
        local_term = breadth_column(scale)
        if local_term not in names:
            continue
        results.add_test(
            outcome,
            f"{GLOBAL_SCALE}_minus_{scale}",
            combination_estimate(
                fitted,
                f"{global_term} - {local_term}",
                inference,
                Hypothesis(
                    HypothesisKind.DIFFERENCE,
                    terms=coefficient_terms(fitted, [global_term, local_term]),
                ),
            ),
        )
        try:
            ratio = fieller_ratio(fitted, global_term, local_term)
        except BuzzpipeError as error:
            record_not_assessed(
                results,
                outcome,
                StudyPart.PIPELINES_VS_BUZZ,
                error,
                quantity=f"descriptions/{outcome}/ratio_{GLOBAL_SCALE}_{scale}",
                detail=f"ratio not computed: {error}",
            )
        else:
            results.add_description(
                outcome,
                f"ratio_{GLOBAL_SCALE}_{scale}",
                Estimate(
                    estimate=ratio.estimate,
                    std_error=ratio.delta_se if math.isfinite(ratio.delta_se) else None,
                    p_value=math.nan,
                    inference=inference.derived(InferenceMethod.FIELLER),
                    interval=fieller_interval(
                        ratio.kind, ratio.lower, ratio.upper, ratio.level / 100.0
                    ),
                    hypothesis=Hypothesis(
                        HypothesisKind.RATIO,
                        terms=coefficient_terms(fitted, [global_term, local_term]),
                    ),
                    note=f"Fieller set: {ratio.kind.replace('_', ' ')}; described, not a verdict",
                ),
            )
        if global_change is not None:
            local_change = changes[scale]
            results.add_description(
                outcome,
                f"probability_change_{scale}",
                change_estimate(fitted, local_change, inference, _plus_one(fitted, scale)),
            )
            difference = ProbabilityChange(
                global_change.value - local_change.value,
                global_change.gradient - local_change.gradient,
            )
            results.add_description(
                outcome,
                f"probability_difference_{GLOBAL_SCALE}_{scale}",
                change_estimate(
                    fitted,
                    difference,
                    inference,
                    Hypothesis(HypothesisKind.PLUS_ONE_DIFFERENCE, scales=[GLOBAL_SCALE, scale]),
                ),
            )
            results.add_description(
                outcome,
                f"probability_ratio_{GLOBAL_SCALE}_{scale}",
                ratio_estimate(
                    fitted,
                    global_change,
                    local_change,
                    inference,
                    Hypothesis(HypothesisKind.PLUS_ONE_RATIO, scales=[GLOBAL_SCALE, scale]),
                ),
            )


def _plus_one(fitted: Any, scale: str) -> Hypothesis:
    """The change from one more kind of partner at a scale (its breadth term + 1)."""
    terms = coefficient_terms(fitted, [breadth_column(scale)])
    return Hypothesis(HypothesisKind.PLUS_ONE, terms=terms, scales=[scale])
