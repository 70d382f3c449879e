"""The findings section, written from the verdicts: one plain sentence per verdict.

The sentences depend only on each verdict's finding, state and evidence, so two surveys with
opposite verdicts get opposite findings from the same code, whatever the survey is called.
"""

from collections.abc import Mapping
from typing import Any

from buzzpipe.report import formatting

# finding -> state -> sentence; {outcome} is filled in (lower case).
SENTENCES: dict[str, dict[str, str]] = {
    "international_effect": {
        "found": "Firms with more kinds of international partner are more likely to report "
        "{outcome}.",
        "not_found": "More kinds of international partner do not clearly go with more {outcome}.",
        "opposite": "Firms with more kinds of international partner are less likely to report "
        "{outcome}.",
    },
    "regional_effect": {
        "found": "Firms with more kinds of partner in their own city-region are more likely to "
        "report {outcome}.",
        "not_found": "More kinds of partner in the firm's own city-region do not clearly go with "
        "more {outcome}.",
        "opposite": "Firms with more kinds of partner in their own city-region are less likely "
        "to report {outcome}.",
    },
    "national_effect": {
        "found": "Firms with more kinds of partner elsewhere in the country are more likely to "
        "report {outcome}.",
        "not_found": "More kinds of partner elsewhere in the country do not clearly go with more "
        "{outcome}.",
        "opposite": "Firms with more kinds of partner elsewhere in the country are less likely "
        "to report {outcome}.",
    },
    "pipelines_stronger": {
        "found": "Global pipelines are stronger than local buzz: one more kind of international "
        "partner goes with more {outcome} than one more kind of local partner.",
        "not_found": "Global pipelines and local buzz cannot be told apart for {outcome}.",
        "opposite": "Local buzz is stronger than global pipelines: one more kind of local "
        "partner goes with more {outcome} than one more kind of international partner.",
    },
    "complementarity": {
        "found": "Local and global collaboration are complements for {outcome}: firms with both "
        "do better than the two separately predict.",
        "not_found": "Local and global collaboration are not shown to be complements for "
        "{outcome}.",
        "opposite": "Local and global collaboration are substitutes for {outcome}: firms with "
        "both do worse than the two separately predict.",
    },
    "spillover": {
        "found": "Pipeline knowledge spills over locally: firms whose local partners have "
        "international partners report more {outcome}.",
        "not_found": "No local spill-over of pipeline knowledge is found for {outcome}.",
        "opposite": "Firms whose local partners have international partners report less {outcome}.",
    },
    "heterogeneity_region_size": {
        "found": "The effects of partner breadth on {outcome} differ by city-region size.",
        "not_found": "The effects of partner breadth on {outcome} are not shown to differ by "
        "city-region size.",
    },
    "heterogeneity_sector": {
        "found": "The effects of partner breadth on {outcome} differ by sector.",
        "not_found": "The effects of partner breadth on {outcome} are not shown to differ by "
        "sector.",
    },
}
NOT_ASSESSED = "Not assessed: the study could not produce the number for {label} ({outcome})."
_EVIDENCE_NAMES = {
    "interval": "95% interval",
    "odds_ratio": "odds ratio",
    "p": "p",
    "chi2": "\u03c7\u00b2",
}


def evidence_text(evidence: Mapping[str, Any]) -> str:
    """The evidence behind a verdict, for a parenthesis: estimate, interval, p, inference."""
    parts = []
    for key, value in evidence.items():
        if value is None:
            continue
        name = _EVIDENCE_NAMES.get(key, key.replace("_", " "))
        if isinstance(value, list):
            parts.append(f"{name} {formatting.interval(value)}")
        elif key == "p":
            text = formatting.p_value(value)
            parts.append(f"p {text}" if text.startswith("<") else f"p = {text}")
        elif isinstance(value, bool):
            parts.append(f"{name}: {'yes' if value else 'no'}")
        elif isinstance(value, int):
            parts.append(f"{name} = {formatting.count(value)}")
        elif isinstance(value, float):
            parts.append(f"{name} = {formatting.number(value)}")
        else:
            parts.append(f"{name}: {value}")
    return "; ".join(parts)


def finding_sentence(verdict: Mapping[str, Any], outcome_labels: Mapping[str, str]) -> str:
    """One sentence for one verdict, with the evidence that decided it."""
    outcome_key = verdict.get("outcome")
    outcome = outcome_labels.get(outcome_key, outcome_key or "innovation")
    outcome = outcome[:1].lower() + outcome[1:]
    state = verdict["state"]
    label = verdict.get("label", verdict["finding"].replace("_", " "))
    phrases = SENTENCES.get(verdict["finding"], {})
    if state == "not_assessed":
        sentence = NOT_ASSESSED.format(label=label.lower(), outcome=outcome)
    elif state in phrases:
        sentence = phrases[state].format(outcome=outcome)
    else:
        sentence = f"{label[:1].upper() + label[1:]} ({outcome}): {state.replace('_', ' ')}."
    evidence = evidence_text(verdict.get("evidence", {}))
    if evidence and state != "not_assessed":
        sentence = sentence[:-1] + f" ({evidence})."
    return sentence


def findings(results: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], str]]:
    """Each verdict with its sentence, in the order the study gave them."""
    labels = {key: record["label"] for key, record in results["outcomes"].items()}
    return [(verdict, finding_sentence(verdict, labels)) for verdict in results["verdicts"]]
