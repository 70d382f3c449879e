"""The clusters-versus-pipelines battery: every part of the study run on one survey.

``run_study(survey)`` fits the main models of each outcome on one shared sample, compares
pipelines with buzz, tests complementarity, spill-over and heterogeneity, runs the policy
counterfactuals for the primary outcome, and decides the verdicts from the rule table. It returns
a :class:`~buzzpipe.results.StudyResults`, the shape ``results.json`` and the report take.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd

from buzzpipe import __version__, defaults
from buzzpipe.errors import BuzzpipeError, EstimationError, InputError
from buzzpipe.estimate.design import designs_shared
from buzzpipe.results import Meta, RunSpecification, StudyResults
from buzzpipe.results.vocabulary import (
    Allocation,
    Family,
    ModelName,
    NotAssessedReason,
    NoteKind,
    Programme,
    StudyPart,
    Targeting,
)
from buzzpipe.study import engine
from buzzpipe.study.across_outcomes import compare_across_outcomes
from buzzpipe.study.common_support import compare_on_common_support, first_partner_bootstrap
from buzzpipe.study.complementarity import assess_complementarity
from buzzpipe.study.counterfactuals import counterfactual
from buzzpipe.study.heterogeneity import assess_heterogeneity
from buzzpipe.study.models import (
    INFERENCE_POLICY,
    PRIMARY_INFERENCE,
    breadth_terms,
    control_terms,
    default_outcomes,
    dropped_firms_note,
    fit_model,
    fit_outcome_models,
    inference_of,
    is_nested,
    local_scale,
    marginal_effects,
    model_result,
    scales_present,
)
from buzzpipe.study.partner_types import partner_type_tests
from buzzpipe.study.pipelines_vs_buzz import compare_pipelines_and_buzz
from buzzpipe.study.probability_changes import ChangeDesigns, sample_design
from buzzpipe.study.sensitivity import (
    add_sensitivity,
    single_term_sensitivity,
)
from buzzpipe.study.skipped import record_not_assessed
from buzzpipe.study.specification import Specification, as_dict, describe, resolve_controls
from buzzpipe.study.spillover import assess_spillover
from buzzpipe.study.verdicts import (
    PRIMARY_OUTCOME,
    decide_verdicts,
    decide_verdicts_by_outcome,
    verdict_rules,
)
from buzzpipe.survey.schema import NOVELTY

DEFAULT_SCENARIOS: tuple[dict[str, Any], ...] = (
    {"programme": Programme.PIPELINE, "firms_treated": 100, "targeting": Targeting.RANDOM},
    {"programme": Programme.CLUSTER, "firms_treated": 100, "targeting": Targeting.RANDOM},
    {"programme": Programme.PIPELINE, "firms_treated": 100, "targeting": Targeting.SMALLEST},
    {"programme": Programme.PIPELINE, "firms_treated": 100, "targeting": Targeting.NO_PIPELINE},
    {"programme": Programme.PIPELINE, "firms_treated": 20, "allocation": Allocation.PER_REGION},
    {"programme": Programme.CLUSTER, "firms_treated": 20, "allocation": Allocation.PER_REGION},
)


def analysis_frame_of(source: Any) -> pd.DataFrame:
    """The analysis frame of a Survey, or a frame passed as it is."""
    if hasattr(source, "analysis_frame"):
        return source.analysis_frame()
    if isinstance(source, pd.DataFrame):
        return source
    raise InputError("the study needs a Survey or an analysis frame", value=type(source).__name__)


# the collector's first threshold inside the battery: a young-object pass every 5,000 new
# container objects, not every 700 (Python's default)
YOUNG_PASS_OBJECTS = 5_000


@contextmanager
def older_objects_frozen() -> Iterator[None]:
    """Python's garbage collector leaves the objects made before the block alone inside it
    (``gc.freeze``, undone by ``gc.unfreeze`` at its end) and passes over the young objects
    every :data:`YOUNG_PASS_OBJECTS` new ones at most, unless the caller froze some itself or
    turned the collector off: the collector then does what it did before. Its thresholds are
    given back at the end.

    Why: the battery makes many short-lived objects, so the collector's full pass (about once
    a battery) runs inside it and reads every object of the process (some 190,000 with pandas,
    formulaic and statsmodels loaded: 76-79 ms, 5 fits' worth, on this battery), and its 50
    young-object passes took 19-21 ms against 8 ms for the 6 at 5,000. What the battery makes
    is still collected; cycles among the older objects wait until the block ends.
    """
    freezing = gc.isenabled() and gc.get_freeze_count() == 0
    thresholds = gc.get_threshold()
    if freezing:
        gc.freeze()
        gc.set_threshold(max(thresholds[0], YOUNG_PASS_OBJECTS), *thresholds[1:])
    try:
        yield
    finally:
        if freezing:
            gc.set_threshold(*thresholds)
            gc.unfreeze()


def _older_objects_left_alone(function: Callable) -> Callable:
    """``function`` run inside :func:`older_objects_frozen`."""

    @functools.wraps(function)
    def frozen(*arguments: Any, **keywords: Any) -> Any:
        with older_objects_frozen():
            return function(*arguments, **keywords)

    return frozen


def _blas_pinned_for_surveys(function: Callable) -> Callable:
    """``function(source, ...)`` with BLAS pinned to one thread (``kernel.blas_threads``) where
    the source has fewer firms than ``fitting.PIN_THREADS_BELOW_ROWS``: every design of the
    battery is that small then, and its fits and kernels pin so themselves, each on entry
    (about 34 us a time, some 126 times a battery); pinned once here, theirs cost nothing.
    Larger sources leave the threads to each kernel, as before."""

    @functools.wraps(function)
    def pinned(source: Any, *arguments: Any, **keywords: Any) -> Any:
        from buzzpipe.estimate.fitting import PIN_THREADS_BELOW_ROWS
        from buzzpipe.estimate.kernel import blas_threads

        sized = isinstance(source, pd.DataFrame) or hasattr(source, "analysis_frame")
        limit = 1 if sized and len(source) < PIN_THREADS_BELOW_ROWS else None
        with blas_threads(limit):
            return function(source, *arguments, **keywords)

    return pinned


@_older_objects_left_alone
@_blas_pinned_for_surveys
@designs_shared()  # a right-hand side's design of the same rows built once for every outcome
def run_study(
    source: Any,
    *,
    outcomes: Sequence[str] | None = None,
    primary_outcome: str = PRIMARY_OUTCOME,
    seed: int = defaults.STUDY_SEED,
    sensitivity: bool = True,
    wild_bootstrap_draws: int = defaults.WILD_BOOTSTRAP_DRAWS,
    scenarios: Sequence[dict[str, Any]] = DEFAULT_SCENARIOS,
    bootstrap_replications: int = defaults.BOOTSTRAP_REPLICATIONS,
    heterogeneity: bool = True,
    specification: Specification | None = None,
) -> StudyResults:
    """Run the clusters-versus-pipelines battery on a survey and decide the verdicts.

    Parameters
    ----------
    source : Survey or pandas.DataFrame
        A survey (its descriptive table is recorded too) or an analysis frame.
    outcomes : sequence of str, optional
        Outcomes to model (default those present: product, process, new_to_market,
        product_novelty).
    primary_outcome : str, default "product"
        The outcome whose verdicts are the headline.
    seed : int, default 0
        Seeds the bootstraps; the same seed gives the same results.
    sensitivity : bool, default True
        Add region-clustered errors and the wild score bootstrap for single coefficients.
    wild_bootstrap_draws : int, default 9999
        Draws of the wild score bootstrap.
    scenarios : sequence of dict, optional
        Policy counterfactuals (programmes); ``()`` skips them.
    bootstrap_replications : int, default 199
        Replicates of the firm bootstrap behind the counterfactuals' intervals.
    specification : Specification, optional
        The user's outcomes, controls and fixed effects (``study/specification.py``); by
        default the published study's. Controls the survey lacks are left out with a note.
    heterogeneity : bool, default True
        Add the interactions with sector (joint test) and the by_region model (each
        city-region's own slopes, descriptive).

    Returns
    -------
    StudyResults
        Models, tests, descriptions, counterfactuals and verdicts; ``to_dict()`` is the content
        of ``results.json`` (``docs/results_schema.md``), ``to_json()`` its text.

    Notes
    -----
    Coefficients carry firm-level robust errors with region fixed effects (the inference policy
    stated in every results file); all nested models of one outcome share one estimation
    sample. Verdicts (found, not_found, opposite, not_assessed) follow a written rule table, a
    pure function of the numbers. ``buzzpipe study`` and ``buzzpipe replicate`` run this.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import buzzpipe as bp
    >>> survey = bp.synthesize("norway2010", seed=1, firms=400)
    >>> results = bp.run_study(survey, seed=1, outcomes=["product"], sensitivity=False,
    ...                        heterogeneity=False, bootstrap_replications=0, scenarios=())
    >>> first = results.verdicts[0]  # without the bootstrap: the firm-level p, Holm-adjusted
    >>> str(first.finding), str(first.inference.kind), first.family
    ('international_effect', 'robust', 'primary')
    >>> first.p_adjusted >= first.p_value
    True
    """
    frame = analysis_frame_of(source)
    engine.current().keep_frame(frame)  # dask: on the workers once, samples selected there
    specification = specification or Specification()
    if outcomes is None and specification.outcomes is not None:
        outcomes = specification.outcomes
    outcomes = list(outcomes) if outcomes is not None else default_outcomes(frame)
    if specification.primary_outcome is not None:
        primary_outcome = specification.primary_outcome
    asked_primary = primary_outcome
    if primary_outcome not in outcomes and outcomes:
        primary_outcome = outcomes[0]  # the headline verdicts are the first chosen outcome's
    results = StudyResults(
        meta=Meta(
            package_version=__version__,
            seed=seed,
            firms=len(frame),
            scales=list(scales_present(frame)),
            inference_policy=INFERENCE_POLICY,
            primary_outcome=primary_outcome,
        )
    )
    if specification.primary_outcome is not None and asked_primary != primary_outcome:
        results.note(
            NoteKind.DATA,
            f"The study file's primary_outcome {asked_primary} is not among the outcomes "
            f"modelled: the verdicts are headed by {primary_outcome}.",
        )
    for text in getattr(source, "notes", []):  # what reading the survey did (names merged)
        results.note(NoteKind.DATA, text)
    if "regional" not in results.meta.scales:
        results.note(
            NoteKind.DATA,
            "The survey has no regional scale: local buzz is measured at the national scale.",
        )
    if "foreign_share" not in engine.current().columns(frame) and specification.controls is None:
        results.note(
            NoteKind.DATA,
            "The survey has no foreign_share: the models leave foreign ownership out of the "
            "controls.",
        )
    vcov = PRIMARY_INFERENCE
    inference = inference_of(vcov)
    controls, control_columns, left_out = resolve_controls(
        frame, specification, control_terms(frame)
    )
    for note in left_out:
        results.note(NoteKind.DATA, note)
    results.meta.specification = RunSpecification(
        chosen_by="published study" if specification.is_default else "user",
        outcomes=list(outcomes),
        controls=list(controls),
        text=describe(specification, outcomes, controls, primary_outcome),
        requested=as_dict(specification),
        verdict_inference=specification.verdict_inference,
        alpha=specification.verdict_alpha,
    )
    rules = verdict_rules(specification.verdict_inference, specification.verdict_alpha)
    binary_controls_fits: dict[str, Any] = {}
    placebos: dict = {}  # the spill-over placebos per set of rows, shared by the outcomes
    for outcome in outcomes:
        skipped: dict[str, EstimationError] = {}
        try:
            sample, fits = fit_outcome_models(
                frame, outcome, vcov, skipped=skipped, controls=(controls, control_columns)
            )
        except BuzzpipeError as error:  # its main model: this outcome stops, the others go on
            record_not_assessed(results, outcome, StudyPart.MODEL, error, model=ModelName.CONTROLS)
            continue
        for name, error in skipped.items():
            record_not_assessed(results, outcome, StudyPart.MODEL, error, model=name)
        nested = [spec for name, (spec, _) in fits.items() if is_nested(name)]
        if dropped := dropped_firms_note(frame, sample, nested):
            results.note(NoteKind.DATA, f"{outcome}: {dropped}", outcome=outcome)
        if fits[ModelName.CONTROLS][0].family != Family.OLOGIT:
            binary_controls_fits[outcome] = fits["controls"][1]
        results.meta.estimation_sample[outcome] = len(sample)
        controls_spec, controls_fit = fits["controls"]
        family = controls_spec.family
        # the controls model's designs under the data changes of the parts below (+1 at a scale,
        # breadth set to 0, 1, 2), each built once for all of them while this outcome's parts
        # run, its design of the sample too (margins, the wild bootstraps); on a chunked engine
        # each chunk builds its own
        designs = None if engine.current().chunked else ChangeDesigns(controls_fit, sample)
        for name, (model_spec, fitted) in fits.items():
            result = model_result(model_spec, fitted, vcov)
            if name == ModelName.CONTROLS:
                _record_dropped_terms(results, outcome, fitted, breadth_terms(sample))
            if name in (ModelName.CONTROLS, ModelName.CONTROLS_WITH_GROUP):
                breadth = [t for t in map(str, fitted.params.index) if t.startswith("breadth_")]
                built = None
                if designs is not None and fitted is controls_fit:
                    built = sample_design(fitted, sample, designs)
                result.marginal_effects = marginal_effects(
                    fitted, sample, breadth, inference, every=True, sample_design=built
                )
            if name == "controls" and sensitivity:
                breadth = [t for t in breadth_terms(sample) if t in result.terms]
                add_sensitivity(
                    result,
                    fitted,
                    sample,
                    breadth,
                    seed=seed,
                    draws=wild_bootstrap_draws,
                    designs=designs,
                )
            if name == "partner_types":
                partner_type_tests(results, outcome, fitted, inference)
                if fitted.nobs != len(sample):
                    result.notes.append(
                        f"fitted on the {fitted.nobs} of {len(sample)} firms that answered "
                        "every partner-type question"
                    )
            results.add_model(result)
        _guarded(
            results,
            outcome,
            StudyPart.PIPELINES_VS_BUZZ,
            compare_pipelines_and_buzz,
            results,
            outcome,
            controls_fit,
            sample,
            family,
            inference,
            designs=designs,
        )
        _guarded(
            results,
            outcome,
            StudyPart.PIPELINES_VS_BUZZ,
            compare_on_common_support,
            results,
            outcome,
            controls_fit,
            sample,
            controls,
            family,
            vcov,
            inference,
            designs=designs,
        )
        record_supermodularity = None
        if sensitivity:
            _guarded(
                results,
                outcome,
                StudyPart.PIPELINES_VS_BUZZ,
                first_partner_bootstrap,
                results,
                outcome,
                controls_fit,
                sample,
                family,
                seed=seed,
                draws=wild_bootstrap_draws,
                designs=designs,
            )
            # the differences' columns recorded now; the supermodularity test's bootstrap runs
            # beside theirs (one Dask graph a round) and is recorded after complementarity
            record_supermodularity = _guarded(
                results,
                outcome,
                StudyPart.DIFFERENCE_SENSITIVITY,
                single_term_sensitivity,
                results,
                outcome,
                controls_spec.formula,
                sample,
                controls,
                family,
                seed,
                wild_bootstrap_draws,
                supermodularity=outcome != NOVELTY,
                fitted=controls_fit,
            )
        if outcome == NOVELTY:
            continue
        interaction_fit = _guarded(
            results,
            outcome,
            StudyPart.COMPLEMENTARITY,
            assess_complementarity,
            results,
            outcome,
            sample,
            controls,
            family,
            vcov,
            inference,
        )
        if record_supermodularity is not None:
            _guarded(results, outcome, StudyPart.COMPLEMENTARITY, record_supermodularity)
            record_supermodularity = None  # its sample of every firm let go before spill-over
        _guarded(
            results,
            outcome,
            StudyPart.SPILLOVER,
            assess_spillover,
            results,
            outcome,
            frame,
            breadth_terms(frame),
            controls,
            control_columns,
            family,
            seed=seed,
            wild_bootstrap_draws=wild_bootstrap_draws if sensitivity else 0,
            placebos=placebos,
        )
        if heterogeneity:
            _guarded(
                results,
                outcome,
                StudyPart.HETEROGENEITY,
                assess_heterogeneity,
                results,
                outcome,
                sample,
                breadth_terms(sample),
                controls,
                family,
                vcov,
                inference,
            )
        if outcome == primary_outcome and scenarios and family in (Family.LOGIT, Family.PROBIT):
            _counterfactuals(
                results,
                outcome,
                sample,
                controls,
                seed,
                scenarios,
                bootstrap_replications,
                controls_spec.formula,
                primary_fit=controls_fit,
                interaction_fit=interaction_fit,
                primary_designs=designs,
            )
    if not results.models:  # nothing left to report: one line naming why, not an empty study
        reasons = [
            note.text
            for note in results.meta.not_assessed()
            if note.covers(note.outcome or "") and note.outcome in outcomes
        ]
        raise EstimationError(
            "no model of any outcome could be estimated: " + " | ".join(reasons or ["no outcome"])
        )
    _guarded(
        results,
        "",
        StudyPart.ACROSS_OUTCOMES,
        compare_across_outcomes,
        results,
        binary_controls_fits,
        frame,
        inference,
    )
    results.verdicts = decide_verdicts(results, primary_outcome, rules)
    results.verdicts_by_outcome = decide_verdicts_by_outcome(results, rules=rules)
    return results


def counterfactual_formula(outcome: str, sample: pd.DataFrame, controls: Sequence[str]) -> str:
    """The model the programmes are predicted under: breadth with the local x global
    interaction, so that interactions follow the new breadth."""
    local = local_scale(sample)
    terms = [f"breadth_{local} * breadth_international"]
    terms += [t for t in breadth_terms(sample) if t not in (f"breadth_{local}",)]
    return f"{outcome} ~ " + " + ".join(dict.fromkeys([*terms, *controls]))


def _counterfactuals(
    results: StudyResults,
    outcome: str,
    sample: pd.DataFrame,
    controls: Sequence[str],
    seed: int,
    scenarios: Sequence[dict[str, Any]],
    bootstrap_replications: int,
    primary_formula: str,
    *,
    primary_fit: Any = None,
    interaction_fit: Any = None,
    primary_designs: ChangeDesigns | None = None,
) -> None:
    """The programmes predicted under the primary (controls) model, with bootstrap intervals,
    and, as a sensitivity column, under the model with the local x international interaction
    (point predictions, so that interactions follow the new breadth). ``primary_fit``: the
    controls model already fitted on ``sample`` (not fitted again where it is a logit);
    ``interaction_fit``: complementarity's interaction model on ``sample`` (with the study's
    primary inference), not fitted again where it is a logit of the same terms;
    ``primary_designs``: ``primary_fit``'s designs on ``sample`` under data changes, which the
    programmes then share with the parts that built them."""
    interaction_formula = counterfactual_formula(outcome, sample, controls)
    results.meta.counterfactual_model = primary_formula
    results.meta.counterfactual_sensitivity_model = interaction_formula
    models = (
        (ModelName.CONTROLS, primary_formula, bootstrap_replications),
        (ModelName.CONTROLS_WITH_INTERACTION, interaction_formula, 0),
    )
    children = np.random.SeedSequence(seed).spawn(len(scenarios))
    for name, formula, replications in models:
        try:
            if name == ModelName.CONTROLS and getattr(primary_fit, "family", None) == Family.LOGIT:
                model = primary_fit
            elif name != ModelName.CONTROLS and _fits_formula(interaction_fit, formula, sample):
                model = interaction_fit
            else:
                model = fit_model(formula, sample, Family.LOGIT, PRIMARY_INFERENCE)
        except BuzzpipeError as error:  # the programmes are not assessed; the study goes on
            detail = f"the counterfactual model {formula} cannot be estimated: {error}"
            record_not_assessed(results, outcome, StudyPart.COUNTERFACTUALS, error, detail=detail)
            continue
        designs: dict = {}  # the model's designs, each built once for every scenario
        if model is primary_fit and primary_designs is not None:
            designs["changes"] = primary_designs
        for child, scenario in zip(children, scenarios, strict=True):
            options = {"allocation": Allocation.TOTAL, "targeting": Targeting.RANDOM, **scenario}
            try:
                result = counterfactual(
                    model,
                    sample,
                    options["programme"],
                    options["firms_treated"],
                    targeting=options["targeting"],
                    allocation=options["allocation"],
                    bootstrap_replications=replications,
                    seed=int(child.generate_state(1)[0]),
                    designs=designs,
                )
            except BuzzpipeError as error:
                programme = (
                    f"the {options['programme']} programme for {options['firms_treated']} "
                    f"firms ({options['targeting']}, {options['allocation']})"
                )
                if name != ModelName.CONTROLS:
                    programme += " (interaction model, sensitivity)"
                record_not_assessed(
                    results,
                    outcome,
                    StudyPart.COUNTERFACTUALS,
                    error,
                    detail=f"{programme}: {error}",
                )
                continue
            result.model = name
            results.counterfactuals.append(result)


def _fits_formula(fitted: Any, formula: str, sample: pd.DataFrame) -> bool:
    """Whether ``fitted`` is a logit of ``formula``'s outcome and terms (formulaic's parse:
    the same terms in the same order, however the formula spells them) on all of ``sample``."""
    if getattr(fitted, "family", None) != Family.LOGIT or fitted.nobs != len(sample):
        return False
    from buzzpipe.estimate.chunks import _parse as parse_formula  # formulaic's, kept per formula

    mine, theirs = parse_formula(formula), parse_formula(fitted.formula)
    return [str(term) for term in mine.lhs] == [str(term) for term in theirs.lhs] and [
        str(term) for term in mine.rhs
    ] == [str(term) for term in theirs.rhs]


def _record_dropped_terms(
    results: StudyResults, outcome: str, fitted: Any, terms: Sequence[str]
) -> None:
    """A breadth term the controls model dropped (collinear with others, or constant): its
    coefficient and what reads it are not assessed, with the fit's own note on it."""
    for term in terms:
        if term in fitted.params.index:
            continue
        why = [note for note in fitted.notes if term in note]
        detail = f"{term} dropped from the {fitted.family} model of {outcome!r}" + (
            f" ({'; '.join(why)})" if why else " (no variation in the estimation sample)"
        )
        record_not_assessed(
            results,
            outcome,
            StudyPart.MODEL,
            detail,
            model=ModelName.CONTROLS,
            term=term,
            cause=NotAssessedReason.COLLINEARITY,
        )


def _guarded(
    results: StudyResults,
    outcome: str,
    part: StudyPart,
    function: Any,
    *arguments: Any,
    **keywords: Any,
) -> Any:
    """Run one part (what it returns, or None); a part the data cannot support leaves a
    not-assessed note (with the reason) instead of stopping the study."""
    try:
        return function(*arguments, **keywords)
    except BuzzpipeError as error:
        record_not_assessed(results, outcome, part, error)
        return None
