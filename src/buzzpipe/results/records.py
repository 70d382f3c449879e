"""The study's results as plain dataclasses: the types ``results.json`` holds (format 2).

The study builds them, :mod:`buzzpipe.results.contract` reads, checks and writes them, and the
report renders them without knowing how they were estimated. Every number a verdict or a table
uses has one home:

- ``models[outcome][model].terms[term]``: a coefficient with its error, interval, p and
  inference; ``term_kinds[term]`` says what the term is (from the model specification);
- ``tests[outcome][name]``: a hypothesis test (a linear combination, one-sided or joint);
- ``descriptions[outcome][name]``: described-only quantities (ratios with Fieller sets, Ai-Norton);
- ``counterfactuals``: predicted innovation under the policy programmes, by region;
- ``descriptives``: the survey's descriptive table by city-region (computed once, by the
  orchestration, not by the study).

Field metadata ``check`` names the range a number must lie in (``probability``,
``non_negative``); the contract enforces it when a file is read or written.
"""

from __future__ import annotations

import json
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import cache
from typing import Any

from buzzpipe.results.findings import RETIRED_FINDINGS
from buzzpipe.results.format import FORMAT_VERSION
from buzzpipe.results.simulation import SimulationEvidence
from buzzpipe.results.version_1 import convert_version_1
from buzzpipe.results.version_2 import convert_version_2
from buzzpipe.results.vocabulary import (
    Allocation,
    Alternative,
    Decision,
    Family,
    Finding,
    HypothesisKind,
    InferenceKind,
    InferenceMethod,
    Measure,
    ModelName,
    NotAssessedReason,
    NoteKind,
    Programme,
    ProgrammeNoteKind,
    SourceKind,
    StudyPart,
    Targeting,
    TermKind,
    VerdictState,
    WildWeights,
)
from buzzpipe.results.walk import RecordError, Walker, encode

METHOD_NAMES = {
    InferenceMethod.DELTA_METHOD: "delta method",
    InferenceMethod.FIELLER: "Fieller",
    InferenceMethod.SUEST: "suest",
    InferenceMethod.META_REGRESSION: "meta-regression",
    InferenceMethod.SCORE_TEST: "score test",
}
PROBABILITY = {"check": "probability"}
SENSITIVITY_PATH = "sensitivity/"  # models/<outcome>/<model>/sensitivity/<kind>/<term>
NON_NEGATIVE = {"check": "non_negative"}
OMITTED_WHEN_NONE = {"omit_default": True}


@cache
def _enum_fields(cls: type) -> dict[str, type[Enum]]:
    """The fields of a record typed by an enumeration (optional or not)."""
    found = {}
    for name, hint in typing.get_type_hints(cls).items():
        optional = typing.get_origin(hint) in (typing.Union, types.UnionType)
        options = typing.get_args(hint) if optional else (hint,)
        for option in options:
            if isinstance(option, type) and issubclass(option, Enum):
                found[name] = option
    return found


class _Record:
    """Records hold enumeration members, even where the study passed their values."""

    def __post_init__(self) -> None:
        for name, enum in _enum_fields(type(self)).items():
            value = getattr(self, name)
            if value is not None and not isinstance(value, enum):
                setattr(self, name, enum(value))
        if isinstance(getattr(self, "inference", None), str):  # a bare kind: "robust"
            self.inference = Inference(InferenceKind(self.inference))  # type: ignore[attr-defined]


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

    @classmethod
    def bounded(cls, low: float, high: float, level: float = 0.95) -> Interval:
        return cls(segments=[(float(low), float(high))], level=level)


@dataclass
class Inference(_Record):
    """What produced an error, interval or p-value, as a record rather than a phrase.

    ``{"kind": "robust"}``; ``{"kind": "cluster", "by": "region", "clusters": 5}``;
    ``{"kind": "wild_score_bootstrap", "by": "region", "clusters": 5, "weights": "webb",
    "draws": 9999}``. ``method`` says how a derived number got its error under that
    covariance (delta method, Fieller set, suest); it is absent for a coefficient.
    """

    OMIT_DEFAULTS: typing.ClassVar[bool] = True  # written as {"kind": "robust"}

    kind: InferenceKind
    by: str | None = None
    clusters: int | None = None
    weights: WildWeights | None = None
    draws: int | None = None
    method: InferenceMethod | None = None

    def short(self) -> str:
        """A short name: ``robust``, ``cluster(region)``, ``wild score bootstrap by region
        (webb)``, with the method after a comma (``robust, delta method``)."""
        if self.kind == InferenceKind.CLUSTER:
            name = f"cluster({self.by})"
        elif self.kind == InferenceKind.WILD_SCORE_BOOTSTRAP:
            name = "wild score bootstrap" + (f" by {self.by}" if self.by else "")
            name += f" ({self.weights.value})" if self.weights else ""
        elif self.kind == InferenceKind.BETWEEN_CELLS:
            return "between cells (meta-regression, Knapp-Hartung t)"
        else:
            name = self.kind.value
        return name + (f", {METHOD_NAMES[self.method]}" if self.method else "")

    def derived(self, method: InferenceMethod) -> Inference:
        """The same inference, for a number derived from it by ``method``."""
        return Inference(self.kind, self.by, self.clusters, self.weights, self.draws, method)


@dataclass
class Term(_Record):
    """What a model term is, from the model specification.

    ``intercept``; ``cut`` (an ordered model's cut point, ``number`` 1, 2, ...); ``continuous``
    (``variable`` is the expression: ``breadth_regional``, ``np.log(employees)``);
    ``factor_level`` (``variable`` is the factor, ``level`` the level this dummy stands for);
    ``interaction`` (``parts`` are the terms multiplied).
    """

    OMIT_DEFAULTS: typing.ClassVar[bool] = True

    kind: TermKind
    variable: str | None = None
    level: str | None = None
    number: int | None = None
    parts: list[Term] = field(default_factory=list)


@dataclass
class Hypothesis(_Record):
    """A test's null hypothesis, or a described quantity's definition, as a record.

    ``kind`` says what is tested (:class:`~buzzpipe.results.vocabulary.HypothesisKind`);
    ``terms`` are the model terms it is about, each with its kind from the model specification;
    ``scales`` the scales it is about (partner types at a scale; one more kind of partner at one
    scale against another); ``moderator`` the variable breadth is interacted with;
    ``outcomes`` the outcomes compared; ``count`` the restrictions of a joint hypothesis;
    ``firms`` and ``cells`` the sample it was tested on where that is a subset of the firms.
    ``text`` holds a format-2 hypothesis the conversion did not recognise (kind ``text``). The
    report words the record (``report/wording.py``); no code parses a hypothesis text.
    """

    OMIT_DEFAULTS: typing.ClassVar[bool] = True

    kind: HypothesisKind
    terms: list[Term] = field(default_factory=list)
    scales: list[str] = field(default_factory=list)
    moderator: str | None = None
    outcomes: list[str] = field(default_factory=list)
    count: int | None = None
    firms: int | None = None
    cells: int | None = None
    text: str = ""


@dataclass
class Estimate(_Record):
    """One number with its inference: a coefficient, a combination, or a (joint) test.

    ``p_value`` belongs to ``alternative``; a joint test has no single estimate and carries its
    chi-squared ``statistic`` with ``df`` restrictions.
    """

    estimate: float | None
    std_error: float | None = field(metadata=NON_NEGATIVE)
    p_value: float = field(metadata=PROBABILITY)
    inference: Inference
    interval: Interval | None = None
    statistic: float | None = None
    df: int | None = None
    alternative: Alternative = Alternative.TWO_SIDED
    hypothesis: Hypothesis | None = field(default=None, metadata=OMITTED_WHEN_NONE)
    note: str = ""

    @classmethod
    def joint_test(
        cls, test: Any, inference: Inference, hypothesis: Hypothesis, note: str = ""
    ) -> Estimate:
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


@dataclass
class ModelResult(_Record):
    """One fitted model of one outcome: its coefficients and the effects derived from them.

    ``terms`` hold coefficients under the primary inference and ``term_kinds`` what each term
    is; ``odds_ratios`` and ``marginal_effects`` are keyed by the same term names;
    ``sensitivity`` maps another inference kind (region clusters, the wild score bootstrap) to
    the terms it was computed for.
    """

    outcome: str
    model: str  # a ModelName, or a name built from the data ("industry=retail")
    formula: str
    family: Family
    inference: Inference
    nobs: int = field(metadata=NON_NEGATIVE)
    terms: dict[str, Estimate]
    term_kinds: dict[str, Term] = field(default_factory=dict)
    log_likelihood: float | None = None
    pseudo_r2: float | None = None
    odds_ratios: dict[str, Estimate] = field(default_factory=dict)
    marginal_effects: dict[str, Estimate] = field(default_factory=dict)
    sensitivity: dict[InferenceKind, dict[str, Estimate]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def slopes_by_level(self, factor: str) -> dict[str, dict[str, Estimate]]:
        """variable -> level -> coefficient, for the terms that are a continuous variable times
        one level of ``factor`` (``breadth_regional:C(region)[Oslo]``: each region's own slope),
        read from the term records, in the model's order."""
        slopes: dict[str, dict[str, Estimate]] = {}
        for name, estimate in self.terms.items():
            kind = self.term_kinds.get(name)
            if kind is None or kind.kind != TermKind.INTERACTION or len(kind.parts) != 2:
                continue
            variable, level = kind.parts
            if (
                variable.kind == TermKind.CONTINUOUS
                and level.kind == TermKind.FACTOR_LEVEL
                and level.variable == factor
            ):
                slopes.setdefault(str(variable.variable), {})[str(level.level)] = estimate
        return slopes


@dataclass
class CounterfactualCell:
    """Predicted innovation in one region (or ``"all"``) under a programme, with intervals.

    ``firms`` is the (weighted) number of firms; rates are shares of firms innovating.
    """

    region: str
    firms: float
    baseline_rate: float = field(metadata=PROBABILITY)
    predicted_rate: float = field(metadata=PROBABILITY)
    extra_innovators: float
    predicted_rate_interval: Interval | None = None
    extra_innovators_interval: Interval | None = None


ALL_REGIONS = "all"


@dataclass
class ProgrammeNote(_Record):
    """A note of a policy programme as a record (``counterfactuals[].notes``).

    ``kind`` says what it records; the numbers it needs are fields: ``scale`` (where the
    programme adds a partner type), ``wanted_scale`` (the programme's own scale, which the
    survey lacks), ``cap`` (the most partner types a firm can name at a scale),
    ``firms_treated`` and ``eligible`` (the fewest eligible firms, in total or in a region),
    ``regions`` (regions with fewer eligible firms than treated; absent when K is a total),
    ``dropped`` of ``replicates`` bootstrap replicates. ``text`` holds a format-2 note the
    conversion did not recognise (kind ``text``). The report words the record.
    """

    OMIT_DEFAULTS: typing.ClassVar[bool] = True

    kind: ProgrammeNoteKind
    scale: str | None = None
    wanted_scale: str | None = None
    cap: int | None = None
    firms_treated: int | None = None
    eligible: int | None = None
    regions: int | None = None
    dropped: int | None = None
    replicates: int | None = None
    text: str = ""


@dataclass
class CounterfactualResult(_Record):
    """One programme scenario: "predicted under the model, assuming breadth is as good as
    random", never "caused"."""

    outcome: str
    programme: Programme
    firms_treated: int = field(metadata=NON_NEGATIVE)  # K
    allocation: Allocation
    targeting: Targeting
    cells: list[CounterfactualCell]
    bootstrap_replications: int = 0
    seed: int | None = None
    weighted: bool = False
    notes: list[ProgrammeNote] = field(default_factory=list)
    scale: str = ""  # the scale the programme adds a partner type at
    # the model it is predicted under: "" or "controls" (the primary model), or
    # "controls_with_interaction" (a sensitivity column)
    model: str = ""

    def cell(self, region: str) -> CounterfactualCell:
        """The cell of one region, or ``"all"`` for the total."""
        for cell in self.cells:
            if cell.region == region:
                return cell
        raise KeyError(region)


@dataclass
class Verdict(_Record):
    """A finding decided by a written rule (``study/verdicts.py``).

    ``outcome`` is the innovation outcome the rule was applied to; ``quantities`` the results
    paths the rule reads, first available first, and ``quantity`` the one it used, with its
    ``inference``. ``p_value`` is that quantity's p for the rule's decision (one-sided for a
    one-sided rule), unadjusted; ``p_adjusted`` the same after the multiplicity adjustment
    across the verdict ``family`` (``family_size`` assessed verdicts), the p the verdict reads.
    """

    finding: Finding
    verdict: VerdictState
    outcome: str
    statement: str
    rule: str
    decision: Decision
    quantities: list[str]
    quantity: str
    threshold: float = field(metadata=PROBABILITY)
    estimate: float | None = None
    p_value: float | None = field(default=None, metadata=PROBABILITY)
    p_adjusted: float | None = field(default=None, metadata=PROBABILITY)
    adjustment: str = ""  # how p_adjusted was made: "holm" across ``family``
    family: str = ""  # the family of verdicts adjusted together ("primary", "other_outcomes")
    family_size: int | None = None  # the assessed verdicts of that family
    inference: Inference | None = None  # the inference of the quantity read
    # why a not_assessed verdict's quantity is missing, when the study noted it
    reason: NotAssessedReason | None = field(default=None, metadata=OMITTED_WHEN_NONE)
    reason_detail: str = field(default="", metadata=OMITTED_WHEN_NONE)


@dataclass
class Note(_Record):
    """A note of the study (``meta.notes``): what it could not assess, left out on request, or
    learnt about the data, as a record.

    ``text`` is the note as the report prints it (a sentence, never read back by any code); the
    facts are fields: ``kind``, and where they apply the ``outcome``, ``model``, ``term`` and
    ``quantity`` (a results path such as ``tests/product/spillover_exposure``) it concerns and
    the ``reason`` (the error's one line). A ``not_assessed`` note names what the study could
    not produce, so code selects notes by their fields, not by their words.
    """

    OMIT_DEFAULTS: typing.ClassVar[bool] = True  # written as {"kind": ..., "text": ...}

    kind: NoteKind
    text: str
    outcome: str | None = None
    model: str | None = None
    term: str | None = None
    quantity: str | None = None
    reason: str | None = None
    # for a not_assessed note: the part of the study (``model`` with ``model`` naming which)
    # and the reason in one word (separation, non_convergence, collinearity, ...)
    part: StudyPart | None = None
    cause: NotAssessedReason | None = None

    def __str__(self) -> str:
        return self.text

    def covers(self, outcome: str) -> bool:
        """Whether this not_assessed note leaves everything of ``outcome`` unassessed: its
        controls model failed, which every other part builds on."""
        return (
            self.kind == NoteKind.NOT_ASSESSED
            and self.outcome == outcome
            and self.part == StudyPart.MODEL
            and self.model == ModelName.CONTROLS
            and self.term is None
        )

    def subject(self) -> str:
        """What was not assessed, in words: "the controls model (breadth_regional)",
        "complementarity", "heterogeneity: the by region model"."""
        if self.part is None:
            return "a part of the study"
        model = f"the {self.model.replace('_', ' ')} model" if self.model else ""
        if self.part == StudyPart.MODEL:
            what = model or "a model"
        else:
            what = str(self.part).replace("_", " ") + (f": {model}" if model else "")
        return what + (f" ({self.term})" if self.term else "")


REASON_WORDS = {
    NotAssessedReason.SEPARATION: "separation",
    NotAssessedReason.NON_CONVERGENCE: "did not converge",
    NotAssessedReason.COLLINEARITY: "term dropped: collinear or constant",
    NotAssessedReason.NO_VARIATION: "outcome or moderator does not vary",
    NotAssessedReason.NO_DATA: "too few observations",
    NotAssessedReason.NOT_ESTIMABLE: "not estimable",
}


@dataclass
class Source(_Record):
    """Where the analysed survey came from: a preset synthesized with a seed, or a file."""

    OMIT_DEFAULTS: typing.ClassVar[bool] = True

    kind: SourceKind
    name: str
    seed: int | None = None
    firms: int | None = None


@dataclass
class RunSpecification(_Record):
    """Which specification a study ran (``meta.specification``): ``chosen_by`` the
    ``published study`` or the ``user``, the outcomes modelled, the control terms of every model
    with controls, the inference the verdicts read where the study computed more than one
    (``verdict_inference``: ``headline``, ``robust`` or ``cluster``, as
    ``study.verdicts.INFERENCE_CHOICES``) and their threshold ``alpha``, the sentence the
    report prints, and what the user asked for
    (``requested``: ``outcomes``, ``controls``, ``fixed_effects``, ``primary_outcome``,
    ``inference``, ``alpha``) before controls the survey lacks were left out."""

    OMIT_DEFAULTS: typing.ClassVar[bool] = True

    chosen_by: str
    outcomes: list[str]
    controls: list[str]
    text: str = ""
    requested: dict[str, Any] = field(default_factory=dict)
    verdict_inference: str = ""  # not "inference": records read that field as an Inference
    alpha: float | None = field(default=None, metadata=PROBABILITY)


@dataclass
class Meta(_Record):
    """What the study ran on and with, and its notes (``meta`` in ``results.json``).

    ``source`` and ``title`` are set by the orchestration (``buzzpipe.end_to_end``); a study
    run alone leaves them out. Fields at their defaults are not written.
    """

    OMIT_DEFAULTS: typing.ClassVar[bool] = True

    package_version: str = ""
    seed: int | None = None
    firms: int = field(default=0, metadata=NON_NEGATIVE)
    scales: list[str] = field(default_factory=list)
    inference_policy: str = ""
    primary_outcome: str = ""
    notes: list[Note] = field(default_factory=list)
    estimation_sample: dict[str, int] = field(default_factory=dict)
    counterfactual_model: str = ""
    counterfactual_sensitivity_model: str = ""  # the interaction model's column
    source: Source | None = None
    title: str = ""
    # synthetic data only (set by the orchestration from synth/): the preset's truth beside the
    # verdicts and the banner; the published figures of the study it was calibrated to
    synthetic: dict[str, Any] = field(default_factory=dict)
    published: list[dict[str, Any]] = field(default_factory=list)
    specification: RunSpecification | None = None

    def not_assessed(self) -> list[Note]:
        """The notes of what the study could not assess."""
        return [note for note in self.notes if note.kind == NoteKind.NOT_ASSESSED]


@dataclass
class DescriptiveRow(_Record):
    """One statistic of the descriptive table: a value per column (null when unknown)."""

    section: str
    statistic: str
    measure: Measure
    values: list[float]


@dataclass
class Descriptives:
    """The survey's descriptive table: columns all firms and each region."""

    columns: list[str]
    rows: list[DescriptiveRow]
    note: str = ""

    def __post_init__(self) -> None:
        for index, row in enumerate(self.rows):
            if len(row.values) != len(self.columns):
                raise RecordError(
                    f".rows[{index}].values",
                    "one value per column needed",
                    f"{len(row.values)} values",
                    f"{len(self.columns)}",
                )

    @classmethod
    def from_table(cls, table: Any) -> Descriptives:
        """From the survey's descriptive DataFrame (indexed by section, statistic, measure,
        one column per group)."""
        rows = [
            DescriptiveRow(str(section), str(statistic), Measure(str(measure)), _floats(values))
            for (section, statistic, measure), values in table.iterrows()
        ]
        return cls(
            columns=[str(column) for column in table.columns],
            rows=rows,
            note=str(table.attrs.get("note", "")),
        )


def _floats(values: Any) -> list[float]:
    return [float(value) for value in values]


@dataclass
class StudyResults:
    """Everything the battery found, in the shape the report renders and the verdicts read."""

    meta: Meta = field(default_factory=Meta)
    models: dict[str, dict[str, ModelResult]] = field(default_factory=dict)
    tests: dict[str, dict[str, Estimate]] = field(default_factory=dict)
    descriptions: dict[str, dict[str, Estimate]] = field(default_factory=dict)
    counterfactuals: list[CounterfactualResult] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    # the same rule table applied to every binary outcome (``verdicts`` is the primary one's)
    verdicts_by_outcome: dict[str, list[Verdict]] = field(default_factory=dict)
    descriptives: Descriptives | None = None
    format_version: int = FORMAT_VERSION
    # the simulation beside the study (``replicate --simulate``); absent from the file otherwise
    simulation: SimulationEvidence | None = field(default=None, metadata=OMITTED_WHEN_NONE)

    def note(self, kind: NoteKind, text: str, **facts: str | None) -> Note:
        """Add a note to ``meta.notes`` (``facts``: outcome, model, term, quantity, reason)."""
        record = Note(kind, text, **facts)
        self.meta.notes.append(record)
        return record

    def add_model(self, result: ModelResult) -> None:
        self.models.setdefault(result.outcome, {})[result.model] = result

    def add_test(self, section: str, name: str, estimate: Estimate) -> None:
        self.tests.setdefault(section, {})[name] = estimate

    def add_description(self, section: str, name: str, estimate: Estimate) -> None:
        self.descriptions.setdefault(section, {})[name] = estimate

    def lookup(self, path: str) -> Estimate | None:
        """The estimate at ``models/<outcome>/<model>/<term>``,
        ``models/<outcome>/<model>/sensitivity/<inference kind>/<term>`` (the term under another
        inference, e.g. ``wild_score_bootstrap``), ``tests/<section>/<name>`` or
        ``descriptions/<section>/<name>``; None when the study did not produce it."""
        kind, _, rest = path.partition("/")
        if kind == "models":
            outcome, model, term = (rest.split("/", 2) + ["", ""])[:3]
            fitted = self.models.get(outcome, {}).get(model)  # type: ignore[call-overload]
            if fitted is None:
                return None
            if term.startswith(SENSITIVITY_PATH):
                column, _, name = term.removeprefix(SENSITIVITY_PATH).partition("/")
                return fitted.sensitivity.get(column, {}).get(name)  # type: ignore[call-overload]
            return fitted.terms.get(term)
        if kind in ("tests", "descriptions"):
            section, _, name = rest.rpartition("/")
            return getattr(self, kind).get(section, {}).get(name)
        raise ValueError(
            f"unknown results path {path!r}: expected models/, tests/ or descriptions/"
        )

    def model_of(self, path: str) -> ModelResult | None:
        """The model a ``models/<outcome>/<model>/<term>`` path names (None otherwise)."""
        kind, _, rest = path.partition("/")
        if kind != "models":
            return None
        outcome, model = (rest.split("/", 2) + [""])[:2]
        return self.models.get(outcome, {}).get(model)  # type: ignore[call-overload]

    def to_dict(self) -> dict[str, Any]:
        """The results as ``results.json`` holds them (checked)."""
        return results_to_dict(self)

    @classmethod
    def from_dict(cls, data: Any) -> StudyResults:
        """Read and check results in ``results.json``'s structure."""
        return results_from_dict(data)

    def to_json(self) -> str:
        """The results as strict JSON text (no NaN or Infinity literals), checked."""
        return dumps_results(self)

    @classmethod
    def from_json(cls, text: str) -> StudyResults:
        return cls.from_dict(json.loads(text))


def results_from_dict(data: Any, *, file: str | None = None) -> StudyResults:
    """Typed, checked results from JSON data (the present format; 1 and 2 converted)."""
    if isinstance(data, Mapping) and data.get("format_version") == 1:
        data = convert_version_1(data, file=file)
    if isinstance(data, Mapping) and data.get("format_version") == 2:
        data = convert_version_2(data, file=file)
    walker = Walker(file)
    if not isinstance(data, Mapping):
        walker.fail("$", "wrong type", data, "an object")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        walker.fail(
            "$.format_version",
            "unsupported results format",
            version,
            f"{FORMAT_VERSION} (or 1 or 2, converted on reading)",
        )
    results = walker.decode(StudyResults, _without_retired_findings(data), "$")
    if not results.models:
        walker.fail("$.models", "no models", None, "at least one outcome with models")
    return results


def _without_retired_findings(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """The data without the verdicts of findings this version no longer decides
    (``RETIRED_FINDINGS``), a note in ``meta.notes`` saying why for each one left out."""

    def kept(verdicts: Any) -> Any:
        if not isinstance(verdicts, list):
            return verdicts
        return [
            verdict
            for verdict in verdicts
            if not (isinstance(verdict, Mapping) and verdict.get("finding") in RETIRED_FINDINGS)
        ]

    verdicts = data.get("verdicts")
    by_outcome = data.get("verdicts_by_outcome")
    retired = {
        str(verdict.get("finding"))
        for records in [verdicts, *(by_outcome.values() if isinstance(by_outcome, Mapping) else ())]
        if isinstance(records, list)
        for verdict in records
        if isinstance(verdict, Mapping) and verdict.get("finding") in RETIRED_FINDINGS
    }
    if not retired:
        return data
    cleaned = dict(data)
    cleaned["verdicts"] = kept(verdicts)
    if isinstance(by_outcome, Mapping):
        cleaned["verdicts_by_outcome"] = {key: kept(value) for key, value in by_outcome.items()}
    meta = dict(data.get("meta") or {})
    notes = list(meta.get("notes") or [])
    notes += [  # a note about an older file: no field of the present study applies
        {"kind": NoteKind.UNCLASSIFIED.value, "text": RETIRED_FINDINGS[finding].capitalize() + "."}
        for finding in sorted(retired)
    ]
    meta["notes"] = notes
    cleaned["meta"] = meta
    return cleaned


def results_to_dict(results: StudyResults) -> dict[str, Any]:
    """The results as JSON data, checked by reading them back (one check per write)."""
    data = encode(results)
    results_from_dict(data)
    return data


def dumps_results(results: StudyResults) -> str:
    """The results as strict JSON text (no NaN or infinity literals), checked first."""
    data = results_to_dict(results)
    return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def validate_results(data: Any, *, file: str | None = None) -> None:
    """Check JSON data against the format; raise ``InputError`` at the first problem."""
    results_from_dict(data, file=file)
