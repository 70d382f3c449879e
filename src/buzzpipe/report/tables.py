"""Paper-style tables built from a results structure: models, tests, verdicts, descriptives.

A table is plain data (cells of text plus stars) so that one layout feeds the HTML, CSV and
LaTeX writers in ``table_formats``. Odds ratios are shown for logit and ordered logit as
Stata's ``eform`` does: exp(b), with the standard error exp(b) x se and the interval's ends
exponentiated; cut points stay on the log-odds scale. A ``TableStyle`` chooses what the row
under each estimate shows (``se``, ``t`` or ``ci``, esttab's ``se``/``t``/``ci``) and whether
logit columns are odds ratios (``eform``) or coefficients.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from buzzpipe.report import findings, formatting
from buzzpipe.report.intervals import exponentiated, is_union
from buzzpipe.report.wording import term_label
from buzzpipe.results import Term
from buzzpipe.results.findings import outcome_label
from buzzpipe.results.vocabulary import Alternative, Family, Measure, TermKind, VerdictState
from buzzpipe.survey.schema import SCALES

ODDS_RATIO_FAMILIES: tuple[str, ...] = (Family.LOGIT, Family.OLOGIT)
STATE_WORDS = {
    "found": "found",
    "not_found": "not found",
    "opposite": "opposite",
    "not_assessed": "not assessed",
}
MAIN_TABLE = "main"
STATISTICS: tuple[str, ...] = ("se", "t", "ci")


@dataclass(frozen=True)
class TableStyle:
    """How the models tables print each term, as esttab's options do.

    ``statistic``: the row under each estimate: ``se`` (standard error in parentheses, the
    default of esttab and modelsummary), ``t`` (the z statistic b / se in parentheses: the one
    the p-value and stars come from, the same with and without eform) or ``ci`` (the 95%
    interval in brackets). ``eform``: logit and ordered-logit columns as odds ratios exp(b)
    (standard error exp(b) x se by the delta method, interval ends exponentiated, as Stata's
    ``eform``); probit and linear-probability columns are never exponentiated.
    """

    statistic: str = "se"
    eform: bool = True

    def __post_init__(self) -> None:
        if self.statistic not in STATISTICS:
            raise ValueError(
                f"statistic must be one of {', '.join(STATISTICS)}, not {self.statistic!r}"
            )


DEFAULT_STYLE = TableStyle()


@dataclass(frozen=True)
class Cell:
    """One cell: its text, and significance stars shown as a superscript."""

    text: str
    stars: str = ""


@dataclass(frozen=True)
class Row:
    """A row: a label and one cell per column; ``kind`` tells writers how to style it."""

    label: str
    cells: tuple[Cell, ...]
    kind: str = "estimate"  # estimate, error, stat, factor, plain


@dataclass(frozen=True)
class Table:
    """A paper-style table: id (file name and HTML anchor), title, header, rows, notes."""

    id: str
    title: str
    header: tuple[str, ...]
    rows: tuple[Row, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)


def shows_odds_ratios(model: Mapping[str, Any]) -> bool:
    """Whether a model's column is printed as odds ratios (logit and ordered logit)."""
    return model["family"] in ODDS_RATIO_FAMILIES


def displayed_estimate(term: Mapping[str, Any], odds_ratio: bool) -> dict[str, Any]:
    """The estimate, error and interval as printed: exponentiated for odds ratios (not cuts)."""
    estimate, se, bounds = term["estimate"], term.get("se"), term.get("interval")
    if not odds_ratio or term.get("kind") == TermKind.CUT:
        return {"estimate": estimate, "se": se, "interval": bounds, "p": term.get("p")}
    ratio = math.exp(estimate)
    return {
        "estimate": ratio,
        "se": None if se is None else ratio * se,
        "interval": exponentiated(bounds),
        "p": term.get("p"),
    }


def model_tables(results: Mapping[str, Any], style: TableStyle = DEFAULT_STYLE) -> list[Table]:
    """One table per outcome and table group: models side by side, terms down the rows."""
    tables = []
    for outcome, record in results["outcomes"].items():
        groups: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
        for name, model in record["models"].items():
            groups.setdefault(model.get("table", MAIN_TABLE), []).append((name, model))
        for group, models in groups.items():
            table = _model_table(outcome, record["label"], group, models, style)
            if results.get("specification"):  # which specification ran, under every table
                table = replace(table, notes=(*table.notes, results["specification"]))
            tables.append(table)
    return tables


def _statistic_cell(term: Mapping[str, Any], shown: Mapping[str, Any], statistic: str) -> Cell:
    """The row under an estimate: (se), (b / se) on the coefficient scale, or [low, high]."""
    if statistic == "ci":
        return Cell(formatting.interval(shown["interval"]) if shown["interval"] else "")
    if statistic == "t":
        estimate, se = term.get("estimate"), term.get("se")
        if estimate is None or not se:
            return Cell("")
        return Cell(f"({formatting.number(estimate / se, 2)})")
    return Cell(f"({formatting.number(shown['se'])})" if shown["se"] is not None else "")


def _model_table(
    outcome: str,
    outcome_label: str,
    group: str,
    models: list[tuple[str, Mapping[str, Any]]],
    style: TableStyle = DEFAULT_STYLE,
) -> Table:
    header = ("", *(f"({index}) {model['label']}" for index, (_, model) in enumerate(models, 1)))
    # name -> label: slopes in first-seen order, then intercepts, then cut points (as printed)
    by_kind: dict[str, dict[str, str]] = {kind: {} for kind in ("coefficient", "intercept", "cut")}
    factors: dict[str, None] = {}
    for _, model in models:
        for name, term in model["terms"].items():
            if "factor" in term:
                factors.setdefault(term["factor"])
            else:
                by_kind[term.get("kind", "coefficient")].setdefault(name, term.get("label", name))
    # terms of partner breadth by scale lead, as in the published tables
    scaled = {
        name: label
        for name, label in by_kind["coefficient"].items()
        if any(m["terms"].get(name, {}).get("scale") for _, m in models)
    }
    term_order = {**scaled, **by_kind["coefficient"], **by_kind["intercept"], **by_kind["cut"]}
    rows: list[Row] = []
    for name, label in term_order.items():
        estimates, errors = [], []
        for _, model in models:
            term = model["terms"].get(name)
            if term is None:
                estimates.append(Cell(""))
                errors.append(Cell(""))
                continue
            shown = displayed_estimate(term, style.eform and shows_odds_ratios(model))
            # no stars on cut points: a threshold is not tested against zero
            starred = term.get("kind") != TermKind.CUT
            estimates.append(
                Cell(
                    formatting.number(shown["estimate"]),
                    formatting.stars(shown["p"]) if starred else "",
                )
            )
            # (se) by default, as esttab and modelsummary print them
            errors.append(_statistic_cell(term, shown, style.statistic))
        rows.append(Row(label, tuple(estimates), "estimate"))
        rows.append(Row("", tuple(errors), "error"))
    for factor in factors:
        cells = tuple(
            Cell("Yes" if any(t.get("factor") == factor for t in m["terms"].values()) else "No")
            for _, m in models
        )
        rows.append(Row(f"{factor.replace('_', ' ').capitalize()} dummies", cells, "factor"))
    rows.append(
        Row(
            "Observations",
            tuple(Cell(formatting.count(m["stats"]["n"])) for _, m in models),
            "stat",
        )
    )
    if any(m["stats"].get("pseudo_r2") is not None for _, m in models):
        rows.append(
            Row(
                "Pseudo R\u00b2",
                tuple(Cell(formatting.number(m["stats"].get("pseudo_r2"))) for _, m in models),
                "stat",
            )
        )
    if any(m["stats"].get("r2") is not None for _, m in models):
        rows.append(
            Row(
                "R\u00b2",
                tuple(Cell(formatting.number(m["stats"].get("r2"))) for _, m in models),
                "stat",
            )
        )
    if any(m["stats"].get("llf") is not None for _, m in models):
        rows.append(
            Row(
                "Log likelihood",
                tuple(
                    Cell(formatting.number(m["stats"].get("llf"), 1, unicode_minus=True))
                    for _, m in models
                ),
                "stat",
            )
        )
    for key, label in (("aic", "AIC"), ("bic", "BIC")):
        if any(m["stats"].get(key) is not None for _, m in models):
            rows.append(
                Row(
                    label,
                    tuple(
                        Cell(formatting.number(m["stats"].get(key), 1, unicode_minus=True))
                        for _, m in models
                    ),
                    "stat",
                )
            )
    if any("covariance" in m for _, m in models):
        rows.append(
            Row(
                "Covariance",
                tuple(Cell(m.get("covariance", "")) for _, m in models),
                "stat",
            )
        )
    if any(m["stats"].get("clusters") is not None for _, m in models):
        rows.append(
            Row(
                "Clusters",
                tuple(Cell(formatting.count(m["stats"].get("clusters"))) for _, m in models),
                "stat",
            )
        )
    title = f"{outcome_label}: {'models' if group == MAIN_TABLE else group.replace('_', ' ')}"
    return Table(
        id=f"table-{outcome}-{group}".replace("_", "-"),
        title=title,
        header=header,
        rows=tuple(rows),
        notes=tuple(_model_notes(models, style)),
    )


_STATISTIC_WORDS = {
    "t": "z statistics (b / se, the statistic of the p-value and stars) in parentheses",
    "ci": "95% confidence intervals in brackets",
}


def _model_notes(
    models: list[tuple[str, Mapping[str, Any]]], style: TableStyle = DEFAULT_STYLE
) -> list[str]:
    """Notes that say what the numbers are and which inference produced the errors and stars."""
    notes = []
    families = {m["family"] for _, m in models}
    logits = families & set(ODDS_RATIO_FAMILIES)
    if logits and style.eform:
        under = {
            "se": "standard errors of the odds ratio (delta method, exp(b) \u00d7 se, as Stata's "
            "eform) in parentheses",
            "t": _STATISTIC_WORDS["t"],
            "ci": "95% confidence intervals with exponentiated ends in brackets",
        }[style.statistic]
        notes.append(
            f"Logit and ordered-logit columns show odds ratios, exp(b); {under}; cut points "
            "on the log-odds scale, without stars."
        )
    elif logits:
        under = _STATISTIC_WORDS.get(style.statistic, "standard errors in parentheses")
        notes.append(
            f"Logit and ordered-logit columns show coefficients (log-odds), not odds ratios; "
            f"{under}; cut points without stars."
        )
    if families - set(ODDS_RATIO_FAMILIES):
        under = _STATISTIC_WORDS.get(style.statistic, "standard errors in parentheses")
        never = " (never exponentiated)" if style.eform and logits else ""
        notes.append(
            f"Probit and linear-probability columns show coefficients{never} with {under}."
        )
    columns_by_inference: dict[str, list[str]] = {}
    for index, (_, model) in enumerate(models, 1):
        columns_by_inference.setdefault(model["inference"], []).append(f"({index})")
    if len(columns_by_inference) == 1:
        notes.append(f"Inference: {models[0][1]['inference']}.")
    else:
        for inference, columns in columns_by_inference.items():
            notes.append(f"Inference in {', '.join(columns)}: {inference}.")
    notes.append(f"Stars from these p-values: {formatting.STAR_NOTE}.")
    return notes


def sensitivity_tables(
    results: Mapping[str, Any], style: TableStyle = DEFAULT_STYLE
) -> list[Table]:
    """Primary inference beside the sensitivity columns (region clusters, wild bootstrap)."""
    tables = []
    for outcome, record in results["outcomes"].items():
        for name, model in record["models"].items():
            sensitivity = model.get("sensitivity") or {}
            if not sensitivity:
                continue
            odds_ratio = style.eform and shows_odds_ratios(model)
            header = ["", "Estimate", "p [95% interval], primary"]
            header += [f"p [interval], {column['inference']}" for column in sensitivity.values()]
            rows = []
            for term_name, term in model["terms"].items():
                records = [column["terms"].get(term_name) for column in sensitivity.values()]
                if all(entry is None for entry in records):
                    continue
                shown = displayed_estimate(term, odds_ratio)
                cells = [
                    Cell(formatting.number(shown["estimate"])),
                    _p_with_interval(shown["p"], shown["interval"]),
                ]
                for entry in records:
                    if entry is None:
                        cells.append(Cell(formatting.DASH))
                        continue
                    bounds = entry.get("interval")
                    if bounds is not None and odds_ratio and term.get("kind") != TermKind.CUT:
                        bounds = exponentiated(bounds)
                    cells.append(_p_with_interval(entry.get("p"), bounds))
                rows.append(Row(term.get("label", term_name), tuple(cells), "plain"))
            scale = "odds ratios" if odds_ratio else "coefficients"
            tables.append(
                Table(
                    id=f"table-{outcome}-{name}-sensitivity".replace("_", "-"),
                    title=f"{record['label']}: {model['label']}, inference compared",
                    header=tuple(header),
                    rows=tuple(rows),
                    notes=(
                        f"Estimates are {scale}; intervals on the same scale. The primary "
                        f"inference is {model['inference']}; the other columns are sensitivity "
                        "checks for single restrictions.",
                    ),
                )
            )
    return tables


_CONTRAST_WORDS = {
    "dy/dx": "Average marginal effect, dy/dx",
    "+1": "One more kind of partner (x to x + 1)",
}
BREADTH_ROWS = frozenset(SCALES)  # a breadth term's row is keyed by its scale
_FACTOR_CHANGE = "change"  # a factor's level against its base level: one section for them all
_CONTRAST_WORDS[_FACTOR_CHANGE] = "Change from the base level (every firm set to the level)"


def _variable_label(name: str) -> str:
    """A regressor's label where the model has no term of that name (``employees``, whose
    term is its log)."""
    return term_label(name, Term(TermKind.CONTINUOUS, variable=name))


def _effect_key(key: str) -> tuple[str, str, str] | None:
    """("breadth_regional", "dy/dx", "outcome 0") from "breadth_regional: dy/dx | outcome 0";
    None for a key that names no contrast (a probability change kept as a description)."""
    term, separator, rest = key.partition(": ")
    if not separator:
        return None
    contrast, _, category = rest.partition(" | ")
    return term, contrast, category


def margins_tables(results: Mapping[str, Any], style: TableStyle = DEFAULT_STYLE) -> list[Table]:
    """One average-marginal-effects table per outcome (Stata's ``margins, dydx()``, R's
    ``avg_slopes``), read from the effects the study computed: models side by side, one
    section per contrast (the derivative, the +1 change) and, for an ordered outcome, per
    category; the row under each effect as the models tables print it (``style.statistic``).
    Effects are changes in a probability and are never exponentiated."""
    tables = []
    for outcome, record in results["outcomes"].items():
        models = [
            (name, model)
            for name, model in record["models"].items()
            if any(_effect_key(key) for key in model.get("marginal_effects", {}))
        ]
        if models:
            tables.append(_margins_table(outcome, record["label"], models, style))
    return tables


def _margins_table(
    outcome: str,
    outcome_label: str,
    models: list[tuple[str, Mapping[str, Any]]],
    style: TableStyle,
) -> Table:
    # rows keyed by the term's scale, so the breadth terms of the model with the group counted
    # share the rows of the model without it
    sections: dict[tuple[str, str], dict[str, str]] = {}
    cells: dict[tuple[str, str, str, int], Mapping[str, Any]] = {}
    for index, (_, model) in enumerate(models):
        for key, effect in model["marginal_effects"].items():
            parsed = _effect_key(key)
            if parsed is None or effect.get("estimate") is None:
                continue
            term_name, contrast, category = parsed
            term = model["terms"].get(term_name, {})
            row = term.get("scale") or term_name
            label = term.get("label") or _variable_label(term_name)
            if contrast not in _CONTRAST_WORDS:  # a factor's level: "Bergen vs Oslo"
                row, label = key.partition(" | ")[0], f"{label}: {contrast.replace('_', ' ')}"
                contrast = _FACTOR_CHANGE
            sections.setdefault((contrast, category), {}).setdefault(row, label)
            cells[(contrast, category, row, index)] = effect
    rows: list[Row] = []
    for (contrast, category), labels in sections.items():
        heading = _CONTRAST_WORDS.get(contrast, contrast)
        if category:
            level = category.removeprefix("outcome ")
            heading += f", Pr({outcome_label.split(' (')[0].lower()} = {level})"
        rows.append(Row(heading, (Cell(""),) * len(models), "section"))
        for row, label in labels.items():
            estimates, under = [], []
            for index in range(len(models)):
                effect = cells.get((contrast, category, row, index))
                if effect is None:
                    estimates.append(Cell(""))
                    under.append(Cell(""))
                    continue
                estimates.append(
                    Cell(formatting.number(effect["estimate"]), formatting.stars(effect.get("p")))
                )
                under.append(_statistic_cell(effect, effect, style.statistic))
            rows.append(Row(label, tuple(estimates), "estimate"))
            rows.append(Row("", tuple(under), "error"))
    rows.append(
        Row(
            "Observations",
            tuple(Cell(formatting.count(m["stats"]["n"])) for _, m in models),
            "stat",
        )
    )
    rows.append(Row("Covariance", tuple(Cell(m.get("covariance", "")) for _, m in models), "stat"))
    under = {
        "se": "delta-method standard errors in parentheses",
        "t": "z statistics (effect / delta-method se) in parentheses",
        "ci": "95% delta-method confidence intervals in brackets",
    }[style.statistic]
    coverage = (
        "The study computes these effects for the partner-breadth terms of the models with controls"
    )
    if any(row not in BREADTH_ROWS and not row.startswith("breadth_") for _, _, row, _ in cells):
        coverage = (
            "The study computes these effects for every regressor of the models with controls "
            "(Stata's margins, dydx(*)): the partner-breadth terms, then the controls, a "
            "continuous one's derivative through the formula (employees, not its log) and a "
            "factor's average change from its base level to each other level"
        )
    if any(name == "controls_with_group" for name, _ in models):
        coverage += (
            "; the rows of the model with the own group counted are its breadth terms of the "
            "same scale"
        )
    notes = [
        "Average marginal effects on the probability, as Stata's margins, dydx() and R's "
        "marginaleffects::avg_slopes() compute them: dy/dx is the derivative averaged over the "
        "firms of the estimation sample; x to x + 1 the average change in the probability from "
        f"one more kind of partner at that scale; {under}, under each model's covariance. "
        "Changes in a probability, never exponentiated.",
        coverage + ".",
        f"Stars from these p-values: {formatting.STAR_NOTE}.",
    ]
    return Table(
        id=f"table-{outcome}-margins".replace("_", "-"),
        title=f"{outcome_label}: average marginal effects",
        header=("", *(f"({index}) {model['label']}" for index, (_, model) in enumerate(models, 1))),
        rows=tuple(rows),
        notes=tuple(notes),
    )


def _p_with_interval(p: float | None, bounds: list | None, *, bare: bool = False) -> Cell:
    """p and the interval; with ``bare``, p alone where there is no interval (a bootstrap that
    computed no confidence set)."""
    if bounds is None and bare:
        return Cell(formatting.p_value(p), formatting.stars(p))
    return Cell(f"{formatting.p_value(p)} {formatting.interval(bounds)}", formatting.stars(p))


def _estimate_text(estimate: float | None, bounds: list | None) -> str:
    if estimate is None:
        return formatting.DASH
    return f"{formatting.number(estimate)} {formatting.interval(bounds)}"


def tests_table(results: Mapping[str, Any]) -> Table | None:
    """The hypothesis tests: statistic, p-value, estimate with interval, inference used."""
    return _inference_table(
        results,
        [test for test in results.get("tests", []) if "compares" not in test],
        "table-tests",
        "Hypothesis tests",
        (
            "One-sided tests name their alternative; joint tests have no single estimate.",
            "Complementarity compares firms that chose different collaboration regimes (firms "
            "choose their partners): an association, not the effect of adding a kind of "
            "partner, in the odds and on the probability scale alike.",
            f"{formatting.STAR_NOTE}.",
        ),
    )


def descriptions_table(results: Mapping[str, Any]) -> Table | None:
    """Quantities described but not tested: ratios with Fieller sets, probability changes."""
    return _inference_table(
        results,
        results.get("descriptions", []),
        "table-descriptions",
        "Described, not tested: ratios and changes in the probability of innovating",
        (
            "Ratios carry Fieller confidence sets, which can be unbounded or two rays (joined "
            "by \u222a); they describe the size of pipelines against buzz and decide no verdict. "
            "A set unbounded both ways is shown without its point estimate (not bounded): the "
            "denominator is indistinguishable from zero, so the ratio has no usable value.",
        ),
    )


def _inference_table(
    results: Mapping[str, Any],
    records: list,
    table_id: str,
    title: str,
    notes: tuple[str, ...],
) -> Table | None:
    if not records:
        return None
    labels = {key: record["label"] for key, record in results["outcomes"].items()}
    by_outcome: dict[Any, list] = {}
    for test in records:  # grouped under one heading row per outcome, in first-seen order
        by_outcome.setdefault(test.get("outcome"), []).append(test)
    rows = []
    for outcome, tests in by_outcome.items():
        heading = labels.get(outcome, "Across outcomes (models stacked, Stata's suest)")
        rows.append(Row(heading, (Cell(""),) * 5, "section"))
        rows.extend(_inference_row(test) for test in tests)
    legend = [
        f"{name}: {words}"
        for name, words in dict.fromkeys(
            (test["inference"], test.get("inference_words", test["inference"])) for test in records
        )
        if words != name
    ]
    if legend:
        notes = (*notes, "Inference: " + "; ".join(legend) + ".")
    return Table(
        id=table_id,
        title=title,
        header=(
            "",
            "Hypothesis",
            "Statistic",
            "p",
            "Estimate [95% interval]",
            "Inference",
        ),
        rows=tuple(rows),
        notes=notes,
    )


def compared_tests_table(results: Mapping[str, Any]) -> Table | None:
    """Tests with sensitivity variants (the pipelines-versus-buzz differences, the association
    with local pipelines) beside them: the primary p and interval, then each variant's, one
    column per inference."""
    tests = results.get("tests", [])
    variants: dict[str, dict[str, Mapping[str, Any]]] = {}
    for test in tests:
        if "compares" in test:
            variants.setdefault(test["compares"]["test"], {})[test["compares"]["inference"]] = test
    primaries = [test for test in tests if test["id"] in variants]
    if not primaries:
        return None
    columns = list(dict.fromkeys(kind for found in variants.values() for kind in found))
    headings = {"cluster_region": "region-clustered", "wild_bootstrap": "wild bootstrap"}
    labels = {key: record["label"] for key, record in results["outcomes"].items()}
    rows: list[Row] = []
    outcome = object()
    for test in primaries:
        if test.get("outcome") != outcome:
            outcome = test.get("outcome")
            rows.append(
                Row(
                    labels.get(outcome, formatting.DASH),
                    (Cell(""),) * (2 + len(columns)),
                    "section",
                )
            )
        cells = [
            Cell(_estimate_text(test.get("estimate"), test.get("interval"))),
            Cell(formatting.p_value(test.get("p")), formatting.stars(test.get("p"))),
        ]
        for column in columns:
            variant = variants[test["id"]].get(column)
            cells.append(
                Cell(formatting.DASH)
                if variant is None
                else _p_with_interval(variant.get("p"), variant.get("interval"), bare=True)
            )
        rows.append(Row(test["label"], tuple(cells), "plain"))
    inverted = any(
        variant.get("interval") is not None
        and variant["compares"]["test"].split("/")[-1].startswith("first_partner_")
        for found in variants.values()
        for kind, variant in found.items()
        if kind == "wild_bootstrap"
    )
    used: dict[str, None] = {}
    for test in primaries:
        used.setdefault(f"primary: {test.get('inference_words', test['inference'])}")
        for column in columns:
            variant = variants[test["id"]].get(column)
            if variant is not None:
                words = variant.get("inference_words", variant["inference"])
                used.setdefault(f"{headings.get(column, column)}: {words}")
    return Table(
        id="table-tests-compared",
        title="Pipelines versus buzz and the association with local pipelines: inference compared",
        header=(
            "",
            "Estimate [95% interval]",
            "p, primary",
            *(f"p [interval], {headings.get(column, column)}" for column in columns),
        ),
        rows=tuple(rows),
        notes=(
            "Each row is a test of the table above (hypotheses there). Estimates on the "
            "model's scale (log-odds for logit); the first- and second-partner differences "
            "are in probability. Which column a verdict reads is named in How the verdicts were "
            "decided (the headline rule: the wild bootstrap by region where the study computed "
            "it); the other columns are shown beside it for single restrictions. "
            "With five city-regions, region-clustered errors are unreliable and the wild "
            "bootstrap has few distinct draws; the association with local pipelines without "
            "links is clustered by region \u00d7 industry cell throughout.",
            "Inference, " + "; ".join(used) + ".",
            *(
                (
                    "Two intervals of a first-partner difference: beside the estimate the "
                    "firm-level delta-method interval; in the wild bootstrap column the "
                    "differences the region bootstrap (the test the verdict reads) does not "
                    "reject at 5%, its test inverted.",
                )
                if inverted
                else ()
            ),
            f"{formatting.STAR_NOTE}.",
        ),
    )


def _unbounded_both_ways(bounds: Any) -> bool:
    """Whether a set reaches infinity below and above (a Fieller set of two rays, or the whole
    line): its point estimate says nothing a reader can use."""
    segments = bounds if is_union(bounds) else [bounds] if bounds else []
    return any(low is None for low, _ in segments) and any(high is None for _, high in segments)


def _estimate_text(estimate: float | None, bounds: Any) -> str:
    """An estimate with its interval; a set unbounded both ways is shown without the number
    ('not bounded: [−∞, −2.049] ∪ [1.874, ∞]'), since a ratio whose denominator is
    indistinguishable from zero has no usable point value."""
    if estimate is None:
        return formatting.DASH
    if _unbounded_both_ways(bounds):
        return f"not bounded: {formatting.interval(bounds)}"
    return f"{formatting.number(estimate)} {formatting.interval(bounds)}"


def _inference_row(test: Mapping[str, Any]) -> Row:
    """One test or described quantity: hypothesis, statistic, p, estimate, inference."""
    statistic = test.get("statistic")
    distribution = test.get("distribution", "chi2")
    df = test.get("df")
    name = {"normal": "z", "chi2": "\u03c7\u00b2"}.get(distribution, distribution)
    if df is not None:
        name = f"{name}({_df_text(df)})"
    estimate = test.get("estimate")
    alternative = test.get("alternative", Alternative.TWO_SIDED)
    hypothesis = test["hypothesis"]
    if alternative != Alternative.TWO_SIDED:
        hypothesis += f" (one-sided, alternative: {alternative})"
    return Row(
        test["label"],
        (
            Cell(hypothesis),
            Cell(
                f"{name} = {formatting.number(statistic, 2)}"
                if statistic is not None
                else formatting.DASH
            ),
            Cell(formatting.p_value(test.get("p")), formatting.stars(test.get("p"))),
            Cell(_estimate_text(estimate, test.get("interval"))),
            Cell(test["inference"]),
        ),
        "plain",
    )


def _df_text(df: Any) -> str:
    if isinstance(df, list | tuple):
        return ", ".join(_df_text(part) for part in df)
    return formatting.count(df) if float(df).is_integer() else formatting.number(df, 1)


def verdicts_table(results: Mapping[str, Any]) -> Table | None:
    """The verdict rule table: each finding, whether it holds, the rule and its evidence."""
    verdicts = results.get("verdicts", [])
    if not verdicts:
        return None
    labels = {key: record["label"] for key, record in results["outcomes"].items()}
    rows = []
    for verdict in verdicts:
        evidence = verdict.get("evidence", {})
        evidence_text = findings.evidence_text(evidence) or verdict.get("reason_detail", "")
        rows.append(
            Row(
                verdict.get("label", verdict["finding"].replace("_", " ")),
                (
                    Cell(_outcome_words(labels, verdict.get("outcome"))),
                    Cell(STATE_WORDS[verdict["state"]]),
                    Cell(verdict["rule"]["text"]),
                    Cell(verdict.get("inference") or formatting.DASH),
                    Cell(evidence_text or formatting.DASH),
                ),
                "plain",
            )
        )
    families = {(v["family"]["name"], v["family"]["size"]) for v in verdicts if v.get("family")}
    sizes = "; ".join(
        f"{size} assessed verdicts of the {name.replace('_', ' ')} family"
        for name, size in families
    )
    family_note = (
        f"Multiplicity: the p each rule reads is adjusted by Holm across the {sizes}; a "
        "verdict reads the adjusted p (the unadjusted one is shown beside it)."
        if families
        else ""
    )
    return Table(
        id="table-verdicts",
        title="Verdicts and the rules that produced them",
        header=("Finding", "Outcome", "Holds", "Rule", "Inference read", "Evidence"),
        rows=tuple(rows),
        notes=tuple(
            note
            for note in (
                "Verdicts are a pure function of the numbers in this report, by the rules "
                "shown; the evidence is the quantity the rule read, under the inference named "
                "beside it (odds ratios for logit terms). "
                + (
                    f"The rules read {results['verdict_inference']}"
                    if results.get("verdict_inference")
                    else "The headline rule reads the wild cluster score bootstrap by "
                    "city-region (docs/few_clusters.md)"
                )
                + "; firm-level robust and region-clustered p-values are in the "
                "inference-compared table.",
                family_note,
            )
            if note
        ),
    )


def _p_words(name: str, p: float) -> str:
    shown = formatting.p_value(p)
    return f"{name} {shown}" if shown.startswith("<") else f"{name} = {shown}"


def findings_by_outcome_table(results: Mapping[str, Any]) -> Table | None:
    """The verdict rules applied to every binary outcome: one row per finding, one column per
    outcome, each cell the verdict and the p-value the rule read."""
    by_outcome = results.get("verdicts_by_outcome") or {}
    if len(by_outcome) < 2:
        return None  # one outcome: its verdicts are the findings and the rule table
    outcomes = list(by_outcome)
    findings_order: dict[str, str] = {}
    for records in by_outcome.values():
        for verdict in records:
            findings_order.setdefault(
                verdict["finding"], verdict.get("label", verdict["finding"].replace("_", " "))
            )
    rows = []
    for finding, label in findings_order.items():
        cells = []
        for outcome in outcomes:
            verdict = next((v for v in by_outcome[outcome] if v["finding"] == finding), None)
            if verdict is None:
                cells.append(Cell(formatting.DASH))
                continue
            p = verdict.get("evidence", {}).get("p")
            adjusted = verdict.get("evidence", {}).get("p_adjusted")
            text = STATE_WORDS[verdict["state"]]
            if verdict["state"] == VerdictState.NOT_ASSESSED and verdict.get("reason"):
                text += f" ({verdict['reason']})"
            if p is not None and verdict["state"] != VerdictState.NOT_ASSESSED:
                text += f" ({_p_words('p', p)}"
                text += f"; {_p_words('Holm', adjusted)})" if adjusted is not None else ")"
            cells.append(Cell(text))
        rows.append(Row(label, tuple(cells), "plain"))
    labels = {key: record["label"] for key, record in results["outcomes"].items()}
    return Table(
        id="table-findings-by-outcome",
        title="Findings by outcome: the same rules for each kind of innovation",
        header=("Finding", *(_outcome_words(labels, outcome) for outcome in outcomes)),
        rows=tuple(rows),
        notes=(
            "Each cell applies the verdict rule table below to that outcome's own models and "
            "tests; p is the p-value the rule read, Holm the same adjusted across its family "
            "(the primary outcome's verdicts; the other outcomes' together), the p the verdict "
            "reads.",
        ),
    )


def _outcome_words(labels: Mapping[str, str], outcome: str | None) -> str:
    """An outcome's label: the view's, or the catalogue's for an outcome without models (one
    the study could not assess)."""
    if not outcome:
        return formatting.DASH
    return labels.get(outcome) or outcome_label(outcome)


def descriptives_table(results: Mapping[str, Any]) -> Table | None:
    """The survey's descriptive table (the data layer's), section by section."""
    table = results.get("descriptives")
    if not table:
        return None
    rows = []
    section = None
    for row in table["rows"]:
        if row["section"] != section:
            section = row["section"]
            rows.append(
                Row(
                    section[:1].upper() + section[1:],
                    (Cell(""),) * len(table["columns"]),
                    "section",
                )
            )
        cells = tuple(Cell(_measure_text(value, row["measure"])) for value in row["values"])
        rows.append(Row(row["label"], cells, "plain"))
    return Table(
        id="table-descriptives",
        title=table.get("title", "The survey: firms, collaboration and innovation by city-region"),
        header=("", *table["columns"]),
        rows=tuple(rows),
        notes=tuple(table.get("notes", ())),
    )


def _measure_text(value: float | None, measure: str) -> str:
    if value is None:
        return formatting.DASH
    if measure == Measure.COUNT:
        return formatting.count(round(value, 1))
    if measure == Measure.SHARE:
        return formatting.percent(value)
    return formatting.number(value, 2)


def counterfactuals_table(results: Mapping[str, Any]) -> Table | None:
    """Policy programmes: predicted innovation and extra innovating firms by region."""
    programmes = results.get("counterfactuals", [])
    if not programmes:
        return None
    sensitivity = any(
        "extra_innovators_interaction" in programme["overall"] for programme in programmes
    )
    columns = 5 if sensitivity else 4
    rows = []
    for programme in programmes:
        rows.append(Row(programme["label"], (Cell(""),) * columns, "section"))
        for row in [*programme["regions"], programme["overall"]]:
            predicted, extra = row["predicted_rate"], row["extra_innovators"]
            rows.append(
                Row(
                    row["region"],
                    (
                        Cell(formatting.count(row["firms"])),
                        Cell(formatting.percent(row["baseline_rate"])),
                        Cell(
                            f"{formatting.percent(predicted['estimate'])} "
                            f"{_percent_interval(predicted.get('interval'))}"
                        ),
                        Cell(
                            f"{formatting.number(extra['estimate'], 1)} "
                            f"{formatting.interval(extra.get('interval'), 1)}"
                        ),
                        *(
                            (Cell(formatting.number(row.get("extra_innovators_interaction"), 1)),)
                            if sensitivity
                            else ()
                        ),
                    ),
                    "stat" if row is programme["overall"] else "plain",
                )
            )
    notes = [
        "Predicted under the model, assuming breadth is as good as random, not caused: each "
        "programme changes the breadth of the firms it reaches at its scale (a firm at the cap "
        "of partner types there is held there) and re-predicts their probability of "
        "innovating under the model the report's notes name.",
    ]
    if sensitivity:
        notes.append(
            "Sensitivity: the same programme under the model with the local \u00d7 "
            "international breadth interaction (point predictions)."
        )
    for programme in programmes:  # the view words each programme's note records
        for note in programme.get("notes", []):
            if note not in notes:
                notes.append(note)
    methods = dict.fromkeys(p["interval_method"] for p in programmes if p.get("interval_method"))
    for method in methods:
        notes.append(f"Intervals: {method}.")
    labels = {key: record["label"] for key, record in results["outcomes"].items()}
    outcomes = list(dict.fromkeys(labels.get(p.get("outcome"), "") for p in programmes))
    outcome = outcomes[0].lower() if len(outcomes) == 1 and outcomes[0] else "innovation"
    return Table(
        id="table-counterfactuals",
        title=f"Policy counterfactuals by city-region, {outcome}: predicted under the model, "
        "assuming breadth is as good as random",
        header=(
            "Programme (predicted), city-region",
            "Firms",
            "Innovating now",
            "Predicted share innovating, under the model [interval]",
            "Predicted extra innovating firms, under the model [interval]",
            *(("Predicted extra innovating firms, interaction model",) if sensitivity else ()),
        ),
        rows=tuple(rows),
        notes=tuple(notes),
    )


def _percent_interval(bounds: list | None) -> str:
    if bounds is None:
        return ""
    low, high = bounds
    return f"[{formatting.percent(low)}, {formatting.percent(high)}]"


def replica_table(results: Mapping[str, Any]) -> Table | None:
    """The replica set against the published study (``published`` rows of the view)."""
    rows = results.get("published") or []
    if not rows:
        return None
    sources = dict.fromkeys(row["source"] for row in rows if row.get("source"))
    return Table(
        id="table-replica-published",
        title="Replica and published",
        header=("Published figure", "Published", "Replica [95% interval]", "Agrees?"),
        rows=tuple(
            Row(
                row["fact"],
                (Cell(row["published"]), Cell(row["replica"]), Cell(row["agrees"])),
                "plain",
            )
            for row in rows
        ),
        notes=(
            "Published: " + "; ".join(sources) + ". Shares with Wilson's 95% interval over the "
            "firms; odds ratios per additional kind of partner in the breadth and controls "
            "model, with the firm-level robust interval and the set of the headline rule (wild "
            "cluster score bootstrap by city-region, which decides agreement); probability "
            "changes in percentage points. A ratio is not bounded when its denominator is "
            "indistinguishable from zero, so none is printed then; verdicts are the study's, "
            "Holm-adjusted.",
        ),
    )


COMMON_SUPPORT_COLUMNS = (
    ("first_partner_{scale}", "First kind (0 to 1)"),
    ("second_partner_{scale}", "Second kind (1 to 2)"),
    ("categories_first_partner_{scale}", "First kind, breadth categories"),
    ("categories_second_partner_{scale}", "Second kind, breadth categories"),
    ("standardised_{scale}", "Standardised (secondary)"),
)


def common_support_table(results: Mapping[str, Any]) -> Table | None:
    """Scales compared on common support: at each scale, the change in the probability of
    innovating from the first and the second kind of partner (the controls model, and breadth
    as categories beside it), and the standardised effect as a secondary column; per outcome."""
    described = {record["id"]: record for record in results.get("descriptions", [])}
    outcomes = [
        outcome
        for outcome in results["outcomes"]
        if any(f"{outcome}/first_partner_{scale}" in described for scale in SCALES)
    ]
    if not outcomes:
        return None
    rows = []
    for outcome in outcomes:
        rows.append(
            Row(
                results["outcomes"][outcome]["label"],
                (Cell(""),) * len(COMMON_SUPPORT_COLUMNS),
                "section",
            )
        )
        for scale in SCALES:
            records = [
                described.get(f"{outcome}/{name.format(scale=scale)}")
                for name, _ in COMMON_SUPPORT_COLUMNS
            ]
            if not any(records):
                continue
            cells = tuple(
                Cell(
                    _estimate_text(record["estimate"], record.get("interval")),
                    formatting.stars(record.get("p")),
                )
                if record
                else Cell(formatting.DASH)
                for record in records
            )
            rows.append(Row(scale.capitalize(), cells, "plain"))
    return Table(
        id="table-common-support",
        title="Scales compared on common support: the first and the second kind of partner",
        header=("Outcome, scale", *(label for _, label in COMMON_SUPPORT_COLUMNS)),
        rows=tuple(rows),
        notes=(
            "Average change in the probability of innovating when every firm's breadth at the "
            "scale is set to 1 rather than 0 (first kind of partner) or 2 rather than 1 "
            "(second), everything else as observed; from the controls model and, beside it, "
            "from a model with breadth as categories 0, 1, 2, 3+ (each step its own size); 95% "
            "intervals by the delta method. The same steps at every scale compare the scales on "
            "common support; their differences are in the tests table, and the "
            "pipelines-versus-buzz verdict reads the first kind of partner, controls model.",
            "Standardised: the controls model's coefficient times the standard deviation of "
            "breadth at the scale (log-odds), a secondary description.",
            f"{formatting.STAR_NOTE}.",
        ),
    )


def region_slopes_table(results: Mapping[str, Any]) -> Table | None:
    """Each city-region's own slope of each breadth scale (log-odds per additional kind of
    partner, with its interval), per outcome: descriptive, no test."""
    slopes = results.get("region_slopes", [])
    if not slopes:
        return None
    scales = list(dict.fromkeys(row["scale"] for row in slopes))
    rows = []
    for outcome in dict.fromkeys(row["outcome"] for row in slopes):
        rows.append(
            Row(results["outcomes"][outcome]["label"], (Cell(""),) * len(scales), "section")
        )
        cells: dict[str, dict[str, str]] = {}
        for row in slopes:
            if row["outcome"] == outcome:
                text = _estimate_text(row["estimate"], row.get("interval"))
                cells.setdefault(row["region"], {})[row["scale"]] = text
        for region, by_scale in cells.items():
            rows.append(
                Row(
                    region,
                    tuple(Cell(by_scale.get(scale, formatting.DASH)) for scale in scales),
                    "plain",
                )
            )
    regions = len({row["region"] for row in slopes})
    return Table(
        id="table-region-slopes",
        title="Slopes of partner breadth by city-region (descriptive, no test)",
        header=("Outcome, city-region", *(f"{scale.capitalize()} breadth" for scale in scales)),
        rows=tuple(rows),
        notes=(
            "Coefficients (log-odds scale, or the model's index) of breadth x city-region, with "
            "the controls model's other terms; 95% intervals in brackets.",
            f"Descriptive: with {regions} city-regions a comparison of their slopes rests on "
            "that many observations, so no test is made and none is a verdict. Sector, which "
            "varies within city-regions, has a joint test.",
        ),
    )


def all_tables(results: Mapping[str, Any], style: TableStyle = DEFAULT_STYLE) -> list[Table]:
    """Every table of the report, in the order the report shows them (``style``: what the
    models tables print under each estimate, and whether logit columns are odds ratios)."""
    tables: list[Table | None] = [replica_table(results), descriptives_table(results)]
    tables += model_tables(results, style)
    tables += sensitivity_tables(results, style) + margins_tables(results, style)
    tables.append(region_slopes_table(results))
    tables += [tests_table(results), compared_tests_table(results), descriptions_table(results)]
    tables.append(common_support_table(results))
    tables += [
        counterfactuals_table(results),
        findings_by_outcome_table(results),
        verdicts_table(results),
    ]
    tables += simulation_tables(results)
    return [table for table in tables if table is not None]


# -- the simulation beside the study (replicate --simulate) ---------------------------------


def _moment_text(value: float | None, share: bool) -> str:
    if value is None:
        return formatting.DASH
    return formatting.percent(value) if share else formatting.number(value)


def moments_table(view: Mapping[str, Any]) -> Table:
    rows = []
    for moment in view["moments"]:
        share = moment["share"]
        bounds = moment["interval"]
        if bounds is None:
            interval = formatting.DASH
        elif bounds[1] is None:
            interval = "above 0 (published direction)"
        else:
            interval = f"[{_moment_text(bounds[0], share)}, {_moment_text(bounds[1], share)}]"
        error = (
            formatting.percent(moment["error"], 2) if share else formatting.number(moment["error"])
        )
        rows.append(
            Row(
                moment["label"],
                (
                    Cell(_moment_text(moment["published"], share)),
                    Cell(interval),
                    Cell(f"{_moment_text(moment['simulated'], share)} ({error})"),
                    Cell("yes" if moment["inside"] else "no"),
                ),
                "plain",
            )
        )
    return Table(
        id="table-simulation-calibration",
        title="The calibrated simulation against the published figures",
        header=("Moment", "Published", "Published 95% interval", "Simulated (error)", "Inside"),
        rows=tuple(rows),
        notes=(
            f"Simulated: mean over {view['replicates']} replicates of the calibrated "
            f"'{view['scenario']}' world ({view['firms']:,} firms, {view['steps']} steps, seed "
            f"{view['seed']}), each survey fitted by the study's controls model; in parentheses "
            "the simulation error (standard deviation over replicates / sqrt(replicates)).",
            "Published intervals: the published share +- 1.96 of its sampling error at 1,604 "
            "firms; for a log odds ratio, the model's mean standard error (docs/simulation.md).",
        ),
    )


def _effect_text(value: float | None, bounds: list | None) -> str:
    if value is None:
        return formatting.DASH
    interval = "" if bounds is None else " " + formatting.interval(bounds)
    return f"{formatting.number(value)}{interval}"


def policy_table(view: Mapping[str, Any]) -> Table:
    rows = []
    programme = None
    for effect in view["policy"]:
        if effect["programme"] != programme:
            programme = effect["programme"]
            rows.append(Row(programme, (Cell(""),) * 3, "section"))
        rows.append(
            Row(
                effect["group"],
                (
                    Cell(formatting.count(round(effect["firms"]))),
                    Cell(_effect_text(effect["simulated"], effect["simulated_interval"])),
                    Cell(_effect_text(effect["regression"], effect["regression_interval"])),
                ),
                "plain",
            )
        )
    replicates = view["policy"][0]["replicates"] if view["policy"] else view["replicates"]
    return Table(
        id="table-simulation-policy",
        title="Programmes in the simulation beside the study's regression counterfactuals",
        header=(
            "Programme, firms",
            "Firms",
            "Simulation: change in the share innovating [95% interval]",
            "Regression: extra innovators per firm [interval]",
        ),
        rows=tuple(rows),
        notes=(
            "Simulation: each arm branched from the same burn-in of five survey windows, the "
            "arms sharing every random number they have in common; the change in the share of "
            "the group's firms innovating per survey window over the two windows after the "
            f"intervention, arm minus control paired by replicate, t interval over {replicates} "
            "replicates. Partners: the treated firms' standing regional and national partners.",
            "Regression: the study's counterfactual for the same programme (extra innovating "
            "firms over all city-regions, per treated firm or per firm, with the study's "
            "bootstrap interval); a dash where the study ran no such programme or where it has "
            "no counterpart (effects passed on to partners).",
            *view["notes"],
        ),
    )


def rules_table(view: Mapping[str, Any]) -> Table:
    rows = []
    for rules in view["rules"]:
        rows.append(
            Row(
                rules["label"],
                (
                    Cell(
                        f"{formatting.number(rules['odds_ratio'])} "
                        f"({formatting.number(rules['std_error'])})"
                    ),
                    Cell(f"{rules['significant']}/{rules['replicates']}"),
                    Cell(formatting.percent(rules["product_share"])),
                ),
                "plain",
            )
        )
    return Table(
        id="table-simulation-rules",
        title="The pipeline effect under the default and the symmetric rules",
        header=(
            "Rules",
            "Odds ratio per international partner type (SE of the log)",
            "Significant and positive at 5%",
            "Product innovators",
        ),
        rows=tuple(rows),
        notes=(
            "The study's controls model on each replicate's simulated survey; the odds ratio is "
            "exp of the mean log odds ratio over the replicates, in parentheses the standard "
            "error of that mean; significance by the model's own standard error (z > 1.96). "
            "Symmetric rules are the referee's placebo: pipelines and the world pool exchange "
            "by the cities' barter rule and are used as often as partner ties, so only the "
            "world's diversity and distance differ from a city's. The calibration holds for "
            "the default rules.",
        ),
    )


def simulation_tables(view: Mapping[str, Any]) -> list[Table]:
    """The section's tables, in the order the report shows them."""
    section = view.get("simulation")
    if not section:
        return []
    tables = [moments_table(section)]
    if section["policy"]:
        tables.append(policy_table(section))
    if section["rules"]:
        tables.append(rules_table(section))
    return tables
