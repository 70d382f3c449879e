"""The results structure: strict JSON round trips (unbounded sets included) and path lookup."""

import json
import math

import numpy as np
import pytest

from buzzpipe.errors import InputError
from buzzpipe.results import (
    CounterfactualCell,
    CounterfactualResult,
    Estimate,
    Hypothesis,
    Inference,
    Interval,
    Meta,
    ModelResult,
    StudyResults,
    Verdict,
    decode_float,
    encode_float,
)


def _estimate(value, se, p, **extra):
    return Estimate(
        estimate=value,
        std_error=se,
        p_value=p,
        inference="robust",
        interval=Interval.bounded(value - 1.96 * se, value + 1.96 * se),
        **extra,
    )


def _results() -> StudyResults:
    results = StudyResults(meta=Meta(seed=np.int64(7), scales=("regional", "international")))
    results.add_model(
        ModelResult(
            outcome="product",
            model="controls",
            formula="product ~ breadth_international + C(region)",
            family="logit",
            inference="robust",
            nobs=1604,
            terms={
                "breadth_international": _estimate(0.23, 0.05, 4e-6),
                "C(region)[T.Bergen]": _estimate(-0.1, 0.2, 0.6),
            },
            log_likelihood=-1050.5,
            pseudo_r2=0.04,
            odds_ratios={"breadth_international": _estimate(1.26, 0.06, 4e-6)},
            sensitivity={"cluster": {"breadth_international": _estimate(0.23, 0.09, 0.06)}},
            notes=["one shared estimation sample"],
        )
    )
    results.add_test(
        "product",
        "supermodularity",
        _estimate(-0.1, 0.2, 0.69, alternative="greater", statistic=-0.5),
    )
    results.add_test(
        "product",
        "heterogeneity_sector",
        Estimate(
            None,
            None,
            0.3,
            "robust",
            statistic=7.2,
            df=6,
            hypothesis=Hypothesis("interactions_zero", moderator="C(industry)", count=6),
        ),
    )
    results.add_description(
        "product",
        "ratio_international_regional",
        Estimate(
            4.1,
            None,
            math.nan,
            Inference("robust", method="fieller"),
            interval=Interval([(-math.inf, -2.0), (1.5, math.inf)]),
        ),
    )
    results.counterfactuals.append(
        CounterfactualResult(
            outcome="product",
            programme="pipeline",
            firms_treated=100,
            allocation="total",
            targeting="random",
            cells=[
                CounterfactualCell(
                    "all", 1604.0, 0.476, 0.481, 7.5, Interval.bounded(0.47, 0.49), None
                )
            ],
            bootstrap_replications=199,
            seed=3,
        )
    )
    results.verdicts.append(
        Verdict(
            "international_effect",
            "found",
            "product",
            "text",
            "rule",
            "two_sided",
            ["models/{outcome}/controls/breadth_international"],
            "models/product/controls/breadth_international",
            0.05,
            0.23,
        )
    )
    return results


def test_round_trip_through_strict_json_keeps_every_number():
    results = _results()
    text = results.to_json()
    assert "Infinity" not in text and "NaN" not in text
    json.loads(text)  # strict JSON parses
    back = StudyResults.from_json(text)
    assert back.to_dict() == results.to_dict()
    ratio = back.lookup("descriptions/product/ratio_international_regional")
    assert ratio.interval.kind == "two_rays"
    assert ratio.interval.segments[0][0] == -math.inf and ratio.interval.segments[1][1] == math.inf
    assert math.isnan(ratio.p_value)
    assert back.meta.seed == 7 and back.meta.scales == ["regional", "international"]
    assert back.counterfactuals[0].cell("all").extra_innovators == 7.5


def test_lookup_finds_terms_tests_and_reports_absence_as_none():
    results = _results()
    assert results.lookup("models/product/controls/breadth_international").estimate == 0.23
    assert results.lookup("models/product/controls/C(region)[T.Bergen]").p_value == 0.6
    assert results.lookup("tests/product/supermodularity").alternative == "greater"
    assert results.lookup("models/process/controls/breadth_international") is None
    assert results.lookup("tests/product/spillover_exposure") is None
    with pytest.raises(ValueError, match="unknown results path"):
        results.lookup("nothing/product")


def test_interval_kinds_and_membership():
    assert Interval.bounded(0, 1).kind == "bounded"
    assert Interval([(-math.inf, 2.0)]).kind == "unbounded"
    assert Interval([(-math.inf, math.inf)]).kind == "unbounded"
    rays = Interval([(-math.inf, -1.0), (3.0, math.inf)])
    assert rays.kind == "two_rays"
    assert rays.contains(-5) and rays.contains(10) and not rays.contains(0)
    assert Interval([]).kind == "empty"


def test_float_encoding_is_invertible_for_infinities():
    for value in (1.5, -math.inf, math.inf, 0.0):
        assert decode_float(encode_float(value)) == value
    assert encode_float(math.nan) is None


def test_wrong_format_version_and_bad_alternative_are_refused():
    data = _results().to_dict()
    data["format_version"] = 99
    with pytest.raises(InputError, match="unsupported results format"):
        StudyResults.from_dict(data)
    with pytest.raises(ValueError, match="Alternative"):
        Estimate(0.1, 0.1, 0.5, "robust", alternative="bigger")
