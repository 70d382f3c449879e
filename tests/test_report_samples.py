"""Hand-made results structures for the report tests (not from any estimator), and checks
that they, and broken variants of them, meet or fail the results schema as they should.
"""

import copy
import math

import pytest

from buzzpipe.errors import InputError
from buzzpipe.report.results_schema import validate_results
from buzzpipe.survey.schema import OUTCOMES, SCALES, breadth_column

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
    """A complete results structure for a world where pipelines (or buzz) drive innovation."""
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
            "holds": pipelines,
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
            "holds": not pipelines,
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
            "holds": pipelines,
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
            "holds": False,
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
            "holds": not pipelines,
            "rule": {
                "id": "spillover_5pct",
                "text": "exposure coefficient > 0, p < 0.05",
                "threshold": 0.05,
            },
            "evidence": {"estimate": 0.01 if pipelines else 0.9, "p": 0.8 if pipelines else 0.001},
        },
        {
            "finding": "heterogeneity",
            "holds": None,
            "rule": {
                "id": "joint_wald",
                "text": "joint Wald p < 0.05 where the covariance allows it",
                "threshold": 0.05,
            },
        },
    ]
    regimes = [
        {
            "outcome": outcome,
            "rows": [
                {"regime": "none", "firms": 250, "innovation_rate": 0.30},
                {
                    "regime": "local_only",
                    "firms": 630,
                    "innovation_rate": 0.38 if pipelines else 0.5,
                },
                {
                    "regime": "global_only",
                    "firms": 70,
                    "innovation_rate": 0.55 if pipelines else 0.33,
                },
                {"regime": "both", "firms": 654, "innovation_rate": 0.6},
            ],
        }
        for outcome in ("product", "process")
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
        "schema_version": 1,
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
            "title": "Firms by city-region",
            "columns": [
                {"key": "region", "label": "City-region"},
                {"key": "firms", "label": "Firms", "format": "count"},
                {"key": "product", "label": "Product innovators", "format": "percent"},
                {"key": "employees", "label": "Mean employees", "decimals": 1},
            ],
            "rows": [
                {"region": region, "firms": firms, "product": 0.476, "employees": 55.5}
                for region, firms in zip(REGIONS, REGION_FIRMS, strict=True)
            ],
        },
        "outcomes": outcomes,
        "tests": tests,
        "regimes": regimes,
        "counterfactuals": counterfactuals,
        "verdicts": verdicts,
    }


@pytest.mark.parametrize("world", ["pipelines", "buzz"])
def test_hand_made_results_meet_the_schema(world):
    validate_results(make_results(world))


@pytest.mark.parametrize(
    "breakage, where",
    [
        (lambda r: r.update(schema_version=2), "$.schema_version"),
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
        (lambda r: r["verdicts"][0].update(holds="yes"), "$.verdicts[0].holds"),
        (lambda r: r["verdicts"][0].pop("rule"), "$.verdicts[0].rule"),
        (lambda r: r["tests"][0].update(outcome="sales"), "$.tests[0].outcome"),
        (lambda r: r["tests"][0].update(interval=[2.0, 1.0]), "$.tests[0].interval"),
        (lambda r: r["counterfactuals"][0].update(k_per="city"), "k_per"),
        (lambda r: r["descriptives"]["rows"][0].pop("firms"), "rows[0].firms"),
    ],
)
def test_broken_results_fail_with_the_json_path_named(breakage, where):
    results = copy.deepcopy(make_results())
    breakage(results)
    with pytest.raises(InputError) as caught:
        validate_results(results, file="results.json")
    message = str(caught.value)
    assert "results.json" in message and where in message and "\n" not in message
