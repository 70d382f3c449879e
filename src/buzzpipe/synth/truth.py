"""What a synthetic preset makes true: generating values per finding, and the report's banner.

A report of synthetic data should say so at the top and what the data were calibrated to, and
put the true generating values beside the estimates so a reader can see, per verdict, whether it
matches the truth (issue 15, item 3). This module reads both from a preset; it knows nothing of
the results format. Findings are named as in ``results.vocabulary.Finding`` (plain strings here).

Which verdict a preset makes true is read, for the product outcome's breadth terms, from the
estimand of the study's own model: the mean coefficient over the preset's calibration seeds
(``[calibration_result]``, the named specification at N = 1,604). It differs from the generating
coefficient where the noisy openness measure leaves confounding (norway2010: generating 0.190,
model 0.229) or where the model omits an interaction (complement: regional generating 0, model
0.164, since the regional slope is 0.25 x the mean international breadth). A mean coefficient
below 0.05 in absolute value (an odds ratio between 0.95 and 1.05 per partner type) counts as
"not found" (norway2010's regional 0.008 and national 0.015). Elsewhere the generating value
decides: zero is "not found", positive "found", negative "opposite".

A nonzero truth that the study does not find is a miss, not a contradiction: whether it should
have been found depends on the power of the headline rule (docs/few_clusters.md), below 0.8 at
the published effect with five regions.
"""

from __future__ import annotations

from dataclasses import dataclass

from buzzpipe.synth.preset import Preset, load_preset

# finding -> the outcome-equation parameter that makes it true or false
FINDING_PARAMETERS = {
    "international_effect": "breadth_international",
    "regional_effect": "breadth_regional",
    "national_effect": "breadth_national",
    "complementarity": "regional_x_international",
    "spillover": "pipeline_exposure",
}
# the generator has no breadth x sector terms: zero (city-region size has no verdict)
NO_INTERACTION_FINDINGS = ("heterogeneity_sector",)


NEGLIGIBLE = 0.05  # |mean model coefficient| below this: "not found" (odds ratio 0.95 to 1.05)


@dataclass(frozen=True)
class Truth:
    """One finding's generating value in a preset, and the verdict it implies."""

    finding: str
    outcome: str
    parameter: str  # the preset key, or a sentence where no single parameter decides
    value: float  # the generating value
    expected: str  # "found", "not_found" or "opposite"
    model_value: float | None = None  # the study model's mean coefficient over the calibration

    def reading(self, state: str) -> str:
        """How a verdict ``state`` compares with the truth: 'matches the truth', 'misses a true
        effect' (nonzero truth, not found), or 'contradicts the truth'."""
        if state == self.expected:
            return "matches the truth"
        if state == "not_found":
            return "misses a true effect"
        if state == "not_assessed":
            return "not assessed"
        return "contradicts the truth"


def _expected(value: float, negligible: float = 0.0) -> str:
    if value > negligible:
        return "found"
    if value < -negligible:
        return "opposite"
    return "not_found"


def generating_truth(preset: Preset | str, outcome: str = "product") -> dict[str, Truth]:
    """The true value behind each finding for one outcome of a preset (name or Preset)."""
    preset = load_preset(preset) if isinstance(preset, str) else preset
    recorded = preset.calibration_result if outcome == "product" else {}
    model = {
        scale: recorded.get(f"mean_coefficient_breadth_{scale}")
        for scale in ("regional", "national", "international")
    }
    truths = {}
    for finding, parameter in FINDING_PARAMETERS.items():
        key = f"outcomes.{outcome}.{parameter}"
        value = float(preset[key])
        scale = parameter.removeprefix("breadth_")
        mean = model.get(scale)
        expected = _expected(value) if mean is None else _expected(mean, NEGLIGIBLE)
        truths[finding] = Truth(finding, outcome, key, value, expected, mean)
    international = float(preset[f"outcomes.{outcome}.breadth_international"])
    regional = float(preset[f"outcomes.{outcome}.breadth_regional"])
    difference = international - regional
    if model["international"] is not None and model["regional"] is not None:
        model_difference = model["international"] - model["regional"]
        expected = _expected(model_difference, NEGLIGIBLE)
    else:
        model_difference, expected = None, _expected(difference)
    truths["pipelines_stronger"] = Truth(
        "pipelines_stronger",
        outcome,
        "breadth_international - breadth_regional (coefficients per partner type)",
        difference,
        expected,
        model_difference,
    )
    for finding in NO_INTERACTION_FINDINGS:
        truths[finding] = Truth(
            finding, outcome, "no such interaction in the generator", 0.0, "not_found"
        )
    return truths


def calibration_targets(preset: Preset | str) -> dict[str, dict]:
    """The preset's calibration targets: value and source ('published' or 'assumed')."""
    preset = load_preset(preset) if isinstance(preset, str) else preset
    prefix = "calibration.target_"
    return {
        key[len(prefix) :]: {"value": p.value, "source": p.source, "reason": p.reason}
        for key, p in preset.parameters.items()
        if key.startswith(prefix)
    }


TARGET_WORDS = {
    "odds_ratio": "odds ratio per international partner type {value:g}",
    "any_regional": "{value:.0%} of firms with a regional partner",
    "any_national": "{value:.0%} with a national partner",
    "any_international": "{value:.0%} with an international partner",
    "product": "{value:.1%} product innovators",
    "process": "{value:.0%} process innovators",
    "new_to_market": "{value:.0%} new-to-market innovators",
}


def banner(preset: Preset | str) -> str:
    """The line at the top of a report of synthetic data: what generated it, calibrated to what."""
    preset = load_preset(preset) if isinstance(preset, str) else preset
    targets = calibration_targets(preset)
    published = [
        TARGET_WORDS.get(name, name + " {value}").format(value=target["value"])
        for name, target in targets.items()
        if target["source"] == "published"
    ]
    assumed = [name for name, target in targets.items() if target["source"] == "assumed"]
    text = (
        f"Synthetic data: generated by buzzpipe's '{preset.name}' preset, not collected from "
        f"firms. {preset.description}"
    )
    if published:
        text += " Calibrated to published figures: " + "; ".join(published) + "."
    if assumed:
        text += f" Assumed (not published): {', '.join(a.replace('_', ' ') for a in assumed)}."
    return text


def report_record(preset: Preset | str, states: dict[str, str], outcome: str = "product") -> dict:
    """What a report of this preset's data shows beside the verdicts: the banner, the
    calibration's mean odds ratio, and per finding the truth, its generating and model values
    and how the verdict ``states[finding]`` reads against it (plain JSON data)."""
    preset = load_preset(preset) if isinstance(preset, str) else preset
    recorded = preset.calibration_result
    truths = generating_truth(preset, outcome)
    return {
        "preset": preset.name,
        "banner": banner(preset),
        "outcome": outcome,
        "calibration": {
            key: recorded[key]
            for key in (
                "seeds",
                "mean_odds_ratio_breadth_international",
                "share_any_regional",
                "share_any_international",
                "share_product",
            )
            if key in recorded
        },
        "truth": {
            finding: {
                "expected": truth.expected,
                "parameter": truth.parameter,
                "value": truth.value,
                "model_value": truth.model_value,
                "reading": truth.reading(states[finding]) if finding in states else None,
            }
            for finding, truth in truths.items()
        },
    }
