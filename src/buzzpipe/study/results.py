"""The study's results as plain dataclasses that round-trip through JSON (``results.json``).

The report stage renders these without knowing how they were estimated, and the verdicts read
them through :meth:`StudyResults.lookup`, so every number a verdict or a table uses has one home:

- ``models[outcome][model].terms[term]``: a coefficient with its error, interval, p and inference;
- ``tests[outcome][name]``: a hypothesis test (a linear combination, one-sided or joint);
- ``descriptions[outcome][name]``: described-only quantities (ratios with Fieller sets, Ai-Norton);
- ``counterfactuals``: predicted innovation under the policy programmes, by region;
- ``descriptives``: the data layer's descriptive table by city-region.

JSON has no infinities: a float is written as a number, ``"inf"``/``"-inf"``, or ``null`` (NaN),
so unbounded Fieller sets survive the trip.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

ALTERNATIVES = ("two-sided", "greater", "less")
FORMAT_VERSION = 1


def encode_float(value: float | None) -> float | str | None:
    """A float as JSON can hold it: finite numbers stay, infinities become strings, NaN null."""
    if value is None:
        return None
    value = float(value)
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def decode_float(value: float | str | None) -> float | None:
    """Inverse of :func:`encode_float` (``null`` comes back as NaN only where a float is due)."""
    if value is None:
        return None
    if value == "inf":
        return math.inf
    if value == "-inf":
        return -math.inf
    return float(value)


def _nan_if_none(value: float | str | None) -> float:
    decoded = decode_float(value)
    return math.nan if decoded is None else decoded


@dataclass
class Interval:
    """A confidence set as a union of disjoint segments; endpoints may be infinite.

    A Wald interval is one bounded segment; a Fieller set may be the whole line or two rays.
    """

    segments: list[tuple[float, float]]
    level: float = 0.95

    @property
    def kind(self) -> str:
        """'bounded', 'unbounded' (one segment with an infinite end), 'two_rays' or 'empty'."""
        if not self.segments:
            return "empty"
        if len(self.segments) == 1:
            low, high = self.segments[0]
            return "bounded" if math.isfinite(low) and math.isfinite(high) else "unbounded"
        return "two_rays"

    @property
    def low(self) -> float:
        """Lowest point of the set (NaN when empty)."""
        return self.segments[0][0] if self.segments else math.nan

    @property
    def high(self) -> float:
        """Highest point of the set (NaN when empty)."""
        return self.segments[-1][1] if self.segments else math.nan

    def contains(self, value: float) -> bool:
        """Whether value lies in the set (closed segments)."""
        return any(low <= value <= high for low, high in self.segments)

    def to_dict(self) -> dict[str, Any]:
        return {
            "segments": [[encode_float(low), encode_float(high)] for low, high in self.segments],
            "level": self.level,
            "kind": self.kind,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Interval:
        segments = [(_nan_if_none(low), _nan_if_none(high)) for low, high in data["segments"]]
        return cls(segments=segments, level=float(data["level"]))

    @classmethod
    def bounded(cls, low: float, high: float, level: float = 0.95) -> Interval:
        return cls(segments=[(float(low), float(high))], level=level)


@dataclass
class Estimate:
    """One number with its inference: a coefficient, a combination, or a (joint) test.

    ``p_value`` belongs to ``alternative``; a joint test has no single estimate and carries its
    chi-squared ``statistic`` with ``df`` restrictions. ``inference`` names what produced the
    error (for example ``"robust"``, ``"cluster(region)"``, ``"wild score bootstrap (webb)"``).
    """

    estimate: float | None
    std_error: float | None
    p_value: float
    inference: str
    interval: Interval | None = None
    statistic: float | None = None
    df: int | None = None
    alternative: str = "two-sided"
    hypothesis: str = ""
    note: str = ""

    def __post_init__(self) -> None:
        if self.alternative not in ALTERNATIVES:
            raise ValueError(f"alternative must be one of {ALTERNATIVES}, got {self.alternative!r}")

    @classmethod
    def joint_test(cls, test: Any, inference: str, hypothesis: str, note: str = "") -> Estimate:
        """A (joint) Wald test: anything with ``statistic``, ``df_numerator``, ``p_value`` and
        ``distribution`` (chi2 or F), such as the estimation core's ``WaldTest``."""
        return cls(
            estimate=None,
            std_error=None,
            p_value=float(test.p_value),
            inference=inference,
            statistic=float(test.statistic),
            df=int(test.df_numerator),
            hypothesis=hypothesis,
            note=note or f"{test.distribution} test",
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "estimate": encode_float(self.estimate),
            "std_error": encode_float(self.std_error),
            "p_value": encode_float(self.p_value),
            "inference": self.inference,
            "interval": None if self.interval is None else self.interval.to_dict(),
            "statistic": encode_float(self.statistic),
            "df": self.df,
            "alternative": self.alternative,
            "hypothesis": self.hypothesis,
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Estimate:
        interval = data.get("interval")
        return cls(
            estimate=decode_float(data["estimate"]),
            std_error=decode_float(data["std_error"]),
            p_value=_nan_if_none(data["p_value"]),
            inference=data["inference"],
            interval=None if interval is None else Interval.from_dict(interval),
            statistic=decode_float(data.get("statistic")),
            df=data.get("df"),
            alternative=data.get("alternative", "two-sided"),
            hypothesis=data.get("hypothesis", ""),
            note=data.get("note", ""),
        )


@dataclass
class ModelResult:
    """One fitted model of one outcome: its coefficients and the effects derived from them.

    ``terms`` hold coefficients under the primary inference; ``odds_ratios`` and
    ``marginal_effects`` are keyed by the same term names; ``sensitivity`` maps another inference
    (region clusters, the wild score bootstrap) to the terms it was computed for.
    """

    outcome: str
    model: str
    formula: str
    family: str
    inference: str
    nobs: int
    terms: dict[str, Estimate]
    log_likelihood: float | None = None
    pseudo_r2: float | None = None
    odds_ratios: dict[str, Estimate] = field(default_factory=dict)
    marginal_effects: dict[str, Estimate] = field(default_factory=dict)
    sensitivity: dict[str, dict[str, Estimate]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "model": self.model,
            "formula": self.formula,
            "family": self.family,
            "inference": self.inference,
            "nobs": self.nobs,
            "log_likelihood": encode_float(self.log_likelihood),
            "pseudo_r2": encode_float(self.pseudo_r2),
            "terms": _estimates_to_dict(self.terms),
            "odds_ratios": _estimates_to_dict(self.odds_ratios),
            "marginal_effects": _estimates_to_dict(self.marginal_effects),
            "sensitivity": {
                name: _estimates_to_dict(terms) for name, terms in self.sensitivity.items()
            },
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelResult:
        return cls(
            outcome=data["outcome"],
            model=data["model"],
            formula=data["formula"],
            family=data["family"],
            inference=data["inference"],
            nobs=int(data["nobs"]),
            log_likelihood=decode_float(data.get("log_likelihood")),
            pseudo_r2=decode_float(data.get("pseudo_r2")),
            terms=_estimates_from_dict(data["terms"]),
            odds_ratios=_estimates_from_dict(data.get("odds_ratios", {})),
            marginal_effects=_estimates_from_dict(data.get("marginal_effects", {})),
            sensitivity={
                name: _estimates_from_dict(terms)
                for name, terms in data.get("sensitivity", {}).items()
            },
            notes=list(data.get("notes", [])),
        )


@dataclass
class CounterfactualCell:
    """Predicted innovation in one region (or ``"all"``) under a programme, with intervals.

    ``firms`` is the (weighted) number of firms; rates are shares of firms innovating.
    """

    region: str
    firms: float
    baseline_rate: float
    predicted_rate: float
    extra_innovators: float
    predicted_rate_interval: Interval | None = None
    extra_innovators_interval: Interval | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "firms": encode_float(self.firms),
            "baseline_rate": encode_float(self.baseline_rate),
            "predicted_rate": encode_float(self.predicted_rate),
            "extra_innovators": encode_float(self.extra_innovators),
            "predicted_rate_interval": _optional_interval_to_dict(self.predicted_rate_interval),
            "extra_innovators_interval": _optional_interval_to_dict(self.extra_innovators_interval),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CounterfactualCell:
        return cls(
            region=data["region"],
            firms=_nan_if_none(data["firms"]),
            baseline_rate=_nan_if_none(data["baseline_rate"]),
            predicted_rate=_nan_if_none(data["predicted_rate"]),
            extra_innovators=_nan_if_none(data["extra_innovators"]),
            predicted_rate_interval=_optional_interval_from_dict(
                data.get("predicted_rate_interval")
            ),
            extra_innovators_interval=_optional_interval_from_dict(
                data.get("extra_innovators_interval")
            ),
        )


@dataclass
class CounterfactualResult:
    """One programme scenario: "predicted under the model", never "caused"."""

    outcome: str
    programme: str  # "pipeline" (one more kind of international partner) or "cluster" (local)
    firms_treated: int  # K
    allocation: str  # "total" or "per_region"
    targeting: str  # "random", "smallest" or "no_pipeline"
    cells: list[CounterfactualCell]
    bootstrap_replications: int = 0
    seed: int | None = None
    weighted: bool = False
    notes: list[str] = field(default_factory=list)
    scale: str = ""  # the scale the programme adds a partner type at ("" in older files)

    def cell(self, region: str) -> CounterfactualCell:
        """The cell of one region, or ``"all"`` for the total."""
        for cell in self.cells:
            if cell.region == region:
                return cell
        raise KeyError(region)

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "programme": self.programme,
            "firms_treated": self.firms_treated,
            "allocation": self.allocation,
            "targeting": self.targeting,
            "cells": [cell.to_dict() for cell in self.cells],
            "bootstrap_replications": self.bootstrap_replications,
            "seed": self.seed,
            "weighted": self.weighted,
            "notes": list(self.notes),
            "scale": self.scale,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CounterfactualResult:
        return cls(
            outcome=data["outcome"],
            programme=data["programme"],
            firms_treated=int(data["firms_treated"]),
            allocation=data["allocation"],
            targeting=data["targeting"],
            cells=[CounterfactualCell.from_dict(cell) for cell in data["cells"]],
            bootstrap_replications=int(data.get("bootstrap_replications", 0)),
            seed=data.get("seed"),
            weighted=bool(data.get("weighted", False)),
            notes=list(data.get("notes", [])),
            scale=str(data.get("scale", "")),
        )


@dataclass
class Verdict:
    """A finding decided by a written rule: 'found', 'not_found', 'opposite' or 'not_assessed'.

    ``outcome`` is the innovation outcome the rule was applied to (product, process, ...).
    """

    finding: str
    verdict: str
    outcome: str
    statement: str
    rule: str
    quantity: str
    threshold: float
    estimate: float | None = None
    p_value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "finding": self.finding,
            "verdict": self.verdict,
            "outcome": self.outcome,
            "statement": self.statement,
            "rule": self.rule,
            "quantity": self.quantity,
            "threshold": self.threshold,
            "estimate": encode_float(self.estimate),
            "p_value": encode_float(self.p_value),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        return cls(
            finding=data["finding"],
            verdict=data["verdict"],
            outcome=data["outcome"],
            statement=data["statement"],
            rule=data["rule"],
            quantity=data["quantity"],
            threshold=float(data["threshold"]),
            estimate=decode_float(data.get("estimate")),
            p_value=decode_float(data.get("p_value")),
        )


@dataclass
class StudyResults:
    """Everything the battery found, in the shape the report renders and the verdicts read."""

    meta: dict[str, Any] = field(default_factory=dict)
    models: dict[str, dict[str, ModelResult]] = field(default_factory=dict)
    tests: dict[str, dict[str, Estimate]] = field(default_factory=dict)
    descriptions: dict[str, dict[str, Estimate]] = field(default_factory=dict)
    counterfactuals: list[CounterfactualResult] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    # the data layer's descriptive table by city-region, as {"index_names", "columns", "rows"}
    descriptives: dict[str, Any] = field(default_factory=dict)
    # the same rule table applied to every binary outcome (``verdicts`` is the primary one's)
    verdicts_by_outcome: dict[str, list[Verdict]] = field(default_factory=dict)

    def set_descriptives(self, table: Any) -> None:
        """Keep a descriptive DataFrame (rows: statistics, columns: all firms and each region)."""
        names = [str(name) for name in table.index.names]
        rows = []
        for key, values in zip(table.index, table.to_numpy(), strict=True):
            key = key if isinstance(key, tuple) else (key,)
            rows.append({"index": [str(part) for part in key], "values": _jsonable(list(values))})
        self.descriptives = {
            "index_names": names,
            "columns": [str(column) for column in table.columns],
            "rows": rows,
        }

    def add_model(self, result: ModelResult) -> None:
        self.models.setdefault(result.outcome, {})[result.model] = result

    def add_test(self, section: str, name: str, estimate: Estimate) -> None:
        self.tests.setdefault(section, {})[name] = estimate

    def add_description(self, section: str, name: str, estimate: Estimate) -> None:
        self.descriptions.setdefault(section, {})[name] = estimate

    def lookup(self, path: str) -> Estimate | None:
        """The estimate at ``models/<outcome>/<model>/<term>``, ``tests/<section>/<name>`` or
        ``descriptions/<section>/<name>``; None when the study did not produce it."""
        kind, _, rest = path.partition("/")
        if kind == "models":
            outcome, model, term = (rest.split("/", 2) + ["", ""])[:3]
            fitted = self.models.get(outcome, {}).get(model)
            return None if fitted is None else fitted.terms.get(term)
        if kind in ("tests", "descriptions"):
            section, _, name = rest.rpartition("/")
            return getattr(self, kind).get(section, {}).get(name)
        raise ValueError(
            f"unknown results path {path!r}: expected models/, tests/ or descriptions/"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "meta": _jsonable(self.meta),
            "models": {
                outcome: {name: model.to_dict() for name, model in models.items()}
                for outcome, models in self.models.items()
            },
            "tests": {section: _estimates_to_dict(tests) for section, tests in self.tests.items()},
            "descriptions": {
                section: _estimates_to_dict(items) for section, items in self.descriptions.items()
            },
            "counterfactuals": [result.to_dict() for result in self.counterfactuals],
            "verdicts": [verdict.to_dict() for verdict in self.verdicts],
            "descriptives": _jsonable(self.descriptives),
            "verdicts_by_outcome": {
                outcome: [verdict.to_dict() for verdict in verdicts]
                for outcome, verdicts in self.verdicts_by_outcome.items()
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudyResults:
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise ValueError(f"results format version {version!r}; expected {FORMAT_VERSION}")
        return cls(
            meta=dict(data.get("meta", {})),
            models={
                outcome: {name: ModelResult.from_dict(model) for name, model in models.items()}
                for outcome, models in data.get("models", {}).items()
            },
            tests={
                section: _estimates_from_dict(tests)
                for section, tests in data.get("tests", {}).items()
            },
            descriptions={
                section: _estimates_from_dict(items)
                for section, items in data.get("descriptions", {}).items()
            },
            counterfactuals=[
                CounterfactualResult.from_dict(item) for item in data.get("counterfactuals", [])
            ],
            verdicts=[Verdict.from_dict(item) for item in data.get("verdicts", [])],
            descriptives=dict(data.get("descriptives", {})),
            verdicts_by_outcome={
                outcome: [Verdict.from_dict(item) for item in verdicts]
                for outcome, verdicts in data.get("verdicts_by_outcome", {}).items()
            },
        )

    def to_json(self, indent: int | None = 2) -> str:
        """The results as strict JSON text (no NaN or Infinity literals)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> StudyResults:
        return cls.from_dict(json.loads(text))


def _estimates_to_dict(estimates: dict[str, Estimate]) -> dict[str, Any]:
    return {name: estimate.to_dict() for name, estimate in estimates.items()}


def _estimates_from_dict(data: dict[str, Any]) -> dict[str, Estimate]:
    return {name: Estimate.from_dict(item) for name, item in data.items()}


def _optional_interval_to_dict(interval: Interval | None) -> dict[str, Any] | None:
    return None if interval is None else interval.to_dict()


def _optional_interval_from_dict(data: dict[str, Any] | None) -> Interval | None:
    return None if data is None else Interval.from_dict(data)


def _jsonable(value: Any) -> Any:
    """Meta values as strict JSON: floats encoded, containers walked, numpy scalars unwrapped."""
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return encode_float(value)
    if hasattr(value, "item"):  # numpy scalar
        return _jsonable(value.item())
    return str(value)
