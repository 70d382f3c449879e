"""The model specification fixed once, and designs built per chunk of rows from it.

A formula's design is not built from the whole data at once: the formulaic specification (factor
levels, column order) is fixed first from a small *level frame* (one row per distinct value of
every variable that enters a categorical term, among the rows the model can use), then each chunk
of rows (a block of a DataFrame, a Parquet row group, a Dask partition) is turned into its own
arrays through that specification. The same rows give the same design whatever the chunking.

::

    spec = specification(formula, level_frame, weights="w", cluster="region", offset=None)
    chunk = build_chunk(spec, frame, where="part.0.parquet", first_row=0)
    chunk.X, chunk.y, chunk.weights, chunk.offset, chunk.clusters, chunk.row_ids

Listwise deletion is Stata's, as in ``design.build_design``: a row missing any variable the model
uses, or whose transformed value is not finite, or with a zero weight, is left out. A factor level
that the fixed specification does not know is an error naming the chunk.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from formulaic import Formula, model_matrix
from formulaic.errors import DataMismatchWarning

from buzzpipe.errors import InputError

__all__ = [
    "FORMULA_CONTEXT",
    "parse_outcome",
    "ModelSpecification",
    "DesignChunk",
    "head_specification",
    "level_rows",
    "specification",
    "usable_rows",
    "build_chunk",
]


# functions a formula may call beyond formulaic's own transforms (C, I, center, scale, ...)
FORMULA_CONTEXT: dict[str, Any] = {"log": np.log, "exp": np.exp, "sqrt": np.sqrt}


def parse_outcome(formula: str) -> str:
    """The outcome of ``formula``; a clear error unless it is 'outcome ~ regressors'."""
    try:
        parsed = Formula(formula)
    except Exception as error:
        raise InputError(f"cannot parse the formula: {error}", value=formula) from None
    if not hasattr(parsed, "lhs") or len(parsed.lhs) != 1:
        raise InputError(
            "the formula needs exactly one outcome left of '~'",
            value=formula,
            expected="'outcome ~ regressors'",
        )
    return str(parsed.lhs[0])


@dataclass
class ModelSpecification:
    """What turns any chunk of rows into design arrays: formulaic's specs plus the roles."""

    formula: str
    outcome: str
    specs: Any  # formulaic ModelSpecs (lhs, rhs)
    names: list[str]  # design columns, formulaic's order
    variables: list[str]  # data columns the formula reads
    level_variables: list[str]  # of those, the ones entering a categorical term
    stateful: bool  # a stateful transform (center, scale, ...) learnt from data
    weights: str | None = None
    cluster: str | None = None
    offset: str | None = None
    cluster_labels: np.ndarray | None = None  # sorted distinct cluster values of the sample
    keep_columns: list[int] | None = None  # positions of ``names`` estimated (collinearity)
    ordinal_values: np.ndarray | None = None  # ologit: outcome values -> codes 0..J-1
    # row ids whose transformed values are not finite (log(0)): left out before the design is
    # built, so that a level only they hold is unknown to the specification without error
    excluded: np.ndarray | None = None
    # (design column, value): rows whose column holds that value leave the sample (Stata's rule
    # for an indicator cell that predicts the outcome perfectly)
    drop_cells: tuple[tuple[int, float], ...] = ()
    notes: list[str] = field(default_factory=list)
    plan: dict | None = None  # columns copied without formulaic (see ``_direct_plan``)

    @property
    def columns(self) -> list[str]:
        """Every data column a chunk needs."""
        roles = [self.weights, self.cluster, self.offset]
        return list(dict.fromkeys([*self.variables, *(c for c in roles if c is not None)]))

    @property
    def estimated_names(self) -> list[str]:
        if self.keep_columns is None:
            return list(self.names)
        return [self.names[j] for j in self.keep_columns]


@dataclass
class DesignChunk:
    """The design arrays of one chunk's estimation-sample rows."""

    X: np.ndarray
    y: np.ndarray
    weights: np.ndarray | None
    offset: np.ndarray | None
    clusters: np.ndarray | None  # codes into the specification's cluster_labels
    row_ids: np.ndarray  # global row positions (Parquet, Dask) or index labels (DataFrame)
    n_rows: int  # rows in the chunk before deletion
    n_usable: int  # rows with every variable present (before formulaic's and the finite check)
    nonfinite: np.ndarray  # row ids dropped for a non-finite transform
    cluster_values: np.ndarray | None = None  # raw cluster values while no labels are fixed
    level_rows: pd.DataFrame | None = None  # one row per level of the kept rows (first passes)

    @property
    def nobs(self) -> int:
        return int(self.y.shape[0])

    def as_newton_chunk(self):
        return self.X, self.y, self.weights, self.offset

    def sums(self, family, params: np.ndarray, **options):
        """The fused kernel's sums over this chunk's rows (``kernel.block_sums`` options)."""
        from buzzpipe.estimate.kernel import block_sums

        return block_sums(family, params, self.X, self.y, self.weights, self.offset, **options)


def _plain(value: object) -> object:
    return value.item() if hasattr(value, "item") else value


def _materialise(formula: str, frame: pd.DataFrame):
    try:
        with np.errstate(divide="ignore", invalid="ignore"):
            return model_matrix(formula, frame, context=FORMULA_CONTEXT, na_action="drop")
    except Exception as error:  # formulaic raises many types for unknown names, levels, ...
        raise InputError(f"cannot build the design: {error}", value=formula) from None


def _roles_present(frame: pd.DataFrame, roles: dict[str, str | None]) -> None:
    for role, column in roles.items():
        if column is not None and column not in frame.columns:
            raise InputError(
                f"the {role} column is not in the data",
                column=column,
                expected="an existing column",
            )


def head_specification(formula: str, head: pd.DataFrame) -> tuple[list[str], list[str], bool]:
    """(variables, level variables, stateful) of ``formula``, learnt from a few rows.

    Which variables the formula reads and which of them enter categorical terms depends on the
    formula and the column types only, so a few rows tell.
    """
    matrices = _materialise(formula, head)
    rhs_spec = matrices.rhs.model_spec
    variables = sorted(
        set(rhs_spec.required_variables) | set(matrices.lhs.model_spec.required_variables)
    )
    categorical = [
        factor
        for factor, (kind, _state) in rhs_spec.encoder_state.items()
        if getattr(kind, "value", kind) == "categorical"
    ]
    level_variables = [
        variable
        for variable in variables
        if any(re.search(rf"(?<![\w.]){re.escape(variable)}(?![\w])", f) for f in categorical)
    ]
    stateful = bool(rhs_spec.transform_state) or bool(matrices.lhs.model_spec.transform_state)
    return variables, level_variables, stateful


def usable_rows(
    frame: pd.DataFrame,
    variables: Sequence[str],
    *,
    weights: str | None,
    cluster: str | None,
    offset: str | None,
    where: str | None = None,
) -> np.ndarray:
    """Rows with every variable present, a positive weight, a cluster and a finite offset.

    Negative or non-numeric weights are an error naming the rows (and ``where``, the chunk).
    """
    usable = np.ones(len(frame), dtype=bool)
    for variable in variables:  # column by column: no copy of the frame's columns
        usable &= frame[variable].notna().to_numpy()
    if cluster is not None:
        usable &= frame[cluster].notna().to_numpy()
    if offset is not None:
        values = pd.to_numeric(frame[offset], errors="coerce").to_numpy(np.float64)
        usable &= np.isfinite(values)
    if weights is not None:
        raw = frame[weights]
        values = pd.to_numeric(raw, errors="coerce")
        bad = (values.isna() & raw.notna()) | (values < 0)
        if bad.any():
            rows = list(frame.index[bad.to_numpy()])
            raise InputError(
                "sampling weights must be non-negative numbers",
                file=where,
                column=weights,
                rows=rows,
                value=_plain(raw.loc[rows[0]]),
                expected="a weight >= 0",
            )
        usable &= (values > 0).to_numpy()
    return usable


def level_rows(frame: pd.DataFrame, usable: np.ndarray, level_variables: Sequence[str]):
    """One row per distinct value of each level variable among the usable rows (a small frame)."""
    if not level_variables:
        return frame.iloc[:0]
    subset = frame.loc[usable]
    labels: set = set()
    for variable in level_variables:
        labels.update(subset[variable].drop_duplicates().index)
    return subset.loc[subset.index.isin(list(labels))]


def specification(
    formula: str,
    level_frame: pd.DataFrame,
    *,
    variables: list[str],
    level_variables: list[str],
    stateful: bool,
    weights: str | None = None,
    cluster: str | None = None,
    offset: str | None = None,
) -> ModelSpecification:
    """The specification learnt from ``level_frame`` (which must hold every level of the sample)."""
    outcome = parse_outcome(formula)
    matrices = _materialise(formula, level_frame)
    if matrices.lhs.shape[1] != 1:
        raise InputError(
            "the outcome must be one numeric column",
            column=outcome,
            value=list(matrices.lhs.columns),
            expected="a numeric 0/1 or ordinal outcome",
        )
    names = [str(name) for name in matrices.rhs.columns]
    return ModelSpecification(
        formula=formula,
        outcome=outcome,
        specs=matrices.model_spec,
        names=names,
        plan=_direct_plan(matrices.model_spec, names),
        variables=variables,
        level_variables=level_variables,
        stateful=stateful,
        weights=weights,
        cluster=cluster,
        offset=offset,
    )


def _chunk_matrices(spec: ModelSpecification, frame: pd.DataFrame, where: str | None):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataMismatchWarning)
        try:
            with np.errstate(divide="ignore", invalid="ignore"):
                return spec.specs.get_model_matrix(frame, na_action="drop", context=FORMULA_CONTEXT)
        except DataMismatchWarning as warning:
            raise InputError(
                "a factor level appears that the model specification does not know (the levels "
                f"were fixed from a first pass): {warning}",
                file=where,
            ) from None
        except Exception as error:
            raise InputError(f"cannot build the design: {error}", file=where) from None


def _direct_plan(specs, names: list[str]) -> dict | None:
    """Which design columns are a numeric data column as it stands (copied without formulaic),
    which is the intercept, and formulaic's specification of the other terms (``None`` where the
    outcome is not a plain column)."""
    lhs_factors = [f for term in specs.lhs.formula for f in term.factors]
    if len(lhs_factors) != 1 or getattr(lhs_factors[0].eval_method, "value", "") != "lookup":
        return None
    rhs = specs.rhs
    direct, intercept, others, positions = [], None, [], []
    for term, columns in rhs.term_indices.items():
        factors = list(term.factors)
        method = getattr(factors[0].eval_method, "value", "") if len(factors) == 1 else ""
        kind = rhs.encoder_state.get(factors[0].expr, (None,))[0] if len(factors) == 1 else None
        if len(columns) == 1 and method == "literal" and factors[0].expr == "1":
            intercept = columns[0]
        elif len(columns) == 1 and method == "lookup" and getattr(kind, "value", "") == "numerical":
            direct.append((columns[0], factors[0].expr))
        else:
            others.append(term)
            positions.extend(columns)
    reduced = rhs.subset(others) if others else None
    if reduced is not None and list(reduced.column_names) != [names[j] for j in positions]:
        return None
    return {
        "outcome": lhs_factors[0].expr,
        "direct": direct,
        "intercept": intercept,
        "reduced": reduced,
        "positions": positions,
    }


def _fill(spec: ModelSpecification, frame, subset, where, out):
    """(y, X, row positions in ``frame``) for the usable rows ``subset``: numeric columns copied
    directly, the other terms through formulaic (which drops rows where they are missing)."""
    plan = spec.plan
    if plan is None:
        matrices = _chunk_matrices(spec, subset, where)
        lhs, rhs = matrices.lhs, matrices.rhs
        if list(rhs.columns) != spec.names:  # formulaic drops no columns for a fixed spec
            raise InputError("the design's columns differ from the model specification", file=where)
        y = np.asarray(lhs, dtype=np.float64)[:, 0]
        if out is not None:
            X = out[: rhs.shape[0]]
            X[...] = rhs.to_numpy(dtype=np.float64)
        else:
            X = np.ascontiguousarray(rhs.to_numpy(dtype=np.float64))
        return y, X, frame.index.get_indexer(rhs.index)
    reduced = None
    if plan["reduced"] is not None:
        reduced = _chunk_matrices(replace(spec, specs=plan["reduced"]), subset, where)
        rows = subset.index.get_indexer(reduced.index)
    else:
        rows = slice(None)  # every usable row: columns are copied without indexing
    n = len(subset) if isinstance(rows, slice) else rows.shape[0]
    X = out[:n] if out is not None else np.empty((n, len(spec.names)))
    if reduced is not None and n:
        X[:, plan["positions"]] = reduced.to_numpy(dtype=np.float64)
    if plan["intercept"] is not None:
        X[:, plan["intercept"]] = 1.0
    if plan["direct"]:
        # gathered column by column into a (columns, rows) block, then one transposing copy:
        # writing a column of a row-major X straight away touches every cache line per column
        columns = [column for column, _variable in plan["direct"]]
        gathered = np.empty((len(columns), n))
        for j, (_column, variable) in enumerate(plan["direct"]):
            gathered[j] = subset[variable].to_numpy(dtype=np.float64)[rows]
        if columns == list(range(columns[0], columns[0] + len(columns))):
            X[:, columns[0] : columns[0] + len(columns)] = gathered.T
        else:
            X[:, columns] = gathered.T
    y = np.array(subset[plan["outcome"]].to_numpy(dtype=np.float64)[rows])
    if isinstance(rows, slice) and subset is frame:
        return y, X, np.arange(len(frame))
    return y, X, frame.index.get_indexer(subset.index[rows])


def build_chunk(
    spec: ModelSpecification,
    frame: pd.DataFrame,
    *,
    where: str | None = None,
    first_row: int | None = None,
    out: np.ndarray | None = None,
) -> DesignChunk:
    """The design of one chunk (``frame``) through ``spec``.

    Row ids are ``first_row + position`` when ``first_row`` is given (Parquet, Dask), else the
    frame's index labels. ``out``, when given, receives X (its first rows) instead of a new array.
    """
    if first_row is None:
        ids = np.asarray(frame.index)
    else:
        ids = first_row + np.arange(len(frame), dtype=np.int64)
    usable = usable_rows(
        frame,
        spec.variables,
        weights=spec.weights,
        cluster=spec.cluster,
        offset=spec.offset,
        where=where,
    )
    if spec.excluded is not None and spec.excluded.size:
        usable &= ~np.isin(ids, spec.excluded)
    subset = frame.loc[usable] if not usable.all() else frame
    y, X, positions = _fill(spec, frame, subset, where, out)
    finite = np.isfinite(y) & np.isfinite(X).all(axis=1)
    nonfinite = ids[positions[~finite]]
    if not finite.all():
        kept = int(finite.sum())
        X[:kept] = X[finite]
        X = X[:kept]
        y = y[finite]
        positions = positions[finite]
    if spec.drop_cells:
        kept_rows = np.ones(y.shape[0], dtype=bool)
        for column, value in spec.drop_cells:
            kept_rows &= X[:, column] != value
        if not kept_rows.all():
            kept = int(kept_rows.sum())
            X[:kept] = X[kept_rows]
            X, y, positions = X[:kept], y[kept_rows], positions[kept_rows]
    weights = None
    if spec.weights is not None:
        weights = pd.to_numeric(frame[spec.weights]).to_numpy(np.float64)[positions]
    offset = None
    if spec.offset is not None:
        offset = pd.to_numeric(frame[spec.offset], errors="coerce").to_numpy(np.float64)[positions]
    clusters = cluster_values = None
    if spec.cluster is not None and spec.cluster_labels is None:
        cluster_values = frame[spec.cluster].to_numpy()[positions]
    elif spec.cluster is not None:
        values = frame[spec.cluster].to_numpy()[positions]
        clusters = np.searchsorted(spec.cluster_labels, values).astype(np.intp)
        clusters = np.minimum(clusters, len(spec.cluster_labels) - 1)
        if values.size and not np.array_equal(spec.cluster_labels[clusters], values):
            raise InputError("a cluster value appears that the first pass did not see", file=where)
    levels = None
    if spec.cluster_labels is None and spec.keep_columns is None and spec.level_variables:
        # before estimation: the levels the kept rows hold, to check the specification's
        kept = np.zeros(len(frame), dtype=bool)
        kept[positions] = True
        levels = level_rows(frame, kept, spec.level_variables)
    if spec.keep_columns is not None and len(spec.keep_columns) != X.shape[1]:
        X = np.ascontiguousarray(X[:, spec.keep_columns])
    if spec.ordinal_values is not None:
        y = np.searchsorted(spec.ordinal_values, y).astype(np.float64)
    return DesignChunk(
        X=X,
        y=y,
        weights=weights,
        offset=offset,
        clusters=clusters,
        row_ids=ids[positions],
        n_rows=len(frame),
        n_usable=int(usable.sum()),
        nonfinite=nonfinite,
        cluster_values=cluster_values,
        level_rows=levels,
    )


def with_estimation(spec: ModelSpecification, **changes) -> ModelSpecification:
    """A copy with estimation settings (kept columns, ordinal codes, cluster labels) changed."""
    return replace(spec, **changes)
