"""The findings catalogue: per finding, its label, and per verdict state, its sentence.

The study's verdicts (``study/verdicts.py``) write their statements from it and the report's
findings section prints it; neither keeps sentences of its own. A sentence depends only on the
finding, the state and the outcome, so two surveys with opposite verdicts get opposite findings
from the same words, whatever the survey is called.
"""

from __future__ import annotations

from dataclasses import dataclass

from buzzpipe.results.vocabulary import Finding, VerdictState

OUTCOME_LABELS: dict[str, str] = {
    "product": "Product innovation",
    "process": "Process innovation",
    "new_to_market": "New-to-market innovation",
    "product_novelty": "Product novelty (ordered)",
}


def outcome_label(outcome: str) -> str:
    """An outcome's printed label ('new_to_market' -> 'New-to-market innovation')."""
    return OUTCOME_LABELS.get(outcome, outcome.replace("_", " ").capitalize())


def outcome_words(outcome: str) -> str:
    """An outcome inside a sentence: its label with a lower-case first letter."""
    label = outcome_label(outcome)
    return label[:1].lower() + label[1:]


@dataclass(frozen=True)
class FindingEntry:
    """One finding: its label, and the sentence of each state ({outcome} is filled in)."""

    label: str
    sentences: dict[VerdictState, str]


NOT_ASSESSED = "Not assessed: the study could not produce the number for {label} ({outcome})."

CATALOGUE: dict[Finding, FindingEntry] = {
    Finding.INTERNATIONAL_EFFECT: FindingEntry(
        "International partners",
        {
            VerdictState.FOUND: "Firms with more kinds of international partner are more "
            "likely to report {outcome}.",
            VerdictState.NOT_FOUND: "More kinds of international partner do not clearly go "
            "with more {outcome}.",
            VerdictState.OPPOSITE: "Firms with more kinds of international partner are less "
            "likely to report {outcome}.",
        },
    ),
    Finding.REGIONAL_EFFECT: FindingEntry(
        "Regional partners",
        {
            VerdictState.FOUND: "Firms with more kinds of partner in their own city-region are "
            "more likely to report {outcome}.",
            VerdictState.NOT_FOUND: "More kinds of partner in the firm's own city-region do not "
            "clearly go with more {outcome}.",
            VerdictState.OPPOSITE: "Firms with more kinds of partner in their own city-region "
            "are less likely to report {outcome}.",
        },
    ),
    Finding.NATIONAL_EFFECT: FindingEntry(
        "National partners",
        {
            VerdictState.FOUND: "Firms with more kinds of partner elsewhere in the country are "
            "more likely to report {outcome}.",
            VerdictState.NOT_FOUND: "More kinds of partner elsewhere in the country do not "
            "clearly go with more {outcome}.",
            VerdictState.OPPOSITE: "Firms with more kinds of partner elsewhere in the country "
            "are less likely to report {outcome}.",
        },
    ),
    Finding.PIPELINES_STRONGER: FindingEntry(
        "Pipelines stronger than buzz",
        {
            VerdictState.FOUND: "Global pipelines are stronger than local buzz: international "
            "partners go with more {outcome} than local partners (compared as the rule below "
            "says).",
            VerdictState.NOT_FOUND: "Global pipelines and local buzz cannot be told apart for "
            "{outcome}.",
            VerdictState.OPPOSITE: "Local buzz is stronger than global pipelines: local "
            "partners go with more {outcome} than international partners (compared as the "
            "rule below says).",
        },
    ),
    Finding.COMPLEMENTARITY: FindingEntry(
        "Complements in the odds",
        {
            VerdictState.FOUND: "Local and global collaboration are complements in the odds of "
            "{outcome}: firms with both have higher odds than the two separately predict "
            "(firms choose their regime, so this is an association, not an effect).",
            VerdictState.NOT_FOUND: "Local and global collaboration are not shown to be "
            "complements in the odds of {outcome}.",
        },
    ),
    Finding.COMPLEMENTARITY_PROBABILITY: FindingEntry(
        "Complements on the probability scale (Ai-Norton)",
        {
            VerdictState.FOUND: "On the probability scale, one more local and one more "
            "international kind of partner together go with more {outcome} than the two "
            "separately (an association: firms choose their partners).",
            VerdictState.NOT_FOUND: "On the probability scale, local and global collaboration "
            "show no interaction for {outcome}.",
            VerdictState.OPPOSITE: "On the probability scale, one more local and one more "
            "international kind of partner together go with less {outcome} than the two "
            "separately (an association: firms choose their partners).",
        },
    ),
    Finding.SPILLOVER: FindingEntry(
        "Association with local pipelines",
        {
            VerdictState.FOUND: "Association found: firms whose local partners (or local "
            "peers in their region and industry) have international partners report more "
            "{outcome}. An association, not shown to be a spill-over: it assumes no shock "
            "common to a region and industry drives both, and no choice of partners on an "
            "unobserved capability.",
            VerdictState.NOT_FOUND: "No association found between {outcome} and local "
            "partners' (or local peers') international partners.",
            VerdictState.OPPOSITE: "Negative association found: firms whose local partners (or "
            "local peers) have international partners report less {outcome}.",
        },
    ),
    Finding.HETEROGENEITY_SECTOR: FindingEntry(
        "Differences by industry (sector)",
        {
            VerdictState.FOUND: "The effects of partner breadth on {outcome} differ between "
            "industries.",
            VerdictState.NOT_FOUND: "The effects of partner breadth on {outcome} are not shown "
            "to differ between industries.",
        },
    ),
}


# findings an older buzzpipe decided and this one does not: their verdicts are left out when a
# results file is read (with a note), since no rule of this version supports them
RETIRED_FINDINGS: dict[str, str] = {
    "heterogeneity_region_size": "a verdict on differences by city-region size, written by an "
    "older buzzpipe, is not shown: a moderator that varies only between five city-regions "
    "cannot support a test (issue 16); each region's own slopes are shown descriptively instead "
    "when the study is run again",
}


def finding_label(finding: Finding | str) -> str:
    """A finding's printed label."""
    entry = CATALOGUE.get(finding)  # type: ignore[call-overload]
    return entry.label if entry else str(finding).replace("_", " ")


def finding_sentence(finding: Finding | str, state: VerdictState | str, outcome: str) -> str:
    """The catalogue's sentence for one finding in one state about one outcome (its name:
    'new_to_market'), ending in a full stop."""
    words = outcome_words(outcome)
    label = finding_label(finding)
    state = VerdictState(state)
    if state == VerdictState.NOT_ASSESSED:
        return NOT_ASSESSED.format(label=label.lower(), outcome=words)
    entry = CATALOGUE.get(finding)  # type: ignore[call-overload]
    if entry is not None and state in entry.sentences:
        return entry.sentences[state].format(outcome=words)
    return f"{label[:1].upper() + label[1:]} ({words}): {state.value.replace('_', ' ')}."
