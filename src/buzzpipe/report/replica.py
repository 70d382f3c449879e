"""The replica set against the published study: one row per published figure (``meta.published``).

Each row gives the figure as published, the replica's own value with its interval, and whether
they agree, in words. What agreeing means is the figure's ``expect``:

- ``value``: the published value lies in the replica's 95% interval (for a share, Wilson's
  interval over the firms; for an odds ratio, the set of the headline rule, the wild cluster
  score bootstrap by region, with the firm-level robust interval beside it);
- ``no_effect``: the headline rule's set contains an odds ratio of 1 (no effect shown);
- ``effect``: the headline rule's set lies above 1 (for "four times": the international change
  exceeds the local one); where it does not, the finding cannot be confirmed at this sample
  size, and the row says how often the rule detects the published effect (``meta.synthetic``);
- ``not_found``: the study's verdict on the primary outcome is "not found".

A ratio is never printed as a number when its denominator is indistinguishable from zero: the
row says so and gives the difference of the +1-partner probability changes instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from buzzpipe.report import formatting
from buzzpipe.results import Estimate, StudyResults
from buzzpipe.results.vocabulary import VerdictState

Z_95 = 1.959963984540054
BOOTSTRAP_PATH = "sensitivity/wild_score_bootstrap/"


def wilson(share: float, n: float) -> tuple[float, float]:
    """Wilson's 95% interval for a share of n."""
    centre = (share + Z_95**2 / (2 * n)) / (1 + Z_95**2 / n)
    half = Z_95 * math.sqrt(share * (1 - share) / n + Z_95**2 / (4 * n**2)) / (1 + Z_95**2 / n)
    return centre - half, centre + half


def _segments(estimate: Estimate | None) -> list[tuple[float, float]]:
    if estimate is None or estimate.interval is None:
        return []
    return [(float(low), float(high)) for low, high in estimate.interval.segments]


def _contains(segments: list[tuple[float, float]], value: float) -> bool:
    return any(low <= value <= high for low, high in segments)


def _odds_text(segments: list[tuple[float, float]]) -> str:
    """A log-odds set as odds ratios: [a, b] or a union."""
    shown = [
        [math.exp(low), None if math.isinf(high) else math.exp(high)] for low, high in segments
    ]
    if not shown:
        return formatting.DASH
    return formatting.interval(shown[0] if len(shown) == 1 else shown)


def _points(value: float) -> str:
    """A probability change in percentage points, signed."""
    return f"{100 * value:+.1f}".replace("-", formatting.MINUS)


def _points_interval(estimate: Estimate) -> str:
    segments = _segments(estimate)
    if len(segments) != 1:
        return formatting.DASH
    low, high = segments[0]
    return f"[{_points(low)}, {_points(high)}]"


def _share_row(results: StudyResults, figure: Mapping[str, Any]) -> dict[str, Any]:
    reads = figure["reads"].split(":")
    table = results.descriptives
    value = None
    if table is not None and table.rows:
        for row in table.rows:
            if reads[1] == "outcome" and row.section == "innovation":
                hit = row.statistic == reads[2]
            else:
                hit = row.section == "collaboration" and row.statistic.endswith(f"({reads[1]})")
            if hit:
                value = row.values[0]
                break
    firms = float(results.meta.firms or 0)
    if value is None or firms <= 0:
        return {"replica": formatting.DASH, "agrees": "not assessed: no such share"}
    low, high = wilson(value, firms)
    published = figure["value"]
    agrees = low <= published <= high
    text = f"{formatting.percent(value)} [{formatting.percent(low)}, {formatting.percent(high)}]"
    words = (
        "agrees: the published figure lies in the replica's 95% interval"
        if agrees
        else f"differs: {formatting.percent(published)} lies outside the replica's 95% interval"
    )
    return {"replica": text, "agrees": words, "agree": agrees}


def _odds_row(
    results: StudyResults, figure: Mapping[str, Any], synthetic: Mapping[str, Any]
) -> dict[str, Any]:
    path = figure["reads"].split(":", 1)[1]
    firm = results.lookup(path)
    outcome, model, term = path.removeprefix("models/").split("/", 2)
    rule = results.lookup(f"models/{outcome}/{model}/{BOOTSTRAP_PATH}{term}")
    if firm is None or firm.estimate is None:
        return {"replica": formatting.DASH, "agrees": "not assessed: the model was not estimated"}
    headline = rule if rule is not None else firm
    named = "bootstrap by region" if rule is not None else "firm-level robust"
    text = (
        f"{formatting.number(math.exp(firm.estimate))}; firm-level robust "
        f"{_odds_text(_segments(firm))}"
    )
    if rule is not None:
        text += f"; bootstrap by region {_odds_text(_segments(rule))}"
    segments = _segments(headline)
    expect = figure["expect"]
    if expect == "value":
        inside = _contains(segments, math.log(figure["value"]))
        words = (
            f"agrees: {figure['value']:g} lies in the {named} set"
            if inside
            else f"differs: {figure['value']:g} lies outside the {named} set"
        )
        mean = (synthetic.get("calibration") or {}).get("mean_odds_ratio_breadth_international")
        if mean is not None and term == "breadth_international" and outcome == "product":
            seeds = (synthetic.get("calibration") or {}).get("seeds")
            words += f" (the preset's mean over {seeds:,} calibration seeds: {mean:.3f})"
        return {"replica": text, "agrees": words, "agree": inside}
    if expect == "no_effect":
        null = _contains(segments, 0.0)
        words = (
            f"agrees: an odds ratio of 1 lies in the {named} set (no effect shown)"
            if null
            else f"differs: the {named} set excludes an odds ratio of 1"
        )
        return {"replica": text, "agrees": words, "agree": null}
    above = bool(segments) and all(low > 0 for low, _ in segments)
    if above:
        return {"replica": text, "agrees": f"agrees: the {named} set lies above 1", "agree": True}
    scored = outcome == (results.meta.primary_outcome or "product")
    return {"replica": text, "agrees": _unconfirmed(named, synthetic, scored), "agree": None}


def _unconfirmed(named: str, synthetic: Mapping[str, Any], scored: bool) -> str:
    """Why an effect the replica does not show cannot be confirmed, and how often the rule would
    find it: a measured recovery where the recovery check scored it, else Monte Carlo power,
    said to be power (the recovery check scores the primary outcome's verdicts only)."""
    words = f"cannot be confirmed at this sample size: the {named} set does not exclude no effect"
    if not scored:
        words += (
            "; the recovery check scores the primary outcome's verdicts only, so how often the "
            "rule finds this one on the preset's surveys was not measured"
        )
    if synthetic.get("power"):
        words += f"; {synthetic['power']}"
    return words


def _four_times_row(
    results: StudyResults, outcome: str, synthetic: Mapping[str, Any]
) -> dict[str, Any]:
    descriptions = results.descriptions.get(outcome, {})
    local = "regional" if "probability_change_regional" in descriptions else "national"
    international = descriptions.get("probability_change_international")
    buzz = descriptions.get(f"probability_change_{local}")
    difference = descriptions.get(f"probability_difference_international_{local}")
    ratio = descriptions.get(f"probability_ratio_international_{local}")
    if international is None or buzz is None or difference is None:
        return {"replica": formatting.DASH, "agrees": "not assessed: no probability changes"}
    text = (
        f"+1 international partner type: {_points(international.estimate)} points "
        f"{_points_interval(international)}; +1 {local}: {_points(buzz.estimate)} "
        f"{_points_interval(buzz)}; difference {_points(difference.estimate)} "
        f"{_points_interval(difference)} (firm-level robust, delta method)"
    )
    local_zero = _contains(_segments(buzz), 0.0)
    difference_above = all(low > 0 for low, _ in _segments(difference))
    if local_zero:
        words = (
            f"cannot be checked as a ratio: the {local} change is indistinguishable from zero, "
            "so the ratio is not bounded"
        )
        words += (
            "; the international change exceeds it (the difference's interval lies above 0)"
            if difference_above
            else "; the difference's interval contains 0"
        )
        return {"replica": text, "agrees": words, "agree": None}
    if ratio is not None and _contains(_segments(ratio), 4.0):
        return {
            "replica": text,
            "agrees": "agrees: a ratio of 4 lies in the ratio's 95% set",
            "agree": True,
        }
    return {"replica": text, "agrees": "differs: a ratio of 4 lies outside the ratio's set"}


def _verdict_row(results: StudyResults, figure: Mapping[str, Any]) -> dict[str, Any]:
    finding = figure["reads"].split(":", 1)[1]
    verdict = next((v for v in results.verdicts if v.finding == finding), None)
    if verdict is None or verdict.verdict == VerdictState.NOT_ASSESSED:
        return {"replica": formatting.DASH, "agrees": "not assessed"}
    state = verdict.verdict.value.replace("_", " ")
    text = state
    if verdict.p_value is not None:
        text += f" (p = {formatting.p_value(verdict.p_value)}"
        if verdict.p_adjusted is not None:
            text += f", Holm-adjusted {formatting.p_value(verdict.p_adjusted)}"
        text += ")"
    agrees = verdict.verdict == VerdictState.NOT_FOUND
    words = "agrees" if agrees else "differs: the replica finds it"
    return {"replica": text, "agrees": words, "agree": agrees}


def replica_rows(results: StudyResults) -> list[dict[str, Any]]:
    """The rows of the replica-and-published table, from ``meta.published`` (none without)."""
    published = results.meta.published
    synthetic = results.meta.synthetic
    outcome = results.meta.primary_outcome or "product"
    rows = []
    for figure in published:
        kind = figure["reads"].split(":", 1)[0]
        if kind == "share":
            row = _share_row(results, figure)
        elif kind == "odds_ratio":
            row = _odds_row(results, figure, synthetic)
        elif kind == "four_times":
            row = _four_times_row(results, outcome, synthetic)
        elif kind == "verdict":
            row = _verdict_row(results, figure)
        else:
            row = {"replica": formatting.DASH, "agrees": f"not assessed: {kind} unknown"}
        rows.append(
            {
                "id": figure["id"],
                "fact": figure["fact"],
                "published": figure["published"],
                "source": figure.get("source", ""),
                **row,
            }
        )
    return rows
