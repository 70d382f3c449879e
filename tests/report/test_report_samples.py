"""Hand-made results for the report tests (not from any estimator): report views, and results
in the study's format built with the study's own classes; checks that they, and broken variants
of them, meet or fail their schemas as they should.
"""

import copy
import json
import math

import pytest

from buzzpipe.errors import InputError
from buzzpipe.report.view_schema import validate_view
from buzzpipe.survey.schema import NOVELTY, OUTCOMES, SCALES, breadth_column

REGIONS = ("Oslo", "Bergen", "Stavanger", "Trondheim", "Kristiansand")
REGION_FIRMS = (620, 330, 290, 230, 134)


def _term(estimate: float, se: float, **extra) -> dict:
    z = estimate / se
    p = math.erfc(abs(z) / math.sqrt(2))
    interval = [estimate - 1.959964 * se, estimate + 1.959964 * se]
    return {"estimate": estimate, "se": se, "interval": interval, "p": p, **extra}


def _breadth_effects(world: str) -> dict[str, float]:
    if world == "pipelines":
        return {"regional": 0.03, "national": 0.05, "international": 0.23}
    return {"regional": 0.26, "national": 0.04, "international": 0.02}


def _model(world: str, *, controls: bool, family: str = "logit", shift: float = 0.0) -> dict:
    effects = _breadth_effects(world)
    terms = {}
    for scale in SCALES:
        terms[breadth_column(scale)] = _term(
            effects[scale] + shift,
            0.05,
            label=f"Breadth, {scale}",
            scale=scale,
        )
    if controls:
        terms["log_employees"] = _term(0.18, 0.06, label="Employees (log)")
        terms["foreign_share"] = _term(0.21, 0.19, label="Foreign share")
        for industry in ("construction", "retail", "services"):
            terms[f"industry[{industry}]"] = _term(-0.1, 0.2, factor="industry")
        for region in REGIONS[1:]:
            terms[f"region[{region}]"] = _term(0.05, 0.15, factor="region")
    if family == "ologit":
        terms["cut1"] = _term(0.4, 0.2, kind="cut", label="Cut 1")
        terms["cut2"] = _term(2.1, 0.25, kind="cut", label="Cut 2")
    else:
        terms["_cons"] = _term(-0.9, 0.3, kind="intercept", label="Constant")
    model = {
        "label": "Breadth and controls" if controls else "Breadth",
        "family": family,
        "inference": "firm-level robust standard errors (Stata vce(robust)), normal reference",
        "stats": {"n": 1604, "pseudo_r2": 0.041 if controls else 0.022, "llf": -1061.3},
        "terms": terms,
        "marginal_effects": {
            breadth_column(scale): _term(effects[scale] * 0.24, 0.011) for scale in SCALES
        },
    }
    if controls:
        model["sensitivity"] = {
            "wild_cluster": {
                "inference": "region-clustered wild score bootstrap (5 clusters, Webb weights)",
                "terms": {
                    breadth_column(scale): {"p": 0.12, "interval": [-0.1, 0.5]} for scale in SCALES
                },
            }
        }
    return model


def _partner_type_model(world: str) -> dict:
    terms = {}
    for scale in SCALES:
        for partner_type in ("suppliers", "customers", "universities"):
            size = 0.3 if (scale == "international") == (world == "pipelines") else 0.02
            terms[f"collab_{scale}_{partner_type}"] = _term(
                size,
                0.12,
                label=f"{partner_type.capitalize()}, {scale}",
                scale=scale,
                partner_type=partner_type,
            )
    terms["_cons"] = _term(-0.8, 0.2, kind="intercept", label="Constant")
    return {
        "label": "Partner types",
        "family": "logit",
        "table": "partner_types",
        "inference": "firm-level robust standard errors (Stata vce(robust)), normal reference",
        "stats": {"n": 1604, "pseudo_r2": 0.05, "llf": -1050.0},
        "terms": terms,
    }


def make_results(world: str = "pipelines") -> dict:
    """A complete report view for a world where pipelines (or buzz) drive innovation."""
    labels = {
        "product": "Product innovation",
        "process": "Process innovation",
        "new_to_market": "New-to-market innovation",
    }
    outcomes = {}
    for index, outcome in enumerate(OUTCOMES):
        models = {
            "breadth": _model(world, controls=False, shift=0.01 * index),
            "controls": _model(world, controls=True, shift=0.01 * index),
        }
        if outcome == "product":
            models["lpm"] = _model(world, controls=True, family="lpm")
            models["lpm"]["label"] = "Linear probability"
            models["lpm"]["stats"] = {"n": 1604, "r2": 0.05}
            models["lpm"]["inference"] = "HC1 robust standard errors, t(N-K) reference"
            models["partner_types"] = _partner_type_model(world)
        outcomes[outcome] = {
            "label": labels[outcome],
            "primary_model": "controls",
            "models": models,
        }
    outcomes["product_novelty"] = {
        "label": "Product novelty",
        "models": {"ordered": _model(world, controls=True, family="ologit")},
    }
    pipelines = world == "pipelines"
    tests = [
        {
            "id": "pipelines_vs_buzz_product",
            "label": "Pipelines versus buzz",
            "outcome": "product",
            "model": "controls",
            "hypothesis": "b_international = b_regional",
            "statistic": 8.9 if pipelines else 9.4,
            "df": 1,
            "distribution": "chi2",
            "p": 0.0029 if pipelines else 0.0022,
            "estimate": 0.20 if pipelines else -0.24,
            "interval": [0.07, 0.33] if pipelines else [-0.39, -0.09],
            "inference": "Wald test, firm-level robust covariance",
        },
        {
            "id": "ratio_product",
            "label": "Ratio international / regional",
            "outcome": "product",
            "hypothesis": "described, not tested",
            "p": None,
            "estimate": 7.7 if pipelines else 0.08,
            "interval": [2.1, None] if pipelines else [-0.3, 0.5],
            "inference": "Fieller interval, firm-level robust covariance",
        },
        {
            "id": "supermodularity_product",
            "label": "Complementarity (supermodularity)",
            "outcome": "product",
            "hypothesis": "b_both - b_local - b_global <= 0 (alternative: > 0)",
            "alternative": "greater",
            "statistic": -0.4,
            "distribution": "normal",
            "p": 0.66,
            "estimate": -0.08,
            "interval": [-0.47, 0.31],
            "inference": "one-sided z test, firm-level robust covariance",
        },
    ]
    verdicts = [
        {
            "finding": "international_effect",
            "outcome": "product",
            "state": "found" if pipelines else "not_found",
            "rule": {
                "id": "positive_at_5pct",
                "text": "odds ratio > 1 and p < 0.05",
                "threshold": 0.05,
            },
            "evidence": {
                "odds_ratio": math.exp(0.23 if pipelines else 0.02),
                "p": 4e-6 if pipelines else 0.69,
            },
        },
        {
            "finding": "regional_effect",
            "outcome": "product",
            "state": "not_found" if pipelines else "found",
            "rule": {
                "id": "positive_at_5pct",
                "text": "odds ratio > 1 and p < 0.05",
                "threshold": 0.05,
            },
            "evidence": {
                "odds_ratio": math.exp(0.03 if pipelines else 0.26),
                "p": 0.55 if pipelines else 2e-7,
            },
        },
        {
            "finding": "pipelines_stronger",
            "outcome": "product",
            "state": "found" if pipelines else "not_found",
            "rule": {
                "id": "wald_one_sided",
                "text": "b_international > b_regional, Wald p < 0.05",
                "threshold": 0.05,
            },
            "evidence": {"test": "pipelines_vs_buzz_product", "p": 0.0029 if pipelines else 0.0022},
        },
        {
            "finding": "complementarity",
            "outcome": "product",
            "state": "not_found",
            "rule": {
                "id": "supermodularity",
                "text": "one-sided supermodularity p < 0.05",
                "threshold": 0.05,
            },
            "evidence": {"p": 0.66},
        },
        {
            "finding": "spillover",
            "outcome": "product",
            "state": "not_found" if pipelines else "found",
            "rule": {
                "id": "spillover_5pct",
                "text": "exposure coefficient > 0, p < 0.05",
                "threshold": 0.05,
            },
            "evidence": {"estimate": 0.01 if pipelines else 0.9, "p": 0.8 if pipelines else 0.001},
        },
        {
            "finding": "heterogeneity",
            "state": "not_assessed",
            "rule": {
                "id": "joint_wald",
                "text": "joint Wald p < 0.05 where the covariance allows it",
                "threshold": 0.05,
            },
        },
    ]
    local_only = 0.19 if pipelines else 0.35
    regimes = [
        {
            "group": group,
            "shares": {
                "none": 0.05,
                "local_only": local_only,
                "global_only": 0.14,
                "both": 1 - 0.05 - local_only - 0.14,
            },
        }
        for group in ("All firms", *REGIONS)
    ]
    counterfactuals = []
    for programme, label, gain in (
        ("P", "Pipeline programme", 0.05),
        ("C", "Cluster programme", 0.01),
    ):
        if not pipelines:
            gain = 0.06 - gain
        rows = []
        for region, firms in zip(REGIONS, REGION_FIRMS, strict=True):
            extra = gain * 100 * firms / 1604
            rows.append(
                {
                    "region": region,
                    "firms": firms,
                    "baseline_rate": 0.476,
                    "predicted_rate": {
                        "estimate": 0.476 + gain * 100 / 1604,
                        "interval": [0.47, 0.49],
                    },
                    "extra_innovators": {"estimate": extra, "interval": [extra * 0.5, extra * 1.5]},
                }
            )
        counterfactuals.append(
            {
                "id": programme,
                "label": label,
                "outcome": "product",
                "k": 100,
                "k_per": "total",
                "targeting": "random (exact expectation)",
                "interval_method": "region-stratified firm bootstrap, 999 replicates, "
                "95% percentile",
                "notes": ["Predicted under the model, not caused."],
                "regions": rows,
                "overall": {
                    "region": "All regions",
                    "firms": 1604,
                    "baseline_rate": 0.476,
                    "predicted_rate": {
                        "estimate": 0.476 + gain * 100 / 1604,
                        "interval": [0.47, 0.49],
                    },
                    "extra_innovators": {
                        "estimate": gain * 100,
                        "interval": [gain * 50, gain * 150],
                    },
                },
            }
        )
    return {
        "view_version": 1,
        "buzzpipe_version": "0.1.0",
        "title": f"Local buzz and global pipelines: a {world} world",
        "source": {"kind": "synthetic", "name": "handmade-" + world, "seed": 7, "firms": 1604},
        "scales": list(SCALES),
        "inference": {
            "primary": "Firms are a random sample within five fixed city-regions: firm-level "
            "robust standard errors with region fixed effects.",
            "sensitivity": "Region-clustered wild score bootstrap for single restrictions only.",
        },
        "descriptives": {
            "columns": ["All firms", *REGIONS],
            "rows": [
                {
                    "section": "firms",
                    "label": "firms",
                    "measure": "count",
                    "values": [1604.0, *map(float, REGION_FIRMS)],
                },
                {
                    "section": "collaboration by scale",
                    "label": "any partner abroad",
                    "measure": "share",
                    "values": [0.45, 0.5, 0.4, 0.47, 0.41, None],
                },
                {
                    "section": "controls",
                    "label": "employees",
                    "measure": "mean",
                    "values": [55.5, 61.0, 50.2, 58.9, 49.0, 40.1],
                },
            ],
            "notes": ["Shares over firms whose answer is known."],
        },
        "outcomes": outcomes,
        "tests": tests,
        "regimes": regimes,
        "counterfactuals": counterfactuals,
        "verdicts": verdicts,
    }


@pytest.mark.parametrize("world", ["pipelines", "buzz"])
def test_hand_made_results_meet_the_schema(world):
    validate_view(make_results(world))


@pytest.mark.parametrize(
    "breakage, where",
    [
        (lambda r: r.update(view_version=2), "$.view_version"),
        (
            lambda r: r["outcomes"]["product"]["models"]["controls"]["terms"][
                "breadth_regional"
            ].update(p=1.5),
            "breadth_regional.p",
        ),
        (
            lambda r: r["outcomes"]["product"]["models"]["controls"]["terms"][
                "breadth_regional"
            ].update(se=-0.1),
            "breadth_regional.se",
        ),
        (
            lambda r: r["outcomes"]["product"]["models"]["controls"]["terms"][
                "breadth_regional"
            ].update(estimate=float("nan")),
            "breadth_regional.estimate",
        ),
        (lambda r: r["outcomes"]["product"]["models"]["controls"].update(family="tobit"), "family"),
        (lambda r: r["outcomes"]["product"].update(primary_model="nope"), "primary_model"),
        (lambda r: r["verdicts"][0].pop("rule"), "$.verdicts[0].rule"),
        (lambda r: r["tests"][0].update(outcome="sales"), "$.tests[0].outcome"),
        (lambda r: r["tests"][0].update(interval=[2.0, 1.0]), "$.tests[0].interval"),
        (lambda r: r["counterfactuals"][0].update(k_per="city"), "k_per"),
        (lambda r: r["descriptives"]["rows"][1]["values"].pop(), "rows[1].values"),
        (lambda r: r["regimes"][0]["shares"].update(none=1.2), "$.regimes[0].shares.none"),
        (lambda r: r["verdicts"][0].update(state="maybe"), "$.verdicts[0].state"),
    ],
)
def test_broken_results_fail_with_the_json_path_named(breakage, where):
    results = copy.deepcopy(make_results())
    breakage(results)
    with pytest.raises(InputError) as caught:
        validate_view(results, file="results.json")
    message = str(caught.value)
    assert "results.json" in message and where in message and "\n" not in message


ROBUST = {"kind": "robust"}
CLUSTERED = {"kind": "cluster", "by": "region", "clusters": 5}
WILD = {
    "kind": "wild_score_bootstrap",
    "by": "region",
    "clusters": 5,
    "weights": "webb",
    "draws": 7776,
}


def _estimate(estimate: float, se: float, inference: dict | None = None, **extra):
    """A study Estimate with a normal two-sided test and a Wald interval."""
    from buzzpipe.results import Estimate, Inference, Interval

    inference = Inference(**(inference or ROBUST))

    p = math.erfc(abs(estimate / se) / math.sqrt(2))
    return Estimate(
        estimate=estimate,
        std_error=se,
        p_value=extra.pop("p_value", p),
        inference=inference,
        interval=extra.pop(
            "interval", Interval.bounded(estimate - 1.96 * se, estimate + 1.96 * se)
        ),
        statistic=extra.pop("statistic", estimate / se),
        **extra,
    )


def describe_frame():
    """A small table in the data layer's describe() shape: (section, statistic, measure) rows,
    'all firms' then one column per region."""
    import pandas as pd

    rows = [
        (("firms", "firms", "count"), [1604.0, *map(float, REGION_FIRMS)]),
        (("regime", "none", "share"), [0.05, 0.04, 0.05, 0.06, 0.05, 0.07]),
        (("regime", "local_only", "share"), [0.19, 0.2, 0.18, 0.19, 0.2, 0.17]),
        (("regime", "global_only", "share"), [0.14, 0.15, 0.13, 0.14, 0.12, 0.16]),
        (("regime", "both", "share"), [0.62, 0.61, 0.64, 0.61, 0.63, 0.60]),
        (("controls", "employees", "mean"), [55.5, 61.0, 50.2, 58.9, 49.0, float("nan")]),
    ]
    index = pd.MultiIndex.from_tuples(
        [key for key, _ in rows], names=["section", "statistic", "measure"]
    )
    return pd.DataFrame([v for _, v in rows], index=index, columns=["all firms", *REGIONS])


def make_study_results(world: str = "pipelines") -> dict:
    """Results in the study's format, built with the study's classes and verdict rules (no
    estimation: the numbers are chosen), for a pipelines or a buzz world."""
    from buzzpipe.results import (
        CounterfactualCell,
        CounterfactualResult,
        Descriptives,
        Inference,
        Interval,
        Meta,
        ModelResult,
        Note,
        ProgrammeNote,
        Source,
        StudyResults,
        Term,
    )
    from buzzpipe.results.vocabulary import NoteKind, ProgrammeNoteKind, SourceKind
    from buzzpipe.study.verdicts import decide_verdicts

    effects = _breadth_effects(world)
    results = StudyResults(
        meta=Meta(
            package_version="0.1.0",
            seed=7,
            firms=1604,
            scales=list(SCALES),
            inference_policy="Firm-level robust errors with region fixed effects.",
            primary_outcome="product",
            notes=[Note(NoteKind.DATA, "a note from the study")],
            source=Source(SourceKind.FILE, f"{world}.csv", firms=1604),
        ),
        descriptives=Descriptives.from_table(describe_frame()),
    )
    for outcome, family in (("product", "logit"), ("process", "logit"), (NOVELTY, "ologit")):
        for model, controls in (("breadth", False), ("controls", True)):
            terms = {} if family == "ologit" else {"Intercept": _estimate(-1.1, 0.3)}
            for scale in SCALES:
                terms[breadth_column(scale)] = _estimate(effects[scale], 0.05)
            if controls:
                terms["np.log(employees)"] = _estimate(0.2, 0.06)
                terms["C(industry)[T.retail]"] = _estimate(-0.1, 0.2)
                terms["C(region)[T.Bergen]"] = _estimate(0.05, 0.15)
            if family == "ologit":
                terms["cut1"] = _estimate(0.4, 0.2)
                terms["cut2"] = _estimate(2.1, 0.25)
            kinds = {name: Term("continuous", variable=name) for name in terms}
            kinds.update(
                {
                    "C(industry)[T.retail]": Term("factor_level", "industry", "retail"),
                    "C(region)[T.Bergen]": Term("factor_level", "region", "Bergen"),
                    "Intercept": Term("intercept"),
                    "cut1": Term("cut", number=1),
                    "cut2": Term("cut", number=2),
                }
            )
            result = ModelResult(
                outcome=outcome,
                model=model,
                formula="(chosen numbers)",
                family=family,
                inference=Inference("robust"),
                nobs=1604,
                terms=terms,
                term_kinds={name: kinds[name] for name in terms},
                log_likelihood=-1061.3,
                pseudo_r2=0.04,
            )
            if controls and family == "logit":
                result.sensitivity = {
                    "cluster": {
                        name: _estimate(terms[name].estimate, 0.03, CLUSTERED)
                        for name in (breadth_column(scale) for scale in SCALES)
                    },
                    # an inverted bootstrap test can give a union of rays, as Fieller sets do
                    "wild_score_bootstrap": {
                        "breadth_regional": _estimate(
                            terms["breadth_regional"].estimate,
                            0.04,
                            WILD,
                            interval=Interval([(-math.inf, -0.5), (0.1, math.inf)]),
                        )
                    },
                }
            results.add_model(result)
        if outcome == "product":  # each city-region's own slopes: descriptive, no verdict
            slopes = {
                f"{breadth_column(scale)}:C(region)[{region}]": _estimate(
                    effects[scale] + shift, 0.08
                )
                for scale in SCALES
                for region, shift in (("Oslo", 0.02), ("Bergen", -0.05), ("Stavanger", 0.1))
            }
            kinds = {
                f"{breadth_column(scale)}:C(region)[{region}]": Term(
                    "interaction",
                    parts=[
                        Term("continuous", variable=breadth_column(scale)),
                        Term("factor_level", "region", region),
                    ],
                )
                for scale in SCALES
                for region in ("Oslo", "Bergen", "Stavanger")
            }
            results.add_model(
                ModelResult(
                    outcome,
                    "by_region",
                    "(chosen numbers)",
                    "logit",
                    "robust",
                    1604,
                    slopes,
                    term_kinds=kinds,
                )
            )
        difference = effects["international"] - effects["regional"]
        results.add_test(outcome, "international_minus_regional", _estimate(difference, 0.065))
        results.add_test(  # on common support: the first kind of partner at each scale
            outcome,
            "first_partner_international_minus_regional",
            _estimate(0.2 * difference, 0.013),
        )
        if family == "logit":
            results.add_test(
                outcome,
                "supermodularity",
                _estimate(-0.2, 0.5, alternative="greater", p_value=0.66),
            )
            results.add_test(
                outcome,
                "interaction_probability_regional_international",
                _estimate(0.004, 0.01, {**ROBUST, "method": "delta_method"}),
            )
            results.add_test(
                outcome, "spillover_exposure", _estimate(0.9 if world == "buzz" else 0.01, 0.25)
            )
            joint = _estimate(0.0, 1.0, p_value=0.33, df=15, statistic=16.8)
            joint.estimate, joint.std_error, joint.interval = None, None, None
            results.add_test(outcome, "heterogeneity_sector", joint)
            for scale in SCALES:
                results.add_description(
                    outcome,
                    f"probability_change_{scale}",
                    _estimate(effects[scale] * 0.2, 0.01, {**ROBUST, "method": "delta_method"}),
                )
            results.add_description(
                outcome,
                "ratio_international_regional",
                _estimate(
                    effects["international"] / effects["regional"],
                    1.9,
                    {**ROBUST, "method": "fieller"},
                    p_value=None,
                    interval=Interval([(-math.inf, -58.8), (1.42, math.inf)]),
                ),
            )
    for programme, gain in (("pipeline", 0.05), ("cluster", 0.01)):
        if world == "buzz":
            gain = 0.06 - gain
        cells = [
            CounterfactualCell(
                region=region,
                firms=float(firms),
                baseline_rate=0.476,
                predicted_rate=0.476 + gain * 100 / 1604,
                extra_innovators=gain * 100 * firms / 1604,
                predicted_rate_interval=Interval.bounded(0.45, 0.5),
                extra_innovators_interval=Interval.bounded(0.0, gain * 200 * firms / 1604),
            )
            for region, firms in zip(REGIONS, REGION_FIRMS, strict=True)
        ]
        cells.append(
            CounterfactualCell("all", 1604.0, 0.476, 0.476 + gain * 100 / 1604, gain * 100)
        )
        results.counterfactuals.append(
            CounterfactualResult(
                outcome="product",
                programme=programme,
                firms_treated=100,
                allocation="total",
                targeting="random",
                cells=cells,
                bootstrap_replications=199,
                notes=[ProgrammeNote(ProgrammeNoteKind.NOT_CAUSED)],
            )
        )
    results.verdicts = decide_verdicts(results, "product")
    return json.loads(results.to_json())


@pytest.mark.parametrize("world", ["pipelines", "buzz"])
def test_study_format_results_pass_the_results_file_check(world):
    from buzzpipe.results import validate_results

    validate_results(make_study_results(world))


@pytest.mark.parametrize(
    "breakage, where",
    [
        (lambda r: r.update(format_version=99), "$.format_version"),
        (
            lambda r: r["models"]["product"]["controls"]["terms"]["breadth_regional"].update(
                p_value=1.5
            ),
            "$.models.product.controls.terms.breadth_regional.p_value",
        ),
        (
            lambda r: r["models"]["product"]["controls"]["terms"]["breadth_regional"].update(
                std_error="big"
            ),
            "breadth_regional.std_error",
        ),
        (lambda r: r["models"]["product"]["controls"].pop("nobs"), "controls.nobs"),
        (lambda r: r["verdicts"][0].update(verdict="maybe"), "$.verdicts[0].verdict"),
        (
            lambda r: r["tests"]["product"]["supermodularity"]["interval"].update(
                segments=[[2.0, 1.0]]
            ),
            "supermodularity.interval.segments[0]",
        ),
        (
            lambda r: r["counterfactuals"][0]["cells"][0].update(baseline_rate=-0.2),
            "cells[0].baseline_rate",
        ),
        (
            lambda r: r["descriptives"]["rows"][0]["values"].pop(),
            "$.descriptives.rows[0].values",
        ),
        (
            lambda r: r["models"]["product"]["controls"]["inference"].update(kind="jackknife"),
            "$.models.product.controls.inference.kind",
        ),
        (
            lambda r: r["models"]["product"]["controls"]["term_kinds"]["Intercept"].update(
                kind="constant"
            ),
            "controls.term_kinds.Intercept.kind",
        ),
        (lambda r: r["verdicts"][0].update(finding="unknown_finding"), "$.verdicts[0].finding"),
        (lambda r: r["models"]["product"]["controls"].update(colour="red"), "controls.colour"),
    ],
)
def test_broken_study_results_fail_with_the_json_path_named(breakage, where):
    from buzzpipe.results import validate_results

    results = make_study_results()
    breakage(results)
    with pytest.raises(InputError) as caught:
        validate_results(results, file="results.json")
    message = str(caught.value)
    assert "results.json" in message and where in message and "\n" not in message
