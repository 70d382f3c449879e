"""The findings section, written from the verdicts: one plain sentence per verdict.

The sentences are the findings catalogue's (``buzzpipe.results.findings``, which the study's
verdicts write from too); they depend only on each verdict's finding, state, outcome and
evidence, so two surveys with opposite verdicts get opposite findings, whatever the survey is
called.
"""

import math
from collections.abc import Mapping
from typing import Any

from buzzpipe.report import formatting
from buzzpipe.report.intervals import is_union
from buzzpipe.results.findings import finding_sentence as catalogue_sentence
from buzzpipe.results.vocabulary import Finding, VerdictState

_EVIDENCE_NAMES = {
    "interval": "95% interval",
    "odds_ratio": "odds ratio",
    "p": "p",
    "p_adjusted": "Holm-adjusted p",
    "one_sided_lower_bound": "one-sided 95% lower bound",
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
        elif key in ("p", "p_adjusted"):
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


def finding_sentence(verdict: Mapping[str, Any], power: str = "") -> str:
    """One sentence for one verdict (the findings catalogue's), with the evidence that
    decided it."""
    state = verdict["state"]
    sentence = catalogue_sentence(verdict["finding"], state, verdict.get("outcome") or "")
    evidence = evidence_text(verdict.get("evidence", {}))
    if evidence and verdict.get("inference"):
        evidence += f"; {verdict['inference']}"
    if evidence and state != VerdictState.NOT_ASSESSED:
        sentence = sentence[:-1] + f" ({evidence})."
    elif state == VerdictState.NOT_ASSESSED and verdict.get("reason"):
        sentence = sentence[:-1] + f" ({verdict['reason']}: see Not assessed)."
    truth = verdict.get("truth")
    if truth:
        sentence += " " + truth_sentence(truth, power, verdict.get("scale") == "odds_ratio")
    return sentence


def truth_sentence(truth: Mapping[str, Any], power: str = "", odds_ratio: bool = False) -> str:
    """How a verdict of synthetic data reads against the preset's truth, in words."""
    expected = truth["expected"].replace("_", " ")
    reading = truth.get("reading")
    if reading == "matches the truth":
        return f"Synthetic data: this matches the preset's truth ({expected})."
    if reading == "misses a true effect":
        value = truth.get("model_value")
        value = truth.get("value") if value is None else value
        true_value = (
            f"odds ratio {formatting.number(math.exp(value))}"
            if odds_ratio
            else f"coefficient {formatting.number(value)}"
        )
        text = (
            f"Synthetic data: the preset makes this effect true ({true_value}), so this "
            "verdict misses it; the finding cannot be confirmed at this sample size"
        )
        measured = truth.get("recovery")
        if measured:
            return text + f": {measured}."
        return text + (f"; {power}." if power else ".")
    if reading == "contradicts the truth":
        return (
            f"Synthetic data: this contradicts the preset's truth ({expected}): a false finding "
            "of this sample."
        )
    return ""


_ASSUMPTIONS = {
    "normal": "firms do not choose their local partners on an unobserved capability that also "
    "drives pipelines and innovation",
    "chi2": "no shock common to a region \u00d7 industry cell raises both its firms' pipelines "
    "and their innovation",
}


def spillover_checks(results: Mapping[str, Any], outcome: str) -> str:
    """The spill-over association's identifying assumption, placebo and confounding bound in
    words (issue 16), or "" where the study has neither (files before issue 16). The placebo's
    distribution tells which assumption the study leans on: a z test with links (partners'
    pipelines), a chi-squared score test without (cells)."""
    tests = {test["id"]: test for test in results.get("tests", [])}
    described = {record["id"]: record for record in results.get("descriptions", [])}
    placebo = tests.get(f"{outcome}/spillover_placebo")
    bound = described.get(f"{outcome}/spillover_confounding_bound")
    parts = []
    if placebo is not None and placebo.get("p") is not None:
        assumption = _ASSUMPTIONS.get(placebo.get("distribution", ""))
        if assumption:
            parts.append(f"It reads as a spill-over only if {assumption}.")
        flagged = placebo["p"] < 0.05
        p = formatting.p_value(placebo["p"])
        parts.append(
            f"Placebo (are pipelines as good as randomly placed? {placebo['hypothesis']}): "
            f"p {p if p.startswith('<') else '= ' + p}, "
            + (
                "rejected: pipelines are not placed at random, so the association may be "
                "confounded."
                if flagged
                else "not rejected."
            )
        )
    if bound is not None and bound.get("estimate") is not None:
        interval = bound.get("interval") or [None, None]
        low = interval[0] if not is_union(interval) else None
        if low is None:
            to_zero = ""
        elif low > 0:
            to_zero = f", {formatting.number(low)} to bring its 95% interval to zero"
        else:
            to_zero = " (its 95% interval already includes zero)"
        parts.append(
            "An omitted confounder would need effect \u00d7 correlation (log-odds per SD "
            "times its partial correlation with the exposure) of "
            f"{formatting.number(bound['estimate'])} to explain the estimate{to_zero}."
        )
    return " ".join(parts)


def findings(results: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], str]]:
    """Each verdict with its sentence, in the order the study gave them; the spill-over
    association's with its placebo and confounding bound."""
    power = (results.get("synthetic") or {}).get("power", "")
    listed = []
    for verdict in results["verdicts"]:
        sentence = finding_sentence(verdict, power)
        assessed = verdict["state"] != VerdictState.NOT_ASSESSED
        if verdict["finding"] == Finding.SPILLOVER and assessed:
            checks = spillover_checks(results, verdict.get("outcome") or "")
            sentence = f"{sentence} {checks}" if checks else sentence
        listed.append((verdict, sentence))
    return listed
