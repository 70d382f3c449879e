"""The report view: the presentation structure tables, figures and findings are drawn from.

``view.report_view`` builds it from ``results.json`` (the study's format); hand-made views test
the rendering alone. ``validate_view`` checks the contract so that a rendering bug or a
malformed view fails with the JSON path of the bad entry rather than deep inside matplotlib.
The view is documented beside the file format in ``docs/results_schema.md``.
"""

import math
from collections.abc import Mapping
from typing import Any

from buzzpipe.errors import InputError
from buzzpipe.results.vocabulary import Alternative, Family, Measure, TermKind, VerdictState

VIEW_VERSION = 1
FAMILIES: tuple[str, ...] = tuple(Family)
DISTRIBUTIONS: tuple[str, ...] = ("chi2", "F", "t", "normal", "bootstrap")
ALTERNATIVES: tuple[str, ...] = tuple(Alternative)
# a view term is a coefficient, or (from the results' term kinds) an intercept or a cut point
TERM_KINDS: tuple[str, ...] = ("coefficient", TermKind.INTERCEPT, TermKind.CUT)
VERDICT_STATES: tuple[str, ...] = tuple(VerdictState)
MEASURES: tuple[str, ...] = tuple(Measure)


def validate_view(view: Any, *, file: str | None = None) -> None:
    """Check a report view; raise ``InputError`` naming the JSON path of the first problem."""
    _Validator(file).view(view)


class _Validator:
    """Walks a results structure, raising at the first entry that breaks the schema."""

    def __init__(self, file: str | None) -> None:
        self.file = file

    def fail(self, where: str, problem: str, value: object = None, expected: str | None = None):
        shown = value if isinstance(value, str | int | float | bool) or value is None else None
        if isinstance(value, Mapping | list):
            shown = f"{type(value).__name__} of {len(value)}"
        raise InputError(problem, file=self.file, column=where, value=shown, expected=expected)

    # -- primitives -------------------------------------------------------------------------

    def mapping(self, value: Any, where: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            self.fail(where, "wrong type", value, "an object")
        return value

    def sequence(self, value: Any, where: str) -> list:
        if not isinstance(value, list | tuple):
            self.fail(where, "wrong type", value, "a list")
        return list(value)

    def text(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value:
            self.fail(where, "wrong type", value, "a non-empty string")
        return value

    def number(self, value: Any, where: str, *, nullable: bool = False) -> None:
        if value is None and nullable:
            return
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(where, "wrong type", value, "a number" + (" or null" if nullable else ""))
        if not math.isfinite(value):
            self.fail(where, "not finite", value, "a finite number (null for unbounded)")

    def probability(self, value: Any, where: str) -> None:
        self.number(value, where, nullable=True)
        if value is not None and not 0.0 <= value <= 1.0:
            self.fail(where, "p-value out of range", value, "a number in [0, 1]")

    def count(self, value: Any, where: str, *, nullable: bool = False) -> None:
        if value is None and nullable:
            return
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.fail(where, "wrong type", value, "a non-negative integer")

    def interval(self, value: Any, where: str) -> None:
        """An interval is [low, high], or a union [[low, high], ...] (a Fieller set can be two
        rays); null ends mean unbounded."""
        if value is None:
            return
        bounds = self.sequence(value, where)
        if bounds and all(isinstance(segment, list | tuple) for segment in bounds):
            for index, segment in enumerate(bounds):
                self.interval(segment, f"{where}[{index}]")
            return
        if len(bounds) != 2:
            self.fail(where, "an interval needs two ends", value, "[low, high]")
        for index, bound in enumerate(bounds):
            self.number(bound, f"{where}[{index}]", nullable=True)
        low, high = bounds
        if low is not None and high is not None and low > high:
            self.fail(where, "interval ends in the wrong order", f"[{low}, {high}]", "low <= high")

    def choice(self, value: Any, where: str, allowed: tuple[str, ...]) -> None:
        if value not in allowed:
            self.fail(where, "unknown value", value, "one of " + ", ".join(allowed))

    def require(self, record: Mapping[str, Any], key: str, where: str) -> Any:
        if key not in record:
            self.fail(f"{where}.{key}", "missing entry", None, "present")
        return record[key]

    # -- records ----------------------------------------------------------------------------

    def view(self, results: Any) -> None:
        results = self.mapping(results, "$")
        version = self.require(results, "view_version", "$")
        if version != VIEW_VERSION:
            self.fail("$.view_version", "unsupported view version", version, str(VIEW_VERSION))
        self.text(self.require(results, "buzzpipe_version", "$"), "$.buzzpipe_version")
        self.source(self.require(results, "source", "$"))
        outcomes = self.mapping(self.require(results, "outcomes", "$"), "$.outcomes")
        if not outcomes:
            self.fail("$.outcomes", "no outcomes", None, "at least one outcome")
        for outcome, record in outcomes.items():
            self.outcome(record, f"$.outcomes.{outcome}")
        for key in ("tests", "descriptions"):
            for index, test in enumerate(self.sequence(results.get(key, []), f"$.{key}")):
                self.test(test, f"$.{key}[{index}]", outcomes)
        verdicts = self.sequence(self.require(results, "verdicts", "$"), "$.verdicts")
        for index, verdict in enumerate(verdicts):
            self.verdict(verdict, f"$.verdicts[{index}]")
        by_outcome = self.mapping(results.get("verdicts_by_outcome", {}), "$.verdicts_by_outcome")
        for outcome, records in by_outcome.items():
            where = f"$.verdicts_by_outcome.{outcome}"
            records = self.sequence(records, where)
            # an outcome without models is there only to say that nothing of it was assessed
            assessed = any(v.get("state") != VerdictState.NOT_ASSESSED for v in records)
            if outcome not in outcomes and assessed:
                self.fail(where, "names no outcome", outcome, "a key of outcomes")
            for index, verdict in enumerate(records):
                self.verdict(verdict, f"{where}[{index}]")
        for index, skipped in enumerate(self.sequence(results.get("not_assessed", []), "$")):
            where = f"$.not_assessed[{index}]"
            skipped = self.mapping(skipped, where)
            for key in ("what", "reason", "detail"):
                self.text(self.require(skipped, key, where), f"{where}.{key}")
        if "descriptives" in results:
            self.descriptives(results["descriptives"], "$.descriptives")
        for index, regimes in enumerate(self.sequence(results.get("regimes", []), "$.regimes")):
            self.regimes(regimes, f"$.regimes[{index}]")
        slopes = self.sequence(results.get("region_slopes", []), "$.region_slopes")
        for index, slope in enumerate(slopes):
            where = f"$.region_slopes[{index}]"
            self.estimate(slope, where)
            for key in ("region", "scale"):
                self.text(self.require(slope, key, where), f"{where}.{key}")
            if self.text(self.require(slope, "outcome", where), f"{where}.outcome") not in outcomes:
                self.fail(f"{where}.outcome", "names no outcome", slope["outcome"])
        programmes = self.sequence(results.get("counterfactuals", []), "$.counterfactuals")
        for index, programme in enumerate(programmes):
            self.counterfactual(programme, f"$.counterfactuals[{index}]")
        if "simulation" in results:
            self.simulation(results["simulation"], "$.simulation")

    def simulation(self, section: Any, where: str) -> None:
        section = self.mapping(section, where)
        self.text(self.require(section, "scenario", where), f"{where}.scenario")
        self.each(self.count, section, where, ("seed", "replicates", "steps", "firms"))
        for here, moment in self.records(section, "moments", where):
            self.text(self.require(moment, "label", here), f"{here}.label")
            self.each(self.number, moment, here, ("published",), nullable=True)
            self.each(self.number, moment, here, ("simulated", "error"))
            self.interval(self.require(moment, "interval", here), f"{here}.interval")
        for here, effect in self.records(section, "policy", where):
            self.each(self.text, effect, here, ("programme", "group"))
            self.each(self.number, effect, here, ("simulated",))
            self.each(self.number, effect, here, ("regression",), nullable=True)
            self.each(self.interval, effect, here, ("simulated_interval", "regression_interval"))
            self.each(self.count, effect, here, ("replicates",))
        for here, cell in self.records(section, "lock_in", where):
            self.text(self.require(cell, "city", here), f"{here}.city")
            self.each(self.count, cell, here, ("firms",))
            numbers = ("innovation", "innovation_se", "frontier_gap", "frontier_gap_se")
            self.each(self.number, cell, here, numbers)
        for here, rules in self.records(section, "rules", where):
            self.text(self.require(rules, "label", here), f"{here}.label")
            self.each(self.number, rules, here, ("odds_ratio", "std_error", "product_share"))
            self.each(self.count, rules, here, ("significant", "replicates"))

    def records(self, record: Mapping[str, Any], key: str, where: str):
        """(path, entry) of each entry of the list ``record[key]``, each checked a mapping."""
        for index, entry in enumerate(self.sequence(self.require(record, key, where),
                                                    f"{where}.{key}")):  # fmt: skip
            here = f"{where}.{key}[{index}]"
            yield here, self.mapping(entry, here)

    def each(self, check: Any, record: Mapping[str, Any], where: str, keys, **options) -> None:
        """``check`` on each required entry ``keys`` of ``record``."""
        for key in keys:
            check(self.require(record, key, where), f"{where}.{key}", **options)

    def source(self, source: Any) -> None:
        source = self.mapping(source, "$.source")
        self.choice(
            self.require(source, "kind", "$.source"), "$.source.kind", ("synthetic", "file")
        )
        self.text(self.require(source, "name", "$.source"), "$.source.name")
        self.count(source.get("seed"), "$.source.seed", nullable=True)
        self.number(self.require(source, "firms", "$.source"), "$.source.firms")

    def outcome(self, record: Any, where: str) -> None:
        record = self.mapping(record, where)
        self.text(self.require(record, "label", where), f"{where}.label")
        models = self.mapping(self.require(record, "models", where), f"{where}.models")
        if not models:
            self.fail(f"{where}.models", "no models", None, "at least one model")
        primary = record.get("primary_model")
        if primary is not None and primary not in models:
            self.fail(f"{where}.primary_model", "names no model", primary, "a key of models")
        for name, model in models.items():
            self.model(model, f"{where}.models.{name}")

    def model(self, model: Any, where: str) -> None:
        model = self.mapping(model, where)
        self.text(self.require(model, "label", where), f"{where}.label")
        self.choice(self.require(model, "family", where), f"{where}.family", FAMILIES)
        self.text(self.require(model, "inference", where), f"{where}.inference")
        stats = self.mapping(self.require(model, "stats", where), f"{where}.stats")
        self.count(self.require(stats, "n", f"{where}.stats"), f"{where}.stats.n")
        for key in ("pseudo_r2", "r2", "llf"):
            self.number(stats.get(key), f"{where}.stats.{key}", nullable=True)
        self.count(stats.get("clusters"), f"{where}.stats.clusters", nullable=True)
        terms = self.mapping(self.require(model, "terms", where), f"{where}.terms")
        if not terms:
            self.fail(f"{where}.terms", "no terms", None, "at least one term")
        for name, term in terms.items():
            self.term(term, f"{where}.terms.{name}")
        effects = self.mapping(model.get("marginal_effects", {}), f"{where}.marginal_effects")
        for name, effect in effects.items():
            self.estimate(effect, f"{where}.marginal_effects.{name}")
        sensitivity = self.mapping(model.get("sensitivity", {}), f"{where}.sensitivity")
        for name, column in sensitivity.items():
            here = f"{where}.sensitivity.{name}"
            column = self.mapping(column, here)
            self.text(self.require(column, "inference", here), f"{here}.inference")
            for term, record in self.mapping(self.require(column, "terms", here), here).items():
                if term not in terms:
                    self.fail(f"{here}.terms.{term}", "names no term of the model", term)
                record = self.mapping(record, f"{here}.terms.{term}")
                self.number(record.get("se"), f"{here}.terms.{term}.se", nullable=True)
                self.interval(record.get("interval"), f"{here}.terms.{term}.interval")
                self.probability(record.get("p"), f"{here}.terms.{term}.p")

    def estimate(self, record: Any, where: str) -> None:
        """An estimate with its error, interval and p-value (all but the estimate nullable)."""
        record = self.mapping(record, where)
        self.number(self.require(record, "estimate", where), f"{where}.estimate")
        se = record.get("se")
        self.number(se, f"{where}.se", nullable=True)
        if se is not None and se < 0:
            self.fail(f"{where}.se", "negative standard error", se, "se >= 0")
        self.interval(record.get("interval"), f"{where}.interval")
        self.probability(record.get("p"), f"{where}.p")

    def term(self, term: Any, where: str) -> None:
        self.estimate(term, where)
        self.choice(term.get("kind", "coefficient"), f"{where}.kind", TERM_KINDS)
        if "scale" in term:
            self.text(term["scale"], f"{where}.scale")
        if "factor" in term:
            self.text(term["factor"], f"{where}.factor")

    def test(self, test: Any, where: str, outcomes: Mapping[str, Any]) -> None:
        test = self.mapping(test, where)
        for key in ("id", "label", "hypothesis", "inference"):
            self.text(self.require(test, key, where), f"{where}.{key}")
        outcome = test.get("outcome")
        if outcome is not None and outcome not in outcomes:
            self.fail(f"{where}.outcome", "names no outcome", outcome, "a key of outcomes")
        self.number(test.get("statistic"), f"{where}.statistic", nullable=True)
        self.choice(test.get("distribution", "chi2"), f"{where}.distribution", DISTRIBUTIONS)
        self.choice(
            test.get("alternative", Alternative.TWO_SIDED), f"{where}.alternative", ALTERNATIVES
        )
        self.probability(self.require(test, "p", where), f"{where}.p")
        if "estimate" in test:
            self.number(test["estimate"], f"{where}.estimate", nullable=True)
        self.interval(test.get("interval"), f"{where}.interval")
        if "compares" in test:  # a sensitivity variant of another test (another inference)
            compares = self.mapping(test["compares"], f"{where}.compares")
            for key in ("test", "inference"):
                self.text(
                    self.require(compares, key, f"{where}.compares"), f"{where}.compares.{key}"
                )

    def verdict(self, verdict: Any, where: str) -> None:
        verdict = self.mapping(verdict, where)
        self.text(self.require(verdict, "finding", where), f"{where}.finding")
        self.choice(self.require(verdict, "state", where), f"{where}.state", VERDICT_STATES)
        rule = self.mapping(self.require(verdict, "rule", where), f"{where}.rule")
        self.text(self.require(rule, "id", f"{where}.rule"), f"{where}.rule.id")
        self.text(self.require(rule, "text", f"{where}.rule"), f"{where}.rule.text")
        self.mapping(verdict.get("evidence", {}), f"{where}.evidence")

    def descriptives(self, table: Any, where: str) -> None:
        table = self.mapping(table, where)
        columns = self.sequence(self.require(table, "columns", where), f"{where}.columns")
        for index, column in enumerate(columns):
            self.text(column, f"{where}.columns[{index}]")
        for index, row in enumerate(self.sequence(self.require(table, "rows", where), where)):
            here = f"{where}.rows[{index}]"
            row = self.mapping(row, here)
            self.text(self.require(row, "section", here), f"{here}.section")
            self.text(self.require(row, "label", here), f"{here}.label")
            self.choice(self.require(row, "measure", here), f"{here}.measure", MEASURES)
            values = self.sequence(self.require(row, "values", here), f"{here}.values")
            if len(values) != len(columns):
                self.fail(
                    f"{here}.values", "one value per column needed", values, str(len(columns))
                )
            for column, value in enumerate(values):
                self.number(value, f"{here}.values[{column}]", nullable=True)

    def regimes(self, record: Any, where: str) -> None:
        record = self.mapping(record, where)
        self.text(self.require(record, "group", where), f"{where}.group")
        shares = self.mapping(self.require(record, "shares", where), f"{where}.shares")
        for regime, share in shares.items():
            self.probability(share, f"{where}.shares.{regime}")

    def counterfactual(self, programme: Any, where: str) -> None:
        programme = self.mapping(programme, where)
        for key in ("id", "label", "outcome", "targeting"):
            self.text(self.require(programme, key, where), f"{where}.{key}")
        self.count(self.require(programme, "k", where), f"{where}.k")
        self.choice(self.require(programme, "k_per", where), f"{where}.k_per", ("total", "region"))
        regions = self.sequence(self.require(programme, "regions", where), f"{where}.regions")
        for index, row in enumerate([*regions, self.require(programme, "overall", where)]):
            here = f"{where}.regions[{index}]" if index < len(regions) else f"{where}.overall"
            row = self.mapping(row, here)
            self.text(self.require(row, "region", here), f"{here}.region")
            self.number(self.require(row, "firms", here), f"{here}.firms")
            self.probability(self.require(row, "baseline_rate", here), f"{here}.baseline_rate")
            self.estimate(self.require(row, "predicted_rate", here), f"{here}.predicted_rate")
            self.estimate(self.require(row, "extra_innovators", here), f"{here}.extra_innovators")
            self.number(
                row.get("extra_innovators_interaction"),
                f"{here}.extra_innovators_interaction",
                nullable=True,
            )
