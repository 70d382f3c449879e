"""The sensitivity column: region-clustered errors and the wild score bootstrap, single terms only.

Firms are sampled within a handful of fixed city-regions, so the primary inference is firm-level
robust. Clustering by region answers a different question (regions as draws from a population
of regions) and with five regions its covariance has rank four and over-rejects; the wild
cluster score bootstrap (Kline and Santos; Stata's ``boottest``) is the honest version of it.
Both are reported beside the primary errors for single coefficients, never for joint tests.

The Wald test of b_international = b_local is a single linear restriction too: the model is
reparametrised so the difference is one coefficient (the local term replaced by international +
local, so the international term carries b_international - b_local; the fit is the same), and
that coefficient gets both sensitivity columns.
"""

from __future__ import annotations

import functools
import warnings
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from buzzpipe import defaults
from buzzpipe.errors import BuzzpipeError, InputError
from buzzpipe.estimate.kept import KeptByIdentity
from buzzpipe.estimate.wild_bootstrap import WildScoreBootstrap, for_each_term
from buzzpipe.results import (
    Estimate,
    Hypothesis,
    Inference,
    Interval,
    ModelResult,
    StudyResults,
    Term,
)
from buzzpipe.results.vocabulary import (
    Alternative,
    Family,
    HypothesisKind,
    InferenceKind,
    StudyPart,
    TermKind,
    WildWeights,
)
from buzzpipe.study import engine
from buzzpipe.study.models import (
    coefficient_hypothesis,
    design_of,
    fit_model,
    inference_of,
    keep_design,
    rows_kept,
    term_estimates,
    with_computed,
)
from buzzpipe.study.probability_changes import ChangeDesigns, sample_design
from buzzpipe.study.skipped import record_not_assessed
from buzzpipe.survey.schema import WEIGHT, breadth_column

CLUSTER_VCOV = {InferenceKind.CLUSTER.value: "region"}
DIFFERENCE_SUFFIXES = {
    InferenceKind.CLUSTER: "cluster_region",
    InferenceKind.WILD_SCORE_BOOTSTRAP: "wild_bootstrap",
}
BOOTSTRAP_FAMILIES = (Family.LOGIT, Family.PROBIT)


def region_cluster_terms(
    formula: str,
    sample: pd.DataFrame,
    family: str,
    terms: Sequence[str],
    robust: Any = None,
    designs: ChangeDesigns | None = None,
) -> dict[str, Estimate]:
    """The terms refitted with region-clustered errors (G/(G-1), normal reference).
    ``robust``: the fit of ``formula`` on ``sample`` already made (under another covariance),
    whose estimate the refit would reach again: in memory only its covariance is computed
    (``refit_covariance``, on its design of the sample from ``designs`` where given)."""
    fitted = None
    same_model = robust is not None and (robust.formula, robust.family) == (formula, family)
    if same_model and not engine.current().chunked:
        fitted = _clustered(robust, sample, designs)
    if fitted is None:
        fitted = fit_model(formula, sample, family, CLUSTER_VCOV)
    estimates = term_estimates(fitted, inference_of(CLUSTER_VCOV), terms)
    for estimate in estimates.values():
        estimate.note = " ".join(fitted.notes)
    return estimates


# id(fit) -> (the fit, its sample, its region-clustered twin), all but the twin by weak
# reference: the controls model's sensitivity column and its differences' derived fits read
# one twin (one pass over the sample); an entry goes with its fit
_TWINS: dict[int, tuple[weakref.ref, weakref.ref, Any]] = {}


def _clustered(robust: Any, sample: pd.DataFrame, designs: ChangeDesigns | None) -> Any:
    """The region-clustered twin of a fit on ``sample`` by ``refit_covariance`` (None where a
    refit must run), its few-clusters warning kept with its notes, not printed, as
    ``fit_model`` keeps a refit's. Made once per fit and sample while the fit lives (shared,
    not to be changed); nothing per firm beyond what the fit holds."""
    from buzzpipe.estimate.fitting import refit_covariance

    kept = _TWINS.get(id(robust))
    if kept is not None and kept[0]() is robust and kept[1]() is sample:
        return kept[2]
    if robust.nobs != len(sample) or robust.n_dropped_missing:
        return None  # the refit would not use the same rows: no design of them is built
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # what it warns about is in its notes
        twin = refit_covariance(
            robust, sample, sample_design(robust, sample, designs), CLUSTER_VCOV
        )
    if twin is not None:
        _TWINS[id(robust)] = (weakref.ref(robust), weakref.ref(sample), twin)
        weakref.finalize(robust, _TWINS.pop, id(robust), None)
    return twin


def memory_wild_bootstrap(
    fitted: Any,
    sample: pd.DataFrame,
    outcome: str,
    family: str,
    seed: int,
    draws: int = defaults.WILD_BOOTSTRAP_DRAWS,
    cluster_column: str = "region",
    designs: ChangeDesigns | None = None,
) -> WildScoreBootstrap:
    """The wild cluster score bootstrap of a fit, its design rebuilt in memory from ``sample``
    (the draws keyed by seed and cluster label, or all enumerated: every test made with the
    same seed and draws uses the same weight vectors). ``designs``: the fit's
    :class:`ChangeDesigns` on ``sample``, whose design of the sample is taken (built once for
    the parts that share it)."""
    return WildScoreBootstrap(
        sample_design(fitted, sample, designs),
        sample[outcome].to_numpy(dtype=float),
        sample[cluster_column].to_numpy(),
        family=family,
        names=list(map(str, fitted.params.index)),
        weights=sample[WEIGHT].to_numpy(dtype=float) if WEIGHT in sample.columns else None,
        draws=draws,
        seed=seed,
        start=fitted.params.to_numpy(dtype=float),
    )


def bootstrap_inference(test: Any, cluster_column: str = "region") -> Inference:
    """The inference record of a wild score bootstrap test."""
    return Inference(
        InferenceKind.WILD_SCORE_BOOTSTRAP,
        by=cluster_column,
        clusters=int(test.n_clusters),
        weights=WildWeights(test.weight_type),
        draws=int(test.n_draws),
    )


def wild_bootstrap_terms(
    fitted: Any,
    sample: pd.DataFrame,
    outcome: str,
    family: str,
    terms: Sequence[str],
    seed: int,
    draws: int = defaults.WILD_BOOTSTRAP_DRAWS,
    confidence_sets: bool = True,
    cluster_column: str = "region",
    alternative: Alternative = Alternative.TWO_SIDED,
    designs: ChangeDesigns | None = None,
) -> dict[str, Estimate]:
    """Wild cluster score bootstrap p-values by region (or another cluster column) for each
    term (logit and probit only), with 95% confidence sets by test inversion (possibly
    unbounded or disjoint; a one-sided test's set is its one-sided 95% bound). ``designs``:
    as :func:`memory_wild_bootstrap` takes it."""
    names = list(map(str, fitted.params.index))
    chosen = engine.current()
    if chosen.chunked:  # restricted fits and cluster score sums over chunks
        bootstrap = chosen.wild_bootstrap(fitted, sample, cluster_column, draws=draws, seed=seed)
    else:
        bootstrap = memory_wild_bootstrap(
            fitted, sample, outcome, family, seed, draws, cluster_column, designs
        )

    def one_term(term: str) -> Estimate:
        test = bootstrap.test(term, alternative=str(alternative))
        inference = bootstrap_inference(test, cluster_column)
        k = names.index(term)
        interval, set_notes = None, []
        if confidence_sets:
            found = bootstrap.confidence_set(term, alternative=str(alternative))
            interval = Interval([(float(a), float(b)) for a, b in found.intervals], 0.95)
            set_notes = found.undetermined_notes()  # an end reported unbounded, and why
        return Estimate(
            estimate=float(bootstrap.estimate[k]),
            std_error=None,
            p_value=test.p_value,
            inference=inference,
            interval=interval,
            statistic=test.statistic,
            hypothesis=coefficient_hypothesis(fitted, term),
            note=" ".join([*test.notes(), *set_notes]),
            alternative=Alternative(alternative),
        )

    # on a chunked engine the terms run side by side, their passes over the chunks merged
    return dict(zip(terms, for_each_term(bootstrap, one_term, terms), strict=True))


def add_sensitivity(
    result: ModelResult,
    fitted: Any,
    sample: pd.DataFrame,
    terms: Sequence[str],
    seed: int,
    draws: int = defaults.WILD_BOOTSTRAP_DRAWS,
    designs: ChangeDesigns | None = None,
) -> None:
    """Fill the model's sensitivity column (clustered errors; the bootstrap for binary models).
    ``designs``: the fit's :class:`ChangeDesigns` on ``sample`` where the caller has one."""
    try:
        result.sensitivity[InferenceKind.CLUSTER] = region_cluster_terms(
            result.formula, sample, result.family, terms, robust=fitted, designs=designs
        )
    except BuzzpipeError as error:
        result.notes.append(f"region-clustered errors not computed: {error}")
    if result.family not in BOOTSTRAP_FAMILIES:
        return
    try:
        result.sensitivity[InferenceKind.WILD_SCORE_BOOTSTRAP] = wild_bootstrap_terms(
            fitted, sample, result.outcome, result.family, terms, seed, draws, designs=designs
        )
    except BuzzpipeError as error:
        result.notes.append(f"wild score bootstrap not computed: {error}")


def difference_term(global_term: str, local_term: str) -> str:
    """Name of the sum column of the reparametrised model, b_g g + b_l l = (b_g - b_l) g + b_l
    (g + l): its coefficient on g is the difference the Wald test asks about."""
    return f"{global_term}_plus_{local_term.removeprefix('breadth_')}"


def reparametrised_difference(
    formula: str, sample: pd.DataFrame, global_term: str, local_term: str
) -> tuple[str, pd.DataFrame]:
    """(formula, data) of the model in which b[global_term] is b_global - b_local: the local
    term is replaced by global + local, everything else kept."""
    outcome, _, right = formula.partition("~")
    terms = [term.strip() for term in right.split(" + ")]
    if global_term not in terms or local_term not in terms:
        raise InputError(
            "the model lacks a term of the difference", value=f"{global_term} - {local_term}"
        )
    total = difference_term(global_term, local_term)
    terms = [total if term == local_term else term for term in terms]
    # copy on write: the sum its own column (on --engine dask made on the workers: only fitted)
    data = with_computed(sample, functools.partial(_sum_column, total, global_term, local_term))
    return f"{outcome.strip()} ~ " + " + ".join(terms), data


def _sum_column(total: str, first: str, second: str, rows: pd.DataFrame) -> dict:
    """The reparametrised model's sum column of ``rows``."""
    return {total: rows[first] + rows[second]}


# the reparametrised model's specifications (formulaic's, for its terms and its outcome) by the
# original fit's specification, then by (formula, the sum column's type): its build on the
# original's sample reads the same levels and types, so it gives the same specification
# (``design._SPECIFICATIONS`` keys it so); later fits of that model take the original fit's
# design with the sum's column written in, not a build through the formula
_REPARAMETRISED = KeptByIdentity(64)


def derived_difference_fit(
    fitted: Any,
    sample: pd.DataFrame,
    formula: str,
    data: pd.DataFrame,
    global_term: str,
    local_term: str,
    twin: Any = None,
) -> Any:
    """The region-clustered fit of the reparametrised model (``formula`` on ``data``, from
    :func:`reparametrised_difference`) derived from ``fitted``, the original model's fit on
    ``sample`` (any covariance), instead of estimated again: the coefficients and bread carried
    through the reparametrisation (``fitting.reparametrised_fit``), the cluster score sums
    computed at the estimate on the reparametrised design (``fitting.refit_covariance``), the
    design kept for the wild bootstrap as ``fit_model`` keeps it (at most ``DESIGN_KEPT``
    numbers: nothing at 100,000 firms). Newton's steps are affine invariant and so is its
    start, so this is the refit's answer up to rounding (measured: the three preset worlds' 24
    fits within 1.4e-13 relative; tests/study/test_study_sensitivity).
    ``None`` where the refit could see something else: the original fit has notes (dropped
    terms or rows, separation) or lost rows, the sum column is a 0/1 indicator (Stata's
    separation checks read those), or the reparametrised design differs in its rows or terms.
    ``twin``: ``fitted``'s own region-clustered twin on ``sample`` (:func:`_clustered`), whose
    cluster score sums, carried through the reparametrisation (S' = S T^{-1}), stand in for the
    pass over the reparametrised design: one pass for both differences of an outcome."""
    from buzzpipe.estimate.covariance import SandwichPieces
    from buzzpipe.estimate.design import build_design
    from buzzpipe.estimate.finish import with_covariance
    from buzzpipe.estimate.fitting import DESIGN_KEPT, refit_covariance, reparametrised_fit

    total = difference_term(global_term, local_term)
    names = [total if name == local_term else name for name in fitted.x_names]
    if fitted.notes or fitted.n_dropped_missing or fitted.nobs != len(sample):
        return None
    if global_term not in names or total not in names or not fitted.row_ids.equals(data.index):
        return None
    values = data[total].to_numpy(dtype=np.float64)
    if np.all((values == 0.0) | (values == 1.0)):
        return None
    known = _REPARAMETRISED.get(fitted.model_spec, {})
    key = (formula, str(data[total].dtype))
    if key in known:  # the fit's design with the sum's column written in, as the build's
        specification = known[key]
        # design_of gives a fresh array (the kept design's copy, or a rebuild): written in
        # place, no further copy (a million firms' design is 176 MB)
        X = np.require(design_of(fitted, sample), np.float64, ["W"])
        X[:, names.index(total)] = values
    else:
        built = build_design(formula, data, weights=fitted.weights)
        if built.n_dropped_missing or built.y.shape[0] != fitted.nobs:
            return None
        if built.names == names:
            X = built.X
        elif [name for name in built.names if name != "Intercept"] == names:  # ordered logit
            X = built.X[:, [built.names.index(name) for name in names]]
        else:
            return None
        specification = (built.model_spec, built.outcome_spec)
        _REPARAMETRISED.put(fitted.model_spec, {**known, key: specification})
    # b' = T b: the global term's coefficient becomes b_global - b_local, the sum's b_local
    transform = np.eye(len(fitted.params))
    transform[names.index(global_term), fitted.x_names.index(local_term)] = -1.0
    derived = reparametrised_fit(fitted, transform, names, formula, *specification)
    sums = None if twin is None else twin.cluster_score_sums
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # what it warns about is in its notes
        if sums is not None and twin.nobs == fitted.nobs and sums.shape[1] == len(transform):
            pieces = SandwichPieces(meat=None, cluster_score_sums=sums @ np.linalg.inv(transform))
            clustered = with_covariance(
                derived, pieces, "cluster", twin.n_clusters, twin.cluster_var
            )
        else:
            clustered = refit_covariance(derived, data, X, CLUSTER_VCOV)
    if clustered is not None and X.size <= DESIGN_KEPT:  # as fit_with_design hands it out
        keep_design(clustered, data, X)
    return clustered


@dataclass
class PendingBootstrap:
    """The wild cluster score bootstrap by region of one term of a fitted (reparametrised)
    model, waiting to run beside others (:func:`run_side_by_side`); ``finish`` completes and
    keeps its estimate."""

    fitted: Any
    data: pd.DataFrame
    outcome: str
    family: str
    term: str
    seed: int
    draws: int
    alternative: Alternative = Alternative.TWO_SIDED
    finish: Callable[[Estimate], Any] = field(default=lambda estimate: None)

    def run(self) -> Estimate:
        wild = wild_bootstrap_terms(
            self.fitted,
            self.data,
            self.outcome,
            self.family,
            [self.term],
            self.seed,
            self.draws,
            alternative=self.alternative,
        )[self.term]
        self.finish(wild)
        return wild


def run_side_by_side(pending: Sequence[PendingBootstrap]) -> list[tuple[Any, Any]]:
    """``(estimate, None)`` or ``(None, error)`` of each pending bootstrap, as run one after
    another. On a chunked engine they run side by side, the passes over their samples merged
    (one Dask graph per round: ``StudyEngine.side_by_side``), with the same numbers."""
    found = engine.current().side_by_side([job.run for job in pending])
    for _estimate, error in found:
        if error is not None and not isinstance(error, BuzzpipeError):
            raise error
    return found


def difference_sensitivity(
    formula: str,
    sample: pd.DataFrame,
    family: str,
    global_term: str,
    local_term: str,
    seed: int,
    draws: int = defaults.WILD_BOOTSTRAP_DRAWS,
    pending: list[PendingBootstrap] | None = None,
    fitted: Any = None,
    twin: Any = None,
) -> dict[InferenceKind, Estimate]:
    """The Wald difference b_global - b_local as one coefficient of the reparametrised model,
    with region-clustered errors and (binary models) the wild score bootstrap by region.
    ``pending``: the bootstrap is not run but put there; run, it adds its column.
    ``fitted``: the fit of ``formula`` on ``sample`` (any covariance), from which the
    reparametrised fit is derived where it can be (:func:`derived_difference_fit`, with
    ``twin``, its region-clustered twin)."""
    outcome = formula.partition("~")[0].strip()
    reformulated, data = reparametrised_difference(formula, sample, global_term, local_term)
    # the difference of the original model's two breadth terms (continuous variables)
    hypothesis = Hypothesis(
        HypothesisKind.DIFFERENCE,
        terms=[Term(TermKind.CONTINUOUS, variable=name) for name in (global_term, local_term)],
    )
    columns: dict[InferenceKind, Estimate] = {}
    clustered_fit = None
    if fitted is not None and not engine.current().chunked:
        clustered_fit = derived_difference_fit(
            fitted, sample, reformulated, data, global_term, local_term, twin
        )
    if clustered_fit is None:
        clustered_fit = fit_model(reformulated, data, family, CLUSTER_VCOV)
    clustered = term_estimates(clustered_fit, inference_of(CLUSTER_VCOV), [global_term])[
        global_term
    ]
    clustered.hypothesis = hypothesis
    clustered.note = " ".join(["reparametrised model", *clustered_fit.notes])
    columns[InferenceKind.CLUSTER] = clustered
    if family in BOOTSTRAP_FAMILIES:

        def finish(wild: Estimate) -> None:
            wild.hypothesis = hypothesis
            columns[InferenceKind.WILD_SCORE_BOOTSTRAP] = wild

        job = PendingBootstrap(
            clustered_fit, data, outcome, family, global_term, seed, draws, finish=finish
        )
        if pending is None:
            job.run()
        else:
            pending.append(job)
    return columns


def add_difference_sensitivity(
    results: StudyResults,
    outcome: str,
    formula: str,
    sample: pd.DataFrame,
    family: str,
    seed: int,
    draws: int = defaults.WILD_BOOTSTRAP_DRAWS,
) -> None:
    """Sensitivity columns of the pipelines-versus-buzz differences (single restrictions):
    ``tests[outcome]["international_minus_<scale>_cluster_region"]`` and
    ``..._wild_bootstrap``, beside the primary ``international_minus_<scale>``."""
    single_term_sensitivity(results, outcome, formula, sample, (), family, seed, draws, False)


def single_term_sensitivity(
    results: StudyResults,
    outcome: str,
    formula: str,
    sample: pd.DataFrame,
    controls: Sequence[str],
    family: str,
    seed: int,
    draws: int,
    supermodularity: bool,
    fitted: Any = None,
) -> Callable[[], None]:
    """The differences' sensitivity columns (:func:`add_difference_sensitivity`, recorded now)
    and, with ``supermodularity``, the supermodularity test's wild bootstrap, recorded by the
    function returned (after the complementarity tests it sits beside; it raises what
    :func:`supermodularity_bootstrap` would). Their models are fitted here one after another,
    then the bootstraps run side by side: on a chunked engine one pass over the chunks of
    every sample per round (one Dask graph), the same numbers as one after another.
    ``fitted``: the fit of ``formula`` on ``sample`` where the caller has it (the
    reparametrised fits are derived from it: :func:`derived_difference_fit`)."""
    global_term = breadth_column("international")
    if fitted is not None and (fitted.formula, fitted.family) != (formula, family):
        fitted = None
    twin = None  # the fit's clustered twin: one pass over the sample for both differences
    if fitted is not None and not engine.current().chunked:
        try:
            twin = _clustered(fitted, sample, None)
        except BuzzpipeError:
            twin = None
    differences: list[tuple[str, Any, Any, list[PendingBootstrap]]] = []
    pending: list[PendingBootstrap] = []
    for scale in ("regional", "national"):
        primary = f"international_minus_{scale}"
        if primary not in results.tests.get(outcome, {}):
            continue
        jobs: list[PendingBootstrap] = []
        try:
            columns = difference_sensitivity(
                formula,
                sample,
                family,
                global_term,
                breadth_column(scale),
                seed,
                draws,
                jobs,
                fitted=fitted,
                twin=twin,
            )
        except BuzzpipeError as error:
            differences.append((primary, None, error, []))
            continue
        differences.append((primary, columns, None, jobs))
        pending.extend(jobs)
    regime_job, regime_error = None, None
    if supermodularity:
        try:
            regime_job = supermodularity_pending(outcome, sample, controls, family, seed, draws)
        except BuzzpipeError as error:
            regime_error = error
    ran = run_side_by_side([*pending, *([regime_job] if regime_job else [])])
    errors = {id(job): error for job, (_e, error) in zip(pending, ran, strict=False)}
    for primary, columns, error, jobs in differences:
        error = error or next((errors[id(j)] for j in jobs if errors[id(j)]), None)
        if error is not None:
            record_not_assessed(
                results,
                outcome,
                StudyPart.DIFFERENCE_SENSITIVITY,
                error,
                quantity=f"tests/{outcome}/{primary}",
                detail=f"sensitivity of {primary} not computed: {error}",
            )
            continue
        for kind, estimate in columns.items():
            results.add_test(outcome, f"{primary}_{DIFFERENCE_SUFFIXES[kind]}", estimate)

    def record_supermodularity() -> None:
        if regime_error is not None:
            raise regime_error
        if regime_job is None:
            return
        wild, error = ran[-1]
        if error is not None:
            raise error
        record_supermodularity_bootstrap(results, outcome, wild)

    return record_supermodularity


SUPERMODULARITY_TERM = "regime_both_beyond_parts"  # b_both - b_local_only - b_global_only


def supermodularity_bootstrap(
    results: StudyResults,
    outcome: str,
    sample: pd.DataFrame,
    controls: Sequence[str],
    family: str,
    seed: int,
    draws: int = defaults.WILD_BOOTSTRAP_DRAWS,
) -> None:
    """The supermodularity test (b_both - b_local_only - b_global_only > 0) under the headline
    rule, one-sided: the wild cluster score bootstrap by region of the one coefficient of a
    reparametrised regime model (``tests[outcome]["supermodularity_wild_bootstrap"]``).

    With B, L, G the dummies of the regimes both, local only and global only (mutually
    exclusive), b_L L + b_G G + b_B B = c B + b_L (L + B) + b_G (G + B) with
    c = b_B - b_L - b_G: the same fit, whose coefficient on B is the combination tested.
    """
    job = supermodularity_pending(outcome, sample, controls, family, seed, draws)
    if job is not None:
        record_supermodularity_bootstrap(results, outcome, job.run())


def supermodularity_pending(
    outcome: str,
    sample: pd.DataFrame,
    controls: Sequence[str],
    family: str,
    seed: int,
    draws: int = defaults.WILD_BOOTSTRAP_DRAWS,
) -> PendingBootstrap | None:
    """The reparametrised regime model fitted, its bootstrap of the supermodularity term
    waiting to run (None for a model the bootstrap does not cover)."""
    if family not in BOOTSTRAP_FAMILIES:
        return None
    # the indicators only fitted: on --engine dask made on the workers
    known = engine.current().mask(sample, _regime_known, columns=["regime"])  # dask: there
    data = with_computed(rows_kept(sample, known, reads=[]), _regime_indicators)
    formula = (
        f"{outcome} ~ {SUPERMODULARITY_TERM} + regime_local_or_both + regime_global_or_both + "
        + " + ".join(controls)
    )
    fitted = fit_model(formula, data, family, CLUSTER_VCOV)
    return PendingBootstrap(
        fitted, data, outcome, family, SUPERMODULARITY_TERM, seed, draws, Alternative.GREATER
    )


def _regime_known(rows: pd.DataFrame) -> np.ndarray:
    """Whether each row's regime is known."""
    return rows["regime"].notna().to_numpy()


def _regime_indicators(rows: pd.DataFrame) -> dict[str, pd.Series]:
    """The reparametrised regime model's indicators of ``rows``."""
    regime = rows["regime"].astype(str)
    return {
        SUPERMODULARITY_TERM: (regime == "both").astype(float),
        "regime_local_or_both": regime.isin(["local_only", "both"]).astype(float),
        "regime_global_or_both": regime.isin(["global_only", "both"]).astype(float),
    }


def record_supermodularity_bootstrap(results: StudyResults, outcome: str, wild: Estimate) -> None:
    """``tests[outcome]["supermodularity_wild_bootstrap"]``, beside the firm-level test."""
    primary = results.tests.get(outcome, {}).get("supermodularity")
    if primary is not None:  # the same null as the firm-level test it sits beside
        wild.hypothesis = primary.hypothesis
    wild.note = " ".join(
        ["reparametrised regime model; one-sided (greater), the bound one-sided", wild.note]
    ).strip()
    results.add_test(outcome, "supermodularity_wild_bootstrap", wild)
