"""The findings section, written from the verdicts: one plain sentence per verdict.

The sentences are the findings catalogue's (``buzzpipe.results.findings``, which the study's
verdicts write from too); they depend only on each verdict's finding, state, outcome and
evidence, so two surveys with opposite verdicts get opposite findings, whatever the survey is
called.
"""

from collections.abc import Mapping
from typing import Any

from buzzpipe.report import formatting
from buzzpipe.results.findings import finding_sentence as catalogue_sentence
from buzzpipe.results.vocabulary import VerdictState

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


def finding_sentence(verdict: Mapping[str, Any]) -> str:
    """One sentence for one verdict (the findings catalogue's), with the evidence that
    decided it."""
    state = verdict["state"]
    sentence = catalogue_sentence(verdict["finding"], state, verdict.get("outcome") or "")
    evidence = evidence_text(verdict.get("evidence", {}))
    if evidence and state != VerdictState.NOT_ASSESSED:
        sentence = sentence[:-1] + f" ({evidence})."
    return sentence


def findings(results: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], str]]:
    """Each verdict with its sentence, in the order the study gave them."""
    return [(verdict, finding_sentence(verdict)) for verdict in results["verdicts"]]
