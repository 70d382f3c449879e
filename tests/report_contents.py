"""What a report must contain, counted from results.json, not from the view that renders it.

The browser tests used to take their expected element ids from ``report_view`` and the
``expected_contents`` the report writer itself uses: a table the view forgot would be missing
from both, and the test would pass. Here the ids are derived from the study's records
(``buzzpipe.results``) by the published layout, written out in the test:

- the survey's descriptive table when the results carry descriptives;
- per outcome, one model table for the main models (breadth, controls, controls with the group
  dummies, each scale's breadth alone: ``<scale>_alone``), one for the partner-type model, one
  for the heterogeneity models (each city-region's slopes, by sector), and one of its own for
  any other;
- each city-region's own breadth slopes (a ``by_region`` model with breadth x region terms),
  as a table and a figure;
- per model with sensitivity columns, a table comparing the inferences;
- the hypothesis tests, the tests compared across inferences (a test named after another test
  of its section plus a suffix), the described quantities, the counterfactual programmes, the
  findings by outcome and the verdict table, each when the results hold any;
- scales compared on common support when a description is the first kind of partner at a scale
  (``first_partner_<scale>``);
- the figures: odds ratios and marginal effects of breadth by scale when a model has breadth
  terms (for the second, with their +1-partner probability changes or marginal effects), the
  regimes when the descriptives have a regime section, the counterfactuals when there are
  programmes;
- with a simulation record: its calibration table, and its policy and rules tables and lock-in
  figure when it holds them.
"""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

from buzzpipe.results import StudyResults

MAIN_MODELS = {"breadth", "controls", "controls_with_group"}
OWN_TABLES = {
    "partner_types": "partner_types",
    "by_region": "heterogeneity",
    "by_region_size": "heterogeneity",  # in files written before issue 16
    "by_sector": "heterogeneity",
}
BREADTH = "breadth_"
REGIME_SECTION = "regime"
CHANGE = "probability_change_"


@dataclass(frozen=True)
class ReportContents:
    tables: list[str]
    figures: list[str]
    model_tables: list[str]  # the tables whose columns are the fitted models
    models: int  # fitted models over all outcomes: columns of the model tables
    findings: int  # rows of the verdict table


def _group(model: str) -> str:
    if model in MAIN_MODELS or model.endswith("_alone"):
        return "main"
    return OWN_TABLES.get(model, model)


def _identifier(text: str) -> str:
    return text.replace("_", "-")


def _is_breadth(model, term: str) -> bool:
    kind = model.term_kinds.get(term)
    variable = kind.variable if kind is not None else term
    return bool(variable) and variable.startswith(BREADTH) and ":" not in term


def expected_report_contents(data: Any) -> ReportContents:
    """Ids of the tables and figures a report of these results must show (results.json's data,
    read through the results contract), with its counts of models and findings."""
    results = StudyResults.from_dict(data)
    tables: list[str] = []
    if results.meta.published:
        tables.append("table-replica-published")
    descriptives = results.descriptives is not None and bool(results.descriptives.rows)
    if descriptives:
        tables.append("table-descriptives")
    model_tables = [
        _identifier(f"table-{outcome}-{group}")
        for outcome, models in results.models.items()
        for group in dict.fromkeys(_group(name) for name in models)
    ]
    tables += model_tables
    for outcome, models in results.models.items():
        for name, model in models.items():
            if any(model.sensitivity.values()):
                tables.append(_identifier(f"table-{outcome}-{name}-sensitivity"))
    for outcome, models in results.models.items():  # derivatives and +1 changes, keyed "t: c"
        if any(": " in key for model in models.values() for key in model.marginal_effects):
            tables.append(_identifier(f"table-{outcome}-margins"))
    primaries, variants = set(), False
    for section in results.tests.values():
        for name in section:
            base = [other for other in section if other != name and name.startswith(f"{other}_")]
            variants |= bool(base)
            if not base:
                primaries.add(name)
    if primaries:
        tables.append("table-tests")
    if variants:
        tables.append("table-tests-compared")
    if any(results.descriptions.values()):
        tables.append("table-descriptions")
    if any(
        name.startswith("first_partner_") and name.count("_") == 2
        for described in results.descriptions.values()
        for name in described
    ):  # the first kind of partner at a scale: scales compared on common support
        tables.append("table-common-support")
    slopes = any(
        {(part.kind, part.variable) for part in kind.parts} >= {("factor_level", "region")}
        and any(str(part.variable).startswith(BREADTH) for part in kind.parts)
        for models in results.models.values()
        if "by_region" in models
        for kind in models["by_region"].term_kinds.values()
    )
    if slopes:
        tables.append("table-region-slopes")
    if results.counterfactuals:
        tables.append("table-counterfactuals")
    if sum(bool(records) for records in results.verdicts_by_outcome.values()) >= 2:
        tables.append("table-findings-by-outcome")
    if results.verdicts:
        tables.append("table-verdicts")
    fitted = [model for models in results.models.values() for model in models.values()]
    figures = []
    if any(_is_breadth(model, term) for model in fitted for term in model.terms):
        figures.append("figure-odds-ratios")
    # the study keeps the +1-partner probability changes of breadth as descriptions of the
    # outcome (``probability_change_<scale>``); a model may carry its own marginal effects
    changes = any(
        name.startswith(CHANGE) and f"{BREADTH}{name.removeprefix(CHANGE)}" in model.terms
        for outcome, models in results.models.items()
        for model in models.values()
        for name in results.descriptions.get(outcome, {})
    )
    if changes or any(
        _is_breadth(model, term) for model in fitted for term in model.marginal_effects
    ):
        figures.append("figure-marginal-effects")
    if descriptives and any(row.section == REGIME_SECTION for row in results.descriptives.rows):
        figures.append("figure-regimes")
    if results.counterfactuals:
        figures.append("figure-counterfactuals")
    if slopes:
        figures.append("figure-region-slopes")
    # the simulation beside the study (replicate --simulate): its fit always, the policy and
    # rules tables and the lock-in figure when the record holds them
    simulation = results.simulation
    if simulation is not None:
        tables.append("table-simulation-calibration")
        if simulation.policy:
            tables.append("table-simulation-policy")
        if simulation.rules:
            tables.append("table-simulation-rules")
        if simulation.lock_in:
            figures.append("figure-simulation-lock-in")
    return ReportContents(tables, figures, model_tables, len(fitted), len(results.verdicts))


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables: list[str] = []
        self.figures: list[str] = []
        self.header_cells: dict[str, int] = {}
        self._table: str | None = None
        self._head = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        element_id = dict(attrs).get("id")
        if tag == "table":
            self._table = element_id
            if element_id:
                self.tables.append(element_id)
                self.header_cells[element_id] = 0
        elif element_id and tag == "figure":
            self.figures.append(element_id)
        elif tag == "thead":
            self._head = True
        elif tag == "th" and self._head and self._table:
            self.header_cells[self._table] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "thead":
            self._head = False
        elif tag == "table":
            self._table = None


@dataclass(frozen=True)
class RenderedIds:
    tables: list[str]
    figures: list[str]
    header_cells: dict[str, int]  # table id -> cells of its header row(s)


def rendered_ids(html: str) -> RenderedIds:
    """The ids of the tables and figures a report's HTML holds, in page order, with the
    number of header cells of each table."""
    parser = _Ids()
    parser.feed(html)
    return RenderedIds(parser.tables, parser.figures, parser.header_cells)


def check_rendered(html: str, contents: ReportContents) -> None:
    """The report's HTML holds exactly the expected tables and figures (no more: a count), a
    column per fitted model in the model tables (the first header cell labels the rows)."""
    rendered = rendered_ids(html)
    assert sorted(rendered.tables) == sorted(contents.tables)
    assert sorted(rendered.figures) == sorted(contents.figures)
    columns = sum(rendered.header_cells[table] - 1 for table in contents.model_tables)
    assert columns == contents.models
