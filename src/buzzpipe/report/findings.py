"""The findings section, written from the verdicts: one plain sentence per verdict.

The sentences depend only on each verdict's finding, whether it holds and its evidence, so two
surveys with opposite verdicts get opposite findings from the same code.
"""

from collections.abc import Mapping
from typing import Any

from buzzpipe.report import formatting

# finding -> (sentence when it holds, sentence when it does not); {outcome} is filled in.
SENTENCES: dict[str, tuple[str, str]] = {
    "international_effect": (
        "Firms with more kinds of international partner are more likely to report {outcome}.",
        "More kinds of international partner do not clearly go with more {outcome}.",
    ),
    "regional_effect": (
        "Firms with more kinds of partner in their own city-region are more likely to report "
        "{outcome}.",
        "More kinds of partner in the firm's own city-region do not clearly go with more "
        "{outcome}.",
    ),
    "national_effect": (
        "Firms with more kinds of partner elsewhere in the country are more likely to report "
        "{outcome}.",
        "More kinds of partner elsewhere in the country do not clearly go with more {outcome}.",
    ),
    "pipelines_stronger": (
        "Global pipelines are stronger than local buzz: the international effect on {outcome} "
        "exceeds the regional one.",
        "Global pipelines are not shown to be stronger than local buzz for {outcome}.",
    ),
    "buzz_stronger": (
        "Local buzz is stronger than global pipelines: the regional effect on {outcome} exceeds "
        "the international one.",
        "Local buzz is not shown to be stronger than global pipelines for {outcome}.",
    ),
    "complementarity": (
        "Local and global collaboration are complements for {outcome}: firms with both do better "
        "than the two separately would predict.",
        "Local and global collaboration are not shown to be complements for {outcome}.",
    ),
    "substitutes": (
        "Local and global collaboration are substitutes for {outcome}.",
        "Local and global collaboration are not shown to be substitutes for {outcome}.",
    ),
    "spillover": (
        "Pipeline knowledge spills over locally: firms whose regional partners have international "
        "partners report more {outcome}.",
        "No local spill-over of pipeline knowledge is found for {outcome}.",
    ),
    "heterogeneity": (
        "The effects on {outcome} differ between city-regions or sectors.",
        "The effects on {outcome} are not shown to differ between city-regions or sectors.",
    ),
}
UNDECIDED = "The numbers do not decide whether {label} ({outcome})."


def evidence_text(evidence: Mapping[str, Any]) -> str:
    """The evidence behind a verdict in a parenthesis: estimate, interval, statistic, p."""
    parts = []
    for key, value in evidence.items():
        name = key.replace("_", " ")
        if value is None:
            continue
        if key in ("interval",) or (isinstance(value, list) and len(value) == 2):
            parts.append(
                f"{name} {formatting.interval(value)}"
                if key != "interval"
                else f"95% interval {formatting.interval(value)}"
            )
        elif key == "p" or key.endswith("_p"):
            text = formatting.p_value(value)
            parts.append(f"{name} {text}" if text.startswith("<") else f"{name} = {text}")
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
    """One sentence for one verdict, with its evidence and the rule that decided it."""
    outcome_key = verdict.get("outcome")
    outcome = outcome_labels.get(outcome_key, outcome_key or "innovation")
    outcome = outcome[:1].lower() + outcome[1:]
    holds = verdict["holds"]
    label = verdict.get("label", verdict["finding"].replace("_", " "))
    if holds is None:
        sentence = UNDECIDED.format(label=label.lower(), outcome=outcome)
    elif verdict["finding"] in SENTENCES:
        sentence = SENTENCES[verdict["finding"]][0 if holds else 1].format(outcome=outcome)
    else:
        sentence = f"{label} ({outcome}): {'supported' if holds else 'not supported'}."
    evidence = evidence_text(verdict.get("evidence", {}))
    if evidence:
        sentence = sentence[:-1] + f" ({evidence})."
    return sentence


def findings(results: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], str]]:
    """Each verdict with its sentence, in the order the study gave them."""
    labels = {key: record["label"] for key, record in results["outcomes"].items()}
    return [(verdict, finding_sentence(verdict, labels)) for verdict in results["verdicts"]]
