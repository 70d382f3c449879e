"""Across outcomes: is the effect of a kind of partner the same for product and process innovation?

The binary outcomes' controls models are stacked with Stata's ``suest`` (joint robust covariance
from the stacked scores, firms matched by row id; each model keeps its own estimation sample)
and each breadth term's effect is tested equal across them on the probability scale: the
average change in the probability of each outcome from one more kind of partner at the scale
(a firm at the cap held there, as everywhere in the study), its gradient in that model's
coefficients, stacked, and a Wald test under suest's joint covariance:
``tests["across_outcomes"]["equal_<term>"]``, chi-squared with (outcomes - 1) df. Raw logit
coefficients are not compared: each equation's latent scale differs (Allison 1999; Mood 2010),
so equal coefficients need not mean equal effects. The coefficients' test is kept as
``coefficients_equal_<term>``, a sensitivity.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from buzzpipe.errors import BuzzpipeError, EstimationError
from buzzpipe.estimate.reference import chi2_sf
from buzzpipe.estimate.suest import suest
from buzzpipe.results import Estimate, Hypothesis, Inference, StudyResults
from buzzpipe.results.vocabulary import HypothesisKind, InferenceMethod, StudyPart
from buzzpipe.study import engine
from buzzpipe.study.models import coefficient_terms
from buzzpipe.study.probability_changes import (
    ChangeDesigns,
    ProbabilityChange,
    average_change,
    change_at,
    change_designs,
    plus_one,
    raw_weights,
)
from buzzpipe.study.skipped import record_not_assessed

SECTION = "across_outcomes"


def compare_across_outcomes(
    results: StudyResults, fits: Mapping[str, Any], data: pd.DataFrame, inference: Inference
) -> None:
    """Equality tests of every shared breadth coefficient across the outcomes' models."""
    if len(fits) < 2:
        return
    labels = list(fits)
    chosen = engine.current()
    source = chosen.source(data) if chosen.chunked else None  # sums over the frame's chunks
    # the fits' rows as labels of ``data`` (on dask a sample's rows are on the workers, its fit's
    # row ids a range of its own): held while the outcomes are compared, let go after
    fits = {label: chosen.labelled(fits[label], data) for label in labels}
    try:
        stacked = suest([fits[label] for label in labels], data, names=labels, source=source)
    except BuzzpipeError as error:
        detail = f"suest across outcomes not run: {error}"
        record_not_assessed(results, "", StudyPart.ACROSS_OUTCOMES, error, detail=detail)
        return
    shared = set.intersection(*(set(map(str, fits[label].params.index)) for label in labels))
    designs: dict[str, ChangeDesigns] = {}  # each model's design on its sample, for every scale
    for term in sorted(name for name in shared if name.startswith("breadth_")):
        scale = term.removeprefix("breadth_")
        tests = (  # (name, test, hypothesis): the effects' test is the study's, last
            (
                f"coefficients_equal_{term}",
                lambda term=term: stacked.test_equal(term),
                Hypothesis(
                    HypothesisKind.EQUAL_ACROSS_OUTCOMES,
                    terms=coefficient_terms(fits[labels[0]], [term]),
                    outcomes=list(labels),
                ),
            ),
            (
                f"equal_{term}",
                lambda scale=scale: equal_effects_test(
                    stacked, fits, labels, data, scale, source, designs=designs
                ),
                Hypothesis(
                    HypothesisKind.PLUS_ONE_EQUAL_ACROSS_OUTCOMES,
                    terms=coefficient_terms(fits[labels[0]], [term]),
                    scales=[scale],
                    outcomes=list(labels),
                ),
            ),
        )
        for name, run, hypothesis in tests:
            try:
                test = run()
            except BuzzpipeError as error:
                record_not_assessed(
                    results,
                    "",
                    StudyPart.ACROSS_OUTCOMES,
                    error,
                    term=term,
                    quantity=f"tests/{SECTION}/{name}",
                )
                break
            results.add_test(
                SECTION,
                name,
                Estimate.joint_test(
                    test,
                    inference.derived(InferenceMethod.SUEST),
                    hypothesis,
                    note=str(stacked.overlap),
                ),
            )


@dataclass(frozen=True)
class EffectsTest:
    """A Wald test of equal effects: chi-squared ``statistic`` with ``df_numerator`` df, and the
    effects it compares (one per model)."""

    statistic: float
    df_numerator: int
    p_value: float
    effects: tuple[float, ...]
    distribution: str = "chi2"


def equal_effects_test(
    stacked: Any,
    fits: Mapping[str, Any],
    labels: list[str],
    data: pd.DataFrame,
    scale: str,
    source: Any = None,
    *,
    designs: dict[str, ChangeDesigns] | None = None,
) -> EffectsTest:
    """Wald test that the +1-partner probability change at ``scale`` is equal in every model:
    the changes and their gradients in each model's coefficients (over that model's own
    estimation sample), placed in suest's stacked order, tested with its joint covariance.
    ``source``: ``data``'s chunks, where the changes are summed (a chunked engine).
    ``designs``: each label's :class:`ChangeDesigns` in memory, kept by the caller across
    scales (filled here)."""
    from buzzpipe.estimate.margins import _estimation_sample

    designs = {} if designs is None else designs
    names = list(map(str, stacked.params.index))
    gradients, effects = [], []
    if source is not None:
        changes = chunked_changes([fits[label] for label in labels], data, source, scale)
    for number, label in enumerate(labels):
        fitted = fits[label]
        if source is not None:
            change = changes[number]
        else:
            if label not in designs:
                # the frame itself where it is the estimation sample in order: no copy
                designs[label] = ChangeDesigns(fitted, _estimation_sample(fitted, data))
            found = designs[label]
            change = average_change(
                fitted, found.sample, fitted.family, plus_one(scale), designs=found
            )
        stacked_gradient = np.zeros(len(names))
        for name, value in zip(fitted.x_names, change.gradient, strict=True):
            stacked_gradient[names.index(f"{label}:{name}")] = value
        gradients.append(stacked_gradient)
        effects.append(change.value)
    gradient = np.array(gradients)
    differences = np.array(effects[1:]) - effects[0]
    contrast = gradient[1:] - gradient[0]
    covariance = contrast @ stacked.vcov.to_numpy() @ contrast.T
    if np.linalg.matrix_rank(covariance) < len(differences):
        raise EstimationError(
            "the differences of the effects have zero variance (the models are the same)"
        )
    statistic = float(differences @ np.linalg.solve(covariance, differences))
    df = len(differences)
    return EffectsTest(statistic, df, float(chi2_sf(statistic, df)), tuple(effects))


def chunked_changes(
    fits: list[Any], data: pd.DataFrame, source: Any, scale: str
) -> list[ProbabilityChange]:
    """Each fit's ``average_change`` of one more kind of partner at ``scale`` over its own
    estimation sample, summed over the chunks of ``data`` where they are (one pass for all)."""
    members = [np.packbits(data.index.isin(pd.Index(fit.row_ids))) for fit in fits]
    light = [replace(fit, row_ids=pd.RangeIndex(0)) for fit in fits]  # no per-firm part
    sums = source.map_reduce(_chunk_changes, light, members, len(data), scale)
    return [ProbabilityChange(value / total, gradient / total) for value, gradient, total in sums]


def _chunk_changes(chunk, where, first_row, fits, members, rows, scale) -> tuple:
    """((sum of w times the change, its gradient, sum of w), ...) per fit over one chunk's firms
    in that fit's sample (tuples, so chunks add entry by entry)."""
    found = []
    for fit, bits in zip(fits, members, strict=True):
        inside = np.unpackbits(bits, count=rows)[first_row : first_row + len(chunk)]
        sample = chunk.loc[inside.astype(bool)]
        if len(sample) == 0:
            found.append((0.0, np.zeros(len(fit.x_names)), 0.0))
            continue
        weights = raw_weights(fit, sample)
        params = fit.params[fit.x_names].to_numpy(dtype=float)
        change = change_at(params, *change_designs(fit, sample, plus_one(scale)), weights,
                           fit.family)  # fmt: skip
        found.append((change.value, change.gradient, float(weights.sum())))
    return tuple(found)
