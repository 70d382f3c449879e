"""Verdicts: a written rule table (finding x rule x threshold) applied to the study's numbers.

A verdict is a pure function of a :class:`~buzzpipe.results.StudyResults`: it reads the
estimates named in the table and nothing else (never the survey's file name or a preset's name).
Each verdict is one of

- ``found``: the rule's test rejects in the stated direction at the threshold;
- ``not_found``: it does not reject;
- ``opposite``: a two-sided rule rejects in the other direction (a negative effect, buzz
  stronger than pipelines, substitutes on the probability scale);
- ``not_assessed``: the study could not produce the number (no regional scale, no links and no
  cells, a joint test the covariance cannot support).

Decisions, with p the p-value of the named estimate and alpha the rule's threshold:

- ``two_sided``: found when estimate > 0 and the two-sided p < alpha; opposite when estimate < 0
  and p < alpha.
- ``one_sided``: found when the one-sided p against "greater" < alpha, else not found. There is
  no ``opposite`` from a one-sided rule: calling the other tail at alpha too would make it a test
  at 2 alpha (complementarity was a 10% test that way).
- ``joint``: found when the joint test's p < alpha (no direction).

Each rule names the scale its quantity reads (``log-odds``, ``probability``, ``joint``),
printed in the rule table: complementarity is a finding on the log-odds scale ("complements in
the odds") and, separately, on the probability scale (the Ai-Norton double difference).

The table is applied to the primary outcome (``StudyResults.verdicts``) and, with the same rules
and thresholds, to every binary outcome the study estimated (``verdicts_by_outcome``: product,
process, new_to_market).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from buzzpipe.results import Estimate, StudyResults, Verdict
from buzzpipe.results.findings import finding_sentence
from buzzpipe.results.vocabulary import Alternative, Decision, Finding, VerdictState

FOUND, NOT_FOUND, OPPOSITE, NOT_ASSESSED = (
    VerdictState.FOUND,
    VerdictState.NOT_FOUND,
    VerdictState.OPPOSITE,
    VerdictState.NOT_ASSESSED,
)
VERDICT_OUTCOMES = tuple(VerdictState)
DECISIONS = tuple(Decision)
PRIMARY_OUTCOME = "product"
VERDICT_OUTCOMES_DEFAULT = ("product", "process", "new_to_market")  # the binary outcomes


@dataclass(frozen=True)
class VerdictRule:
    """One row of the rule table; what each state says is in the findings catalogue
    (``buzzpipe.results.findings``).

    ``quantities`` are results paths with ``{outcome}`` left to fill; the first one the study
    produced is used (so a survey without the regional scale compares pipelines with national
    partners, and says so through the path in the verdict).
    """

    finding: Finding
    quantities: tuple[str, ...]
    decision: Decision
    threshold: float
    scale: str = "log-odds"  # the scale the quantity reads: log-odds, probability, joint

    def __post_init__(self) -> None:
        if self.decision not in DECISIONS:
            raise ValueError(f"decision must be one of {DECISIONS}, got {self.decision!r}")
        if not 0 < self.threshold < 1:
            raise ValueError(f"threshold must lie in (0, 1), got {self.threshold!r}")

    def describe(self) -> str:
        """The rule in one line, for tables and the verdict record."""
        paths = " or else ".join(self.quantities)
        return f"{self.decision} test of {paths} at {self.threshold:g} ({self.scale} scale)"


ALPHA = 0.05

VERDICT_RULES: tuple[VerdictRule, ...] = (
    VerdictRule(
        Finding.INTERNATIONAL_EFFECT,
        ("models/{outcome}/controls/breadth_international",),
        Decision.TWO_SIDED,
        ALPHA,
    ),
    VerdictRule(
        Finding.REGIONAL_EFFECT,
        ("models/{outcome}/controls/breadth_regional",),
        Decision.TWO_SIDED,
        ALPHA,
    ),
    VerdictRule(
        Finding.NATIONAL_EFFECT,
        ("models/{outcome}/controls/breadth_national",),
        Decision.TWO_SIDED,
        ALPHA,
    ),
    VerdictRule(
        Finding.PIPELINES_STRONGER,
        (
            "tests/{outcome}/international_minus_regional",
            "tests/{outcome}/international_minus_national",
        ),
        Decision.TWO_SIDED,
        ALPHA,
    ),
    VerdictRule(
        Finding.COMPLEMENTARITY,
        ("tests/{outcome}/supermodularity",),
        Decision.ONE_SIDED,
        ALPHA,
    ),
    VerdictRule(
        Finding.COMPLEMENTARITY_PROBABILITY,
        (
            "tests/{outcome}/interaction_probability_regional_international",
            "tests/{outcome}/interaction_probability_national_international",
        ),
        Decision.TWO_SIDED,
        ALPHA,
        scale="probability",
    ),
    VerdictRule(
        Finding.SPILLOVER,
        ("tests/{outcome}/spillover_exposure",),
        Decision.TWO_SIDED,
        ALPHA,
    ),
    VerdictRule(
        Finding.HETEROGENEITY_REGION_SIZE,
        ("tests/{outcome}/heterogeneity_region_size",),
        Decision.JOINT,
        ALPHA,
        scale="joint (log-odds)",
    ),
    VerdictRule(
        Finding.HETEROGENEITY_SECTOR,
        ("tests/{outcome}/heterogeneity_sector",),
        Decision.JOINT,
        ALPHA,
        scale="joint (log-odds)",
    ),
)


def one_sided_p_values(estimate: Estimate) -> tuple[float, float]:
    """The p-values against 'greater' and against 'less' implied by an estimate's test."""
    p = estimate.p_value
    if estimate.alternative == Alternative.GREATER:
        return p, 1.0 - p
    if estimate.alternative == Alternative.LESS:
        return 1.0 - p, p
    if estimate.estimate is None or math.isnan(estimate.estimate):
        return math.nan, math.nan
    if estimate.estimate >= 0:
        return p / 2.0, 1.0 - p / 2.0
    return 1.0 - p / 2.0, p / 2.0


def decide(estimate: Estimate | None, decision: Decision, threshold: float) -> VerdictState:
    """Apply one decision rule to one estimate (see the module docstring)."""
    if estimate is None or estimate.p_value is None or math.isnan(estimate.p_value):
        return NOT_ASSESSED
    if decision == Decision.JOINT:
        return FOUND if estimate.p_value < threshold else NOT_FOUND
    if decision == Decision.ONE_SIDED:
        p_greater, _ = one_sided_p_values(estimate)
        if math.isnan(p_greater):
            return NOT_ASSESSED
        return FOUND if p_greater < threshold else NOT_FOUND
    if decision == Decision.TWO_SIDED:
        if estimate.estimate is None or math.isnan(estimate.estimate):
            return NOT_ASSESSED
        if estimate.alternative == Alternative.TWO_SIDED:
            p_two = estimate.p_value
        else:
            p_two = min(1.0, 2.0 * min(one_sided_p_values(estimate)))
        if p_two >= threshold:
            return NOT_FOUND
        return FOUND if estimate.estimate > 0 else OPPOSITE
    raise ValueError(f"decision must be one of {DECISIONS}, got {decision!r}")


def decide_verdicts(
    results: StudyResults,
    outcome: str = PRIMARY_OUTCOME,
    rules: Sequence[VerdictRule] = VERDICT_RULES,
) -> list[Verdict]:
    """Every rule of the table applied to the results for one outcome, in table order."""
    verdicts = []
    for rule in rules:
        paths = [template.format(outcome=outcome) for template in rule.quantities]
        chosen, estimate = paths[0], None
        for path in paths:
            found = results.lookup(path)
            if found is not None:
                chosen, estimate = path, found
                break
        result = decide(estimate, rule.decision, rule.threshold)
        verdicts.append(
            Verdict(
                finding=rule.finding,
                verdict=result,
                outcome=outcome,
                statement=_statement(rule, result, outcome, estimate),
                rule=rule.describe(),
                decision=rule.decision,
                quantities=paths,
                quantity=chosen,
                threshold=rule.threshold,
                estimate=None if estimate is None else estimate.estimate,
                p_value=None if estimate is None else estimate.p_value,
            )
        )
    return verdicts


def decide_verdicts_by_outcome(
    results: StudyResults,
    outcomes: Sequence[str] = VERDICT_OUTCOMES_DEFAULT,
    rules: Sequence[VerdictRule] = VERDICT_RULES,
) -> dict[str, list[Verdict]]:
    """The rule table applied to each outcome the study estimated (product, process,
    new_to_market by default), outcome by outcome with the same rules and thresholds."""
    return {
        outcome: decide_verdicts(results, outcome, rules)
        for outcome in outcomes
        if outcome in results.models
    }


def verdict_table(verdicts: Sequence[Verdict]) -> dict[str, VerdictState]:
    """Finding -> verdict outcome, the compact form the acceptance checks compare."""
    return {verdict.finding: verdict.verdict for verdict in verdicts}


def rule_table_markdown(rules: Sequence[VerdictRule] = VERDICT_RULES) -> str:
    """The rule table as Markdown, for the documentation and the report's appendix."""
    lines = [
        "| finding | quantity (first available) | rule | scale | threshold |",
        "|---|---|---|---|---|",
    ]
    for rule in rules:
        quantities = "; ".join(f"`{path}`" for path in rule.quantities)
        lines.append(
            f"| {rule.finding} | {quantities} | {rule.decision} | {rule.scale} "
            f"| {rule.threshold:g} |"
        )
    return "\n".join(lines)


def _statement(
    rule: VerdictRule, result: VerdictState, outcome: str, estimate: Estimate | None
) -> str:
    """The catalogue's sentence with the evidence that decided it (``results.json``'s
    ``statement``; the report prints the same sentence with evidence on its own scale)."""
    text = finding_sentence(rule.finding, result, outcome)
    if result == NOT_ASSESSED:
        produced = ", ".join(rule.quantities).format(outcome=outcome)
        return f"{text[:-1]}: none of {produced}."
    assert estimate is not None
    evidence = f"p = {estimate.p_value:.3g}"
    if estimate.estimate is not None and not math.isnan(estimate.estimate):
        evidence = f"estimate {estimate.estimate:.3g}, " + evidence
    if estimate.alternative != Alternative.TWO_SIDED:
        evidence += f" ({estimate.alternative})"
    return f"{text[:-1]} ({evidence}, {estimate.inference.short()} inference)."
