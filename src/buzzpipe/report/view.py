"""From the study's results (``results.json``, format 2) to the report view the tables and
figures draw.

This is the one place that knows both shapes: terms become printed labels from their kinds
(factor levels such as industry: retail collapse into "Industry dummies"), inference records
become the words a table note needs, and each verdict gets its evidence on the scale a reader
expects (odds ratios for logit terms). Every word comes from ``report/wording.py`` or the
findings catalogue; no number is estimated here: odds ratios are exp(b) of the study's
coefficients, as Stata's ``eform`` displays them.
"""

import math
from collections.abc import Mapping
from typing import Any

from buzzpipe import __version__
from buzzpipe.report.intervals import exponentiated, is_union
from buzzpipe.report.replica import replica_rows
from buzzpipe.report.view_schema import VIEW_VERSION
from buzzpipe.report.wording import (
    TARGETING_WORDS,
    VERDICT_INFERENCE_WORDS,
    breadth_category_scale,
    compared_variant,
    description_label,
    hypothesis_words,
    inference_text,
    model_label,
    model_table,
    programme_note_words,
    rule_text,
    statistic_label,
    term_label,
    test_label,
)
from buzzpipe.results import (
    ALL_REGIONS,
    CounterfactualResult,
    Descriptives,
    Estimate,
    Inference,
    Interval,
    ModelResult,
    Note,
    StudyResults,
    Term,
    Verdict,
    results_from_dict,
)
from buzzpipe.results.findings import finding_label, outcome_label
from buzzpipe.results.records import REASON_WORDS
from buzzpipe.results.vocabulary import (
    Allocation,
    Family,
    HypothesisKind,
    InferenceKind,
    ModelName,
    NoteKind,
    SourceKind,
    TermKind,
    VerdictState,
)
from buzzpipe.results.walk import encode
from buzzpipe.survey.schema import SCALES, parse_collab_column

PRIMARY_MODEL = ModelName.CONTROLS
NOT_ASSESSED = VerdictState.NOT_ASSESSED
EXPONENTIATED_FAMILIES = (Family.LOGIT, Family.OLOGIT)


def as_results(results: StudyResults | Mapping[str, Any]) -> StudyResults:
    """Typed results from typed results or JSON data (checked, format 1 converted)."""
    if isinstance(results, StudyResults):
        return results
    return results_from_dict(results)


def _float(value: float | None) -> float | None:
    """A float for the view: NaN and None as None (infinities stay)."""
    return None if value is None or math.isnan(value) else float(value)


def _interval(interval: Interval | None) -> list | None:
    """An interval as [low, high] (None ends unbounded), or a list of segments."""
    if interval is None or not interval.segments:
        return None
    segments = []
    for low, high in interval.segments:
        segments.append(
            [
                None if math.isnan(low) or math.isinf(low) else float(low),
                None if math.isnan(high) or math.isinf(high) else float(high),
            ]
        )
    return segments[0] if len(segments) == 1 else segments


def _estimate(record: Estimate) -> dict[str, Any]:
    return {
        "estimate": _float(record.estimate),
        "se": _float(record.std_error),
        "interval": _interval(record.interval),
        "p": _float(record.p_value),
    }


def _term(name: str, record: Estimate, kind: Term) -> dict[str, Any]:
    term = _estimate(record)
    term["label"] = term_label(name, kind)
    if kind.kind in (TermKind.INTERCEPT, TermKind.CUT):
        term["kind"] = kind.kind.value
    parts = kind.parts if kind.kind == TermKind.INTERACTION else [kind]
    factors = [str(part.variable) for part in parts if part.kind == TermKind.FACTOR_LEVEL]
    category = breadth_category_scale(kind)
    if category:  # breadth as categories: the model's comparison, a row per level
        term["scale"] = category
    elif factors:
        others = [
            term_label(str(part.variable), part)
            for part in parts
            if part.kind != TermKind.FACTOR_LEVEL
        ]
        term["factor"] = " \u00d7 ".join([*others, *factors]) if others else factors[0]
    elif kind.kind == TermKind.CONTINUOUS:
        variable = str(kind.variable)
        for scale in SCALES:
            if variable in (f"breadth_{scale}", f"breadth_{scale}_with_group"):
                term["scale"] = scale
        parsed = parse_collab_column(variable)
        if parsed:
            term["scale"], term["partner_type"] = parsed
    return term


def _kind_of(record: ModelResult, name: str) -> Term:
    return record.term_kinds.get(name) or Term(TermKind.CONTINUOUS, variable=name)


def covariance_label(inference: Inference) -> str:
    """The covariance as esttab's and modelsummary's rows name it: ``Robust``, ``Clustered by
    region (5 clusters)``, ``Wild score bootstrap by region (5 clusters)``."""
    clusters = f" ({inference.clusters} clusters)" if inference.clusters else ""
    if inference.kind == InferenceKind.CLUSTER:
        return f"Clustered by {inference.by}{clusters}"
    if inference.kind == InferenceKind.WILD_SCORE_BOOTSTRAP:
        return "Wild score bootstrap" + (f" by {inference.by}" if inference.by else "") + clusters
    return inference.kind.value.replace("_", " ").capitalize()


def _information_criteria(record: ModelResult) -> dict[str, float | None]:
    """AIC and BIC as Stata's ``estat ic``: -2 ln L + 2k and -2 ln L + k ln N, k the number of
    estimated parameters (coefficients and cut points)."""
    llf = _float(record.log_likelihood)
    if llf is None or record.nobs <= 0:
        return {"aic": None, "bic": None}
    k = sum(1 for term in record.terms.values() if _float(term.estimate) is not None)
    return {"aic": -2 * llf + 2 * k, "bic": -2 * llf + k * math.log(record.nobs)}


def _column_inference(estimates: Mapping[str, Estimate]) -> Inference:
    """The inference a sensitivity column names (its kind and clustering, for the heading)."""
    first = next(iter(estimates.values())).inference
    return Inference(first.kind, by=first.by)


def _model(outcome: str, name: str, record: ModelResult, descriptions: Mapping[str, Any]) -> dict:
    terms = {
        term_name: _term(term_name, term, _kind_of(record, term_name))
        for term_name, term in record.terms.items()
        if _float(term.estimate) is not None
    }
    stats = {
        "n": int(record.nobs),
        "pseudo_r2": _float(record.pseudo_r2),
        "llf": _float(record.log_likelihood),
        "clusters": record.inference.clusters,
        **_information_criteria(record),
    }
    model: dict[str, Any] = {
        "label": model_label(name),
        "family": record.family.value,
        "table": model_table(name),
        "inference": inference_text(record.inference),
        "covariance": covariance_label(record.inference),
        "stats": stats,
        "terms": terms,
    }
    effects = {
        term_name: _estimate(effect)
        for term_name, effect in record.marginal_effects.items()
        if _float(effect.estimate) is not None
    }
    if name == PRIMARY_MODEL:  # the study keeps +1-partner probability changes as descriptions
        for scale in SCALES:
            change = descriptions.get(outcome, {}).get(f"probability_change_{scale}")
            if change is not None and f"breadth_{scale}" in terms:
                effects.setdefault(f"breadth_{scale}", _estimate(change))
    if effects:
        model["marginal_effects"] = effects
    sensitivity = {}
    for column, by_term in record.sensitivity.items():
        kept = {t: _estimate(e) for t, e in by_term.items() if t in terms}
        if kept:
            sensitivity[column.value] = {
                "inference": inference_text(_column_inference(by_term)),
                "terms": kept,
            }
    if sensitivity:
        model["sensitivity"] = sensitivity
    if record.notes:
        model["notes"] = list(record.notes)
    return model


def _inference_record(
    section: str, name: str, record: Estimate, labels, outcomes: Mapping[str, Any]
) -> dict:
    entry = _estimate(record)
    df = record.df
    label = labels(name)
    hypothesis = record.hypothesis
    if (  # a file before issue 16: equal_<term> across outcomes tested the coefficients
        name.startswith("equal_")
        and hypothesis is not None
        and hypothesis.kind == HypothesisKind.EQUAL_ACROSS_OUTCOMES
    ):
        label = labels(f"coefficients_{name}")
    view = {
        "id": f"{section}/{name}",
        "label": label,
        "outcome": section if section in outcomes else None,
        "hypothesis": hypothesis_words(record.hypothesis, name),
        "statistic": _float(record.statistic),
        "df": df,
        "distribution": "chi2" if df else "normal",
        "alternative": record.alternative.value,
        "p": entry["p"],
        "estimate": entry["estimate"],
        "interval": entry["interval"],
        "inference": record.inference.short(),  # short: the table's note spells it out
        "inference_words": inference_text(record.inference),
    }
    primary, variant = compared_variant(name)
    if variant is not None:  # a sensitivity column of another test
        view["compares"] = {"test": f"{section}/{primary}", "inference": variant}
    return view


def _counterfactual(record: CounterfactualResult) -> dict[str, Any]:
    total = record.allocation == Allocation.TOTAL
    per = "in total" if total else "per region"
    targeting = TARGETING_WORDS[record.targeting]
    programme = record.programme.value.capitalize()
    if record.scale:
        programme += f": one more kind of {record.scale} partner"
    cells = []
    overall = None
    for cell in record.cells:
        row = {
            "region": "All regions" if cell.region == ALL_REGIONS else cell.region,
            "firms": _float(cell.firms) or 0.0,
            "baseline_rate": _float(cell.baseline_rate),
            "predicted_rate": {
                "estimate": _float(cell.predicted_rate),
                "interval": _interval(cell.predicted_rate_interval),
            },
            "extra_innovators": {
                "estimate": _float(cell.extra_innovators),
                "interval": _interval(cell.extra_innovators_interval),
            },
        }
        if cell.region == ALL_REGIONS:
            overall = row
        else:
            cells.append(row)
    if overall is None:  # a single-region survey: its one cell is the whole
        overall = dict(cells[0], region="All regions") if cells else None
    replications = record.bootstrap_replications
    k = record.firms_treated
    view = {
        "id": f"{record.programme.value}-{k}-{record.allocation.value}-{record.targeting.value}",
        "label": f"{programme} ({k} {per}, {targeting})",
        "legend": f"{record.programme.value.capitalize()}"
        + (f", {record.scale}" if record.scale else "")
        + f" ({k} {per}, {targeting})",
        "outcome": record.outcome,
        "k": int(k),
        "k_per": "total" if total else "region",
        "targeting": targeting + (", weighted to population totals" if record.weighted else ""),
        "regions": cells,
        "overall": overall,
        "notes": [
            words
            for note in record.notes
            if (words := programme_note_words(note, record.programme.value))
        ],
    }
    if replications:
        view["interval_method"] = (
            f"region-stratified firm bootstrap, {replications} replicates, 95% percentile"
        )
    return view


def _evidence_scale(estimate: Estimate | None, evidence: Mapping[str, Any]) -> str | None:
    """The scale of a verdict's evidence, so that the report lists each scale apart: odds ratios
    (exponentiated model terms), a joint chi-squared test, the probability scale (the Ai-Norton
    double difference), else None: the headline model's own scale (log-odds for a logit)."""
    if "odds_ratio" in evidence:
        return "odds_ratio"
    if "chi2" in evidence:
        return "joint"
    hypothesis = estimate.hypothesis if estimate is not None else None
    if hypothesis is not None and hypothesis.kind in (
        HypothesisKind.INTERACTION_PROBABILITY,
        HypothesisKind.FIRST_PARTNER_DIFFERENCE,  # pipelines versus buzz on common support
    ):
        return "probability"
    return None


def _counterfactuals(records: list[CounterfactualResult]) -> list[dict[str, Any]]:
    """The programmes under the primary model; the same programme under the model with the
    local x international interaction becomes a sensitivity column of its regions."""
    sensitivity = ModelName.CONTROLS_WITH_INTERACTION
    primary = [_counterfactual(r) for r in records if r.model != sensitivity]
    by_id = {programme["id"]: programme for programme in primary}
    for record in records:
        if record.model != sensitivity:
            continue
        other = _counterfactual(record)
        programme = by_id.get(other["id"])
        if programme is None:
            continue
        extra = {row["region"]: row["extra_innovators"]["estimate"] for row in other["regions"]}
        for row in programme["regions"]:
            row["extra_innovators_interaction"] = extra.get(row["region"])
        programme["overall"]["extra_innovators_interaction"] = other["overall"]["extra_innovators"][
            "estimate"
        ]
    return primary


def _verdict(results: StudyResults, record: Verdict) -> dict[str, Any]:
    estimate = results.lookup(record.quantity)
    model = results.model_of(record.quantity)
    evidence: dict[str, Any] = {}
    if estimate is not None:
        shown = _estimate(estimate)
        exponentiate = model is not None and model.family in EXPONENTIATED_FAMILIES
        if exponentiate and shown["estimate"] is not None:
            evidence["odds_ratio"] = math.exp(shown["estimate"])
            evidence["interval"] = exponentiated(shown["interval"])
        else:
            evidence["estimate"] = shown["estimate"]
            evidence["interval"] = shown["interval"]
        if estimate.statistic is not None and estimate.df:
            evidence["chi2"] = _float(estimate.statistic)
            evidence["df"] = int(estimate.df)
        evidence["p"] = shown["p"] if record.p_value is None else _float(record.p_value)
        if record.p_adjusted is not None:
            evidence["p_adjusted"] = _float(record.p_adjusted)
        if estimate.alternative != estimate.alternative.TWO_SIDED:
            evidence["alternative"] = estimate.alternative.value
            bounds = evidence.pop("interval", None)
            if bounds and not is_union(bounds) and bounds[1] is None and bounds[0] is not None:
                evidence["one_sided_lower_bound"] = bounds[0]  # [low, inf): the p's own bound
    inference = record.inference or (estimate.inference if estimate is not None else None)
    view = {
        "scale": _evidence_scale(estimate, evidence),
        "finding": record.finding.value,
        "label": finding_label(record.finding),
        "outcome": record.outcome,
        "state": record.verdict.value,
        "rule": {
            "id": record.rule,
            "text": rule_text(
                record.decision,
                record.quantities,
                record.threshold,
                record.outcome,
                record.quantity,
            ),
            "threshold": record.threshold,
        },
        "evidence": evidence,
        **(
            {"reason": REASON_WORDS[record.reason], "reason_detail": record.reason_detail}
            if record.reason is not None
            else {}
        ),
    }
    if inference is not None:
        view["inference"] = inference.short()
    if record.adjustment:
        view["family"] = {
            "name": record.family,
            "size": record.family_size,
            "adjustment": record.adjustment,
        }
    return view


def _not_assessed(note: Note) -> dict[str, Any]:
    """A skipped model or part for the report: which outcome, what, why (in words) and the
    estimator's line."""
    return {
        "outcome": outcome_label(note.outcome) if note.outcome else "",
        "what": note.subject() if note.part else note.quantity or note.model or "a part",
        "reason": REASON_WORDS[note.cause] if note.cause else "not estimable",
        "detail": note.reason or note.text,
    }


def _descriptives(table: Descriptives) -> dict[str, Any]:
    rows = [
        {
            "section": row.section,
            "label": statistic_label(row.statistic, row.measure),
            "measure": row.measure.value,
            "values": [_float(value) for value in row.values],
        }
        for row in table.rows
    ]
    columns = [column[:1].upper() + column[1:] for column in table.columns]
    notes = [table.note] if table.note else []
    notes.append(
        "Shares (in % of firms) and means over the firms whose answer is known; counts of "
        "firms; unweighted. Breadth is the number of partner types a firm collaborates with at "
        "a scale. Regional: partners in the firm's own city-region; national: elsewhere in the "
        "country; international: abroad. A pipeline is at least one partner abroad."
    )
    return {"columns": columns, "rows": rows, "notes": notes}


REGIME_SECTION = "regime"


def _regimes(table: Descriptives) -> list[dict[str, Any]]:
    """Regime shares by group (all firms, then each region) from the descriptive table."""
    rows = [row for row in table.rows if row.section == REGIME_SECTION]
    groups = []
    for index, column in enumerate(table.columns):
        shares = {row.statistic: _float(row.values[index]) for row in rows}
        if any(share is not None for share in shares.values()):
            groups.append({"group": column[:1].upper() + column[1:], "shares": shares})
    return groups


def _reading(expected: str, state: str) -> str:
    """How a verdict reads against a synthetic preset's truth (as ``synth.truth.Truth``)."""
    if state == expected:
        return "matches the truth"
    if state == VerdictState.NOT_FOUND:
        return "misses a true effect"
    if state == VerdictState.NOT_ASSESSED:
        return "not assessed"
    return "contradicts the truth"


def _region_slopes(results: StudyResults) -> list[dict[str, Any]]:
    """Each city-region's own slope of each breadth scale (the ``by_region`` model's breadth x
    region terms, read from their term records), per outcome: descriptive, no test."""
    rows = []
    for outcome, models in results.models.items():
        model = models.get(ModelName.BY_REGION)  # type: ignore[call-overload]
        if model is None:
            continue
        for variable, by_region in model.slopes_by_level("region").items():
            scale = variable.removeprefix("breadth_")
            if scale not in SCALES or variable != f"breadth_{scale}":
                continue
            for region, estimate in by_region.items():
                if _float(estimate.estimate) is None:
                    continue
                rows.append(
                    {"outcome": outcome, "region": region, "scale": scale, **_estimate(estimate)}
                )
    return rows


def report_view(results: StudyResults | Mapping[str, Any]) -> dict[str, Any]:
    """The report view of the study's results (typed, or JSON data checked on the way)."""
    results = as_results(results)
    meta = results.meta
    source = {"kind": SourceKind.FILE.value, "name": "survey", "seed": meta.seed}
    source["firms"] = meta.firms
    if meta.source is not None:  # the orchestration's record, its entries as it set them
        source.update(encode(meta.source))
    descriptions = results.descriptions
    outcomes = {}
    for outcome, models in results.models.items():
        record: dict[str, Any] = {
            "label": outcome_label(outcome),
            "models": {
                str(name): _model(outcome, name, model, descriptions)
                for name, model in models.items()
            },
        }
        if PRIMARY_MODEL in models:
            record["primary_model"] = PRIMARY_MODEL.value
        outcomes[outcome] = record
    view: dict[str, Any] = {
        "view_version": VIEW_VERSION,
        "buzzpipe_version": meta.package_version or __version__,
        "title": meta.title or f"Local buzz and global pipelines: {source['name']}",
        "source": source,
        "scales": list(meta.scales or SCALES),
        "inference": {"policy": meta.inference_policy},
        # what was not assessed has its own list (below), with its reason
        "notes": [note.text for note in meta.notes if note.kind != NoteKind.NOT_ASSESSED],
        "outcomes": outcomes,
        "tests": [
            _inference_record(section, name, record, test_label, outcomes)
            for section, records in results.tests.items()
            for name, record in records.items()
        ],
        "descriptions": [
            _inference_record(section, name, record, description_label, outcomes)
            for section, records in descriptions.items()
            for name, record in records.items()
        ],
        "counterfactuals": _counterfactuals(results.counterfactuals),
        "verdicts": [_verdict(results, record) for record in results.verdicts],
    }
    by_outcome = {
        outcome: [_verdict(results, record) for record in records]
        for outcome, records in results.verdicts_by_outcome.items()
        if records and (outcome in outcomes or all(v.verdict == NOT_ASSESSED for v in records))
    }
    if by_outcome:
        view["verdicts_by_outcome"] = by_outcome
    synthetic = meta.synthetic
    if synthetic:
        view["synthetic"] = {
            key: synthetic[key] for key in ("preset", "banner", "power") if key in synthetic
        }
        truth = synthetic.get("truth") or {}
        for verdict in view["verdicts"]:
            if verdict["outcome"] == synthetic.get("outcome") and verdict["finding"] in truth:
                verdict["truth"] = dict(
                    truth[verdict["finding"]],
                    reading=_reading(truth[verdict["finding"]]["expected"], verdict["state"]),
                )
    if meta.published:
        view["published"] = replica_rows(results)
    slopes = _region_slopes(results)
    if slopes:
        view["region_slopes"] = slopes
    specification = meta.specification
    if specification is not None and specification.text:  # which outcomes and controls ran
        view["notes"].append(specification.text)
        if specification.chosen_by == "user":  # also under every models table
            view["specification"] = specification.text
        if specification.verdict_inference in VERDICT_INFERENCE_WORDS:  # not the headline rule
            view["verdict_inference"] = VERDICT_INFERENCE_WORDS[specification.verdict_inference]
    if skipped := meta.not_assessed():
        view["not_assessed"] = [_not_assessed(note) for note in skipped]
    if meta.counterfactual_model:
        view["notes"].append(
            f"Counterfactuals are predicted under {meta.counterfactual_model}, assuming "
            "breadth is as good as random"
            + (
                f"; the sensitivity column under {meta.counterfactual_sensitivity_model}."
                if meta.counterfactual_sensitivity_model
                else "."
            )
        )
    if results.descriptives is not None and results.descriptives.rows:
        view["descriptives"] = _descriptives(results.descriptives)
        view["regimes"] = _regimes(results.descriptives)
    if results.simulation is not None:
        from buzzpipe.report.simulation import simulation_view

        view["simulation"] = simulation_view(results.simulation)
    return view
