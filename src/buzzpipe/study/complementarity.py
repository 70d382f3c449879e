"""Complementarity of local buzz and global pipelines (supermodularity on the log-odds scale).

Primary test (Mohnen and Roller 2005; Carree, Lokshin and Belderbos 2011): with the four regimes
none / local_only / global_only / both and "none" as the base,

    H0: b_both - b_local_only - b_global_only <= 0   against   H1: > 0   (complements),

a one-sided z test (t for the LPM) of the linear combination, whose reverse tail tests
substitutes. Second test: the regional x international breadth interaction (two-sided).
Described only: the interaction on the probability scale (Ai and Norton 2003) as the average
double difference F(l+1, g+1) - F(l+1, g) - F(l, g+1) + F(l, g) with a delta-method error.

"Local" is the regional scale, or the national one where a survey lacks the regional scale.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd
from scipy import stats

from buzzpipe.estimate.hypothesis_tests import reference_df
from buzzpipe.results import Estimate, Inference, StudyResults
from buzzpipe.results.vocabulary import Alternative
from buzzpipe.study.models import fit_model, local_scale, require_terms, term_estimates
from buzzpipe.study.pipelines_vs_buzz import combination_estimate
from buzzpipe.study.probability_changes import (
    BINARY_FAMILIES,
    average_change,
    change_estimate,
    compose,
    plus_one,
)
from buzzpipe.survey.schema import REGIMES, breadth_column

REGIME_TERM = "C(regime)[T.{}]"


def with_regime_categories(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with ``regime`` as a categorical whose first level, the base, is 'none'."""
    frame = frame.copy()
    frame["regime"] = pd.Categorical(frame["regime"].astype(object), categories=list(REGIMES))
    return frame


def supermodularity_estimate(fitted: Any, inference: Inference) -> Estimate:
    """One-sided test of b_both - b_local_only - b_global_only > 0 (complements)."""
    both, local, global_ = (
        REGIME_TERM.format("both"),
        REGIME_TERM.format("local_only"),
        REGIME_TERM.format("global_only"),
    )
    require_terms(fitted, [both, local, global_])  # a regime no firm is in: named, not parsed
    two_sided = combination_estimate(fitted, f"{both} - {local} - {global_}", inference)
    df = reference_df(fitted)
    reference = stats.norm if df is None else stats.t(df)
    p_greater = float(reference.sf(two_sided.statistic))
    return Estimate(
        estimate=two_sided.estimate,
        std_error=two_sided.std_error,
        p_value=p_greater,
        inference=inference,
        interval=two_sided.interval,
        statistic=two_sided.statistic,
        alternative=Alternative.GREATER,
        hypothesis="b_both - b_local_only - b_global_only <= 0 (complements if rejected)",
        note="one-sided test; the interval is two-sided at 95%; the reverse tail tests substitutes",
    )


def assess_complementarity(
    results: StudyResults,
    outcome: str,
    sample: pd.DataFrame,
    controls: Sequence[str],
    family: str,
    vcov: Any,
    inference: Inference,
) -> None:
    """Fit the regime and interaction models on the outcome's sample and record both tests."""
    local = local_scale(sample)
    sample = with_regime_categories(sample)
    regime_formula = f"{outcome} ~ C(regime) + " + " + ".join(controls)
    regime_fit = fit_model(regime_formula, sample, family, vcov)
    results.add_test(outcome, "supermodularity", supermodularity_estimate(regime_fit, inference))

    local_term, global_term = breadth_column(local), breadth_column("international")
    others = [
        breadth_column(scale)
        for scale in ("regional", "national")
        if scale != local and breadth_column(scale) in sample.columns
    ]
    interaction_formula = f"{outcome} ~ {local_term} * {global_term} + " + " + ".join(
        [*others, *controls]
    )
    interaction_fit = fit_model(interaction_formula, sample, family, vcov)
    interaction = f"{local_term}:{global_term}"
    results.add_test(
        outcome,
        f"interaction_{local}_international",
        term_estimates(interaction_fit, inference, [interaction])[interaction],
    )
    if family in BINARY_FAMILIES:
        both = average_change(
            interaction_fit,
            sample,
            family,
            compose(plus_one(local), plus_one("international")),
            base=plus_one(local),
        )
        one = average_change(interaction_fit, sample, family, plus_one("international"))
        double = type(both)(both.value - one.value, both.gradient - one.gradient)
        estimate = change_estimate(
            interaction_fit,
            double,
            inference,
            "mean of F(l+1,g+1) - F(l+1,g) - F(l,g+1) + F(l,g)",
        )
        estimate.note = "Ai-Norton interaction on the probability scale: described only"
        results.add_description(outcome, f"interaction_probability_{local}_international", estimate)
    if not math.isfinite(results.tests[outcome]["supermodularity"].p_value):
        results.meta.setdefault("notes", []).append(
            f"{outcome}: the supermodularity test has no p-value (a regime without firms?)"
        )
