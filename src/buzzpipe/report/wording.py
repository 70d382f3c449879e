"""The study's records and names in words a reader of the report can follow.

``results.json`` keeps hypotheses and programme notes as records (a ``difference`` of the terms
``breadth_international`` and ``breadth_regional``; an ``eligibility`` note with its scale and
cap) and verdict rules with the JSON paths they read
(``tests/{outcome}/international_minus_regional``); the report prints "international =
regional breadth" instead. Words come from the records' fields: no text of the study is parsed
(``tests/report/test_no_parsing.py``). Pure text functions: no number is touched.
"""

from buzzpipe.results import Hypothesis, Inference, ProgrammeNote, Term
from buzzpipe.results.records import METHOD_NAMES
from buzzpipe.results.vocabulary import (
    Decision,
    HypothesisKind,
    InferenceKind,
    Measure,
    ModelName,
    ProgrammeNoteKind,
    Targeting,
    TermKind,
    alone_model,
)
from buzzpipe.survey.schema import SCALES, breadth_column, parse_collab_column

# Printed labels, all in this file: the view (``report/view.py``) turns results into the
# report's structure and asks this module for every word it prints.
MODEL_LABELS = {
    ModelName.BREADTH: "Breadth",
    ModelName.CONTROLS: "Breadth and controls",
    ModelName.CONTROLS_WITH_GROUP: "Breadth counting own group",
    ModelName.PARTNER_TYPES: "Partner types",
    ModelName.BREADTH_CATEGORIES: "Breadth as categories (0, 1, 2, 3+)",
    ModelName.BY_REGION: "Slopes by city-region (descriptive, no test)",
    ModelName.BY_SECTOR: "By sector",
}
MODEL_TABLES = {
    ModelName.BREADTH: "main",
    ModelName.CONTROLS: "main",
    ModelName.CONTROLS_WITH_GROUP: "main",
    ModelName.PARTNER_TYPES: "partner_types",
    ModelName.BREADTH_CATEGORIES: "breadth_categories",
    ModelName.BY_REGION: "heterogeneity",
    ModelName.BY_SECTOR: "heterogeneity",
}
VARIABLE_LABELS = {
    "np.log(employees)": "Employees (log)",
    "foreign_share": "Foreign ownership share",
    "openness": "Manager openness",
    "education": "Staff education share",
    "firm_age": "Firm age",
    "region_size": "City-region size (log firms)",  # in results files before issue 16
    "pipeline_exposure": "Pipeline exposure through local partners",
}
TARGETING_WORDS = {
    Targeting.RANDOM: "random firms",
    Targeting.SMALLEST: "smallest firms",
    Targeting.NO_PIPELINE: "firms without a pipeline",
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
INFERENCE_WORDS = {
    InferenceKind.ROBUST: "firm-level robust standard errors (Stata vce(robust))",
    InferenceKind.CLASSICAL: "classical standard errors (inverse observed Hessian)",
}
# the inference a user's study file chose for the verdicts (meta.specification.inference), in
# the findings' lead and the verdicts table's notes; the headline rule keeps its own words
VERDICT_INFERENCE_WORDS = {
    InferenceKind.ROBUST: "firm-level robust Wald tests in every row (the study file's choice)",
    InferenceKind.CLUSTER: "region-clustered Wald tests where the study computes them, "
    "firm-level robust elsewhere (the study file's choice; with few regions they over-reject, "
    "docs/few_clusters.md)",
}
CLUSTER_WORDS = {"region": "regions", "region_industry_cell": "region \u00d7 industry cells"}
DECISION_WORDS = {
    Decision.TWO_SIDED: "two-sided",
    Decision.ONE_SIDED: "one-sided",
    Decision.JOINT: "joint",
}


def inference_text(inference: Inference) -> str:
    """Words for an inference record, for a table note: firm-level robust errors (Stata's
    name), region-clustered errors, the wild cluster score bootstrap over regions."""
    if inference.kind in INFERENCE_WORDS:
        words = INFERENCE_WORDS[inference.kind]
    elif inference.kind == InferenceKind.CLUSTER and inference.by == "region":
        words = "region-clustered standard errors (Stata vce(cluster region))"
    elif inference.kind == InferenceKind.CLUSTER:
        by = {"region_industry_cell": "region \u00d7 industry cell"}.get(
            str(inference.by), str(inference.by).replace("_", " ")
        )
        words = f"standard errors clustered by {by} (Stata vce(cluster))"
    elif inference.kind == InferenceKind.WILD_SCORE_BOOTSTRAP:
        by = str(inference.by or "region")
        words = f"wild cluster score bootstrap over {CLUSTER_WORDS.get(by, by.replace('_', ' '))}"
        if inference.weights:
            words += f" ({inference.weights.value.capitalize()} weights)"
    else:
        return inference.short()
    method = METHOD_NAMES[inference.method] if inference.method else ""
    return words + (f", {method}" if method else "")


BREADTH_CATEGORY = "breadth_category_"


def breadth_category_scale(term: Term) -> str | None:
    """The scale of a level of breadth as categories (``C(breadth_category_regional)[T.2]``),
    else None: these levels are the model's comparison, shown as rows, not as dummies."""
    variable = str(term.variable or "")
    if term.kind == TermKind.FACTOR_LEVEL and variable.startswith(BREADTH_CATEGORY):
        scale = variable.removeprefix(BREADTH_CATEGORY)
        return scale if scale in SCALES else None
    return None


def term_label(name: str, term: Term) -> str:
    """The printed label of a model term, from what the specification says it is."""
    if term.kind == TermKind.INTERCEPT:
        return "Constant"
    if term.kind == TermKind.CUT:
        return f"Cut {term.number}"
    if term.kind == TermKind.INTERACTION:
        return " \u00d7 ".join(term_label(str(part.variable), part) for part in term.parts)
    if term.kind == TermKind.FACTOR_LEVEL:
        scale = breadth_category_scale(term)
        if scale:
            level = "3 or more" if str(term.level) == "3" else str(term.level)
            return f"Breadth {level}, {scale}"
        return f"{str(term.variable).replace('_', ' ')}: {str(term.level).replace('_', ' ')}"
    variable = str(term.variable or name)
    for scale in SCALES:
        if variable == f"breadth_{scale}":
            return f"Breadth, {scale}"
        if variable == f"breadth_{scale}_with_group":
            return f"Breadth with own group, {scale}"
    parsed = parse_collab_column(variable)
    if parsed:
        scale, partner_type = parsed
        return f"{partner_type.replace('_', ' ').capitalize()}, {scale}"
    return VARIABLE_LABELS.get(variable, variable.replace("_", " ").capitalize())


# a model of results files written before issue 16 (breadth x log surveyed firms per region)
LEGACY_REGION_SIZE_MODEL = "by_region_size"


def model_label(name: str) -> str:
    """A model's column heading: 'Breadth and controls', 'Regional alone'."""
    if name in MODEL_LABELS:
        return MODEL_LABELS[ModelName(name)]
    if name == LEGACY_REGION_SIZE_MODEL:
        return "By city-region size"
    return name.replace("_", " ").capitalize()


def model_table(name: str) -> str:
    """Which table a model's column goes to: each scale's breadth alone (``<scale>_alone``)
    sits with the main models, as the first columns of a published table; unknown models get
    a table of their own."""
    if name in MODEL_TABLES:
        return MODEL_TABLES[ModelName(name)]
    if name == LEGACY_REGION_SIZE_MODEL:
        return MODEL_TABLES[ModelName.BY_SECTOR]
    if name in {alone_model(scale) for scale in SCALES}:
        return "main"
    return name


def statistic_label(statistic: str, measure: Measure) -> str:
    """A descriptive statistic's printed label: words for column names, the unit of a mean."""
    if statistic in STATISTIC_LABELS:
        return STATISTIC_LABELS[statistic]
    label = statistic.replace("_", " ")
    if measure == Measure.MEAN and "mean" not in label:
        label += " (mean)"
    return label


# words for variables that appear in hypotheses and terms (lower case, for inside a sentence)
VARIABLE_WORDS = {
    "pipeline_exposure": "pipeline exposure through local partners",
    "pipeline_share_leave_one_out": "leave-one-out share of pipeline firms in the region "
    "\u00d7 industry cell",
    "region_size": "city-region size",  # in results files before issue 16
    "C(industry)": "sector",
    "np.log(employees)": "employees (log)",
}
SENSITIVITY_WORDS = {
    "wild_score_bootstrap": "wild bootstrap by region",
    InferenceKind.CLUSTER: "region-clustered",
}
COMMON_SUPPORT_STEPS = {
    "first_partner": "first kind of partner (0 to 1)",
    "second_partner": "second kind of partner (1 to 2)",
}
COMPARED_SUFFIXES = {
    "cluster_region": "region-clustered",
    "wild_bootstrap": "wild bootstrap",
    "cell_clustered": "cell-clustered (pooled)",
}


def scale_of(variable: str | None) -> str | None:
    """The scale a breadth variable measures (``breadth_international`` -> international)."""
    for scale in SCALES:
        if variable == breadth_column(scale):
            return scale
    return None


def variable_words(name: str) -> str:
    """A variable or term name in words ('breadth_international' -> 'international breadth')."""
    scale = scale_of(name)
    if scale is not None:
        return f"{scale} breadth"
    return VARIABLE_WORDS.get(name, name.replace("_", " "))


def term_words(term: Term) -> str:
    """A model term in words for inside a sentence, from its record: 'international breadth',
    'regional \u00d7 international breadth'."""
    if term.kind == TermKind.INTERACTION:
        scales = [scale_of(part.variable) for part in term.parts]
        if all(scales):
            return " \u00d7 ".join(map(str, scales)) + " breadth"
        return " \u00d7 ".join(term_words(part) for part in term.parts)
    if term.kind == TermKind.FACTOR_LEVEL:
        return f"{variable_words(str(term.variable))} {str(term.level).replace('_', ' ')}"
    if term.kind == TermKind.INTERCEPT:
        return "the constant"
    if term.kind == TermKind.CUT:
        return f"cut point {term.number}"
    return variable_words(str(term.variable))


def test_label(name: str) -> str:
    """A hypothesis test's row label."""
    known = {
        "international_minus_regional": "Pipelines versus buzz: international \u2212 regional",
        "international_minus_national": "Pipelines versus national: international \u2212 national",
        "supermodularity": "Complementarity in the odds (supermodularity of regimes, one-sided)",
        "spillover_exposure": "Association with local pipelines: all firms",
        "spillover_exposure_own_pipeline": "Association with local pipelines: firms with a "
        "pipeline",
        "spillover_exposure_no_pipeline": "Association with local pipelines: firms without a "
        "pipeline",
        "spillover_placebo": "Placebo: own pipeline status and local pipelines (are pipelines "
        "as good as randomly placed?)",
        "heterogeneity_region_size": "Heterogeneity by city-region size (joint)",  # old files
        "heterogeneity_sector": "Heterogeneity by industry (sector; joint)",
    }
    if name in known:
        return known[name]
    base, suffix = compared_variant(name)
    if suffix:
        return f"{test_label(base)}, {COMPARED_SUFFIXES[suffix]}"
    for step, words in COMMON_SUPPORT_STEPS.items():
        for prefix, model in (("", "controls model"), ("categories_", "breadth categories")):
            if name.startswith(f"{prefix}{step}_international_minus_"):
                scale = name.removeprefix(f"{prefix}{step}_international_minus_")
                return f"Pipelines versus buzz, {words}: international \u2212 {scale} ({model})"
    for scale in SCALES:
        if name == f"partner_types_{scale}":
            return f"Partner types at the {scale} scale (joint)"
        if name == f"equal_breadth_{scale}":
            return (
                f"Same effect of one more {scale} kind of partner across outcomes (probability "
                "scale, joint)"
            )
        if name == f"coefficients_equal_breadth_{scale}":
            return (
                f"Same coefficient of {scale} breadth across outcomes (log-odds, whose scales "
                "differ between outcomes; sensitivity)"
            )
        if name == f"interaction_{scale}_international":
            return f"Interaction: {scale} \u00d7 international breadth"
        if name == f"interaction_probability_{scale}_international":
            return description_label(name)
    return name.replace("_", " ").capitalize()


def compared_variant(name: str) -> tuple[str, str | None]:
    """(primary test name, suffix) for a test's sensitivity variant, else (name, None):
    ``international_minus_regional_cluster_region`` -> (``international_minus_regional``,
    ``cluster_region``)."""
    for suffix in COMPARED_SUFFIXES:
        if name.endswith(f"_{suffix}"):
            return name[: -len(suffix) - 1], suffix
    return name, None


def description_label(name: str) -> str:
    """A described quantity's row label."""
    for step, words in COMMON_SUPPORT_STEPS.items():
        for prefix, model in (("", "controls model"), ("categories_", "breadth categories")):
            for scale in SCALES:
                if name == f"{prefix}{step}_{scale}":
                    return f"Change in probability, {words} at the {scale} scale ({model})"
    for scale in SCALES:
        if name == f"standardised_{scale}":
            return f"Standardised effect, {scale} (coefficient \u00d7 SD of breadth; secondary)"
    for scale in SCALES:
        if name == f"probability_change_{scale}":
            return f"Change in probability, one more {scale} partner type"
    if name == "spillover_confounding_bound":
        return (
            "Association with local pipelines: strength of a confounder that would explain it "
            "(effect \u00d7 correlation)"
        )
    if name == "spillover_exposure_naive":
        return (
            "Association with local pipelines: naive leave-one-out estimate (biased by exclusion)"
        )
    if name.startswith("probability_difference_"):
        first, _, second = name[len("probability_difference_") :].partition("_")
        return f"Difference of probability changes, {first} \u2212 {second} (+1 partner type each)"
    if name.startswith("probability_ratio_"):
        first, _, second = name[len("probability_ratio_") :].partition("_")
        return f"Ratio of probability changes, {first} / {second}"
    if name.startswith("ratio_"):
        first, _, second = name[len("ratio_") :].partition("_")
        return f"Ratio of coefficients, {first} / {second}"
    if name.startswith("interaction_probability_"):
        local = name[len("interaction_probability_") :].partition("_")[0]
        return f"Interaction on the probability scale, {local} \u00d7 international (Ai and Norton)"
    return name.replace("_", " ").capitalize()


STEP_WORDS = {
    HypothesisKind.FIRST_PARTNER: "change in probability from the first {0} kind of partner "
    "(breadth 0 to 1 for every firm)",
    HypothesisKind.SECOND_PARTNER: "change in probability from the second {0} kind of partner "
    "(breadth 1 to 2 for every firm)",
    HypothesisKind.FIRST_PARTNER_DIFFERENCE: "first {0} = first {1} kind of partner "
    "(probability scale)",
    HypothesisKind.SECOND_PARTNER_DIFFERENCE: "second {0} = second {1} kind of partner "
    "(probability scale)",
}


def hypothesis_words(hypothesis: Hypothesis | None, name: str) -> str:
    """A test's hypothesis (or a described quantity's definition) in words, from its record;
    a test without one is named by its test name."""
    if hypothesis is None:
        base, _ = compared_variant(name)
        for scale in SCALES:
            if base == f"international_minus_{scale}":
                return f"international = {scale} breadth"
            if base == f"interaction_{scale}_international":
                return f"{scale} \u00d7 international breadth = 0"
        return test_label(name)
    kind, terms, scales = hypothesis.kind, hypothesis.terms, hypothesis.scales
    count = hypothesis.count if hypothesis.count is not None else len(terms)
    if kind == HypothesisKind.ZERO:
        words = f"{term_words(terms[0])} = 0"
        if hypothesis.firms is None:
            return words
        cells = f" in {hypothesis.cells} cells" if hypothesis.cells is not None else ""
        return f"{words} ({hypothesis.firms} firms{cells})"
    if kind in (HypothesisKind.DIFFERENCE, HypothesisKind.RATIO):
        first, second = (scale_of(term.variable) for term in terms)
        if kind == HypothesisKind.DIFFERENCE:
            if first and second:
                return f"{first} = {second} breadth"
            return f"{term_words(terms[0])} - {term_words(terms[1])} = 0"
        if first and second:
            return f"{first} breadth / {second} breadth"
        return f"{term_words(terms[0])} / {term_words(terms[1])}"
    if kind == HypothesisKind.INTERACTIONS_ZERO:
        moderator = variable_words(str(hypothesis.moderator))
        return f"all {count} breadth \u00d7 {moderator} interactions = 0"
    if kind == HypothesisKind.PARTNER_TYPES_ZERO:
        return f"no partner type at the {scales[0]} scale matters ({count} terms)"
    if kind == HypothesisKind.EQUAL_ACROSS_OUTCOMES:
        outcomes = ", ".join(outcome.replace("_", "-") for outcome in hypothesis.outcomes)
        return f"{term_words(terms[0])} equal for {outcomes}"
    if kind == HypothesisKind.PLUS_ONE_EQUAL_ACROSS_OUTCOMES:
        outcomes = ", ".join(outcome.replace("_", "-") for outcome in hypothesis.outcomes)
        return (
            f"change in probability from one more {scales[0]} kind of partner equal for {outcomes}"
        )
    if kind in STEP_WORDS:
        return STEP_WORDS[kind].format(*scales)
    if kind == HypothesisKind.PIPELINES_AS_GOOD_AS_RANDOM:
        if terms:
            return (
                f"own pipeline status unrelated to the {term_words(terms[0])} beyond what "
                "partners drawn at random in the region would give (placebo)"
            )
        cells = f" ({hypothesis.cells} cells)" if hypothesis.cells is not None else ""
        return (
            "international partners not clustered by region \u00d7 industry cell beyond region, "
            f"industry and the firm's characteristics{cells} (placebo)"
        )
    if kind == HypothesisKind.CONFOUNDING_BOUND:
        return (
            "an omitted confounder's effect on the log-odds (per SD) \u00d7 its partial "
            f"correlation with the {term_words(terms[0])} that would explain the association"
        )
    if kind == HypothesisKind.STANDARDISED:
        return f"{term_words(terms[0])} × its standard deviation (log-odds, secondary)"
    if kind == HypothesisKind.SUPERMODULARITY:
        return "effect of both \u2264 local only + global only (log-odds); complements if rejected"
    if kind == HypothesisKind.INTERACTION_PROBABILITY:
        return (
            "average change in the probability of innovating from one more local and one more "
            "international kind of partner together, beyond the two separately"
        )
    if kind == HypothesisKind.MARGINAL_EFFECT:
        return f"average dy/dx of {term_words(terms[0])}"
    if kind == HypothesisKind.DISCRETE_CHANGE:  # a factor's level against its base level
        return (
            f"average change from {variable_words(str(terms[1].variable))} "
            f"{terms[1].level} to {terms[0].level}"
        )
    if kind == HypothesisKind.PLUS_ONE:  # of a breadth term, or a format-2 record without one
        if not terms or scale_of(terms[0].variable):
            return "one more kind of partner"
        return f"{term_words(terms[0])} + 1"
    if kind == HypothesisKind.PLUS_ONE_DIFFERENCE:
        return f"change from one more {scales[0]} minus one more {scales[1]} kind of partner"
    if kind == HypothesisKind.PLUS_ONE_RATIO:
        return f"change from one more {scales[0]} / one more {scales[1]} kind of partner"
    return hypothesis.text  # a format-2 hypothesis the conversion did not recognise


def programme_note_words(note: ProgrammeNote, programme: str) -> str:
    """A programme's note as the counterfactuals table prints it ("predicted under the model,
    not caused" the table says once for every programme; this note adds what it leaves out)."""
    if note.kind == ProgrammeNoteKind.NOT_CAUSED:
        return "Firms' own rows only, no effects through partners."
    if note.kind == ProgrammeNoteKind.ELIGIBILITY:
        return (
            f"Firms already at the cap of {note.cap} partner types at the programme's scale "
            "are not eligible."
        )
    if note.kind == ProgrammeNoteKind.SCALE_SUBSTITUTED:
        return (
            f"The survey has no {note.wanted_scale} scale: the {programme} programme adds a "
            f"{note.scale} partner type instead (local means {note.scale} here)."
        )
    if note.kind == ProgrammeNoteKind.ALL_ELIGIBLE_TREATED:
        where = "in total" if note.regions is None else f"in {note.regions} of the regions"
        return (
            f"{note.firms_treated:,} firms treated is more than the {note.eligible:,} eligible "
            f"firms {where}: every eligible firm there is treated."
        )
    if note.kind == ProgrammeNoteKind.REPLICATES_DROPPED:
        return (
            f"{note.dropped} of {note.replicates} bootstrap replicates dropped (not converged, "
            "a design column lost, or separated)."
        )
    return note.text  # a format-2 note the conversion did not recognise


def _path_words(path: str) -> str | None:
    """Words for a quantity path of the study's results, or None when none are known."""
    kind, _, rest = path.partition("/")
    parts = rest.split("/")
    if kind == "models" and len(parts) == 5 and parts[2] == "sensitivity":
        _, model, _, column, term = parts
        words = variable_words(term)
        under = SENSITIVITY_WORDS.get(column, column.replace("_", " "))
        return f"{words} in the {model_label(model).lower()} model, {under}"
    if kind == "models" and len(parts) == 3:
        _, model, term = parts
        words = variable_words(term)
        return f"{words} in the {model_label(model).lower()} model"
    if kind in ("tests", "descriptions") and len(parts) == 2:
        name = parts[1]
        base, variant = compared_variant(name)
        under = f", {COMPARED_SUFFIXES[variant]}" if variant else ""
        if base.startswith("international_minus_"):
            return f"{base.replace('_minus_', ' = ')} breadth{under}"
        if base == "supermodularity" and variant:
            return f"supermodularity of local and global collaboration (log-odds scale){under}"
        if base.startswith("first_partner_international_minus_"):
            scale = base.removeprefix("first_partner_international_minus_")
            return (
                f"the first international = the first {scale} kind of partner (probability "
                f"scale, controls model){under}"
            )
        return {
            "supermodularity": "supermodularity of local and global collaboration (log-odds scale)",
            "spillover_exposure": "association with local partners' (or the cell's) pipeline "
            "share (all firms)",
            "heterogeneity_sector": "breadth \u00d7 sector interactions",
        }.get(name, (test_label if kind == "tests" else description_label)(name).lower())
    return None


def rule_text(
    decision: Decision, quantities: list[str], threshold: float, outcome: str, quantity: str
) -> str:
    """A verdict rule as printed: the decision in words and every quantity path it reads in
    words; a rule that reads one of several quantities says which it used."""
    paths = [path.replace("{outcome}", outcome) for path in quantities]
    named = ", else ".join(_path_words(path) or path for path in paths)
    text = f"{DECISION_WORDS[Decision(decision)]} test of {named} at {threshold:g}"
    if quantity not in paths or len(paths) > 1:
        text += f" (used: {_path_words(quantity) or quantity})"
    return text
