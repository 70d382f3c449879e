"""From ``results.json`` (the study's format) to the report view the tables and figures draw.

This is the one place that knows both shapes: term names become printed labels, scales and
factors (``C(industry)[T.retail]`` rows collapse into "Industry dummies"), short inference names
become the words a table note needs, and each verdict gets its evidence on the scale a reader
expects (odds ratios for logit terms). No number is estimated here: odds ratios are exp(b)
of the study's coefficients, as Stata's ``eform`` displays them.
"""

import math
import re
from collections.abc import Mapping
from typing import Any

from buzzpipe import __version__
from buzzpipe.report.intervals import exponentiated
from buzzpipe.report.results_file import decode_float
from buzzpipe.report.view_schema import VIEW_VERSION
from buzzpipe.report.wording import (
    compared_variant,
    description_label,
    hypothesis_words,
    rule_text,
    test_label,
)
from buzzpipe.survey.schema import SCALES, parse_collab_column

OUTCOME_LABELS = {
    "product": "Product innovation",
    "process": "Process innovation",
    "new_to_market": "New-to-market innovation",
    "product_novelty": "Product novelty (ordered)",
}
MODEL_LABELS = {
    "breadth": "Breadth",
    "controls": "Breadth and controls",
    "controls_with_group": "Breadth counting own group",
    "partner_types": "Partner types",
    "by_region_size": "By city-region size",
    "by_sector": "By sector",
}
MODEL_TABLES = {
    "breadth": "main",
    "controls": "main",
    "controls_with_group": "main",
    "partner_types": "partner_types",
    "by_region_size": "heterogeneity",
    "by_sector": "heterogeneity",
}
PRIMARY_MODEL = "controls"
VARIABLE_LABELS = {
    "np.log(employees)": "Employees (log)",
    "foreign_share": "Foreign ownership share",
    "openness": "Manager openness",
    "education": "Staff education share",
    "firm_age": "Firm age",
    "region_size": "City-region size (log firms)",
    "pipeline_exposure": "Pipeline exposure through local partners",
}
FINDING_LABELS = {
    "international_effect": "International partners",
    "regional_effect": "Regional partners",
    "national_effect": "National partners",
    "pipelines_stronger": "Pipelines stronger than buzz",
    "complementarity": "Complementarity",
    "spillover": "Local spill-over",
    "heterogeneity_region_size": "Differences by city-region size",
    "heterogeneity_sector": "Differences by sector",
}
TARGETING_WORDS = {
    "random": "random firms",
    "smallest": "smallest firms",
    "no_pipeline": "firms without a pipeline",
}
# Printed labels of the data layer's descriptive statistics whose names are column names.
STATISTIC_LABELS = {
    "local_only": "local only (partners in the own city-region, none abroad)",
    "global_only": "global only (partners abroad, none in the own city-region)",
    "both": "local and global (partners in both)",
    "none": "none (no partner in the own city-region or abroad)",
    "employees": "employees (mean number)",
    "foreign ownership": "foreign ownership (mean share, 0 to 1)",
    "pipeline_exposure": "pipeline exposure (mean share of local partners with a pipeline)",
    "pipeline_exposure_unknown_share": "local partners whose pipeline status is unknown "
    "(mean share)",
    "new_to_market": "new to the market",
}

_FACTOR = re.compile(r"^C\((?P<name>\w+)\)\[T\.(?P<level>.+)\]$")
_CUT = re.compile(r"^cut(?P<number>\d+)$")


def inference_text(name: str) -> str:
    """Words for a short inference name ('robust' -> firm-level robust errors, Stata's name)."""
    base, _, rest = name.partition(",")
    words = {
        "robust": "firm-level robust standard errors (Stata vce(robust))",
        "classical": "classical standard errors (inverse observed Hessian)",
        "cluster(region)": "region-clustered standard errors (Stata vce(cluster region))",
    }.get(base.strip())
    if words is None:
        words = _wild_bootstrap_words(base.strip()) or _cluster_words(base.strip())
    return words + (f", {rest.strip()}" if rest.strip() else "")


def _cluster_words(name: str) -> str:
    """'cluster(region_industry_cell)' -> standard errors clustered by region x industry cell."""
    match = re.match(r"^cluster\((?P<by>\w+)\)$", name)
    if not match:
        return name
    by = {"region_industry_cell": "region \u00d7 industry cell"}.get(
        match["by"], match["by"].replace("_", " ")
    )
    return f"standard errors clustered by {by} (Stata vce(cluster))"


def _wild_bootstrap_words(name: str) -> str | None:
    """'wild score bootstrap by region_industry_cell (webb)' -> 'wild cluster score bootstrap
    over region x industry cells (Webb weights)'; a bare name clusters by region."""
    match = re.match(r"^wild score bootstrap(?: by (?P<by>\w+))?(?: \((?P<weights>\w+)\))?$", name)
    if not match:
        return None
    clusters = {"region": "regions", "region_industry_cell": "region \u00d7 industry cells"}
    by = match["by"] or "region"
    words = f"wild cluster score bootstrap over {clusters.get(by, by.replace('_', ' '))}"
    if match["weights"]:
        words += f" ({match['weights'].capitalize()} weights)"
    return words


def _float(value: Any) -> float | None:
    """The study's float encoding ("inf", "-inf", null) as a float; NaN and null as None."""
    decoded = decode_float(value)
    return None if decoded is None or math.isnan(decoded) else decoded


def _interval(record: Mapping[str, Any] | None) -> list | None:
    """A study interval as [low, high] (None ends unbounded), or a list of segments."""
    if not record or not record.get("segments"):
        return None
    segments = []
    for low, high in record["segments"]:
        low_value, high_value = _float(low), _float(high)
        segments.append(
            [
                None if low_value is None or math.isinf(low_value) else low_value,
                None if high_value is None or math.isinf(high_value) else high_value,
            ]
        )
    return segments[0] if len(segments) == 1 else segments


def _estimate(record: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "estimate": _float(record.get("estimate")),
        "se": _float(record.get("std_error")),
        "interval": _interval(record.get("interval")),
        "p": _float(record.get("p_value")),
    }


def term_label(name: str) -> str:
    """The printed label of a model term."""
    if name == "Intercept":
        return "Constant"
    cut = _CUT.match(name)
    if cut:
        return f"Cut {cut['number']}"
    if ":" in name:
        return " \u00d7 ".join(term_label(part) for part in name.split(":"))
    for scale in SCALES:
        if name == f"breadth_{scale}":
            return f"Breadth, {scale}"
        if name == f"breadth_{scale}_with_group":
            return f"Breadth with own group, {scale}"
    parsed = parse_collab_column(name)
    if parsed:
        scale, partner_type = parsed
        return f"{partner_type.replace('_', ' ').capitalize()}, {scale}"
    factor = _FACTOR.match(name)
    if factor:
        return f"{factor['name'].replace('_', ' ')}: {factor['level'].replace('_', ' ')}"
    return VARIABLE_LABELS.get(name, name.replace("_", " ").capitalize())


def _term(name: str, record: Mapping[str, Any]) -> dict[str, Any]:
    term = _estimate(record)
    term["label"] = term_label(name)
    if name == "Intercept":
        term["kind"] = "intercept"
    elif _CUT.match(name):
        term["kind"] = "cut"
    parts = name.split(":")
    factors = [match["name"] for match in (_FACTOR.match(part) for part in parts) if match]
    if factors:
        others = [term_label(part) for part in parts if not _FACTOR.match(part)]
        term["factor"] = " \u00d7 ".join([*others, *factors]) if others else factors[0]
    elif len(parts) == 1:
        for scale in SCALES:
            if name in (f"breadth_{scale}", f"breadth_{scale}_with_group"):
                term["scale"] = scale
        parsed = parse_collab_column(name)
        if parsed:
            term["scale"], term["partner_type"] = parsed
    return term


def model_label(name: str) -> str:
    """A model's column heading: 'Breadth and controls', 'Regional alone'."""
    if name in MODEL_LABELS:
        return MODEL_LABELS[name]
    return name.replace("_", " ").capitalize()


def model_table(name: str) -> str:
    """Which table a model's column goes to: each scale's breadth alone (``<scale>_alone``)
    sits with the main models, as the first columns of a published table; unknown models get
    a table of their own."""
    if name in MODEL_TABLES:
        return MODEL_TABLES[name]
    scale, _, rest = name.partition("_")
    return "main" if rest == "alone" and scale in SCALES else name


def _model(outcome: str, name: str, record: Mapping[str, Any], descriptions: Mapping) -> dict:
    terms = {
        term_name: _term(term_name, term)
        for term_name, term in record["terms"].items()
        if _float(term.get("estimate")) is not None
    }
    stats = {
        "n": int(record["nobs"]),
        "pseudo_r2": _float(record.get("pseudo_r2")),
        "llf": _float(record.get("log_likelihood")),
    }
    model: dict[str, Any] = {
        "label": model_label(name),
        "family": record["family"],
        "table": model_table(name),
        "inference": inference_text(record["inference"]),
        "stats": stats,
        "terms": terms,
    }
    effects = {
        term_name: _estimate(effect)
        for term_name, effect in record.get("marginal_effects", {}).items()
        if _float(effect.get("estimate")) is not None
    }
    if name == PRIMARY_MODEL:  # the study keeps +1-partner probability changes as descriptions
        for scale in SCALES:
            change = descriptions.get(outcome, {}).get(f"probability_change_{scale}")
            if change is not None and f"breadth_{scale}" in terms:
                effects.setdefault(f"breadth_{scale}", _estimate(change))
    if effects:
        model["marginal_effects"] = effects
    sensitivity = {}
    for column, by_term in record.get("sensitivity", {}).items():
        kept = {t: _estimate(e) for t, e in by_term.items() if t in terms}
        if kept:
            sensitivity[column] = {"inference": inference_text(column), "terms": kept}
    if sensitivity:
        model["sensitivity"] = sensitivity
    if record.get("notes"):
        model["notes"] = list(record["notes"])
    return model


def _inference_record(
    section: str, name: str, record: Mapping[str, Any], labels, outcomes: Mapping[str, Any]
) -> dict:
    entry = _estimate(record)
    df = record.get("df")
    view = {
        "id": f"{section}/{name}",
        "label": labels(name),
        "outcome": section if section in outcomes else None,
        "hypothesis": hypothesis_words(record.get("hypothesis") or "", name),
        "statistic": _float(record.get("statistic")),
        "df": df,
        "distribution": "chi2" if df else "normal",
        "alternative": record.get("alternative", "two-sided"),
        "p": entry["p"],
        "estimate": entry["estimate"],
        "interval": entry["interval"],
        "inference": record["inference"],  # short: the table's note spells each name out
    }
    primary, variant = compared_variant(name)
    if variant is not None:  # a sensitivity column of another test
        view["compares"] = {"test": f"{section}/{primary}", "inference": variant}
    return view


def _counterfactual(record: Mapping[str, Any]) -> dict[str, Any]:
    per = "in total" if record["allocation"] == "total" else "per region"
    targeting = TARGETING_WORDS.get(record["targeting"], record["targeting"].replace("_", " "))
    programme = record["programme"].capitalize()
    if record.get("scale"):
        programme += f": one more kind of {record['scale']} partner"
    cells = []
    overall = None
    for cell in record["cells"]:
        row = {
            "region": "All regions" if cell["region"] == "all" else cell["region"],
            "firms": _float(cell["firms"]) or 0.0,
            "baseline_rate": _float(cell["baseline_rate"]),
            "predicted_rate": {
                "estimate": _float(cell["predicted_rate"]),
                "interval": _interval(cell.get("predicted_rate_interval")),
            },
            "extra_innovators": {
                "estimate": _float(cell["extra_innovators"]),
                "interval": _interval(cell.get("extra_innovators_interval")),
            },
        }
        if cell["region"] == "all":
            overall = row
        else:
            cells.append(row)
    if overall is None:  # a single-region survey: its one cell is the whole
        overall = dict(cells[0], region="All regions") if cells else None
    replications = record.get("bootstrap_replications", 0)
    view = {
        "id": f"{record['programme']}-{record['firms_treated']}-{record['allocation']}-"
        f"{record['targeting']}",
        "label": f"{programme} ({record['firms_treated']} {per}, {targeting})",
        "legend": f"{record['programme'].capitalize()}"
        + (f", {record['scale']}" if record.get("scale") else "")
        + f" ({record['firms_treated']} {per}, {targeting})",
        "outcome": record["outcome"],
        "k": int(record["firms_treated"]),
        "k_per": "total" if record["allocation"] == "total" else "region",
        "targeting": targeting
        + (", weighted to population totals" if record.get("weighted") else ""),
        "regions": cells,
        "overall": overall,
        "notes": list(record.get("notes", [])),
    }
    if replications:
        view["interval_method"] = (
            f"region-stratified firm bootstrap, {replications} replicates, 95% percentile"
        )
    return view


def _lookup(results: Mapping[str, Any], path: str) -> tuple[Mapping[str, Any] | None, str | None]:
    """The estimate a verdict's quantity path names, and the family when it is a model term."""
    kind, _, rest = path.partition("/")
    if kind == "models":
        outcome, model, term = (rest.split("/", 2) + ["", ""])[:3]
        fitted = results["models"].get(outcome, {}).get(model)
        if fitted is None:
            return None, None
        return fitted["terms"].get(term), fitted["family"]
    section, _, name = rest.rpartition("/")
    return results.get(kind, {}).get(section, {}).get(name), None


def _verdict(results: Mapping[str, Any], record: Mapping[str, Any]) -> dict[str, Any]:
    estimate, family = _lookup(results, record["quantity"])
    evidence: dict[str, Any] = {}
    if estimate is not None:
        shown = _estimate(estimate)
        if family in ("logit", "ologit") and shown["estimate"] is not None:
            evidence["odds_ratio"] = math.exp(shown["estimate"])
            evidence["interval"] = exponentiated(shown["interval"])
        else:
            evidence["estimate"] = shown["estimate"]
            evidence["interval"] = shown["interval"]
        if estimate.get("statistic") is not None and estimate.get("df"):
            evidence["chi2"] = _float(estimate["statistic"])
            evidence["df"] = int(estimate["df"])
        evidence["p"] = shown["p"]
        if estimate.get("alternative", "two-sided") != "two-sided":
            evidence["alternative"] = estimate["alternative"]
    return {
        "finding": record["finding"],
        "label": FINDING_LABELS.get(record["finding"], record["finding"].replace("_", " ")),
        "outcome": record["outcome"],
        "state": record["verdict"],
        "rule": {
            "id": record["rule"],
            "text": rule_text(record["rule"], record["outcome"], record["quantity"]),
            "threshold": record["threshold"],
        },
        "evidence": evidence,
    }


def statistic_label(statistic: str, measure: str) -> str:
    """A descriptive statistic's printed label: words for column names, the unit of a mean."""
    if statistic in STATISTIC_LABELS:
        return STATISTIC_LABELS[statistic]
    label = statistic.replace("_", " ")
    if measure == "mean" and "mean" not in label:
        label += " (mean)"
    return label


def _descriptives(record: Mapping[str, Any]) -> dict[str, Any]:
    rows = [
        {
            "section": row["section"],
            "label": statistic_label(row["statistic"], row["measure"]),
            "measure": row["measure"],
            "values": [_float(value) for value in row["values"]],
        }
        for row in record["rows"]
    ]
    columns = [column[:1].upper() + column[1:] for column in record["columns"]]
    notes = [record["note"]] if record.get("note") else []
    notes.append(
        "Shares (in % of firms) and means over the firms whose answer is known; counts of "
        "firms; unweighted. Breadth is the number of partner types a firm collaborates with at "
        "a scale. Regional: partners in the firm's own city-region; national: elsewhere in the "
        "country; international: abroad. A pipeline is at least one partner abroad."
    )
    return {"columns": columns, "rows": rows, "notes": notes}


def _regimes(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Regime shares by group (all firms, then each region) from the descriptive table."""
    rows = [row for row in record["rows"] if row["section"] == "regime"]
    groups = []
    for index, column in enumerate(record["columns"]):
        shares = {row["statistic"]: _float(row["values"][index]) for row in rows}
        if any(share is not None for share in shares.values()):
            groups.append({"group": column[:1].upper() + column[1:], "shares": shares})
    return groups


def report_view(results: Mapping[str, Any]) -> dict[str, Any]:
    """The report view of results in the study's format (checked by ``read_results``)."""
    meta = results.get("meta", {})
    source = dict(meta.get("source") or {})
    source.setdefault("kind", "file")
    source.setdefault("name", "survey")
    source.setdefault("seed", meta.get("seed"))
    source.setdefault("firms", meta.get("firms", 0))
    descriptions = results.get("descriptions", {})
    outcomes = {}
    for outcome, models in results["models"].items():
        record: dict[str, Any] = {
            "label": OUTCOME_LABELS.get(outcome, outcome.replace("_", " ").capitalize()),
            "models": {
                name: _model(outcome, name, model, descriptions) for name, model in models.items()
            },
        }
        if PRIMARY_MODEL in models:
            record["primary_model"] = PRIMARY_MODEL
        outcomes[outcome] = record
    view: dict[str, Any] = {
        "view_version": VIEW_VERSION,
        "buzzpipe_version": str(meta.get("package_version", __version__)),
        "title": meta.get("title") or f"Local buzz and global pipelines: {source['name']}",
        "source": source,
        "scales": list(meta.get("scales", SCALES)),
        "inference": {"policy": meta.get("inference_policy", "")},
        "notes": [*meta.get("notes", [])],
        "outcomes": outcomes,
        "tests": [
            _inference_record(section, name, record, test_label, outcomes)
            for section, records in results.get("tests", {}).items()
            for name, record in records.items()
        ],
        "descriptions": [
            _inference_record(section, name, record, description_label, outcomes)
            for section, records in descriptions.items()
            for name, record in records.items()
        ],
        "counterfactuals": [_counterfactual(r) for r in results.get("counterfactuals", [])],
        "verdicts": [_verdict(results, record) for record in results["verdicts"]],
    }
    by_outcome = {
        outcome: [_verdict(results, record) for record in records]
        for outcome, records in results.get("verdicts_by_outcome", {}).items()
        if outcome in outcomes and records
    }
    if by_outcome:
        view["verdicts_by_outcome"] = by_outcome
    if meta.get("counterfactual_model"):
        view["notes"].append(f"Counterfactuals are predicted under {meta['counterfactual_model']}.")
    if meta.get("descriptives"):
        view["descriptives"] = _descriptives(meta["descriptives"])
        view["regimes"] = _regimes(meta["descriptives"])
    return view
