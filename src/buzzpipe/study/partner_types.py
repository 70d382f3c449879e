"""Partner-type detail: which kinds of partner matter at which scale.

The partner-type model has one 0/1 term per scale x partner type (the own group left out). Per
scale, a joint Wald test that every partner type there has no effect
(``tests[outcome]["partner_types_<scale>"]``); the single terms are in the model's results.
"""

from __future__ import annotations

from typing import Any

from buzzpipe.errors import BuzzpipeError
from buzzpipe.estimate.hypothesis_tests import wald_test
from buzzpipe.results import Estimate, Hypothesis, Inference, StudyResults
from buzzpipe.results.vocabulary import HypothesisKind, ModelName, StudyPart
from buzzpipe.study.models import coefficient_terms
from buzzpipe.study.skipped import record_not_assessed
from buzzpipe.survey.schema import parse_collab_column


def partner_type_tests(
    results: StudyResults, outcome: str, fitted: Any, inference: Inference
) -> None:
    """Joint test per scale of the partner-type indicators in a fitted partner-type model."""
    by_scale: dict[str, list[str]] = {}
    for name in map(str, fitted.params.index):
        parsed = parse_collab_column(name)
        if parsed is not None:
            by_scale.setdefault(parsed[0], []).append(name)
    for scale, terms in by_scale.items():
        try:
            test = wald_test(fitted, [f"{term} = 0" for term in terms])
        except BuzzpipeError as error:
            record_not_assessed(
                results,
                outcome,
                StudyPart.MODEL,
                error,
                model=ModelName.PARTNER_TYPES,
                quantity=f"tests/{outcome}/partner_types_{scale}",
                detail=f"partner types at the {scale} scale not tested jointly: {error}",
            )
            continue
        results.add_test(
            outcome,
            f"partner_types_{scale}",
            Estimate.joint_test(
                test,
                inference,
                Hypothesis(
                    HypothesisKind.PARTNER_TYPES_ZERO,
                    terms=coefficient_terms(fitted, terms),
                    scales=[scale],
                    count=len(terms),
                ),
            ),
        )
