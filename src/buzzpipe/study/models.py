"""The main models of the battery: which formulas, on which shared sample, read into results.

For each outcome (product, process, new_to_market; ``product_novelty`` by ordered logit):

- ``<scale>_alone``: breadth at one scale, nothing else (one model per scale);
- ``breadth``: breadth at every scale the survey has, without controls;
- ``controls``: the same with log employees, foreign share, industry and region (fixed effects),
  plus openness, education and firm age where the survey has them: the primary model;
- ``controls_with_group``: the controls model with breadth counting the firm's own group;
- ``partner_types``: one 0/1 term per scale x partner type with the controls (which kinds of
  partner matter where).

All models of one outcome share one estimation sample (rows complete on every variable any of
them uses), so nested models compare. Inference: firm-level robust errors (Stata
``vce(robust)``) with region fixed effects; odds ratios in Stata's ``eform`` convention.
"""

from __future__ import annotations

import functools
import itertools
import math
import warnings
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from buzzpipe.errors import DroppedTermError, EstimationError, InputError
from buzzpipe.estimate.hypothesis_tests import critical_value, reference_df
from buzzpipe.estimate.kept import KeptByIdentity, KeptByKey
from buzzpipe.results import Estimate, Hypothesis, Inference, Interval, ModelResult, Term
from buzzpipe.results.vocabulary import (
    Family,
    HypothesisKind,
    InferenceKind,
    InferenceMethod,
    ModelName,
    TermKind,
)
from buzzpipe.survey.schema import (
    GROUP_PARTNER_TYPE,
    NOVELTY,
    OPTIONAL_CONTROLS,
    OUTCOMES,
    PARTNER_TYPES,
    SCALES,
    WEIGHT,
    breadth_column,
    collab_column,
)

PRIMARY_INFERENCE = "robust"
INFERENCE_POLICY = (
    "Firms are a random sample within fixed city-regions: coefficients carry firm-level robust "
    "errors (Stata vce(robust)) with region fixed effects; region-clustered errors and the wild "
    "score bootstrap are a sensitivity column for single restrictions only. All models of one "
    "outcome share one estimation sample."
)
LOG_EMPLOYEES = "np.log(employees)"


@dataclass(frozen=True)
class ModelSpecification:
    """One model of the battery: a name, a formula and a family."""

    name: str
    outcome: str
    formula: str
    family: str
    variables: tuple[str, ...]


def columns_of(frame: pd.DataFrame) -> set[str]:
    """The columns ``frame``'s rows have, those held on the Dask workers only included
    (``StudyEngine.columns``): which columns the survey has, whatever the client holds."""
    from buzzpipe.study import engine

    return set(engine.current().columns(frame))


def scales_present(frame: pd.DataFrame) -> tuple[str, ...]:
    """The scales with a breadth column, in the schema's order (a CIS-style survey lacks one)."""
    present = columns_of(frame)
    return tuple(scale for scale in SCALES if breadth_column(scale) in present)


def local_scale(frame: pd.DataFrame) -> str:
    """The scale that stands for local buzz: regional, or national where the survey lacks it
    (as the data layer's regimes define it)."""
    return "regional" if breadth_column("regional") in columns_of(frame) else "national"


def breadth_terms(frame: pd.DataFrame, *, with_group: bool = False) -> list[str]:
    """Breadth columns of every scale present (the with-group variant on request)."""
    return [breadth_column(scale, with_group=with_group) for scale in scales_present(frame)]


def control_terms(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(formula terms, underlying columns) of the controls the survey has."""
    from buzzpipe.study import engine

    terms = [LOG_EMPLOYEES, "C(industry)", "C(region)"]
    columns = ["employees", "industry", "region"]
    present = set(engine.current().columns(frame))  # on dask: on the workers only too
    if "foreign_share" in present:  # optional: a survey may not have asked about it
        terms.insert(1, "foreign_share")
        columns.insert(1, "foreign_share")
    for name in OPTIONAL_CONTROLS:
        if name in present and engine.current().any_present(frame, name):
            terms.append(name)
            columns.append(name)
    return terms, columns


def partner_type_columns(frame: pd.DataFrame) -> list[str]:
    """Collaboration indicators present, by scale then partner type, without the own group."""
    from buzzpipe.study import engine

    present = set(engine.current().columns(frame))  # on dask: on the workers only
    return [
        collab_column(scale, partner_type)
        for scale in scales_present(frame)
        for partner_type in PARTNER_TYPES
        if partner_type != GROUP_PARTNER_TYPE and collab_column(scale, partner_type) in present
    ]


def _formula(outcome: str, terms: Sequence[str]) -> str:
    return f"{outcome} ~ " + " + ".join(terms)


def main_specifications(
    frame: pd.DataFrame,
    outcome: str,
    controls: tuple[Sequence[str], Sequence[str]] | None = None,
) -> list[ModelSpecification]:
    """The models of one outcome: breadth alone, with controls, with group, partner types;
    ``controls`` (formula terms, the columns they read) the user's, else :func:`control_terms`."""
    present = columns_of(frame)
    if outcome not in present:
        raise InputError("the survey has no such outcome", column=outcome)
    family = "ologit" if outcome == NOVELTY else "logit"
    breadth = breadth_terms(frame)
    if not breadth:
        raise InputError(
            "the survey has no breadth column", expected="breadth_<scale> for some scale"
        )
    controls, control_columns = (
        control_terms(frame) if controls is None else (list(controls[0]), list(controls[1]))
    )

    def specification(
        name: str, terms: Sequence[str], columns: Sequence[str]
    ) -> ModelSpecification:
        """A model of the outcome on ``terms``; ``columns`` are the data columns they read."""
        return ModelSpecification(
            name, outcome, _formula(outcome, terms), family, (outcome, *columns)
        )

    specifications = [
        specification(f"{term.removeprefix('breadth_')}_alone", [term], [term]) for term in breadth
    ]
    specifications += [
        specification("breadth", breadth, breadth),
        specification("controls", breadth + controls, breadth + control_columns),
    ]
    with_group = breadth_terms(frame, with_group=True)
    if all(column in present for column in with_group):
        specifications.append(
            specification(
                "controls_with_group", with_group + controls, with_group + control_columns
            )
        )
    partner_types = partner_type_columns(frame)
    if partner_types:
        specifications.append(
            specification(
                "partner_types", partner_types + controls, partner_types + control_columns
            )
        )
    return specifications


def estimation_sample(
    frame: pd.DataFrame,
    specifications: Sequence[ModelSpecification],
    reads: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Rows complete on every variable of every model given: one sample for nested models.
    The mask is made where the rows are (``StudyEngine.mask``: on dask per partition on the
    workers, from columns the client need not hold); ``reads``: as :func:`rows_kept`'s."""
    from buzzpipe.study import engine

    columns = list(dict.fromkeys(v for spec in specifications for v in spec.variables))
    if WEIGHT in columns_of(frame):
        columns.append(WEIGHT)
    if reads is not None and not reads:
        # nothing read here: on dask the mask made and used on the workers, none here
        found = engine.current().rows_where(frame, complete_rows, columns, columns=columns)
        if found is not None:
            return found
    complete = engine.current().mask(frame, complete_rows, columns, columns=columns)
    return rows_kept(frame, complete, reads)


def complete_rows(rows: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """Whether each row holds every one of ``columns`` (and, where they are among them,
    employees above 0): :func:`estimation_sample`'s mask of ``rows``."""
    from buzzpipe.estimate.chunks import present

    # column by column, each column's own missing mask: no frame of the columns and its
    # frame of booleans (about 1 ms for the battery's thirty columns)
    complete = np.ones(len(rows), dtype=bool)
    for column in columns:
        complete &= present(rows[column])
    if "employees" in columns:  # a missing count is no row already
        complete &= rows["employees"].to_numpy(dtype=float, na_value=np.nan) > 0
    return complete


def rows_kept(frame: pd.DataFrame, keep: Any, reads: Sequence[str] | None = None) -> pd.DataFrame:
    """The rows of ``frame`` where ``keep`` (booleans, one per row in order) is true, as a new
    frame: a row selection copies every column, so where every row is kept it is the frame's
    own columns instead (copy on write: the columns the caller sets are its own). On the Dask
    client a copy of the analysis frame's 44 columns was about 135 bytes a firm. ``reads``: the
    only columns the caller reads itself (besides fitting the rows): on ``--engine dask`` the
    rows then hold those columns alone here, the others selected on the workers, which rows
    too (``StudyEngine.rows_on_workers``: the frame's row labels then a range of its own where
    some rows are left out)."""
    keep = np.asarray(keep, dtype=bool)
    if reads is not None:  # on dask every row too: the sample's other columns on the workers
        from buzzpipe.study import engine

        found = engine.current().rows_on_workers(frame, keep, reads)
        if found is not None:
            return found
    if keep.all():
        return frame.copy(deep=False)
    return frame.loc[keep]


def with_computed(
    frame: pd.DataFrame, compute: Callable[[pd.DataFrame], dict[str, pd.Series]]
) -> pd.DataFrame:
    """``frame`` with the columns ``compute(frame)`` gives (name -> values) added, as a new
    frame sharing ``frame``'s columns (copy on write). ``compute`` makes each row's values from
    that row alone (a module-level function): on ``--engine dask`` the columns are then
    computed on the workers from the sample's partitions and the frame returned lacks them,
    for a caller that only fits it (``StudyEngine.computed_on_workers``); elsewhere here."""
    from buzzpipe.study import engine

    found = engine.current().computed_on_workers(frame, compute)
    if found is not None:
        return found
    data = frame.copy(deep=False)
    for name, values in compute(frame).items():
        data[name] = values
    return data


def dropped_firms_note(
    frame: pd.DataFrame, sample: pd.DataFrame, specifications: Sequence[ModelSpecification]
) -> str | None:
    """Which firms the estimation sample left out and why (a firm missing several answers is
    counted under each), or None when it kept them all."""
    from buzzpipe.study import engine

    columns = list(dict.fromkeys(v for spec in specifications for v in spec.variables))
    if WEIGHT in columns_of(frame):
        columns.append(WEIGHT)
    chosen = engine.current()
    if chosen.name == "dask":  # counted per partition on the workers
        counts = chosen.reduced(frame, left_out_counts, columns, columns=columns)
        left = counts.pop(_LEFT)
    else:
        rows = frame.index.difference(sample.index)
        if len(rows) == 0:
            return None
        left, counts = len(rows), _missing_counts(frame.loc[rows], columns)
    if left == 0:
        return None
    reasons = [f"{column} missing ({n})" for column in columns if (n := counts[column])]
    if n := counts.get(_NOT_POSITIVE, 0):
        reasons.append(f"employees not positive ({n})")
    return f"{left} of {len(frame)} firms left out of the estimation sample: " + ", ".join(reasons)


_LEFT, _NOT_POSITIVE = "firms left out", "employees not positive"


def left_out_counts(rows: pd.DataFrame, columns: Sequence[str]) -> dict[str, int]:
    """The rows :func:`complete_rows` leaves out (``"firms left out"``), and of them those
    missing each column and those whose employees are not positive: one chunk's counts of
    :func:`dropped_firms_note`."""
    left = ~complete_rows(rows, columns)
    return {_LEFT: int(left.sum()), **_missing_counts(rows.loc[left], columns)}


def _missing_counts(rows: pd.DataFrame, columns: Sequence[str]) -> dict[str, int]:
    """Of ``rows``, those missing each column (and whose employees are not positive)."""
    counts = {column: int(rows[column].isna().sum()) for column in columns}
    if "employees" in columns:
        counts[_NOT_POSITIVE] = int((rows["employees"] <= 0).sum())
    return counts


def fit_model(
    formula: str, data: pd.DataFrame, family: str = Family.LOGIT, vcov: Any = PRIMARY_INFERENCE
) -> Any:
    """Fit through the estimation core (``buzzpipe.fit``), with the survey's sampling weights
    (Stata's pweight) when it has them; imported late to keep the command line light."""
    from buzzpipe.estimate.fitting import fit_with_design
    from buzzpipe.study import engine

    weights = WEIGHT if WEIGHT in columns_of(data) else None
    chosen = engine.current()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if chosen.chunked:  # sums over chunks of the sample (study/engine.py)
            fitted = chosen.fit(formula, data, family, vcov, weights)
        else:
            fitted, design = fit_with_design(formula, data, family, vcov, weights)
            if design is not None:
                keep_design(fitted, data, design)
    for warning in caught:  # few clusters and the like: kept with the model, not printed
        message = str(warning.message)
        if message not in fitted.notes:
            fitted.notes.append(message)
    return fitted


def inference_of(vcov: Any) -> Inference:
    """The inference record of a covariance choice: ``robust``, ``classical`` or
    ``{"cluster": "region"}`` (the number of clusters is filled in from the fit)."""
    if isinstance(vcov, dict) and InferenceKind.CLUSTER in vcov:
        return Inference(InferenceKind.CLUSTER, by=str(vcov[InferenceKind.CLUSTER]))
    return Inference(InferenceKind(str(vcov)))


def require_terms(fitted: Any, terms: Sequence[str]) -> None:
    """Stop a part of the study whose terms the fit dropped (collinear with others, constant,
    or perfectly predicting), naming the term, the outcome and the fit's note on it."""
    missing = [str(name) for name in terms if name not in fitted.params.index]
    if not missing:
        return
    why = [note for note in fitted.notes if any(name in note for name in missing)]
    raise DroppedTermError(
        f"{', '.join(missing)} dropped from the {fitted.family} model of {fitted.outcome!r}"
        + (f" ({'; '.join(why)})" if why else " (no variation in the estimation sample)")
    )


def fitted_inference(fitted: Any, inference: Inference) -> Inference:
    """The inference with the fit's number of clusters, when it clustered."""
    clusters = getattr(fitted, "n_clusters", None)
    if inference.kind == InferenceKind.CLUSTER and inference.clusters is None and clusters:
        return Inference(
            inference.kind,
            inference.by,
            int(clusters),
            inference.weights,
            inference.draws,
            inference.method,
        )
    return inference


# formulaic specifications -> what their columns are, by the specification's identity. The
# battery reads the kinds of one specification many times, and reading factor codings through
# formulaic costs 10 ms a time.
_COLUMN_KINDS = KeptByIdentity(256)
# the level each coded column stands for, by (contrasts, levels, reduced rank): the coding of a
# factor is the same in every specification that holds the same levels
_CODED_LEVELS = KeptByKey(256)


def term_kinds(fitted: Any) -> dict[str, Term]:
    """What each coefficient of a fit is, read from its formulaic model specification:
    intercept, continuous variable, factor level (with its factor's variable and the level),
    interaction (its parts), or an ordered model's cut point. Fresh records each call."""
    columns = _kept_column_kinds(fitted.model_spec)
    kinds, cuts = {}, 0
    for name in map(str, fitted.params.index):
        if name in columns:
            kinds[name] = _fresh(columns[name])
        else:
            cuts += 1
            kinds[name] = Term(TermKind.CUT, number=cuts)
    return kinds


def _kept_column_kinds(spec: Any) -> dict[str, Term]:
    """``_column_kinds(spec)``, kept per specification: shared records, not to be changed."""
    kinds = _COLUMN_KINDS.get(spec)
    if kinds is None:
        kinds = _COLUMN_KINDS.put(spec, _column_kinds(spec))
    return kinds


def _fresh(term: Term) -> Term:
    """A copy of a term record with copies of its parts (``copy.deepcopy`` of its fields,
    which are an enumeration member, strings, an int and the parts)."""
    return Term(term.kind, term.variable, term.level, term.number, [_fresh(p) for p in term.parts])


def _column_kinds(spec: Any) -> dict[str, Term]:
    """What each column of a formulaic specification is (``term_kinds`` without cut points)."""
    kinds: dict[str, Term] = {}
    # formulaic computes these anew on each access: read once for every factor of the spec
    contrasts = spec.factor_contrasts
    data = {str(v) for v in spec.variables_by_source.get("data", set())}
    for structure in spec.structure:
        combinations: list[tuple[Term, ...]] = []
        for scoped in structure.scoped_terms:
            if not scoped.factors:
                combinations.append((Term(TermKind.INTERCEPT),))
                continue
            per_factor = [
                _factor_parts(contrasts, data, f.factor, f.reduced) for f in scoped.factors
            ]
            # formulaic's column order: the first factor varies fastest
            combinations += [
                tuple(reversed(parts)) for parts in itertools.product(*reversed(per_factor))
            ]
        if len(combinations) != len(structure.columns):
            raise ValueError(f"cannot match the columns of term {structure.term}")
        for column, parts in zip(structure.columns, combinations, strict=True):
            kinds[str(column)] = (
                parts[0] if len(parts) == 1 else Term(TermKind.INTERACTION, parts=list(parts))
            )
    return kinds


def coefficient_hypothesis(fitted: Any, term: str, **facts: Any) -> Hypothesis:
    """The hypothesis that one coefficient of a fit is zero, its term read from the fit's
    specification (``facts``: firms, cells)."""
    return Hypothesis(HypothesisKind.ZERO, terms=coefficient_terms(fitted, [term]), **facts)


def coefficient_terms(fitted: Any, names: Sequence[str]) -> list[Term]:
    """What the named coefficients of a fit are, from its model specification."""
    columns = _kept_column_kinds(fitted.model_spec)
    fitted_names = set(map(str, fitted.params.index))
    if all(name in columns and name in fitted_names for name in names):
        return [_fresh(columns[name]) for name in names]  # no cut point: the named ones only
    kinds = term_kinds(fitted)
    return [kinds[name] for name in names]


@functools.lru_cache(maxsize=1024)
def _expression_variables(expression: str) -> tuple[str, ...]:
    """The variables a factor's expression reads (formulaic parses it: 2 ms a time)."""
    from formulaic.utils.variables import get_expression_variables

    return tuple(sorted(str(v) for v in get_expression_variables(expression, {})))


def _factor_parts(factor_contrasts: dict, data: set[str], factor: Any, reduced: bool) -> list[Term]:
    """The columns one factor contributes: one continuous column, or one dummy per level
    (treatment coding, reduced rank or full: each coded column stands for the level whose row
    holds the 1). ``factor_contrasts`` and ``data`` (the names of the data variables) are the
    specification's."""
    factor = getattr(factor, "factor", factor)  # an evaluated factor wraps the formula's
    contrasts = factor_contrasts.get(factor)
    if contrasts is None:
        return [Term(TermKind.CONTINUOUS, variable=str(factor))]
    variables = [v for v in _expression_variables(str(factor)) if v in data]
    variable = variables[0] if len(variables) == 1 else str(factor)
    key = (repr(contrasts.contrasts), tuple(map(repr, contrasts.levels)), reduced)
    levels = _CODED_LEVELS.get(key)
    if levels is None:  # a coding matrix is a DataFrame built by formulaic: read once a coding
        coding = contrasts.contrasts.get_coding_matrix(contrasts.levels, reduced_rank=reduced)
        levels = []
        for column in coding.columns:
            (level,) = [str(level) for level, value in coding[column].items() if value == 1]
            levels.append(level)
        _CODED_LEVELS.put(key, levels)
    parts = [Term(TermKind.FACTOR_LEVEL, variable=variable, level=level) for level in levels]
    return parts


def term_estimates(fitted: Any, inference: Inference, terms: Sequence[str] | None = None) -> dict:
    """Coefficients of a fit as Estimates with the fit's reference (normal, or t for the LPM)."""
    inference = fitted_inference(fitted, inference)
    critical = critical_value(reference_df(fitted))
    names = list(fitted.params.index) if terms is None else list(terms)
    require_terms(fitted, names)
    # the fit's coefficients, standard errors and p-values as arrays, computed once (each of
    # Fit.bse and Fit.pvalues makes its pandas Series anew)
    names_of = list(map(str, fitted.params.index))
    values, errors, p_values = (
        dict(zip(names_of, array.tolist(), strict=True)) for array in fitted.inference_arrays()
    )
    estimates = {}
    for name in names:
        value = float(values[str(name)])
        se = float(errors[str(name)])
        estimates[str(name)] = Estimate(
            estimate=value,
            std_error=se,
            p_value=float(p_values[str(name)]),
            inference=inference,
            interval=Interval.bounded(value - critical * se, value + critical * se),
            statistic=value / se if se > 0 else math.nan,
        )
    return estimates


def odds_ratios(terms: dict[str, Estimate], kinds: dict[str, Term]) -> dict[str, Estimate]:
    """Stata's ``eform``: exp(b), exp(b) x se, exp of the interval's ends, the same p-value."""
    ratios = {}
    for name, term in terms.items():
        if kinds[name].kind in (TermKind.INTERCEPT, TermKind.CUT):
            continue
        ratio = math.exp(term.estimate)
        interval = None
        if term.interval is not None:
            interval = Interval.bounded(
                math.exp(term.interval.low), math.exp(term.interval.high), term.interval.level
            )
        ratios[name] = Estimate(
            estimate=ratio,
            std_error=ratio * term.std_error,
            p_value=term.p_value,
            inference=term.inference,
            interval=interval,
            statistic=term.statistic,
        )
    return ratios


def model_result(specification: ModelSpecification, fitted: Any, vcov: Any) -> ModelResult:
    """A fitted model read into the results structure (primary inference)."""
    inference = fitted_inference(fitted, inference_of(vcov))
    terms = term_estimates(fitted, inference)
    kinds = term_kinds(fitted)
    pseudo_r2 = getattr(fitted, "pseudo_r2", None)
    return ModelResult(
        outcome=specification.outcome,
        model=specification.name,
        formula=specification.formula,
        family=Family(specification.family),
        inference=inference,
        nobs=int(fitted.nobs),
        terms=terms,
        term_kinds=kinds,
        log_likelihood=float(fitted.llf),
        pseudo_r2=None if pseudo_r2 is None else float(pseudo_r2),
        odds_ratios=odds_ratios(terms, kinds)
        if specification.family in (Family.LOGIT, Family.OLOGIT)
        else {},
        notes=list(getattr(fitted, "notes", [])),
    )


# a firm can collaborate with at most every partner type at a scale: six without the group
BREADTH_CAP = len([kind for kind in PARTNER_TYPES if kind != GROUP_PARTNER_TYPE])
BREADTH_CAP_WITH_GROUP = len(PARTNER_TYPES)


def breadth_caps(terms: Sequence[str]) -> dict[str, int]:
    """The upper bound of each breadth term's range (for the margins' +1 rows: ``cap=``)."""
    caps = {}
    for scale in SCALES:
        caps[breadth_column(scale)] = BREADTH_CAP
        caps[breadth_column(scale, with_group=True)] = BREADTH_CAP_WITH_GROUP
    return {term: caps[term] for term in terms if term in caps}


def marginal_effects(
    fitted: Any,
    sample: pd.DataFrame,
    terms: Sequence[str],
    inference: Inference,
    *,
    every: bool = False,
    sample_design: np.ndarray | None = None,
) -> dict[str, Estimate]:
    """Average marginal effects (Stata ``margins, dydx()``) and the change from one more kind of
    partner (x to x + 1, a firm at the cap of six held there) of each breadth term, by
    re-prediction with delta-method errors; the ordered novelty model gives one row per outcome
    category. With ``every``, also the average
    effect of every other regressor after them (Stata's ``margins, dydx(*)``,
    :func:`regressor_effects`). ``sample_design``: the fit's design of ``sample`` where the
    caller has built it (:func:`design_of`), taken where ``sample`` is the estimation sample."""
    from buzzpipe.estimate.chunks import reading
    from buzzpipe.study import engine

    effects: dict[str, Estimate] = {}
    if not terms:  # no breadth term left: margins would give the average prediction instead
        return effects
    sample, design = _sample_design(fitted, sample, sample_design)
    with reading(sample):  # its columns and the formula's columns read once for every call
        for kind in ("ame", "plus_one"):
            # a +1 change holds a firm at the cap of partner types there (one definition)
            caps = breadth_caps(terms) if kind == "plus_one" else None
            rows = engine.current().margin_rows(
                fitted, sample, terms, kind=kind, cap=caps, **design
            )
            for label, row in rows:
                effects[label] = _effect(
                    row,
                    inference,
                    Hypothesis(
                        CONTRASTS[str(row["contrast"])],
                        terms=[Term(TermKind.CONTINUOUS, variable=str(row["term"]))],
                    ),
                )
        if every:
            effects.update(regressor_effects(fitted, sample, terms, inference, design=design))
    return effects


def _sample_design(
    fitted: Any, sample: pd.DataFrame, built: np.ndarray | None = None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """In memory: the fit's estimation sample (its rows, in its order) and its design built
    once for every margins call on it (``design=``; ``built``, the design of ``sample``, where
    that is the estimation sample); on a chunked engine the sample as given and no design (the
    chunks build their own)."""
    from buzzpipe.estimate.margins import _estimation_sample
    from buzzpipe.study import engine

    if engine.current().chunked:
        return sample, {}
    rows = _estimation_sample(fitted, sample)
    if built is not None and rows is sample:
        return rows, {"design": built}
    return rows, {"design": design_of(fitted, rows)}


def _effect(row: dict[str, Any], inference: Inference, hypothesis: Hypothesis) -> Estimate:
    """One row of a margins table as an estimate record (delta-method errors)."""
    return Estimate(
        estimate=float(row["estimate"]),
        std_error=float(row["se"]),
        p_value=float(row["p"]),
        inference=inference.derived(InferenceMethod.DELTA_METHOD),
        interval=Interval.bounded(row["ci_lower"], row["ci_upper"]),
        statistic=float(row["z"] if "z" in row else row["t"]),
        hypothesis=hypothesis,
    )


def regressor_effects(
    fitted: Any,
    sample: pd.DataFrame,
    terms: Sequence[str],
    inference: Inference,
    *,
    design: dict[str, Any] | None = None,
) -> dict[str, Estimate]:
    """The average marginal effect of every regressor but the breadth ``terms``, as Stata's
    ``margins, dydx(*)``: for a continuous variable the derivative averaged over the firms,
    through the formula (``np.log(employees)`` gives the effect of ``employees``, as Stata's
    ``c.`` with ``log`` inside); for a factor the average change in the probability from its
    base (lowest) level to each other level (Stata's ``i.``), every firm set to the level.
    On a chunked engine both are sums over the sample's chunks (each chunk given the factor's
    levels in the whole sample): no design of the sample on the client; keyed as the margins
    table labels them (``employees: dy/dx``,
    ``region: Bergen vs Oslo``). ``design``: ``{"design": X}``, the estimation sample's design
    when ``sample`` is that sample in the fit's order (:func:`_sample_design`)."""
    from buzzpipe.estimate.margins import (
        _estimation_sample,
        _factor_variables,
        _format_level,
        _levels,
        _model_variables,
        margin_rows,
    )
    from buzzpipe.study import engine

    design = design or {}
    data = _estimation_sample(fitted, sample)
    # on a chunked engine the columns and types of the sample's rows where they are (on dask
    # the workers may hold columns the client lacks): only the factors' levels are read here
    typed = engine.current().meta(sample) if engine.current().chunked else data
    variables = [name for name in _model_variables(fitted, typed) if name not in terms]
    factors = _factor_variables(fitted, typed, variables)
    continuous = [name for name in variables if name not in factors]
    effects: dict[str, Estimate] = {}
    if continuous:
        rows = engine.current().margin_rows(fitted, sample, continuous, kind="ame", **design)
        for label, row in rows:
            hypothesis = Hypothesis(
                HypothesisKind.MARGINAL_EFFECT,
                terms=[Term(TermKind.CONTINUOUS, variable=str(row["term"]))],
            )
            effects[label] = _effect(row, inference, hypothesis)
    ordered = [name for name in variables if name in factors]
    if ordered:
        if design and data is not sample:  # the design is of the sample's rows, in its order
            design = {}
        chosen = engine.current()
        if chosen.chunked:  # sums over the chunks, each chunk given the levels found there
            found = chosen.factor_levels(fitted, sample, ordered)
            rows = chosen.margin_rows(fitted, sample, ordered, kind="ame", levels=found)
        else:
            found = {}
            rows = margin_rows(fitted, data, ordered, kind="ame", **design)
        named: dict[str, dict[str, Any]] = {}
        for label, row in rows:
            variable = str(row["term"])
            if variable not in named:  # each factor's levels once
                levels = found[variable] if chosen.chunked else _levels(data[variable])
                named[variable] = {
                    f"{_format_level(level)} vs {_format_level(levels[0])}": (level, levels[0])
                    for level in levels[1:]
                }
            level, base = named[variable][str(row["contrast"])]
            hypothesis = Hypothesis(
                HypothesisKind.DISCRETE_CHANGE,
                terms=[
                    Term(TermKind.FACTOR_LEVEL, variable=variable, level=str(level)),
                    Term(TermKind.FACTOR_LEVEL, variable=variable, level=str(base)),
                ],
            )
            effects[label] = _effect(row, inference, hypothesis)
    return effects


# the margins table's contrasts: the average dy/dx, and the change from x to x + 1
CONTRASTS = {"dy/dx": HypothesisKind.MARGINAL_EFFECT, "+1": HypothesisKind.PLUS_ONE}


def design_of(fitted: Any, data: pd.DataFrame) -> np.ndarray:
    """The fit's design matrix rebuilt for (possibly changed) data, through its specification;
    for the very frame :func:`fit_model` fitted it on, a copy of the design the fit estimated
    where that was kept (:func:`keep_design`)."""
    kept = _FIT_DESIGNS.get(id(fitted))
    if kept is not None and kept[0]() is fitted and kept[1]() is data:
        # the rebuilt design's numbers, in its layout (column-major, as formulaic's frame)
        return np.array(kept[2], order="F")
    return np.asarray(fitted.design_matrix(data), dtype=float)


# id(fit) -> (the fit, its data, its design) for fit_model's in-memory fits whose design the
# rebuild would give bit for bit (``fitting.fit_with_design``: every row, the fit's columns,
# at most ``DESIGN_KEPT`` numbers); an entry goes with its fit. Parts then read the design of a
# fit on its own data (margins, the wild bootstraps, the programmes' inputs) without rebuilding
_FIT_DESIGNS: dict[int, tuple[weakref.ref, weakref.ref, np.ndarray]] = {}


def keep_design(fitted: Any, data: pd.DataFrame, design: np.ndarray) -> None:
    """Keep ``design`` for :func:`design_of` while ``fitted`` lives (and ``data``: a weak
    reference, so a frame that goes is not kept; a new frame never matches). Kept only where
    the specification rebuilds it without formulaic (``rebuild_plan``, which then picks the
    fit's columns by name), whose numbers are the fit's; memory: the design (at most
    ``DESIGN_KEPT`` numbers) per fit alive."""
    from buzzpipe.estimate.design import rebuild_plan

    plan = rebuild_plan(fitted.model_spec) if fitted.model_spec is not None else None
    if plan is None or not set(fitted.x_names) <= set(plan["names"]):
        return
    key = id(fitted)
    _FIT_DESIGNS[key] = (weakref.ref(fitted), weakref.ref(data), design)
    weakref.finalize(fitted, _FIT_DESIGNS.pop, key, None)


NESTED_MODELS = (ModelName.BREADTH, ModelName.CONTROLS, ModelName.CONTROLS_WITH_GROUP)


def is_nested(model: str) -> bool:
    """Whether a model belongs to the nested set that shares one estimation sample: each scale
    alone, all scales, with controls, with the group counted."""
    return model in NESTED_MODELS or model.endswith("_alone")


def fit_outcome_models(
    frame: pd.DataFrame,
    outcome: str,
    vcov: Any = PRIMARY_INFERENCE,
    *,
    skipped: dict[str, EstimationError] | None = None,
    controls: tuple[Sequence[str], Sequence[str]] | None = None,
) -> tuple[pd.DataFrame, dict[str, tuple[ModelSpecification, Any]]]:
    """The shared estimation sample of one outcome and every model fitted on it.

    The nested breadth models share one sample. The partner-type model needs every 0/1
    collaboration answer, and a "don't know" on one partner type would otherwise drop the firm
    from all models: it is fitted on the shared sample's firms with complete answers, and says so.

    A model that cannot be estimated raises an ``EstimationError`` naming it and the outcome
    (of the fit's own kind: separation, non-convergence, ...); with ``skipped`` given, any model
    but the one with controls (which the rest of the study builds on) is left out instead and
    its error kept there under the model's name.
    """
    from buzzpipe.estimate.chunks import reading

    specifications = main_specifications(frame, outcome, controls)
    nested = [spec for spec in specifications if is_nested(spec.name)]
    # on dask the samples are defined on the workers: their masks made there, and no column
    # held here (the study's reads of their rows are reductions on the workers)
    sample = estimation_sample(frame, nested, [])
    fits = {}
    with reading(sample):  # the nested models' columns read from the sample once
        for spec in specifications:
            data = sample if is_nested(spec.name) else estimation_sample(sample, [spec], [])
            try:
                fits[spec.name] = (spec, fit_model(spec.formula, data, spec.family, vcov))
            except EstimationError as error:
                named = type(error)(
                    f"the {spec.name} {spec.family} model of {outcome!r} cannot be estimated: "
                    f"{error}"
                )
                if skipped is None or spec.name == ModelName.CONTROLS:
                    raise named from None
                skipped[spec.name] = named
    return sample, fits


def default_outcomes(frame: pd.DataFrame) -> list[str]:
    """The outcomes the survey has: the three binary ones, then the ordered novelty ladder."""
    present = columns_of(frame)
    return [outcome for outcome in (*OUTCOMES, NOVELTY) if outcome in present]
