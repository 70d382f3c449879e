"""Every vocabulary of ``results.json``, defined once, as enumerations.

The study writes these values and the report reads them; neither spells one out as a string
literal (``tests/results/test_vocabulary_literals.py`` walks both stages' syntax trees). Each
member's value is what the file holds, so ``VerdictState.FOUND == "found"`` and a member
serialises as its value.
"""

from __future__ import annotations

from enum import StrEnum


class VerdictState(StrEnum):
    """What a written rule decided about a finding (``study/verdicts.py``)."""

    FOUND = "found"
    NOT_FOUND = "not_found"
    OPPOSITE = "opposite"
    NOT_ASSESSED = "not_assessed"


class Decision(StrEnum):
    """How a verdict rule reads its estimate."""

    TWO_SIDED = "two_sided"
    ONE_SIDED = "one_sided"
    JOINT = "joint"


class Alternative(StrEnum):
    """The alternative hypothesis a p-value belongs to."""

    TWO_SIDED = "two-sided"
    GREATER = "greater"
    LESS = "less"


class Measure(StrEnum):
    """What a row of the descriptive table holds."""

    COUNT = "count"
    SHARE = "share"
    MEAN = "mean"


class Finding(StrEnum):
    """The findings the verdict rules decide (the catalogue in ``results/findings.py``)."""

    INTERNATIONAL_EFFECT = "international_effect"
    REGIONAL_EFFECT = "regional_effect"
    NATIONAL_EFFECT = "national_effect"
    PIPELINES_STRONGER = "pipelines_stronger"
    COMPLEMENTARITY = "complementarity"
    COMPLEMENTARITY_PROBABILITY = "complementarity_probability"
    SPILLOVER = "spillover"
    HETEROGENEITY_SECTOR = "heterogeneity_sector"


class ModelName(StrEnum):
    """The study's named models of one outcome (``<scale>_alone`` models are named per scale:
    :func:`alone_model`)."""

    REGIONAL_ALONE = "regional_alone"
    NATIONAL_ALONE = "national_alone"
    INTERNATIONAL_ALONE = "international_alone"
    BREADTH = "breadth"
    CONTROLS = "controls"
    CONTROLS_WITH_GROUP = "controls_with_group"
    PARTNER_TYPES = "partner_types"
    BREADTH_CATEGORIES = "breadth_categories"  # breadth 0, 1, 2, 3+ at each scale
    BY_REGION = "by_region"  # each city-region's own breadth slopes, descriptive (no test)
    BY_SECTOR = "by_sector"
    # the counterfactuals' sensitivity model: controls plus the local x international interaction
    CONTROLS_WITH_INTERACTION = "controls_with_interaction"


ALONE_SUFFIX = "_alone"


def alone_model(scale: str) -> ModelName:
    """The model of one scale's breadth alone (``regional_alone``)."""
    return ModelName(f"{scale}{ALONE_SUFFIX}")


class Family(StrEnum):
    """Model families the estimator fits."""

    LOGIT = "logit"
    PROBIT = "probit"
    OLOGIT = "ologit"
    OPROBIT = "oprobit"
    LPM = "lpm"


class InferenceKind(StrEnum):
    """What produced a standard error, interval or p-value."""

    CLASSICAL = "classical"
    ROBUST = "robust"
    CLUSTER = "cluster"
    WILD_SCORE_BOOTSTRAP = "wild_score_bootstrap"
    BETWEEN_CELLS = "between_cells"


class InferenceMethod(StrEnum):
    """How a derived number got its error under an inference (absent for a coefficient)."""

    DELTA_METHOD = "delta_method"
    FIELLER = "fieller"
    SUEST = "suest"
    META_REGRESSION = "meta_regression"
    SCORE_TEST = "score_test"  # a Lagrange multiplier test from the restricted fit


class WildWeights(StrEnum):
    """Auxiliary weights of the wild bootstrap."""

    RADEMACHER = "rademacher"
    WEBB = "webb"


class TermKind(StrEnum):
    """What a model term is, read from the model specification."""

    INTERCEPT = "intercept"
    CUT = "cut"
    CONTINUOUS = "continuous"
    FACTOR_LEVEL = "factor_level"
    INTERACTION = "interaction"


class Programme(StrEnum):
    """Policy programmes of the counterfactuals."""

    PIPELINE = "pipeline"
    CLUSTER = "cluster"


class Targeting(StrEnum):
    """Which firms a programme reaches."""

    RANDOM = "random"
    SMALLEST = "smallest"
    NO_PIPELINE = "no_pipeline"


class Allocation(StrEnum):
    """Whether K firms are treated in total or in each region."""

    TOTAL = "total"
    PER_REGION = "per_region"


class NoteKind(StrEnum):
    """What a note of the study (``meta.notes``) records."""

    NOT_ASSESSED = "not_assessed"  # a quantity, model or outcome the data could not support
    SKIPPED = "skipped"  # a part of the study left out at the user's request
    DATA = "data"  # what the survey lacks, or firms that left an estimation sample
    UNCLASSIFIED = "unclassified"  # a note of format 2 or earlier, which kept notes as text


class HypothesisKind(StrEnum):
    """What a test's null hypothesis, or a described quantity's definition, says
    (:class:`~buzzpipe.results.records.Hypothesis` holds the terms, scales and counts)."""

    ZERO = "zero"  # one coefficient is zero: terms[0] = 0
    DIFFERENCE = "difference"  # two coefficients are equal: terms[0] - terms[1] = 0
    RATIO = "ratio"  # described: terms[0] / terms[1]
    INTERACTIONS_ZERO = "interactions_zero"  # every breadth x moderator interaction is zero
    PARTNER_TYPES_ZERO = "partner_types_zero"  # no partner type at scales[0] matters
    EQUAL_ACROSS_OUTCOMES = "equal_across_outcomes"  # terms[0] is the same for the outcomes
    SUPERMODULARITY = "supermodularity"  # b_both - b_local_only - b_global_only <= 0
    INTERACTION_PROBABILITY = "interaction_probability"  # Ai-Norton: mean cross difference = 0
    MARGINAL_EFFECT = "marginal_effect"  # the average dy/dx of terms[0]
    PLUS_ONE = "plus_one"  # the average change from terms[0] + 1 (one more kind of partner)
    DISCRETE_CHANGE = "discrete_change"  # average change from level terms[1] to terms[0]
    PLUS_ONE_DIFFERENCE = "plus_one_difference"  # one more scales[0] minus one more scales[1]
    PLUS_ONE_RATIO = "plus_one_ratio"  # one more scales[0] / one more scales[1]
    # the +1 change at scales[0] (terms[0]) is the same for the outcomes (probability scale)
    PLUS_ONE_EQUAL_ACROSS_OUTCOMES = "plus_one_equal_across_outcomes"
    FIRST_PARTNER = "first_partner"  # described: mean P(scales[0] breadth 1) - P(0)
    SECOND_PARTNER = "second_partner"  # described: mean P(scales[0] breadth 2) - P(1)
    FIRST_PARTNER_DIFFERENCE = "first_partner_difference"  # first at scales[0] - at scales[1]
    SECOND_PARTNER_DIFFERENCE = "second_partner_difference"  # second at scales[0] - scales[1]
    STANDARDISED = "standardised"  # described: b[terms[0]] x SD of breadth at scales[0]
    # placebo: own pipeline status unrelated to terms[0] (local partners' pipelines), or, with
    # no terms, international partners not clustered by region x industry cell beyond region
    # and industry
    PIPELINES_AS_GOOD_AS_RANDOM = "pipelines_as_good_as_random"
    CONFOUNDING_BOUND = "confounding_bound"  # described: delta x rho explaining terms[0]
    TEXT = "text"  # a format-2 hypothesis the conversion did not recognise, as written


class ProgrammeNoteKind(StrEnum):
    """What a note of a policy programme (``counterfactuals[].notes``) records."""

    NOT_CAUSED = "not_caused"  # predicted under the model from firms' own rows, not caused
    ELIGIBILITY = "eligibility"  # one more kind of partner at scale; firms at the cap excluded
    SCALE_SUBSTITUTED = "scale_substituted"  # the survey lacks wanted_scale: scale instead
    ALL_ELIGIBLE_TREATED = "all_eligible_treated"  # more firms treated than are eligible
    REPLICATES_DROPPED = "replicates_dropped"  # bootstrap replicates that could not be refitted
    TEXT = "text"  # a format-2 note the conversion did not recognise, as written


class NotAssessedReason(StrEnum):
    """Why the study could not produce a quantity (a ``not_assessed`` note's ``cause``); the
    values are the ``reason`` of ``buzzpipe.errors.EstimationError`` and its subclasses."""

    SEPARATION = "separation"
    NON_CONVERGENCE = "non_convergence"
    COLLINEARITY = "collinearity"  # a term it needs was dropped (collinear or constant)
    NO_VARIATION = "no_variation"
    NO_DATA = "no_data"  # no or too few observations (firms, links, clusters)
    NOT_ESTIMABLE = "not_estimable"  # any other reason the data cannot support it


class StudyPart(StrEnum):
    """The parts of the battery a ``not_assessed`` note names (a model names its model)."""

    MODEL = "model"
    PIPELINES_VS_BUZZ = "pipelines_vs_buzz"
    DIFFERENCE_SENSITIVITY = "difference_sensitivity"
    COMPLEMENTARITY = "complementarity"
    SPILLOVER = "spillover"
    HETEROGENEITY = "heterogeneity"
    COUNTERFACTUALS = "counterfactuals"
    ACROSS_OUTCOMES = "across_outcomes"


class SourceKind(StrEnum):
    """Where the analysed survey came from."""

    SYNTHETIC = "synthetic"
    FILE = "file"


VOCABULARIES: tuple[type[StrEnum], ...] = (
    VerdictState,
    Decision,
    Alternative,
    Measure,
    Finding,
    ModelName,
    Family,
    InferenceKind,
    InferenceMethod,
    WildWeights,
    TermKind,
    Programme,
    Targeting,
    Allocation,
    NoteKind,
    SourceKind,
    HypothesisKind,
    ProgrammeNoteKind,
    NotAssessedReason,
    StudyPart,
)
