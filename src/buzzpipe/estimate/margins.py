"""Margins by re-prediction (Stata's `margins`): average marginal effects, effects at means,
discrete changes, +1 changes of counts, predictions at chosen values, and contrasts over groups.

Effects are derivatives of the prediction with respect to a *variable*, found by rebuilding the
design from perturbed data through the fit's stored formula, so they flow through ``log()``,
interactions and factors (statsmodels' ``get_margeff`` differentiates design columns instead).
Standard errors come from the delta method with analytic Jacobians in the coefficients (and cut
points for ordered logit) under the fit's covariance, with the fit's t reference where it has one.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from os import PathLike
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from buzzpipe.errors import EstimationError, InputError
from buzzpipe.estimate import chunks
from buzzpipe.estimate.design import rebuild_plan
from buzzpipe.estimate.families import get_family
from buzzpipe.estimate.hypothesis_tests import inference_columns, inference_table, reference_df

# Stata's elasticities: d log P / d log x, dP / d log x, d log P / dx (labels as Stata's).
ELASTICITIES = {"eyex": "ey/ex", "dyex": "dy/ex", "eydx": "ey/dx"}
KINDS = ("ame", "discrete", "plus_one", *ELASTICITIES)
# Relative step of the central difference in a continuous variable (per row, scaled to |x|).
RELATIVE_STEP = 1e-5
# A numeric variable with more distinct values than this is not treated as a factor.
MAX_FACTOR_LEVELS = 50
_CUT = re.compile(r"cut\d+")


# --------------------------------------------------------------------------------------------
# Predicted probabilities and their derivatives, per family
# --------------------------------------------------------------------------------------------


# families with a link (F, f, f' of the index, from ``families.py``): ordered logit's is logistic
_LINKS = ("logit", "probit", "lpm", "ologit")


@dataclass(frozen=True)
class _Evaluation:
    """Per row and outcome: probability, its first and second derivative in the index, and
    derivatives of the probability and of its index-derivative in each cut point."""

    value: np.ndarray  # (N, K)
    d_index: np.ndarray  # (N, K)
    d_index2: np.ndarray  # (N, K)
    d_cut: np.ndarray  # (N, K, C)
    d_index_cut: np.ndarray  # (N, K, C)


class _Outcomes:
    """P(y = k | index) for binary families (one outcome) and ordered logit (K outcomes).

    Ordered logit follows Stata: P(y = k) = F(cut_k - xb) - F(cut_{k-1} - xb).
    """

    def __init__(self, family: str, cuts: np.ndarray) -> None:
        self.link = get_family(family)  # cdf, pdf and pdf_slope of the index
        self.ordered = family == "ologit"
        self.cuts = cuts
        self.n_outcomes = len(cuts) + 1 if self.ordered else 1

    def _values(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """F, f and f' of the link at ``u`` (the logistic's from one evaluation of F)."""
        values = getattr(self.link, "link_values", None)
        if values is not None:
            return values(u)
        return self.link.cdf(u), self.link.pdf(u), self.link.pdf_slope(u)

    def evaluate(self, index: np.ndarray, cuts: np.ndarray | None = None) -> _Evaluation:
        cuts = self.cuts if cuts is None else cuts
        n = index.shape[0]
        if not self.ordered:
            value, d_index, d_index2 = self._values(index)
            empty = np.zeros((n, 1, 0))
            return _Evaluation(value[:, None], d_index[:, None], d_index2[:, None], empty, empty)
        distance = cuts[None, :] - index[:, None]  # (N, C)
        n_cuts = cuts.size
        cdf, density, slope = self._values(distance)
        padded_cdf = np.hstack([np.zeros((n, 1)), cdf, np.ones((n, 1))])
        padded_density = np.hstack([np.zeros((n, 1)), density, np.zeros((n, 1))])
        padded_slope = np.hstack([np.zeros((n, 1)), slope, np.zeros((n, 1))])
        value = padded_cdf[:, 1:] - padded_cdf[:, :-1]
        d_index = -(padded_density[:, 1:] - padded_density[:, :-1])
        d_index2 = padded_slope[:, 1:] - padded_slope[:, :-1]
        d_cut = np.zeros((n, n_cuts + 1, n_cuts))
        d_index_cut = np.zeros((n, n_cuts + 1, n_cuts))
        for j in range(n_cuts):
            d_cut[:, j, j] = density[:, j]
            d_cut[:, j + 1, j] = -density[:, j]
            d_index_cut[:, j, j] = -slope[:, j]
            d_index_cut[:, j + 1, j] = slope[:, j]
        return _Evaluation(value, d_index, d_index2, d_cut, d_index_cut)


# --------------------------------------------------------------------------------------------
# The fit as margins sees it: designs rebuilt from data, coefficients split into slopes and cuts
# --------------------------------------------------------------------------------------------


class _ModelView:
    """Rebuilds designs through the fit's formula and keeps slope/cut positions in ``params``."""

    def __init__(self, fit: object, sample: pd.DataFrame) -> None:
        family = str(fit.family)
        if family not in _LINKS:
            raise EstimationError(
                f"margins are not available for the {family!r} family; "
                f"known families: {', '.join(_LINKS)}"
            )
        self.fit = fit
        self.family = family
        self.names = [str(name) for name in fit.params.index]
        params = fit.params.to_numpy(dtype=float)
        self.params = params
        self.cut_positions = (
            [i for i, name in enumerate(self.names) if _CUT.fullmatch(name)]
            if family == "ologit"
            else []
        )
        self.outcomes = _Outcomes(family, params[self.cut_positions])
        self.offset = _sample_offset(fit, sample)
        x_names = getattr(fit, "x_names", None)
        if x_names is None:
            probe = fit.design_matrix(sample.iloc[:1])
            if isinstance(probe, pd.DataFrame):
                x_names = [str(column) for column in probe.columns]
        if x_names is not None:
            position: dict[str, int] = {}
            for i, name in enumerate(self.names):
                position.setdefault(name, i)  # the first, as list.index finds it
            missing = [name for name in x_names if str(name) not in position]
            if missing:
                raise EstimationError(
                    f"the design has columns the fit has no coefficient for: {missing}"
                )
            self.slope_positions = [position[str(name)] for name in x_names]
        else:
            cut_set = set(self.cut_positions)
            self.slope_positions = [i for i in range(len(self.names)) if i not in cut_set]
        self.slopes = params[self.slope_positions]

    def design(self, frame: pd.DataFrame, what: str) -> np.ndarray:
        """The design for ``frame`` (same rows, same order), refusing silent row drops."""
        matrix = self.fit.design_matrix(frame)
        array = np.asarray(matrix, dtype=float)
        if array.shape[0] != len(frame):
            raise EstimationError(
                f"rebuilding the design for {what} dropped {len(frame) - array.shape[0]} rows "
                "(missing or invalid values after the change)"
            )
        return array

    def index(self, design: np.ndarray, offset: np.ndarray | float) -> np.ndarray:
        return design @ self.slopes + offset


def _sample_values(fit: object, sample: pd.DataFrame, attribute: str) -> np.ndarray | None:
    """The fit's ``offset`` or ``weights`` over the sample rows (None when the fit has none):
    a column name is read from the sample, an array must have one value per row."""
    given = getattr(fit, attribute, None)
    if given is None:
        return None
    if isinstance(given, str):
        return sample[given].to_numpy(dtype=float)
    values = np.asarray(given, dtype=float)
    if values.shape == (len(sample),):
        return values
    raise EstimationError(f"margins need the fit's {attribute} as a column name of the data")


def _sample_offset(fit: object, sample: pd.DataFrame) -> np.ndarray | float:
    offset = _sample_values(fit, sample, "offset")
    return 0.0 if offset is None else offset


def _sample_weights(fit: object, sample: pd.DataFrame) -> np.ndarray:
    weights = _sample_values(fit, sample, "weights")
    return np.ones(len(sample)) if weights is None else weights


def _model_variables(fit: object, data: pd.DataFrame) -> list[str]:
    """The data columns the right-hand side of the formula reads."""
    spec = getattr(fit, "model_spec", None)
    required = getattr(spec, "required_variables", None)
    if required:
        required = set(required)  # made once, not once per column
        return [name for name in data.columns.tolist() if name in required]
    formula = str(fit.formula)
    right = formula.split("~", 1)[-1]
    tokens = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", right))
    return [name for name in data.columns if name in tokens]


def _estimation_sample(fit: object, data: pd.DataFrame) -> pd.DataFrame:
    row_ids = getattr(fit, "row_ids", None)
    if row_ids is None:
        return data
    row_ids = pd.Index(row_ids)
    if data.index.equals(row_ids):  # already the estimation sample, in its order: no copy
        return data
    if not data.index.is_unique:
        raise InputError(
            "the data's index has duplicate labels, so the estimation sample cannot be found",
            expected="the data frame the model was fitted on",
        )
    missing = row_ids.difference(data.index)
    if len(missing):
        raise InputError(
            f"the data lacks {len(missing)} rows of the estimation sample",
            rows=[int(x) if isinstance(x, int | np.integer) else x for x in missing[:5]],
            expected="the data frame the model was fitted on",
        )
    return data.loc[row_ids]


def _factor_variables(fit: object, sample: pd.DataFrame, variables: Sequence[str]) -> set[str]:
    """Which of ``variables`` are factors: non-numeric or boolean columns, or wrapped in C()."""
    formula = str(fit.formula)
    found = set()
    for variable in variables:
        # the column's type (read once inside ``chunks.reading(sample)``), not a Series of all
        # the frame's types
        dtype = chunks.column(sample, variable).dtype
        if (
            not pd.api.types.is_numeric_dtype(dtype)
            or pd.api.types.is_bool_dtype(dtype)
            or re.search(rf"C\(\s*{re.escape(variable)}\b", formula) is not None
        ):
            found.add(variable)
    return found


def _levels(column: pd.Series) -> list[object]:
    if isinstance(column.dtype, pd.CategoricalDtype):  # the categories whose codes appear
        codes = np.asarray(column.array.codes)
        present = set(np.unique(codes[codes >= 0]).tolist())
        return [level for code, level in enumerate(column.cat.categories) if code in present]
    return sorted(column.dropna().unique().tolist())


def _format_level(value: object) -> str:
    """Levels as people write them: 1 rather than 1.0 for whole numbers."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _set_value(frame: pd.DataFrame, variable: str, value: object) -> pd.DataFrame:
    """A copy of ``frame`` with ``variable`` set to ``value`` (array or scalar) on every row."""
    changed = frame.copy()
    original = frame[variable]
    if isinstance(original.dtype, pd.CategoricalDtype):
        values = np.broadcast_to(np.asarray(value, dtype=object), len(frame))
        changed[variable] = pd.Categorical(values, categories=original.cat.categories)
    elif np.ndim(value) == 0 and not pd.api.types.is_numeric_dtype(original):
        changed[variable] = pd.Series([value] * len(frame), index=frame.index, dtype=original.dtype)
    else:
        changed[variable] = np.broadcast_to(value, len(frame)).copy()
    return changed


# --------------------------------------------------------------------------------------------
# The result
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class MarginsResult:
    """Margins with Stata's columns (estimate, se, z or t, p, confidence interval).

    ``table`` describes each row (term, contrast, at, group, outcome); ``vcov`` is the joint
    delta-method covariance of all rows and ``jacobian`` their derivative in the fit's
    parameters, so rows can be compared (``group_contrasts``) or tested (``wald_test``).
    """

    table: pd.DataFrame
    vcov: pd.DataFrame
    jacobian: pd.DataFrame
    df: float | None
    level: float

    @property
    def params(self) -> pd.Series:
        return self.table["estimate"]

    @property
    def estimate(self) -> pd.Series:
        return self.table["estimate"]

    @property
    def se(self) -> pd.Series:
        return self.table["se"]

    def __getitem__(self, key: str) -> pd.Series:
        return self.table[key]

    def __len__(self) -> int:
        return len(self.table)

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def __str__(self) -> str:
        reference = "normal" if self.df is None else f"t({self.df:g})"
        header = f"Margins, delta-method errors, {reference} reference, {self.level:g}% intervals"
        return f"{header}\n{self.table.to_string()}"

    __repr__ = __str__

    def group_contrasts(self, reference: object | None = None) -> MarginsResult:
        """Differences between groups of ``by`` (Stata's ``r.`` contrasts): every group minus
        the reference group (the first by default), for the same term, change, at and outcome."""
        return self._contrasts("group", reference, "group contrasts need margins with by=")

    def at_contrasts(self, reference: object | None = None) -> MarginsResult:
        """Differences between ``at`` scenarios (Stata's ``contrast(atcontrast(r))``): every
        scenario minus the reference one (the first by default), e.g. the predicted change from
        no international partner to two, with its delta-method error."""
        return self._contrasts("at", reference, "at contrasts need margins with several at=")

    def _contrasts(self, column: str, reference: object | None, missing: str) -> MarginsResult:
        table = self.table
        choices = list(dict.fromkeys(table[column]))
        if len(choices) < 2:
            raise InputError(missing)
        reference = choices[0] if reference is None else str(reference)
        if reference not in choices:
            raise InputError(f"unknown reference {column}", value=reference, expected=str(choices))
        fields = ["term", "contrast", "at", "group", "outcome"]
        keys = [name for name in fields if name != column]
        rows, labels, described = [], [], []
        positions = {label: i for i, label in enumerate(table.index)}
        for _, block in table.groupby(keys, sort=False):
            base = block[block[column] == reference]
            if base.empty:
                continue
            for label, row in block.iterrows():
                if row[column] == reference:
                    continue
                weights = np.zeros(len(table))
                weights[positions[label]] = 1.0
                weights[positions[base.index[0]]] = -1.0
                rows.append(weights)
                parts = {name: row[name] for name in fields}
                parts[column] = (
                    f"{row[column]} - {reference}"
                    if column == "group"
                    else (f"({row[column]}) - ({reference})")
                )
                described.append(tuple(parts[name] for name in fields))
                labels.append(_row_label(*(parts[name] for name in fields)))
        transform = np.vstack(rows)
        estimate = transform @ table["estimate"].to_numpy()
        covariance = transform @ self.vcov.to_numpy() @ transform.T
        jacobian = transform @ self.jacobian.to_numpy()
        return _result(
            labels,
            described,
            estimate,
            covariance,
            jacobian,
            list(self.jacobian.columns),
            self.df,
            self.level,
        )


def _row_label(term: str, contrast: str, at: str, group: str, outcome: str) -> str:
    parts = [f"{term}: {contrast}" if term else contrast]
    if at:
        parts.append(f"at {at}")
    if group:
        parts.append(f"group {group}")
    if outcome:
        parts.append(f"outcome {outcome}")
    return " | ".join(parts)


def _result(
    labels: list[str],
    described: list[tuple[str, str, str, str, str]],
    estimate: np.ndarray,
    covariance: np.ndarray,
    jacobian: np.ndarray,
    names: list[str],
    df: float | None,
    level: float,
) -> MarginsResult:
    inference = inference_table(labels, estimate, covariance, df, level)
    description = pd.DataFrame(
        described, columns=["term", "contrast", "at", "group", "outcome"], index=inference.index
    )
    table = pd.concat([description, inference], axis=1)
    table.index.name = "margin"
    rows = pd.Index(labels, dtype=object)  # built once: pandas' string inference is slow
    return MarginsResult(
        table=table,
        vcov=pd.DataFrame(covariance, index=rows, columns=rows),
        jacobian=pd.DataFrame(jacobian, index=rows, columns=pd.Index(names, dtype=object)),
        df=df,
        level=level,
    )


# --------------------------------------------------------------------------------------------
# The computation
# --------------------------------------------------------------------------------------------


class _Averager:
    """Averages per-row quantities over the sample or each ``by`` group (with the fit's weights).

    The group weights are a sparse (groups x rows) matrix, so many groups cost no more memory
    than one. With ``at_means`` the designs themselves are averaged first (Stata's ``atmeans``:
    numeric variables at their means, factor indicators at their sample shares), and each group
    is then a single evaluation.
    """

    def __init__(
        self, weights: np.ndarray, group_codes: np.ndarray, n_groups: int, at_means: bool
    ) -> None:
        totals = np.bincount(group_codes, weights=weights, minlength=n_groups)
        if np.any(totals <= 0):
            raise EstimationError("a group of by= has no weight in the estimation sample")
        n_rows = weights.size
        # one group (no by=): the weights as a dense vector, products through BLAS (no sparse
        # matrix made)
        self.dense = weights / totals[0] if n_groups == 1 else None
        self.row_weights = None
        if self.dense is None:
            self.row_weights = sparse.csr_matrix(
                (weights / totals[group_codes], (group_codes, np.arange(n_rows))),
                shape=(n_groups, n_rows),
            )
        self.at_means = at_means
        self.n_groups = n_groups

    def group_means(self, values: np.ndarray) -> np.ndarray:
        """Weighted means of per-row values (1-d or 2-d) within each group."""
        if self.dense is not None:
            return (self.dense @ values)[None]
        return np.asarray(self.row_weights @ values)

    def rows(self, array: np.ndarray | float) -> np.ndarray | float:
        """Collapse per-row arrays to one row per group when evaluating at means."""
        if not self.at_means or np.ndim(array) == 0:
            return array
        return self.group_means(array)

    def mean(self, values: np.ndarray) -> np.ndarray:
        """Average evaluated rows (N, ...) into groups (R, ...)."""
        if self.at_means:
            return values
        flat = values.reshape(values.shape[0], -1)
        return self.group_means(flat).reshape((self.n_groups, *values.shape[1:]))

    def weighted_cross(self, vector: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        """sum_i a_ri vector_i matrix_i for each group r: (R, P)."""
        if self.at_means:
            return vector[:, None] * matrix
        if self.dense is not None:
            return ((self.dense * vector) @ matrix)[None]
        return np.asarray(self.row_weights.multiply(vector[None, :]).tocsr() @ matrix)


def _prediction_terms(
    view: _ModelView, averager: _Averager, design: np.ndarray, offset: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray]:
    """Average predicted probabilities: value (R, K) and Jacobian (R, K, P)."""
    design = averager.rows(design)
    index = view.index(design, averager.rows(offset))
    evaluation = view.outcomes.evaluate(index)
    value = averager.mean(evaluation.value)
    jacobian = np.zeros((value.shape[0], value.shape[1], view.params.size))
    for k in range(value.shape[1]):
        jacobian[:, k, view.slope_positions] = averager.weighted_cross(
            evaluation.d_index[:, k], design
        )
    if view.cut_positions:
        jacobian[:, :, view.cut_positions] = averager.mean(evaluation.d_cut)
    return value, jacobian


def _derivative_terms(
    view: _ModelView,
    averager: _Averager,
    design: np.ndarray,
    design_slope: np.ndarray | int,
    offset: np.ndarray | float,
    elasticity: str = "dydx",
    values: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Average derivatives dP/dx = P'(index) * (dX/dx b): value (R, K), Jacobian (R, K, P).

    ``design_slope`` is dX/dx per row, or the position of the variable's own design column
    (dX/dx its unit vector: the analytic path, no perturbed designs).

    Stata's elasticities scale each firm's derivative first: ``dyex`` by x, ``eydx`` by 1/P,
    ``eyex`` by x/P (``values`` holds x per row).
    """
    design = averager.rows(design)
    index = view.index(design, averager.rows(offset))
    column = design_slope if isinstance(design_slope, int) else None
    if column is None:
        design_slope = averager.rows(design_slope)
        index_slope = design_slope @ view.slopes
    else:  # dX/dx is the unit vector of the variable's own column: d index / dx = its slope
        index_slope = np.full(index.shape[0], view.slopes[column])
    evaluation = view.outcomes.evaluate(index)
    first, second = evaluation.d_index, evaluation.d_index2
    first_cut = evaluation.d_index_cut
    if elasticity in ("eydx", "eyex"):
        # d log P / d index and its derivatives, in the index and in the cut points
        probability = evaluation.value
        ratio = first / probability
        second = second / probability - ratio**2
        first_cut = (first_cut - ratio[:, :, None] * evaluation.d_cut) / probability[:, :, None]
        first = ratio
    scale = np.ones(index.shape[0])
    if elasticity in ("dyex", "eyex"):
        scale = np.asarray(averager.rows(values), dtype=float)
    scaled_slope = index_slope * scale
    value = averager.mean(first * scaled_slope[:, None])
    jacobian = np.zeros((value.shape[0], value.shape[1], view.params.size))
    for k in range(value.shape[1]):
        jacobian[:, k, view.slope_positions] = averager.weighted_cross(
            second[:, k] * scaled_slope, design
        )
        if column is None:
            jacobian[:, k, view.slope_positions] += averager.weighted_cross(
                first[:, k] * scale, design_slope
            )
        else:  # the cross product with a unit column is the (group) mean of the vector
            jacobian[:, k, view.slope_positions[column]] += averager.mean(first[:, k] * scale)
    if view.cut_positions:
        jacobian[:, :, view.cut_positions] = averager.mean(first_cut * scaled_slope[:, None, None])
    return value, jacobian


def _scratch(scratches: dict[int, np.ndarray], design: np.ndarray) -> np.ndarray:
    """A copy of ``design`` to write changed columns into, made once (kept in ``scratches``
    by the design's id while the design lives); the caller sets the columns back."""
    found = scratches.get(id(design))
    if found is None:
        found = scratches[id(design)] = design.copy()
    return found


def _own_derivatives(
    view: _ModelView,
    averager: _Averager,
    chunk: list[_Task],
    designs: dict[int, np.ndarray],
    offset: np.ndarray | float,
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """dy/dx of every own-column variable of one scenario at once (the usual AME table).

    With dX/dx the unit vector of column c: the value is mean(f(xb)) b_c and the Jacobian
    mean(f'(xb) x) b_c + mean(f(xb)) e_c (plus the cut points' part), so the index, the link
    and the cross product with the design are evaluated once per scenario, not per variable.
    Returns {id(task): (value (R, K), jacobian (R, K, P))} for the tasks it covers.
    """
    groups: dict[int, list[_Task]] = {}
    for task in chunk:
        if task.kind == "derivative" and task.column is not None and task.elasticity == "dydx":
            groups.setdefault(id(task.frames[0][1]), []).append(task)
    done: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for key, tasks in groups.items():
        design = averager.rows(designs[key])
        index = view.index(design, averager.rows(offset))
        evaluation = view.outcomes.evaluate(index)
        first, second = evaluation.d_index, evaluation.d_index2  # (N, K)
        n_rows, n_outcomes = first.shape
        slopes = np.array([view.slopes[task.column] for task in tasks])  # (V,)
        values = averager.mean(first[:, :, None] * slopes)  # (R, K, V)
        mean_first = averager.mean(first)  # (R, K)
        crossed = np.stack(
            [averager.weighted_cross(second[:, k], design) for k in range(n_outcomes)], axis=1
        )  # (R, K, P)
        cuts = (
            averager.mean(evaluation.d_index_cut[:, :, :, None] * slopes)
            if view.cut_positions
            else None
        )  # (R, K, C, V)
        for v, task in enumerate(tasks):
            jacobian = np.zeros((values.shape[0], n_outcomes, view.params.size))
            jacobian[:, :, view.slope_positions] = crossed * slopes[v]
            jacobian[:, :, view.slope_positions[task.column]] += mean_first
            if cuts is not None:
                jacobian[:, :, view.cut_positions] = cuts[..., v]
            done[id(task)] = (values[..., v], jacobian)
    return done


def _expand_at(
    at: Mapping[str, object] | Sequence[Mapping[str, object]] | None,
) -> list[dict[str, object]]:
    """Stata's at(): a mapping gives the Cartesian product of its values; a list of mappings
    gives one scenario each."""
    if at is None:
        return [{}]
    if isinstance(at, Mapping):
        names = list(at)
        values = [
            list(value)
            if isinstance(value, Sequence | np.ndarray | pd.Series) and not isinstance(value, str)
            else [value]
            for value in at.values()
        ]
        return [
            dict(zip(names, combination, strict=True)) for combination in itertools.product(*values)
        ]
    return [dict(scenario) for scenario in at]


def _at_label(scenario: Mapping[str, object]) -> str:
    return ", ".join(f"{name}={_format_level(value)}" for name, value in scenario.items())


def _groups(sample: pd.DataFrame, by: str | Sequence[str] | None) -> tuple[np.ndarray, list[str]]:
    if by is None:
        return np.zeros(len(sample), dtype=int), [""]
    columns = [by] if isinstance(by, str) else list(by)
    for column in columns:
        if column not in sample.columns:
            raise InputError("by= names a column the data lacks", column=column)
        if sample[column].isna().any():
            rows = sample.index[sample[column].isna()].tolist()
            raise InputError(
                "by= column has missing values in the estimation sample", column=column, rows=rows
            )
    grouped = sample.groupby(columns[0] if len(columns) == 1 else columns, sort=True, observed=True)
    codes = grouped.ngroup().to_numpy()
    keys = list(grouped.groups.keys())
    if len(columns) == 1:
        labels = [str(key[0] if isinstance(key, tuple) else key) for key in keys]
    else:
        labels = [", ".join(f"{c}={v}" for c, v in zip(columns, key, strict=True)) for key in keys]
    return codes, labels


def _relative_steps(values: np.ndarray) -> np.ndarray:
    scale = float(np.mean(np.abs(values))) or 1.0
    return RELATIVE_STEP * np.maximum(np.abs(values), 1e-3 * scale)


# Designs of perturbed copies are rebuilt in batches of at most this many rows: formulaic's
# cost is mostly per call, so small samples go through in one call, large ones a task at a time.
BATCH_ROWS = 250_000


@dataclass
class _Task:
    """One margin to compute and the (lazily made) data copies whose designs it needs.

    ``prediction``: frames [scenario]; ``change``: [changed, base];
    ``derivative``: [scenario, x + h, x - h] with ``step`` = (x + h) - (x - h) per row.
    With ``column`` set (a variable that enters the design only as its own column), the
    derivative needs only [scenario] (dX/dx is that column's unit vector) and a +1 change only
    [scenario] (the changed design is the scenario's with 1 added to that column, below
    ``bound`` where the change is capped). ``level``: a factor read by one term alone, set to a
    level on every firm; [scenario] with that term's ``columns`` set to ``rows``.
    """

    term: str
    contrast: str
    at_text: str
    kind: str
    frames: list[tuple[str, Callable[[], pd.DataFrame]]]
    step: np.ndarray | None = None
    elasticity: str = "dydx"
    values: np.ndarray | None = None
    column: int | None = None
    bound: float | None = None
    # a level change of a factor read by one term alone: that term's design columns and the
    # rows they take at the changed and at the reference level (the same on every firm)
    columns: list[int] | None = None
    rows: tuple[np.ndarray, np.ndarray] | None = None


def _maker(
    frame: pd.DataFrame, variable: str | None = None, value: object = None
) -> Callable[[], pd.DataFrame]:
    """A function making ``frame`` with ``variable`` set to ``value`` (``frame`` itself without
    a variable); the change is kept on it (``.change``) for :func:`_edited_design`."""
    if variable is None:
        return lambda: frame

    def make() -> pd.DataFrame:
        return _set_value(frame, variable, value)

    make.change = (frame, variable, value)
    return make


def _plan(
    fit: object,
    sample: pd.DataFrame,
    scenarios: list[dict[str, object]],
    chosen: list[str],
    kind: str,
    base: Mapping[str, object] | None,
    at_means: bool,
    averager: _Averager,
    codes: np.ndarray,
    model_variables: list[str],
    own_columns: Mapping[str, int],
    model_frame: pd.DataFrame,
    factors: set[str],
    cap: Mapping[str, float] | None = None,
    own_terms: Mapping[str, list[int]] | None = None,
    view: _ModelView | None = None,
    given_levels: Mapping[str, Sequence[object]] | None = None,
    known: tuple[pd.DataFrame, np.ndarray] | None = None,
) -> list[_Task]:
    """The margins to compute, scenario by scenario, in Stata's order (``own_columns``: the
    variables computed analytically, see :func:`_own_columns`; ``cap``: upper bounds of +1
    changes, rows at the bound held there; ``own_terms``: factors whose level changes replace
    their term's columns, see :func:`_own_terms`, with ``view`` to build those columns;
    ``given_levels``: a factor's levels to contrast, else those of the sample; ``known``: the
    model frame and its design, where the caller has it)."""
    numeric_model_variables = [v for v in model_variables if v not in factors]
    tasks: list[_Task] = []
    for scenario in scenarios:
        frame = model_frame
        for variable, value in scenario.items():
            if variable in model_variables:
                frame = _set_value(frame, variable, value)
        if at_means:
            frame = frame.copy()
            for variable in numeric_model_variables:
                if variable not in scenario:
                    column = frame[variable].to_numpy(dtype=float)
                    frame[variable] = averager.group_means(column)[codes]
        at_text = _at_label(scenario)
        observed = _maker(frame)
        if not chosen:
            tasks.append(
                _Task("", "prediction", at_text, "prediction", [("the predictions", observed)])
            )
            continue
        for variable in chosen:
            factor = variable in factors
            if kind == "plus_one":
                if factor:
                    raise InputError(
                        "a +1 change needs a numeric variable, not a factor", column=variable
                    )
                bound = (cap or {}).get(variable)
                if variable in own_columns:  # 1 added to the column (below the bound)
                    tasks.append(
                        _Task(
                            variable,
                            "+1",
                            at_text,
                            "shift",
                            [("the observed data", observed)],
                            column=own_columns[variable],
                            bound=None if bound is None else float(bound),
                        )
                    )
                    continue
                observed_values = frame[variable].to_numpy(dtype=float)
                shifted = observed_values + 1.0
                if bound is not None:  # rows at the bound cannot gain one: held there
                    shifted = np.where(observed_values < bound, shifted, observed_values)
                tasks.append(
                    _Task(
                        variable,
                        "+1",
                        at_text,
                        "change",
                        [
                            (f"{variable} + 1", _maker(frame, variable, shifted)),
                            ("the observed data", observed),
                        ],
                    )
                )
            elif kind in ELASTICITIES and factor:
                raise InputError(
                    f"an elasticity ({kind}) needs a continuous variable, not a factor",
                    column=variable,
                )
            elif factor or kind == "discrete":
                given = (given_levels or {}).get(variable)
                levels = _levels(sample[variable]) if given is None else list(given)
                if not factor and len(levels) > MAX_FACTOR_LEVELS:
                    raise InputError(
                        f"has more than {MAX_FACTOR_LEVELS} distinct values for a discrete change",
                        column=variable,
                        expected="kind='ame' or kind='plus_one'",
                    )
                reference = (base or {}).get(variable, levels[0])
                if reference not in levels:
                    raise InputError(
                        "base level not found in the estimation sample",
                        column=variable,
                        value=reference,
                    )
                if factor and variable in (own_terms or {}) and view is not None:
                    columns = own_terms[variable]
                    rows = _level_rows(view, frame, variable, levels, columns, known)
                    at = levels.index(reference)
                    for position, level_value in enumerate(levels):
                        if level_value == reference:
                            continue
                        contrast = f"{_format_level(level_value)} vs {_format_level(reference)}"
                        tasks.append(
                            _Task(
                                variable,
                                contrast,
                                at_text,
                                "level",
                                [("the observed data", observed)],
                                columns=columns,
                                rows=(rows[position], rows[at]),
                            )
                        )
                    continue
                at_reference = _maker(frame, variable, reference)
                for level_value in levels:
                    if level_value == reference:
                        continue
                    contrast = f"{_format_level(level_value)} vs {_format_level(reference)}"
                    tasks.append(
                        _Task(
                            variable,
                            contrast,
                            at_text,
                            "change",
                            [
                                (
                                    f"{variable} = {level_value}",
                                    _maker(frame, variable, level_value),
                                ),
                                (f"{variable} = {reference}", at_reference),
                            ],
                        )
                    )
            else:
                elasticity = kind if kind in ELASTICITIES else "dydx"
                # x per row: for the steps of central differences and the elasticities' scale
                current = (
                    None
                    if variable in own_columns and elasticity == "dydx"
                    else frame[variable].to_numpy(dtype=float)
                )
                frames = [("the observed data", observed)]
                step = None
                if variable not in own_columns:  # dX/dx by central differences of designs
                    delta = _relative_steps(current)
                    higher, lower = current + delta, current - delta
                    frames += [
                        (f"{variable} + h", _maker(frame, variable, higher)),
                        (f"{variable} - h", _maker(frame, variable, lower)),
                    ]
                    step = higher - lower
                tasks.append(
                    _Task(
                        variable,
                        ELASTICITIES.get(elasticity, "dy/dx"),
                        at_text,
                        "derivative",
                        frames,
                        step=step,
                        elasticity=elasticity,
                        values=current,
                        column=own_columns.get(variable),
                    )
                )
    return tasks


def _readers(terms: Sequence[object]) -> dict[str, list[tuple[object, object, set[str]]]]:
    """Name -> the (term, factor, names it reads) of every factor whose expression reads it."""
    readers: dict[str, list[tuple[object, object, set[str]]]] = {}
    for term in terms:
        for factor in getattr(term, "factors", ()):
            names = set(re.findall(r"(?<![\w.])[A-Za-z_]\w*", str(getattr(factor, "expr", ""))))
            for name in names:
                readers.setdefault(name, []).append((term, factor, names))
    return readers


def _own_terms(
    fit: object, view: _ModelView, variables: list[str], model_variables: list[str]
) -> dict[str, list[int]]:
    """Factors read by one term alone, whose only factor reads no other variable of the model
    (``C(industry)``, not ``x:C(industry)``): setting such a factor to a level on every firm
    changes that term's design columns, the same on every row, and nothing else. Returns the
    positions of the term's columns in the design's (``fit.x_names``)."""
    spec = getattr(fit, "model_spec", None)
    terms = getattr(spec, "terms", None)
    structure = getattr(spec, "structure", None)
    x_names = [str(name) for name in (getattr(fit, "x_names", None) or [])]
    if not terms or not structure or not x_names or len(x_names) != len(view.slope_positions):
        return {}
    readers = _readers(terms)
    others = set(model_variables)
    found: dict[str, list[int]] = {}
    for variable in variables:
        uses = readers.get(variable, [])
        if len(uses) != 1:
            continue
        term, _factor, names = uses[0]
        if len(term.factors) != 1 or names & others != {variable}:
            continue
        columns = [
            [str(column) for column in entry.columns] for entry in structure if entry.term == term
        ]
        if len(columns) != 1:
            continue
        found[variable] = [x_names.index(column) for column in columns[0] if column in x_names]
    return found


def _level_rows(
    view: _ModelView,
    frame: pd.DataFrame,
    variable: str,
    levels: list[object],
    columns: list[int],
    known: tuple[pd.DataFrame, np.ndarray] | None = None,
) -> np.ndarray:
    """The values a factor's own term gives its design ``columns`` at each level (one row per
    level), rebuilt through the formula from one firm's row set to each level in turn; read
    from the rows of ``known`` (a frame and its design) that hold each level, where it has them
    all (the term reads nothing but the factor, so any firm at a level gives that level's)."""
    if known is not None:
        positions = _first_rows(known[0][variable], levels)
        if positions is not None:
            return known[1][np.ix_(positions, columns)]
    small = frame.iloc[np.zeros(len(levels), dtype=np.intp)]
    original = frame[variable]
    if isinstance(original.dtype, pd.CategoricalDtype):
        values = pd.Categorical(levels, categories=original.cat.categories)
    else:
        values = pd.Series(levels, index=small.index, dtype=original.dtype)
    small = small.assign(**{variable: values})
    design = view.design(small, f"the levels of {variable}")
    if not np.all(np.isfinite(design)):
        raise EstimationError(
            f"rebuilding the design for the levels of {variable} gave missing or non-finite values"
        )
    return design[:, columns]


def _first_rows(values: pd.Series, levels: list[object]) -> np.ndarray | None:
    """The position of the first row holding each of ``levels`` (None where one has none)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        categories = values.cat.categories
        if any(level not in categories for level in levels):
            return None
        codes = np.asarray(values.array.codes)
        wanted = categories.get_indexer(levels)
    else:
        codes, uniques = pd.factorize(values.to_numpy())
        wanted = pd.Index(uniques).get_indexer(levels)
        if (wanted < 0).any():
            return None
    found, first = np.unique(codes, return_index=True)
    at = np.searchsorted(found, wanted)
    at = np.minimum(at, len(found) - 1)
    if len(found) == 0 or not np.array_equal(found[at], wanted):
        return None
    return first[at]


def _own_columns(fit: object, view: _ModelView, variables: list[str]) -> dict[str, int]:
    """Numeric variables that enter the design only as their own column, unchanged (formulaic
    term ``x``, a lookup, in no other term): dX/dx is that column's unit vector, so margins
    need no perturbed designs. Positions are in the design's columns (``fit.x_names``)."""
    spec = getattr(fit, "model_spec", None)
    terms = getattr(spec, "terms", None)
    x_names = [str(name) for name in (getattr(fit, "x_names", None) or [])]
    if not terms or not x_names or len(x_names) != len(view.slope_positions):
        return {}
    readers = _readers(terms)
    found: dict[str, int] = {}
    for variable in variables:
        uses = readers.get(variable, [])
        own = len(uses) == 1 and variable in x_names
        if own:
            term, factor, _names = uses[0]
            method = getattr(getattr(factor, "eval_method", None), "value", None)
            own = len(term.factors) == 1 and str(factor.expr) == variable and method == "lookup"
        if own:
            found[variable] = x_names.index(variable)
    return found


def _chunks(tasks: list[_Task], n_rows: int) -> list[list[_Task]]:
    """Consecutive tasks whose distinct frames total at most BATCH_ROWS rows (one at least)."""
    chunks: list[list[_Task]] = []
    current: list[_Task] = []
    seen: set[int] = set()
    for task in tasks:
        new = {id(make) for _, make in task.frames} - seen
        if current and (len(seen) + len(new)) * n_rows > BATCH_ROWS:
            chunks.append(current)
            current, seen = [], set()
            new = {id(make) for _, make in task.frames}
        current.append(task)
        seen |= new
    if current:
        chunks.append(current)
    return chunks


def _build_designs(
    view: _ModelView,
    chunk: list[_Task],
    known: tuple[pd.DataFrame, np.ndarray] | None = None,
) -> dict[int, np.ndarray]:
    """Designs of the chunk's distinct frames, rebuilt through the formula in one call;
    ``known`` = (frame, its design) is taken as it is (the caller's estimation design)."""
    makers: dict[int, tuple[str, Callable[[], pd.DataFrame]]] = {}
    for task in chunk:
        for what, make in task.frames:
            makers.setdefault(id(make), (what, make))
    designs: dict[int, np.ndarray] = {}
    if known is not None:  # changes of a numeric variable: the known design, edited
        for key, (_what, make) in makers.items():
            edited = _edited_design(view, make, known)
            if edited is not None:
                designs[key] = edited
    frames = {key: make() for key, (_, make) in makers.items() if key not in designs}
    if known is not None:
        for key, frame in frames.items():
            if frame is known[0]:
                designs[key] = known[1]
    wanted = [key for key in makers if key not in designs]
    if not wanted:
        return designs
    pieces = [frames[key] for key in wanted]
    stacked = pieces[0] if len(pieces) == 1 else pd.concat(pieces, ignore_index=True)
    design = view.design(stacked, "the margins")
    start = 0
    for key, frame in zip(wanted, pieces, strict=True):
        piece = design[start : start + len(frame)]
        start += len(frame)
        if not np.all(np.isfinite(piece)):
            raise EstimationError(
                f"rebuilding the design for {makers[key][0]} gave missing or non-finite values "
                "(e.g. the log of a non-positive number)"
            )
        designs[key] = piece
    return designs


def _edited_design(
    view: _ModelView, make: Callable[[], pd.DataFrame], known: tuple[pd.DataFrame, np.ndarray]
) -> np.ndarray | None:
    """The design of ``make()``, a numeric variable of the known frame set to new values, as
    the known design with the variable's columns written anew, where the variable enters the
    design only as its own column or a log, exp or sqrt of it (each a term of its own): what
    rebuilding the changed frame through the formula gives, bit for bit (the same values
    through the same functions; every other column is the known one). ``None`` otherwise."""
    change = getattr(make, "change", None)
    if change is None or change[0] is not known[0]:
        return None
    _frame, variable, value = change
    columns = _numeric_columns(view, variable)
    if not columns:
        return None
    values = np.broadcast_to(np.asarray(value, dtype=np.float64), (len(known[0]),))
    design = known[1].copy(order="K")  # the known design's layout
    for position, function in columns:
        if function is None:
            design[:, position] = values
        else:
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                design[:, position] = function(values)
    return design


def _numeric_columns(view: _ModelView, variable: str) -> list[tuple[int, Any]] | None:
    """(position in the fit's design, function or None) of each column that reads
    ``variable``, where each is the variable itself or a log, exp or sqrt of it alone (a term
    of one numeric factor, ``chunks.rhs_plan``'s recipes); ``None`` where some column reads it
    otherwise (a product, a factor, a term formulaic builds) or the plan is unknown."""
    spec = getattr(view.fit, "model_spec", None)
    plan = None if spec is None else rebuild_plan(spec)
    x_names = [str(name) for name in (getattr(view.fit, "x_names", None) or [])]
    if plan is None or plan["reduced"] is not None or not x_names:
        return None
    position = {name: j for j, name in enumerate(x_names)}
    found: list[tuple[int, Any]] = []
    for column, read in plan["direct"]:
        if read == variable and plan["names"][column] in position:
            found.append((position[plan["names"][column]], None))
    for columns, recipes in plan["computed"]:
        for column, recipe in zip(columns, recipes, strict=True):
            if recipe[0] != "product":
                continue
            factors = [factor for factor, _j in recipe[1]]
            if not any(factor[1] == variable for factor in factors):
                continue
            if len(factors) != 1 or factors[0][0] != "numeric" or factors[0][2] is None:
                return None  # a product with another factor, or a factor coding of it
            if plan["names"][column] in position:
                found.append((position[plan["names"][column]], factors[0][2]))
    return found


def margins(
    fit: object,
    data: pd.DataFrame | str | PathLike,  # or a dask DataFrame
    variables: str | Sequence[str] | None = None,
    at: Mapping[str, object] | Sequence[Mapping[str, object]] | None = None,
    by: str | Sequence[str] | None = None,
    at_means: bool = False,
    kind: str = "ame",
    base: Mapping[str, object] | None = None,
    outcome_labels: Sequence[object] | None = None,
    level: float = 95.0,
    engine: str | None = None,
    design: np.ndarray | None = None,
    cap: Mapping[str, float] | None = None,
    levels: Mapping[str, Sequence[object]] | None = None,
) -> MarginsResult:
    """Stata's ``margins``: predictive margins and marginal effects with delta-method errors.

    Parameters
    ----------
    fit : Fit
        A fitted model (:func:`buzzpipe.fit`); ``fit.margins(data, ...)`` is the same call.
    data : pandas.DataFrame, Parquet path or dask DataFrame
        The data the model was fitted on; the estimation sample is its rows ``fit.row_ids``.
        A path or a dask DataFrame gives the margins as sums over chunks (``engine`` "stream"
        or "dask"; continuous variables only, see docs/scale.md).
    variables : str, list of str or "*", optional
        The variables whose effects are wanted; ``None`` gives predictive margins (average
        predicted probabilities) and ``"*"`` every right-hand-side variable (``dydx(*)``).
    at : dict or list of dict, optional
        Values set for every firm: ``{"x": [0, 2]}`` gives one scenario per value (lists combine
        as a Cartesian product).
    by : str or list of str, optional
        Average within groups (Stata's ``over()``); compare them with ``group_contrasts()``.
    at_means : bool, default False
        Stata's ``atmeans``: other numeric variables at their means, factor indicators at their
        shares.
    kind : {"ame", "discrete", "plus_one", "eyex", "dyex", "eydx"}, default "ame"
        ``"ame"``: average derivatives of continuous variables, discrete changes from the base
        level of factors; ``"discrete"``: every variable as a factor (a 0/1 indicator gives
        1 vs 0); ``"plus_one"``: the change from x to x + 1 for every firm; the others Stata's
        elasticities.
    base : dict, optional
        Base levels of factors (default the lowest level).
    outcome_labels : list, optional
        Names of the ordered logit's outcome categories (default the fitted values).
    level : float, default 95.0
        Confidence level in percent.
    engine : {"stream", "dask"}, optional
        For ``data`` given as a path: how the chunks are read (default "stream").
    design : numpy.ndarray, optional
        The estimation sample's design as the fit saw it (rows ``fit.row_ids`` in that order,
        columns ``fit.x_names``, e.g. ``fit.design_matrix(data)`` kept from an earlier call):
        margins on the observed data then build no design. It must come from the same ``data``.
    cap : dict, optional
        With ``kind="plus_one"``: an upper bound of a variable's range (``{"breadth": 6}``, a
        count of partner types that cannot exceed six); rows already at it are held there, so
        their change is zero and the average is over every row (their designs are rebuilt).
    levels : dict, optional
        A factor's levels whose changes from the base are reported, in order (default: the
        levels the estimation sample holds); margins over chunks give every chunk the whole
        sample's levels, so that a chunk lacking one still adds its rows' change to it.

    Returns
    -------
    MarginsResult
        ``table`` (term, contrast, at, group, outcome, estimate, se, z or t, p, interval),
        ``vcov`` (joint covariance of the rows) and ``jacobian`` (their derivatives in the fit's
        parameters), so rows can be contrasted or tested with :func:`buzzpipe.wald_test`.

    Notes
    -----
    Derivatives go through the fitted specification, as Stata's do: a model with ``log(x)``
    gives the effect of ``x``, interactions and factors are handled through the formula. Weights
    and offsets of the fit are used. The reference is the fit's (t for the LPM). The ordered logit
    gives one row per outcome category. Continuous variables that enter the model only as
    their own column (``x``, not ``log(x)`` or ``x:z``) are differentiated analytically
    (dP/dx = f(xb) b_x, with an analytic Jacobian; a +1 change adds 1 to that column); the others
    go through designs rebuilt from perturbed data, each built once.

    Examples
    --------
    >>> import buzzpipe as bp
    >>> firms = bp.synthesize("norway2010", seed=1, firms=500).analysis_frame()
    >>> product = bp.fit("product ~ breadth_regional + breadth_international + log(employees)",
    ...                  firms, vcov="robust")
    >>> ame = bp.margins(product, firms, ["breadth_international", "employees"])
    >>> print(ame.table[["estimate", "se"]].round(4).to_string())
                                  estimate      se
    margin
    breadth_international: dy/dx    0.0707  0.0226
    employees: dy/dx                0.0019  0.0018
    >>> one_more = product.margins(firms, "breadth_international", kind="plus_one")
    >>> round(float(one_more.estimate.iloc[0]), 4)
    0.0712
    >>> scenarios = bp.margins(product, firms, at={"breadth_international": [0, 2]})
    >>> round(float(scenarios.at_contrasts().estimate.iloc[0]), 4)
    0.1443
    """
    if not isinstance(data, pd.DataFrame):  # a Parquet path or a dask DataFrame: sums by chunk
        return _streamed_margins(
            fit,
            data,
            variables,
            at=at,
            by=by,
            at_means=at_means,
            kind=kind,
            base=base,
            outcome_labels=outcome_labels,
            level=level,
            engine=engine,
            cap=cap,  # row by row, so each chunk holds its own rows at the bound
            levels=levels,
        )
    return _result(
        *_in_memory(
            fit,
            data,
            variables,
            at=at,
            by=by,
            at_means=at_means,
            kind=kind,
            base=base,
            outcome_labels=outcome_labels,
            level=level,
            design=design,
            cap=cap,
            levels=levels,
        )
    )


def margin_rows(
    fit: object, data: pd.DataFrame, variables: str | Sequence[str] | None = None, **options
) -> list[tuple[str, dict[str, object]]]:
    """The rows of ``margins(fit, data, variables, **options).table`` as (label, {column:
    value}), the same numbers, without the tables (in memory; ``data`` a DataFrame)."""
    labels, described, estimate, covariance, _jacobian, _names, df, level = _in_memory(
        fit, data, variables, **options
    )
    columns = {
        name: values.tolist()
        for name, values in inference_columns(estimate, covariance, df, level).items()
    }
    keys = ("term", "contrast", "at", "group", "outcome")
    return [
        (
            label,
            {
                **dict(zip(keys, parts, strict=True)),
                **{name: values[i] for name, values in columns.items()},
            },
        )
        for i, (label, parts) in enumerate(zip(labels, described, strict=True))
    ]


def table_rows(table: pd.DataFrame) -> list[tuple[str, dict[str, object]]]:
    """A margins table's rows as (label, {column: value}), without a Series per row."""
    columns = {name: table[name].tolist() for name in table.columns}
    return [
        (str(label), {name: values[i] for name, values in columns.items()})
        for i, label in enumerate(table.index)
    ]


class _Prepared:
    """What margins read of a fit and its estimation sample whatever they are asked for: the
    sample, its model variables and factors, the fit's view, the averager, the model frame and
    the known design, the variables computed from their own columns or terms. Made once for
    every margins call on the same data inside ``chunks.reading(data)`` (:func:`_prepared`):
    the margins of a model are usually several calls (dy/dx, +1, the other regressors)."""

    def __init__(
        self, fit: object, data: pd.DataFrame, by: Any, at_means: bool, design: Any
    ) -> None:
        self.fit, self.data, self.by, self.at_means, self.given = fit, data, by, at_means, design
        self.sample = _estimation_sample(fit, data)
        self.model_variables = _model_variables(fit, self.sample)
        self.factors = _factor_variables(fit, self.sample, self.model_variables)

    @cached_property
    def view(self) -> _ModelView:
        return _ModelView(self.fit, self.sample)

    @cached_property
    def groups(self) -> tuple[np.ndarray, list[str]]:
        return _groups(self.sample, self.by)

    @cached_property
    def averager(self) -> _Averager:
        codes, labels = self.groups
        weights = _sample_weights(self.fit, self.sample)
        return _Averager(weights, codes, len(labels), self.at_means)

    @cached_property
    def model_frame(self) -> pd.DataFrame:
        """The sample's columns the formula reads (copies carry only those); inside
        ``chunks.reading(sample)`` the selection is made once for every fit on the sample."""
        sample, names = self.sample, self.model_variables
        return chunks.derived(sample, tuple(names), "model frame", lambda: sample[names])

    @cached_property
    def known(self) -> tuple[pd.DataFrame, np.ndarray] | None:
        """(the model frame, the given design of the sample), None without one."""
        if self.given is None:
            return None
        design = np.asarray(self.given, dtype=float)
        positions = self.view.slope_positions
        if design.shape != (len(self.sample), len(positions)):
            raise InputError(
                "design= has the wrong shape",
                value=str(design.shape),
                expected=f"({len(self.sample)}, {len(positions)}): the estimation sample "
                "by the fit's columns",
            )
        return self.model_frame, design

    @cached_property
    def vcov(self) -> np.ndarray:
        """The fit's covariance as an array, for every call's delta method (a DataFrame's
        conversion is not free: 32 calls a norway2010 battery)."""
        return np.asarray(self.fit.vcov, dtype=float)

    @cached_property
    def own_columns(self) -> dict[str, int]:
        numeric = [v for v in self.model_variables if v not in self.factors]
        return _own_columns(self.fit, self.view, numeric)

    @cached_property
    def own_terms(self) -> dict[str, list[int]]:
        coded = [v for v in self.model_variables if v in self.factors]
        return _own_terms(self.fit, self.view, coded, self.model_variables)


def _prepared(fit: object, data: pd.DataFrame, by: Any, at_means: bool, design: Any) -> _Prepared:
    """The fit's :class:`_Prepared` on ``data``: kept inside ``chunks.reading(data)`` for the
    same fit, ``by``, ``at_means`` and design object (it holds them, so their ids stay theirs),
    else made anew."""
    grouping = tuple(by) if isinstance(by, list | tuple) else by
    key = ("margins of a fit", id(fit), grouping, bool(at_means), id(design))
    found = chunks.derived(
        data, key, "prepared", lambda: _Prepared(fit, data, by, at_means, design)
    )
    if found.fit is fit and found.data is data and found.given is design:
        return found
    return _Prepared(fit, data, by, at_means, design)


def _in_memory(
    fit: object,
    data: pd.DataFrame,
    variables: str | Sequence[str] | None = None,
    at: Mapping[str, object] | Sequence[Mapping[str, object]] | None = None,
    by: str | Sequence[str] | None = None,
    at_means: bool = False,
    kind: str = "ame",
    base: Mapping[str, object] | None = None,
    outcome_labels: Sequence[object] | None = None,
    level: float = 95.0,
    design: np.ndarray | None = None,
    cap: Mapping[str, float] | None = None,
    levels: Mapping[str, Sequence[object]] | None = None,
) -> tuple:
    """:func:`margins` on a DataFrame, before any table: :func:`_result`'s arguments (labels,
    their descriptions, the estimates, their covariance and Jacobian, the fit's names, the
    reference df, the level)."""
    if kind not in KINDS:
        raise InputError("unknown margins kind", value=kind, expected=" or ".join(KINDS))
    prepared = _prepared(fit, data, by, at_means, design)
    sample, model_variables, factors = prepared.sample, prepared.model_variables, prepared.factors
    if variables == "*":  # Stata's dydx(*): every variable on the right-hand side
        numeric_only = kind == "plus_one" or kind in ELASTICITIES  # factors have neither
        chosen = [v for v in model_variables if not (numeric_only and v in factors)]
    else:
        chosen = [variables] if isinstance(variables, str) else list(variables or [])
    for variable in chosen:
        if variable not in model_variables:
            raise InputError(
                "is not a variable on the right-hand side of the model",
                column=variable,
                expected="one of " + ", ".join(model_variables),
            )
    scenarios = _expand_at(at)
    for scenario in scenarios:
        for variable, value in scenario.items():
            if variable not in sample.columns:
                raise InputError("at= names a column the data lacks", column=variable)
            column = sample[variable]
            if isinstance(column.dtype, pd.CategoricalDtype) and value not in set(
                column.cat.categories
            ):
                raise InputError(
                    "at= sets a level the factor does not have",
                    column=variable,
                    value=value,
                    expected=", ".join(map(str, column.cat.categories)),
                )
    view, averager = prepared.view, prepared.averager
    codes, group_labels = prepared.groups
    n_outcomes = view.outcomes.n_outcomes
    if view.outcomes.ordered:
        outcome_names = [
            _format_level(label)
            for label in (
                outcome_labels or getattr(fit, "category_values", None) or range(1, n_outcomes + 1)
            )
        ]
        if len(outcome_names) != n_outcomes:
            raise InputError(
                "outcome_labels has the wrong length",
                value=len(outcome_names),
                expected=str(n_outcomes),
            )
    else:
        outcome_names = [""]

    labels: list[str] = []
    described: list[tuple[str, str, str, str, str]] = []
    values: list[np.ndarray] = []
    jacobians: list[np.ndarray] = []

    def add(
        term: str, contrast: str, at_text: str, value: np.ndarray, jacobian: np.ndarray
    ) -> None:
        for r, group in enumerate(group_labels):
            for k, outcome in enumerate(outcome_names):
                labels.append(_row_label(term, contrast, at_text, group, outcome))
                described.append((term, contrast, at_text, group, outcome))
                values.append(value[r, k])
                jacobians.append(jacobian[r, k])

    model_frame, known = prepared.model_frame, prepared.known
    tasks = _plan(
        fit,
        sample,
        scenarios,
        chosen,
        kind,
        base,
        at_means,
        averager,
        codes,
        model_variables,
        {v: prepared.own_columns[v] for v in chosen if v in prepared.own_columns},
        model_frame,
        factors,
        cap,
        {v: prepared.own_terms[v] for v in chosen if v in prepared.own_terms},
        view,
        levels,
        known,
    )
    offset = view.offset
    # the average prediction at a factor's base level, by (frame, the term's columns, the base's
    # values there): one evaluation for all the factor's contrasts
    at_reference: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
    for chunk in _chunks(tasks, len(sample)):
        designs = _build_designs(view, chunk, known)
        together = _own_derivatives(view, averager, chunk, designs, offset)
        # the average prediction at a frame's design, by the frame: every +1 change of an own
        # column is taken from the same observed data (its designs live as long as the chunk)
        at_frame: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        # one writable copy of a design for all its +1 and level changes, each task's columns
        # written and set back (a copy of the design per task before: the same numbers)
        scratches: dict[int, np.ndarray] = {}
        for task in chunk:
            built = [designs[id(make)] for _, make in task.frames]
            if id(task) in together:
                value, jacobian = together[id(task)]
            elif task.kind == "prediction":
                value, jacobian = _prediction_terms(view, averager, built[0], offset)
            elif task.kind in ("change", "shift", "level"):
                put_back = None  # the columns of a scratch copy to set back after this task
                if task.kind == "shift":  # x + 1 in the variable's own column
                    observed = id(task.frames[0][1])
                    if observed not in at_frame:
                        at_frame[observed] = _prediction_terms(view, averager, built[0], offset)
                    column = built[0][:, task.column]
                    changed = _scratch(scratches, built[0])
                    if task.bound is None:
                        changed[:, task.column] = column + 1.0
                    else:  # rows at the bound held there
                        changed[:, task.column] = np.where(
                            column < task.bound, column + 1.0, column
                        )
                    put_back = [task.column]
                    built = [changed, at_frame[observed]]
                elif task.kind == "level":  # the factor's term columns at each level
                    changed = _scratch(scratches, built[0])
                    key = (id(task.frames[0][1]), tuple(task.columns), task.rows[1].tobytes())
                    if key not in at_reference:  # every level's contrast has the same base
                        changed[:, task.columns] = task.rows[1]
                        at_reference[key] = _prediction_terms(view, averager, changed, offset)
                    changed[:, task.columns] = task.rows[0]
                    put_back = task.columns
                    built = [changed, at_reference[key]]
                value_1, jacobian_1 = _prediction_terms(view, averager, built[0], offset)
                if put_back is not None:  # the scratch copy is its design again
                    original = designs[id(task.frames[0][1])]
                    built[0][:, put_back] = original[:, put_back]
                value_0, jacobian_0 = (
                    built[1]
                    if isinstance(built[1], tuple)
                    else _prediction_terms(view, averager, built[1], offset)
                )
                value, jacobian = value_1 - value_0, jacobian_1 - jacobian_0
            elif task.column is not None:
                value, jacobian = _derivative_terms(
                    view, averager, built[0], task.column, offset, task.elasticity, task.values
                )
            else:
                slope = (built[1] - built[2]) / task.step[:, None]
                value, jacobian = _derivative_terms(
                    view, averager, built[0], slope, offset, task.elasticity, task.values
                )
            add(task.term, task.contrast, task.at_text, value, jacobian)
        del designs

    jacobian = np.vstack(jacobians)
    covariance = jacobian @ prepared.vcov @ jacobian.T
    return (
        labels,
        described,
        np.array(values),
        covariance,
        jacobian,
        view.names,
        reference_df(fit),
        level,
    )


# --------------------------------------------------------------------------------------------
# Over chunks: Parquet row groups or Dask partitions
# --------------------------------------------------------------------------------------------
# Margins as sums over chunks: Stata's ``margins`` on data streamed from Parquet or on Dask.
#
# An average marginal effect, a +1 change or an elasticity, overall or ``by`` group and ``at``
# given values, is a weighted mean over the estimation sample of a per-row quantity, and so is its
# Jacobian in the parameters. Each chunk computes its rows' weighted sums through the in-memory
# ``margins`` (its means times its weight totals), the sums are added over chunks, and the delta
# method runs once at the end under the fit's covariance: the same numbers as in memory (1e-10 is
# tested). The estimation sample is the fit's (its row ids are global row positions).
#
# Not streamed yet (a clear error): effects of factor variables (their levels would have to be
# fixed across chunks) and ``at_means`` (a first pass for the means).


def _count(frame, where, first_row) -> int:
    return len(frame)


def _chunk_levels(frame, where, first_row, excluded, variables) -> dict[str, set]:
    """The levels of each factor ``variables`` the chunk's rows of the estimation sample hold."""
    ids = first_row + np.arange(len(frame), dtype=np.int64)
    rows = frame.loc[~np.isin(ids, excluded)] if excluded.size else frame
    return {variable: set(_levels(rows[variable])) for variable in variables}


def _ordered_levels(column: pd.Series, present: set) -> list[object]:
    """The levels ``present`` somewhere in the sample in :func:`_levels`' order: a
    categorical's category order, else sorted."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return [level for level in column.cat.categories if level in present]
    return sorted(present)


def _chunk_margin_sums(frame, where, first_row, fit, excluded, options) -> dict:
    ids = first_row + np.arange(len(frame), dtype=np.int64)
    sample = ids[~np.isin(ids, excluded)] if excluded.size else ids
    if sample.size == 0:
        return {}
    frame = frame.set_axis(pd.Index(ids), axis=0)
    result = margins(replace(fit, row_ids=pd.Index(sample)), frame, **options)
    rows = frame.loc[sample]
    weights = np.ones(len(rows)) if fit.weights is None else rows[fit.weights].to_numpy(np.float64)
    by = options.get("by")
    if by is None:
        totals = {"": float(weights.sum())}
    else:
        codes, labels = _groups(rows, by)
        sums = np.bincount(codes, weights=weights, minlength=len(labels))
        totals = dict(zip(labels, sums.tolist(), strict=True))
    table, jacobian = result.table, result.jacobian.to_numpy()
    estimates = result.estimate.to_numpy()
    out = {}
    for position, (label, row) in enumerate(table.iterrows()):
        total = totals[row["group"]]
        described = (row["term"], row["contrast"], row["at"], row["group"], row["outcome"])
        out[label] = {
            "order": [(first_row, position, described)],
            "total": total,
            "estimate": total * float(estimates[position]),
            "jacobian": total * jacobian[position],
        }
    return out


def _excluded_rows(row_ids: pd.Index, n_rows: int) -> np.ndarray:
    """The row positions of ``n_rows`` outside a fit's estimation sample (sorted): none, and no
    per-row array, where the sample is every row (its ids a RangeIndex of them)."""
    if isinstance(row_ids, pd.RangeIndex) and row_ids.equals(pd.RangeIndex(n_rows)):
        return np.zeros(0, dtype=np.int64)
    return np.setdiff1d(np.arange(n_rows, dtype=np.int64), np.asarray(row_ids))


def streamed_levels(fit, source, variables: Sequence[str]) -> dict[str, list[object]]:
    """The levels of each factor ``variables`` in ``fit``'s estimation sample of the chunk
    source ``source`` (its rows' ids are their positions), in :func:`_levels`' order: the
    levels the streamed margins contrast (``levels=`` passes them), found where the chunks
    are."""
    excluded = _excluded_rows(fit.row_ids, source.map_reduce(_count))
    return _sample_levels(source, source.head(256), excluded, list(variables))


def _sample_levels(source, head, excluded, factors) -> dict[str, list[object]]:
    present = source.map_reduce(_chunk_levels, excluded, factors)
    return {variable: _ordered_levels(head[variable], present[variable]) for variable in factors}


def _streamed_margins(
    fit, data, variables=None, *, engine: str | None = None, scheduler=None, **options
) -> MarginsResult:
    """``margins(fit, data, ...)`` with ``data`` a Parquet path or a dask DataFrame."""
    from buzzpipe.estimate import engines

    engine = engines.check_engine(engine or engines.default_engine(data))
    source = engines.source_for(data, engine, scheduler=scheduler)
    if options.get("at_means"):
        raise InputError(
            "at_means is not streamed yet", expected="engine='memory', or at= with values"
        )
    head = source.head(256)
    names = _model_variables(fit, head)
    wanted = (
        names
        if variables is None
        else ([variables] if isinstance(variables, str) else list(variables))
    )
    found = _factor_variables(fit, head, wanted)
    factors = [v for v in wanted if v in found]
    if factors and (options.get("by") is not None or options.get("at")):
        raise InputError(
            "effects of factor variables by group or at values are not streamed yet",
            value=factors,
            expected="continuous variables=, or engine='memory'",
        )
    n_rows = source.map_reduce(_count)
    excluded = _excluded_rows(fit.row_ids, n_rows)
    if factors and options.get("levels") is None:  # every chunk contrasts the sample's levels
        options["levels"] = _sample_levels(source, head, excluded, factors)
    options = dict(options, variables=wanted)
    level = options.get("level", 95.0)
    sums = source.map_reduce(_chunk_margin_sums, fit, excluded, options)
    labels = sorted(sums, key=lambda label: min(sums[label]["order"])[:2])
    described = [min(sums[label]["order"])[2] for label in labels]
    estimate = np.array([sums[label]["estimate"] / sums[label]["total"] for label in labels])
    jacobian = np.vstack([sums[label]["jacobian"] / sums[label]["total"] for label in labels])
    covariance = jacobian @ fit.vcov.to_numpy() @ jacobian.T
    return _result(
        labels,
        described,
        estimate,
        covariance,
        jacobian,
        list(fit.params.index),
        reference_df(fit),
        level,
    )
