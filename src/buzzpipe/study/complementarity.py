"""Complementarity of local buzz and global pipelines (supermodularity on the log-odds scale).

Primary test (Mohnen and Roller 2005; Carree, Lokshin and Belderbos 2011): with the four regimes
none / local_only / global_only / both and "none" as the base,

    H0: b_both - b_local_only - b_global_only <= 0   against   H1: > 0   (complements),

a one-sided z test (t for the LPM) of the linear combination at 5%, read on the log-odds scale
("complements in the odds"). Its interval is the matching one-sided 95% bound
[estimate - z_0.95 se, +inf), so the bound excludes 0 exactly when the one-sided p < 0.05; the
reverse tail is not a verdict (a one-sided test at 5% that also called substitutes would be a
10% test). Second test: the regional x international breadth interaction (two-sided). Third:
the interaction on the probability scale (Ai and Norton 2003), the average double difference
F(l+1, g+1) - F(l+1, g) - F(l, g+1) + F(l, g) with a delta-method error, tested two-sided at 5%:
supermodularity in the log-odds does not carry over to probabilities (an index interaction of
+0.15 at P(none) = 0.62 gives a probability double difference of -0.010), so the two scales
are separate rows of the verdict table.

Selection: firms choose their regime, so neither test is the effect of adding a partner
type; both compare firms that chose different regimes, holding the controls fixed.

"Local" is the regional scale, or the national one where a survey lacks the regional scale.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from buzzpipe.estimate.hypothesis_tests import reference_df
from buzzpipe.estimate.reference import quantile, upper_tail
from buzzpipe.results import Estimate, Hypothesis, Inference, Interval, StudyResults
from buzzpipe.results.vocabulary import (
    Alternative,
    HypothesisKind,
    NotAssessedReason,
    StudyPart,
)
from buzzpipe.study.models import (
    coefficient_hypothesis,
    coefficient_terms,
    columns_of,
    fit_model,
    local_scale,
    require_terms,
    term_estimates,
    with_computed,
)
from buzzpipe.study.pipelines_vs_buzz import combination_estimate
from buzzpipe.study.probability_changes import (
    BINARY_FAMILIES,
    average_changes,
    change_estimate,
    compose,
    plus_one,
)
from buzzpipe.study.skipped import record_not_assessed
from buzzpipe.survey.schema import REGIMES, breadth_column

REGIME_TERM = "C(regime)[T.{}]"


def with_regime_categories(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with ``regime`` as a categorical whose first level, the base, is 'none': on
    ``--engine dask`` made on the workers, the frame returned lacking it (only fitted)."""
    return with_computed(frame, _regime_categories)


def _regime_categories(rows: pd.DataFrame) -> dict[str, pd.Categorical]:
    """``rows``' regime as a categorical of the regimes, in their order."""
    regime = rows["regime"]
    # a categorical whose categories are regimes is recoded as it is; anything else as objects
    # (pandas deprecates recoding a categorical with other categories, used or not)
    if not (
        isinstance(regime.dtype, pd.CategoricalDtype) and set(regime.cat.categories) <= set(REGIMES)
    ):
        regime = regime.astype(object)
    return {"regime": pd.Categorical(regime, categories=list(REGIMES), ordered=False)}


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
    p_greater = float(upper_tail(two_sided.statistic, df))
    return Estimate(
        estimate=two_sided.estimate,
        std_error=two_sided.std_error,
        p_value=p_greater,
        inference=inference,
        interval=one_sided_bound(two_sided.estimate, two_sided.std_error, df),
        statistic=two_sided.statistic,
        alternative=Alternative.GREATER,
        hypothesis=Hypothesis(
            HypothesisKind.SUPERMODULARITY, terms=coefficient_terms(fitted, [both, local, global_])
        ),
        note=(
            "one-sided test at 5% on the log-odds scale (complements in the odds); the interval "
            "is the one-sided 95% lower bound; " + SELECTION_CAVEAT
        ),
    )


SELECTION_CAVEAT = (
    "firms choose their regime, so this compares firms that chose different regimes, "
    "not the effect of adding a partner type"
)
ONE_SIDED_LEVEL = 0.95


def one_sided_bound(estimate: float, std_error: float, df: float | None) -> Interval:
    """The one-sided lower bound [estimate - q_0.95 se, +inf) of a test against 'greater': it
    excludes 0 exactly when the one-sided p-value is below 0.05 (the normal reference for ``df``
    None, else t(df))."""
    if not (math.isfinite(estimate) and math.isfinite(std_error)):
        return Interval([], level=ONE_SIDED_LEVEL)
    low = estimate - quantile(ONE_SIDED_LEVEL, df) * std_error
    return Interval([(low, math.inf)], level=ONE_SIDED_LEVEL)


def assess_complementarity(
    results: StudyResults,
    outcome: str,
    sample: pd.DataFrame,
    controls: Sequence[str],
    family: str,
    vcov: Any,
    inference: Inference,
) -> Any:
    """Fit the regime and interaction models on the outcome's sample and record both tests;
    returns the interaction model's fit (the counterfactuals' sensitivity model where it is
    the same model: ``battery._counterfactuals``)."""
    local = local_scale(sample)
    sample = with_regime_categories(sample)
    regime_formula = f"{outcome} ~ C(regime) + " + " + ".join(controls)
    regime_fit = fit_model(regime_formula, sample, family, vcov)
    results.add_test(outcome, "supermodularity", supermodularity_estimate(regime_fit, inference))

    local_term, global_term = breadth_column(local), breadth_column("international")
    present = columns_of(sample)  # on dask: the columns its rows have on the workers
    others = [
        breadth_column(scale)
        for scale in ("regional", "national")
        if scale != local and breadth_column(scale) in present
    ]
    interaction_formula = f"{outcome} ~ {local_term} * {global_term} + " + " + ".join(
        [*others, *controls]
    )
    interaction_fit = fit_model(interaction_formula, sample, family, vcov)
    interaction = f"{local_term}:{global_term}"
    estimate = term_estimates(interaction_fit, inference, [interaction])[interaction]
    estimate.hypothesis = coefficient_hypothesis(interaction_fit, interaction)
    results.add_test(outcome, f"interaction_{local}_international", estimate)
    if family in BINARY_FAMILIES:
        # in memory the +1 of the local scale built once; on a chunked engine both changes in
        # one pass over the sample's chunks (no design of it on the client)
        changes = average_changes(
            interaction_fit,
            sample,
            family,
            {
                "both": (compose(plus_one(local), plus_one("international")), plus_one(local)),
                "one": (plus_one("international"), None),
            },
        )
        both, one = changes["both"], changes["one"]
        double = type(both)(both.value - one.value, both.gradient - one.gradient)
        estimate = change_estimate(
            interaction_fit,
            double,
            inference,
            Hypothesis(HypothesisKind.INTERACTION_PROBABILITY, scales=[local, "international"]),
        )
        estimate.note = (
            "Ai-Norton interaction on the probability scale, two-sided test at 5%; "
            + SELECTION_CAVEAT
        )
        results.add_test(outcome, f"interaction_probability_{local}_international", estimate)
    if not math.isfinite(results.tests[outcome]["supermodularity"].p_value):
        record_not_assessed(
            results,
            outcome,
            StudyPart.COMPLEMENTARITY,
            "the supermodularity test has no p-value (a regime without firms?)",
            quantity=f"tests/{outcome}/supermodularity",
            cause=NotAssessedReason.NO_DATA,
        )
    return interaction_fit
