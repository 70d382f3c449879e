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

Pipelines versus buzz is read on common support: the difference between the first international
and the first local kind of partner (breadth 0 -> 1 for every firm at each scale, the controls
model, probability scale; ``study/common_support.py``), not the Wald test of the two breadth
coefficients, whose "+1" is mostly the first international kind of partner but about the third
local one (that test stays in the tests table, and the breadth-categories model's steps beside
it show whether a concave return changes the comparison).

City-region size has no rule: a moderator that varies only between the five city-regions
cannot support a test (five regional slopes, three residual degrees of freedom; the model
``by_region`` shows each region's slopes descriptively instead). Sector (industry) keeps its
joint test: it varies within regions.

The table is applied to the primary outcome (``StudyResults.verdicts``) and, with the same rules
and thresholds, to every binary outcome the study estimated (``verdicts_by_outcome``: product,
process, new_to_market).

Which p a row reads (the rule table's ``inference`` column) follows the headline rule of
``estimate/inference_rule.py`` (docs/few_clusters.md): the wild cluster score bootstrap by
region wherever the study computes it (the breadth terms, the supermodularity test), the
firm-level robust p only where the bootstrap was not run (the verdict names the inference it
read). Pipelines versus buzz reads the common-support difference of probability changes under
the same rule: the wild cluster score bootstrap by region of the restriction g(b) = 0 (g the
difference of the two first-partner changes as a function of the coefficients), the null
imposed by a restricted fit, with the same region weight vectors as the breadth terms'
bootstrap (``study/common_support.py``); its firm-level delta-method p only where the bootstrap
was not run. Its size and power on the generator are in docs/synthetic_surveys.md; the
bootstrap of the coefficients' difference stays in the tests table. Rows with no region
bootstrap read their own test, named in the column. Firm-level robust and region-clustered
p-values stay in the inference-compared table.

A user's study file (``study/specification.py``) may name another ``inference`` for the rows
that read the headline rule (``robust``: the firm-level robust p; ``cluster``: the
region-clustered Wald p where the study computes one) and another ``alpha`` for every row
(:func:`verdict_rules`); each verdict records the inference it read and its threshold.

Multiplicity: the p each verdict reads (two-sided, one-sided or joint, as its decision) is
adjusted by Holm across a family, and the decision reads the adjusted p. The primary outcome's
assessed verdicts are one family; the other outcomes' verdicts together are a second, labelled
family (``other_outcomes``). Holm controls the family-wise error rate under any dependence, which
the family needs: its rows mix bootstrap tests, delta-method and between-cell tests, so no one
bootstrap gives them shared draws (Romano-Wolf, ``estimate/multiple_testing.py``, needs them).
Each verdict records the unadjusted and the adjusted p, the family and its size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from buzzpipe.estimate.multiple_testing import holm
from buzzpipe.results import Estimate, Note, StudyResults, Verdict
from buzzpipe.results.findings import finding_sentence
from buzzpipe.results.vocabulary import (
    Alternative,
    Decision,
    Finding,
    InferenceKind,
    ModelName,
    StudyPart,
    VerdictState,
)

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
    inference: str = ""  # which p the row reads (the rule table's column)
    part: StudyPart = StudyPart.MODEL  # the part of the study that produces the quantity
    model: ModelName | None = None  # the part's model that produces it, where it has several

    def __post_init__(self) -> None:
        if self.decision not in DECISIONS:
            raise ValueError(f"decision must be one of {DECISIONS}, got {self.decision!r}")
        if not 0 < self.threshold < 1:
            raise ValueError(f"threshold must lie in (0, 1), got {self.threshold!r}")

    def describe(self) -> str:
        """The rule in one line, for tables and the verdict record."""
        paths = " or else ".join(self.quantities)
        return (
            f"{self.decision} test of {paths} at {self.threshold:g} ({self.scale} scale), "
            f"Holm-adjusted across the verdict family"
        )


ALPHA = 0.05
ADJUSTMENT = "holm"
PRIMARY_FAMILY = "primary"
OTHER_FAMILY = "other_outcomes"

BOOTSTRAP = "wild_score_bootstrap"
HEADLINE_TERM = "models/{outcome}/controls/sensitivity/" + BOOTSTRAP + "/{term}"
FIRM_TERM = "models/{outcome}/controls/{term}"
READS_HEADLINE = (
    "headline rule: wild cluster score bootstrap by region (firm-level robust only where the "
    "bootstrap was not run)"
)
READS_DELTA = "firm-level robust, delta method (no region bootstrap of this probability change)"
READS_FIRST_PARTNER = (
    "headline rule: wild cluster score bootstrap by region of the difference of first-partner "
    "probability changes, null imposed by a restricted fit (firm-level robust delta method only "
    "where the bootstrap was not run)"
)
READS_SPILLOVER = (
    "its own test: between cells (meta-regression, Knapp-Hartung t) without links, firm-level "
    "robust with links (study/spillover.py)"
)
READS_JOINT = "firm-level robust joint Wald test (no joint region bootstrap)"


def _breadth(term: str) -> tuple[str, ...]:
    """The rule's p for a breadth term of the headline model, then the firm-level fallback."""
    return (
        HEADLINE_TERM.replace("{term}", term),
        FIRM_TERM.replace("{term}", term),
    )


VERDICT_RULES: tuple[VerdictRule, ...] = (
    VerdictRule(
        Finding.INTERNATIONAL_EFFECT,
        _breadth("breadth_international"),
        Decision.TWO_SIDED,
        ALPHA,
        inference=READS_HEADLINE,
    ),
    VerdictRule(
        Finding.REGIONAL_EFFECT,
        _breadth("breadth_regional"),
        Decision.TWO_SIDED,
        ALPHA,
        inference=READS_HEADLINE,
    ),
    VerdictRule(
        Finding.NATIONAL_EFFECT,
        _breadth("breadth_national"),
        Decision.TWO_SIDED,
        ALPHA,
        inference=READS_HEADLINE,
    ),
    VerdictRule(
        Finding.PIPELINES_STRONGER,
        (
            "tests/{outcome}/first_partner_international_minus_regional_wild_bootstrap",
            "tests/{outcome}/first_partner_international_minus_regional",
            "tests/{outcome}/first_partner_international_minus_national_wild_bootstrap",
            "tests/{outcome}/first_partner_international_minus_national",
        ),
        Decision.TWO_SIDED,
        ALPHA,
        scale="probability",
        inference=READS_FIRST_PARTNER,
        part=StudyPart.PIPELINES_VS_BUZZ,
    ),
    VerdictRule(
        Finding.COMPLEMENTARITY,
        ("tests/{outcome}/supermodularity_wild_bootstrap", "tests/{outcome}/supermodularity"),
        Decision.ONE_SIDED,
        ALPHA,
        inference=READS_HEADLINE,
        part=StudyPart.COMPLEMENTARITY,
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
        inference=READS_DELTA,
        part=StudyPart.COMPLEMENTARITY,
    ),
    VerdictRule(
        Finding.SPILLOVER,
        ("tests/{outcome}/spillover_exposure",),
        Decision.TWO_SIDED,
        ALPHA,
        inference=READS_SPILLOVER,
        part=StudyPart.SPILLOVER,
    ),
    VerdictRule(
        Finding.HETEROGENEITY_SECTOR,
        ("tests/{outcome}/heterogeneity_sector",),
        Decision.JOINT,
        ALPHA,
        scale="joint (log-odds)",
        inference=READS_JOINT,
        part=StudyPart.HETEROGENEITY,
        model=ModelName.BY_SECTOR,
    ),
)


# the inference a user's study file may name for the verdicts (``inference = "..."``): which p
# each row reads where the study computed more than one
INFERENCE_CHOICES: dict[str, str] = {
    "headline": "the headline rule: the wild cluster score bootstrap by city-region where the "
    "study computes it, firm-level robust elsewhere",
    InferenceKind.ROBUST: "firm-level robust Wald tests (Stata vce(robust)) in every row",
    InferenceKind.CLUSTER: "region-clustered Wald tests where the study computes them "
    "(G/(G-1), normal reference; over-rejects with few regions, docs/few_clusters.md), "
    "firm-level robust elsewhere",
}
DEFAULT_INFERENCE = "headline"
READS_ROBUST = "firm-level robust (the study file's choice)"
READS_CLUSTER = (
    "region-clustered Wald where computed, firm-level robust elsewhere (the study file's choice)"
)


def _reads(path: str, inference: str) -> str | None:
    """A rule's results path under a verdict inference: the bootstrap paths of the headline
    rule become region-clustered ones (``cluster``) or are dropped (``robust``, ``cluster``
    where the study computes no clustered test); None drops the path."""
    if BOOTSTRAP in path or path.endswith("_wild_bootstrap"):
        if inference == InferenceKind.ROBUST:
            return None
        if inference == InferenceKind.CLUSTER:
            if BOOTSTRAP in path:
                return path.replace(BOOTSTRAP, InferenceKind.CLUSTER)
            if "first_partner_" in path:
                return None  # no clustered test of a probability change: the delta method reads
            if "international_minus_" in path:
                return path.removesuffix("_wild_bootstrap") + "_cluster_region"
            return None  # supermodularity: no clustered test, the firm-level one reads
    return path


def verdict_rules(
    inference: str = DEFAULT_INFERENCE, alpha: float = ALPHA
) -> tuple[VerdictRule, ...]:
    """The rule table under a verdict inference (``INFERENCE_CHOICES``) and threshold: the
    published study's (``VERDICT_RULES``) by default."""
    if inference not in INFERENCE_CHOICES:
        raise ValueError(f"inference must be one of {tuple(INFERENCE_CHOICES)}, got {inference!r}")
    if inference == DEFAULT_INFERENCE and alpha == ALPHA:
        return VERDICT_RULES
    rules = []
    for rule in VERDICT_RULES:
        paths = tuple(
            path for path in (_reads(path, inference) for path in rule.quantities) if path
        )
        reads = rule.inference
        if rule.inference in (READS_HEADLINE, READS_FIRST_PARTNER) and (
            inference != DEFAULT_INFERENCE
        ):
            reads = READS_ROBUST if inference == InferenceKind.ROBUST else READS_CLUSTER
        rules.append(replace(rule, quantities=paths, threshold=alpha, inference=reads))
    return tuple(rules)


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


def decision_p_value(estimate: Estimate | None, decision: Decision) -> float:
    """The p-value a decision reads from an estimate, before any adjustment: the joint test's
    p, the one-sided p against 'greater', or the two-sided p (NaN when it cannot be had)."""
    if estimate is None or estimate.p_value is None or math.isnan(estimate.p_value):
        return math.nan
    if decision == Decision.JOINT:
        return estimate.p_value
    if decision == Decision.ONE_SIDED:
        return one_sided_p_values(estimate)[0]
    if decision == Decision.TWO_SIDED:
        if estimate.estimate is None or math.isnan(estimate.estimate):
            return math.nan
        if estimate.alternative == Alternative.TWO_SIDED:
            return estimate.p_value
        return min(1.0, 2.0 * min(one_sided_p_values(estimate)))
    raise ValueError(f"decision must be one of {DECISIONS}, got {decision!r}")


def decide(
    estimate: Estimate | None,
    decision: Decision,
    threshold: float,
    p_value: float | None = None,
) -> VerdictState:
    """Apply one decision rule to one estimate (see the module docstring); ``p_value``, when
    given, replaces the estimate's own (the family-adjusted p)."""
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {DECISIONS}, got {decision!r}")
    p = decision_p_value(estimate, decision) if p_value is None else p_value
    if estimate is None or math.isnan(p):
        return NOT_ASSESSED
    if p >= threshold:
        return NOT_FOUND
    if decision in (Decision.JOINT, Decision.ONE_SIDED):
        return FOUND
    return FOUND if estimate.estimate > 0 else OPPOSITE


def _read(
    results: StudyResults, rule: VerdictRule, outcome: str
) -> tuple[list[str], str, Estimate | None]:
    """The rule's paths for one outcome, the one it reads (first produced) and its estimate."""
    paths = [template.format(outcome=outcome) for template in rule.quantities]
    for path in paths:
        found = results.lookup(path)
        if found is not None:
            return paths, path, found
    return paths, paths[0], None


def decide_family(
    results: StudyResults,
    outcomes: Sequence[str],
    rules: Sequence[VerdictRule] = VERDICT_RULES,
    family: str = PRIMARY_FAMILY,
) -> dict[str, list[Verdict]]:
    """Every rule applied to each outcome, the assessed verdicts adjusted together by Holm as
    one family: outcome -> verdicts in table order."""
    readings = [
        (outcome, rule, *_read(results, rule, outcome)) for outcome in outcomes for rule in rules
    ]
    raw = [decision_p_value(estimate, rule.decision) for _, rule, _, _, estimate in readings]
    assessed = [index for index, p in enumerate(raw) if not math.isnan(p)]
    adjusted = dict(zip(assessed, holm([raw[i] for i in assessed]), strict=True))
    verdicts: dict[str, list[Verdict]] = {outcome: [] for outcome in outcomes}
    for index, (outcome, rule, paths, chosen, estimate) in enumerate(readings):
        p_adjusted = float(adjusted[index]) if index in adjusted else None
        result = decide(estimate, rule.decision, rule.threshold, p_adjusted)
        why = why_not_assessed(results, rule, outcome, paths) if result == NOT_ASSESSED else None
        verdicts[outcome].append(
            Verdict(
                finding=rule.finding,
                verdict=result,
                outcome=outcome,
                statement=_statement(rule, result, outcome, estimate, p_adjusted, len(assessed)),
                rule=rule.describe(),
                decision=rule.decision,
                quantities=paths,
                quantity=chosen,
                threshold=rule.threshold,
                estimate=None if estimate is None else estimate.estimate,
                p_value=None if index not in adjusted else raw[index],
                p_adjusted=p_adjusted,
                adjustment=ADJUSTMENT,
                family=family,
                family_size=len(assessed),
                inference=None if estimate is None else estimate.inference,
                reason=None if why is None else why.cause,
                reason_detail="" if why is None else why.text,
            )
        )
    return verdicts


def decide_verdicts(
    results: StudyResults,
    outcome: str = PRIMARY_OUTCOME,
    rules: Sequence[VerdictRule] = VERDICT_RULES,
) -> list[Verdict]:
    """Every rule of the table applied to the results for one outcome, in table order, the
    assessed verdicts Holm-adjusted as the primary family."""
    return decide_family(results, [outcome], rules, PRIMARY_FAMILY)[outcome]


def why_not_assessed(
    results: StudyResults, rule: VerdictRule, outcome: str, paths: Sequence[str]
) -> Note | None:
    """The study's record of why a rule's quantity is missing: the outcome's controls model
    (which every part builds on), the dropped term the rule reads, or the rule's part."""
    terms = {path.rsplit("/", 1)[-1] for path in paths if path.startswith("models/")}
    for record in results.meta.not_assessed():
        if record.outcome != outcome or record.part is None:
            continue
        if record.part == StudyPart.MODEL and record.model == ModelName.CONTROLS:
            if record.term is None or record.term in terms:
                return record
        elif record.part == rule.part and rule.part != StudyPart.MODEL:
            if rule.model is None or record.model in (None, rule.model):
                return record
    return None


def decide_verdicts_by_outcome(
    results: StudyResults,
    outcomes: Sequence[str] = VERDICT_OUTCOMES_DEFAULT,
    rules: Sequence[VerdictRule] = VERDICT_RULES,
) -> dict[str, list[Verdict]]:
    """The rule table applied to each outcome the study estimated or tried to (product,
    process, new_to_market by default) with the same rules and thresholds: the primary outcome
    (``meta.primary_outcome``) as its own family, the others together as a second family. An
    outcome whose models could not be estimated gets its not_assessed verdicts with the
    reason, not a silent gap."""
    primary = results.meta.primary_outcome or PRIMARY_OUTCOME
    tried = {record.outcome for record in results.meta.not_assessed()}
    present = [outcome for outcome in outcomes if outcome in results.models or outcome in tried]
    others = [outcome for outcome in present if outcome != primary]
    by_outcome = decide_family(results, others, rules, OTHER_FAMILY) if others else {}
    if primary in present:
        by_outcome[primary] = decide_verdicts(results, primary, rules)
    return {outcome: by_outcome[outcome] for outcome in present}


def verdict_table(verdicts: Sequence[Verdict]) -> dict[str, VerdictState]:
    """Finding -> verdict outcome, the compact form the acceptance checks compare."""
    return {verdict.finding: verdict.verdict for verdict in verdicts}


def rule_table_markdown(rules: Sequence[VerdictRule] = VERDICT_RULES) -> str:
    """The rule table as Markdown, for the documentation and the report's appendix."""
    lines = [
        "| finding | quantity (first available) | inference read | rule | scale | threshold |",
        "|---|---|---|---|---|---|",
    ]
    for rule in rules:
        quantities = "; ".join(f"`{path}`" for path in rule.quantities)
        lines.append(
            f"| {rule.finding} | {quantities} | {rule.inference} | {rule.decision} | "
            f"{rule.scale} | {rule.threshold:g}, {ADJUSTMENT.capitalize()}-adjusted |"
        )
    return "\n".join(lines)


def _statement(
    rule: VerdictRule,
    result: VerdictState,
    outcome: str,
    estimate: Estimate | None,
    p_adjusted: float | None = None,
    family_size: int = 1,
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
    if p_adjusted is not None:
        evidence += f", Holm-adjusted p = {p_adjusted:.3g} over {family_size} verdicts"
    return f"{text[:-1]} ({evidence}, {estimate.inference.short()} inference)."
