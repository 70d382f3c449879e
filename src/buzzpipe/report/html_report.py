"""The HTML report: one self-contained file (styles and images inline, nothing fetched), with a
contents list, the findings written from the verdicts, paper-style tables and figures.
"""

import base64
from collections.abc import Mapping, Sequence
from dataclasses import replace
from html import escape
from typing import Any

from buzzpipe.report.figures import FigureOutput, headline_model
from buzzpipe.report.findings import findings
from buzzpipe.report.table_formats import table_html
from buzzpipe.report.tables import Table
from buzzpipe.results.vocabulary import VerdictState

_CSS = """
body { font-family: Georgia, 'Times New Roman', serif; color: #1a1a1a; background: #fff;
  max-width: 62rem; margin: 0 auto; padding: 1.5rem; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.25rem; border-bottom: 1px solid #ccc; padding-bottom: 0.2rem; margin-top: 2rem; }
p.source { color: #555; margin-top: 0; }
nav#contents { background: #f6f6f3; border: 1px solid #ddd; padding: 0.6rem 1.2rem; }
nav#contents h2 { border: none; margin: 0.2rem 0; font-size: 1.05rem; }
ul.findings li { margin-bottom: 0.4rem; }
p.banner { border: 1px solid #b08000; background: #fff8e0; padding: 0.5rem; }
ul.findings li.found::marker { content: '\\2714  '; color: #1b7837; }
ul.findings li.not_found::marker { content: '\\2013  '; color: #777; }
ul.findings li.opposite::marker { content: '\\21C4  '; color: #8c510a; }
ul.findings li.not_assessed::marker { content: '?  '; color: #777; }
table.paper { border-collapse: collapse; margin: 1.2rem 0; font-size: 0.85rem; min-width: 36rem;
  font-variant-numeric: tabular-nums; }
table.paper caption { caption-side: top; text-align: left; font-weight: bold;
  padding-bottom: 0.3rem; }
table.paper thead th:first-child { text-align: left; }
table.paper thead th { border-top: 2px solid #000; border-bottom: 1px solid #000;
  padding: 0.25rem 0.6rem; font-weight: normal; }
table.paper td, table.paper tbody th { padding: 0.1rem 0.6rem; text-align: center; }
table.paper tbody th { text-align: left; font-weight: normal; }
table.paper tr.estimate th, table.paper tr.stat th, table.paper tr.factor th,
table.paper tr.section th {
  white-space: nowrap; }
table.paper .number { white-space: nowrap; }
table.paper tr.error td { color: #444; padding-bottom: 0.3rem; }
table.paper tr.stat:first-of-type td, table.paper tr.factor td { border-top: 0; }
table.paper tbody tr:last-child td, table.paper tbody tr:last-child th {
  border-bottom: 2px solid #000; }
table.paper td.notes { text-align: left; font-size: 0.75rem; color: #333; padding-top: 0.4rem; }
table.paper td.notes > div { width: 0; min-width: 100%; }
table.paper sup { font-size: 0.7em; }
table.paper tr.section th { font-weight: bold; padding-top: 0.5rem; }
figure { margin: 1.5rem 0; }
figure img { width: 100%; height: auto; display: block; }
figcaption { font-size: 0.85rem; color: #333; }
footer { margin-top: 3rem; font-size: 0.8rem; color: #555; }
"""


def figure_html(figure: FigureOutput) -> str:
    """A ``<figure>`` with the SVG inline as a data URI, so the file needs nothing else."""
    data = base64.b64encode(figure.svg).decode("ascii")
    return (
        f'<figure id="{escape(figure.id)}">'
        f'<img src="data:image/svg+xml;base64,{data}" alt="{escape(figure.title)}">'
        f"<figcaption><strong>{escape(figure.title)}.</strong> {escape(figure.caption)}"
        "</figcaption></figure>"
    )


def _not_assessed_html(records: Sequence[Mapping[str, Any]]) -> str:
    """What the study could not estimate, each with its outcome, reason and the estimator's
    line: the findings that read these quantities are "not assessed", not missing."""
    items = []
    for record in records:
        where = f"{record['outcome']}: " if record.get("outcome") else ""
        items.append(
            f"<li>{escape(where + record['what'])}: not assessed ({escape(record['reason'])}). "
            f"{escape(record['detail'])}</li>"
        )
    return (
        '<div id="not-assessed"><h3>Not assessed</h3><p>The study went on without these '
        "models and parts; the findings that read them are marked not assessed.</p>"
        f'<ul class="not-assessed">{"".join(items)}</ul></div>'
    )


def _source_line(results: Mapping[str, Any]) -> str:
    source = results["source"]
    kind = "synthetic survey (preset" if source["kind"] == "synthetic" else "survey (file"
    seed = f", seed {source['seed']}" if source.get("seed") is not None else ""
    return (
        f"{kind} {source['name']}{seed}); {source['firms']:,.0f} firms; buzzpipe "
        f"{results['buzzpipe_version']}"
    )


_SCALE_WORDS = {
    "logit": "log-odds",
    "ologit": "log-odds",
    "probit": "probit index",
    "lpm": "probability",
}


def _headline_family(results: Mapping[str, Any], verdict: Mapping[str, Any]) -> str:
    outcome = results["outcomes"].get(verdict.get("outcome"))
    return headline_model(outcome)["family"] if outcome else ""


def scale_groups(
    results: Mapping[str, Any], items: Sequence[tuple[Mapping[str, Any], str]]
) -> list[tuple[str, list[tuple[Mapping[str, Any], str]]]]:
    """The verdicts with their sentences in one list per scale of their evidence, each under a
    heading that names the scale (odds ratios, the model's own scale, probability, joint
    tests), in the order of the first verdict of each scale: a reader never compares an odds
    ratio with a log-odds difference in one list."""
    groups: dict[str, list[tuple[Mapping[str, Any], str]]] = {}
    for verdict, sentence in items:
        scale = verdict.get("scale")
        if verdict.get("state") == VerdictState.NOT_ASSESSED:
            heading = "Not assessed (no estimate to show)"
        elif scale is None or scale not in _SCALE_HEADINGS:
            family = _headline_family(results, verdict)
            words = _SCALE_WORDS.get(family, family or "model")
            heading = f"Differences and interactions on the {words} scale (0 = none)"
        else:
            heading = _SCALE_HEADINGS[scale]
        groups.setdefault(heading, []).append((verdict, sentence))
    return list(groups.items())


_SCALE_HEADINGS = {
    "odds_ratio": "Odds ratios per additional kind of partner (1 = no effect)",
    "probability": "On the probability scale (0 = none)",
    "joint": "Joint tests (\u03c7\u00b2)",
}


def _without_columns(table: Table, names: Sequence[str]) -> Table:
    """A copy of a table without the named columns (the first, the row label, always kept)."""
    keep = [index for index, name in enumerate(table.header[1:]) if name not in names]
    return replace(
        table,
        header=(table.header[0], *(table.header[index + 1] for index in keep)),
        rows=tuple(
            replace(row, cells=tuple(row.cells[index] for index in keep)) for row in table.rows
        ),
    )


def _other_outcomes_table(results: Mapping[str, Any], table: Table) -> Table | None:
    """The findings-by-outcome table without the primary outcome's column (its verdicts are
    the list above it): the second family, or None when there is no other outcome."""
    primary = {
        results["outcomes"].get(v.get("outcome"), {}).get("label", v.get("outcome"))
        for v in results["verdicts"]
    }
    shown = _without_columns(table, tuple(primary))
    if len(shown.header) < 2:
        return None
    return replace(
        shown,
        title="The other outcomes (a second family): the same rules for each kind of innovation",
        notes=(
            "Each cell applies the study's verdict rules (How the verdicts were decided, below) "
            "to that outcome's own models and tests; p is the p-value the rule read, Holm the "
            "same adjusted across this second family (the verdict reads the adjusted p). The "
            "primary outcome's verdicts are the lists above; the CSV and LaTeX tables keep "
            "every outcome.",
        ),
    )


def _rules_table(table: Table) -> Table:
    """The verdict rule table as the report shows it: the rule and the inference each finding
    read, not the verdict and its evidence again (they are the findings' lists)."""
    return replace(
        _without_columns(table, ("Holds", "Evidence")),
        title="How the verdicts were decided: the rules",
        notes=(
            "The rule each verdict of the Findings applies and the inference it read; the "
            "verdicts and the evidence they read are stated once, in the Findings' lists (the "
            "CSV and LaTeX tables keep them beside the rules). The headline rule reads the wild "
            "cluster score bootstrap by city-region (docs/few_clusters.md); firm-level robust "
            "and region-clustered p-values are in the inference-compared table.",
            *table.notes[1:],
        ),
    )


def build_html(
    results: Mapping[str, Any], tables: Sequence[Table], figures: Sequence[FigureOutput]
) -> str:
    """The whole report as one HTML string."""
    title = results.get("title", "Local buzz and global pipelines: findings")
    by_id = {table.id: table for table in tables}
    figures_by_id = {figure.id: figure for figure in figures}
    sections: list[tuple[str, str, list[str]]] = []

    verdict_lists = []
    for heading, items in scale_groups(results, findings(results)):
        verdict_lists.append(f"<h3>{escape(heading)}</h3>")
        verdict_lists.append('<ul class="findings">')
        verdict_lists += [f'<li class="{v["state"]}">{escape(text)}</li>' for v, text in items]
        verdict_lists.append("</ul>")
    decided_on = dict.fromkeys(
        results["outcomes"].get(v.get("outcome"), {}).get("label", v.get("outcome") or "")
        for v in results["verdicts"]
    )
    reads = (
        "headline rule: the wild cluster score bootstrap by city-region where the study computes it"
    )
    if results.get("verdict_inference"):  # a study file chose another inference
        reads = f"inference {results['verdict_inference']}"
    lead = (
        f"<p>Each finding is a verdict on "
        f"{escape(' and '.join(label.lower() for label in decided_on if label))}, the primary "
        f"outcome, under the {escape(reads)} (each finding names the inference it read), its p "
        "adjusted by Holm across these findings. Each verdict is stated once, in the list of "
        "the scale its evidence is on; the evidence in parentheses is the number the rule "
        "read.</p>"
    )
    body = [lead, *verdict_lists] if verdict_lists else ["<p>The study returned no verdicts.</p>"]
    if results.get("not_assessed"):
        body.append(_not_assessed_html(results["not_assessed"]))
    if "table-findings-by-outcome" in by_id:
        others = _other_outcomes_table(results, by_id["table-findings-by-outcome"])
        if others is not None:
            body.append(table_html(others))
    if "table-replica-published" in by_id:
        body.insert(0, table_html(by_id["table-replica-published"]))
    if (results.get("synthetic") or {}).get("banner"):
        body.insert(0, f'<p class="banner">{escape(results["synthetic"]["banner"])}</p>')
    sections.append(("findings", "Findings", body))

    if "table-descriptives" in by_id:
        sections.append(("survey", "The survey", [table_html(by_id["table-descriptives"])]))

    plotted = [figures_by_id[key] for key in _MAIN_FIGURES if key in figures_by_id]
    if plotted:
        sections.append(("figures", "Figures", [figure_html(figure) for figure in plotted]))

    tests = [
        table_html(by_id[key])
        for key in (
            "table-tests",
            "table-common-support",
            "table-tests-compared",
            "table-descriptions",
        )
        if key in by_id
    ]
    if tests:
        sections.append(("tests", "Tests: pipelines, buzz and their complementarity", tests))

    if "table-verdicts" in by_id:
        sections.append(
            (
                "rules",
                "How the verdicts were decided",
                [table_html(_rules_table(by_id["table-verdicts"]))],
            )
        )

    model_tables = [t for t in tables if t.id not in _SPECIAL]
    main = [t for t in model_tables if t.id.endswith(("-main", "-sensitivity", "-margins"))]
    detail = [t for t in model_tables if t not in main]
    if main:
        sections.append(("models", "Models", [table_html(table) for table in main]))

    counterfactual = []
    if "table-counterfactuals" in by_id:
        counterfactual.append(table_html(by_id["table-counterfactuals"]))
    if "figure-counterfactuals" in figures_by_id:
        counterfactual.append(figure_html(figures_by_id["figure-counterfactuals"]))
    if counterfactual:
        sections.append(("counterfactuals", "Policy counterfactuals", counterfactual))

    simulation = [table_html(by_id[key]) for key in _SIMULATION_TABLES if key in by_id]
    if "figure-simulation-lock-in" in figures_by_id:
        simulation.insert(
            min(2, len(simulation)), figure_html(figures_by_id["figure-simulation-lock-in"])
        )
    if simulation:
        lead = (
            "<p>The agent-based model of buzz and pipelines (buzzpipe.simulate), calibrated to "
            "the published figures, run beside the study: its fit, the study's programmes as "
            "interventions in it, lock-in of small cities, and the pipeline effect under rules "
            "that do not favour pipelines.</p>"
        )
        sections.append(("simulation", "The simulation beside the study", [lead, *simulation]))

    if detail:
        sections.append(
            (
                "detail",
                "Detail: partner types and heterogeneity",
                [table_html(table) for table in detail]
                + [
                    figure_html(figures_by_id[key])
                    for key in ("figure-region-slopes",)
                    if key in figures_by_id
                ],
            )
        )

    inference = results.get("inference", {})
    notes = [f"<p>{escape(text)}</p>" for text in inference.values() if isinstance(text, str)]
    if results.get("notes"):
        notes.append("<ul>" + "".join(f"<li>{escape(n)}</li>" for n in results["notes"]) + "</ul>")
    notes.append(f"<p>Source: {escape(_source_line(results))}.</p>")
    sections.append(("inference", "Inference and reproducibility", notes))

    contents = "".join(
        f'<li><a href="#{anchor}">{escape(heading)}</a></li>' for anchor, heading, _ in sections
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f"<header><h1>{escape(title)}</h1>",
        f'<p class="source">{escape(_source_line(results))}</p></header>',
        f'<nav id="contents"><h2>Contents</h2><ol>{contents}</ol></nav>',
        "<main>",
    ]
    for anchor, heading, body in sections:
        parts.append(f'<section id="{anchor}"><h2>{escape(heading)}</h2>')
        parts.extend(body)
        parts.append("</section>")
    parts += [
        "</main>",
        "<footer>Written by buzzpipe from results.json alone; every number shown is in that "
        "file.</footer>",
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"


_SIMULATION_TABLES = (
    "table-simulation-calibration",
    "table-simulation-policy",
    "table-simulation-rules",
)
# Tables placed in their own sections above; every other table is a model table.
_SPECIAL = (
    "table-replica-published",
    "table-verdicts",
    "table-findings-by-outcome",
    "table-tests-compared",
    "table-descriptives",
    "table-tests",
    "table-descriptions",
    "table-counterfactuals",
    "table-common-support",
    *_SIMULATION_TABLES,
)
_MAIN_FIGURES = ("figure-odds-ratios", "figure-marginal-effects", "figure-regimes")
