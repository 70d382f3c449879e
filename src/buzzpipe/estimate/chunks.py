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

import functools
import itertools
import operator
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from formulaic import Formula, model_matrix
from formulaic.errors import DataMismatchWarning
from formulaic.transforms.contrasts import TreatmentContrasts

from buzzpipe.errors import InputError
from buzzpipe.estimate import simple_formula
from buzzpipe.estimate.kept import KeptByIdentity, KeptByKey

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


# Columns read once: inside ``reading(frame)``, each column of ``frame`` is taken from it once
# (a DataFrame's ``frame[name]`` costs about 10 us, and building a design read each column
# four to six times), and so are the arrays computed from a column (float values, presence,
# level codes) on frames of at most READ_MEMO_ROWS rows. The frames must not change in the block.
# id(frame) -> (frame, {what: value}) of the frames registered by the blocks open now
_READS: ContextVar[dict[int, tuple[pd.DataFrame, dict]] | None] = ContextVar(
    "buzzpipe_column_reads", default=None
)
READ_MEMO_ROWS = 200_000


@contextmanager
def reading(*frames: pd.DataFrame) -> Iterator[None]:
    """Read each column of ``frames`` once inside the block (a nested block adds its frames to
    the open memo and takes them out when it ends). The caller promises not to change the
    frames inside the block."""
    reads = _READS.get()
    token = _READS.set({}) if reads is None else None
    reads = _READS.get()
    added = []
    for frame in frames:
        if isinstance(frame, pd.DataFrame) and id(frame) not in reads:
            reads[id(frame)] = (frame, {})
            added.append(id(frame))
    try:
        yield
    finally:
        for key in added:
            del reads[key]
        if token is not None:
            _READS.reset(token)


def _memo(frame: pd.DataFrame) -> dict | None:
    reads = _READS.get()
    entry = None if reads is None else reads.get(id(frame))
    return None if entry is None or entry[0] is not frame else entry[1]


def column(frame: pd.DataFrame, name: str) -> pd.Series:
    """``frame[name]``, read once inside ``reading(frame)``."""
    memo = _memo(frame)
    if memo is None:
        return frame[name]
    found = memo.get(name)
    if found is None:
        found = memo[name] = frame[name]
    return found


def derived(frame: pd.DataFrame, name: str, what: Any, compute: Callable[[], Any]) -> Any:
    """``compute()``, an array computed from column ``name`` of ``frame`` (``what`` says which),
    kept inside ``reading(frame)`` for frames of at most READ_MEMO_ROWS rows."""
    memo = _memo(frame)
    if memo is None or len(frame) > READ_MEMO_ROWS:
        return compute()
    key = (name, what)
    if key not in memo:
        found = memo[key] = compute()
        if isinstance(found, np.ndarray):
            found.flags.writeable = False  # shared by every later reader in the block
    return memo[key]


def float_values(frame: pd.DataFrame, name: str) -> np.ndarray:
    """Column ``name`` as float64 (missing values NaN), read once inside ``reading(frame)``;
    not to be written to."""
    return derived(frame, name, "float64", lambda: column(frame, name).to_numpy(dtype=np.float64))


@functools.lru_cache(maxsize=1024)
def _parse(formula: str) -> Formula:
    """formulaic's parse of ``formula`` (a simple one read without its tokenizer)."""
    parsed = simple_formula.parse(formula)
    return Formula(formula) if parsed is None else parsed


def parse_outcome(formula: str) -> str:
    """The outcome of ``formula``; a clear error unless it is 'outcome ~ regressors'."""
    outcome, problem = _outcome_of(formula)
    if problem is not None:
        message, facts = problem
        raise InputError(message, **facts)
    return outcome


@functools.lru_cache(maxsize=1024)
def _outcome_of(formula: str) -> tuple[str | None, tuple[str, dict] | None]:
    """(outcome, None), or (None, (message, facts)) of the error: read once per formula (a
    parsed formula's sides are made anew by formulaic at each access, some 20 us)."""
    try:
        parsed = _parse(formula)
    except Exception as error:
        return None, (f"cannot parse the formula: {error}", {"value": formula})
    if not hasattr(parsed, "lhs") or len(parsed.lhs) != 1:
        return None, (
            "the formula needs exactly one outcome left of '~'",
            {"value": formula, "expected": "'outcome ~ regressors'"},
        )
    return str(parsed.lhs[0]), None


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
    # for an indicator cell that predicts the outcome perfectly); (columns, 0.0): rows whose
    # columns are all 0 (a factor's reference level that predicts it)
    drop_cells: tuple[tuple[int | tuple[int, ...], float], ...] = ()
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


def parsed_specification(
    formula: str, frame: pd.DataFrame
) -> tuple[list[str], list[str], bool] | None:
    """``head_specification``'s answer read from the parsed formula alone, where every factor is a
    data column, ``C(column)`` or log/exp/sqrt of a column (no stateful transform); ``None``
    otherwise (then formulaic decides on a few rows). A column enters categorical terms when it
    is wrapped in ``C()`` or its type is not numeric."""
    factors = _formula_factors(formula)
    if factors is None:
        return None
    variables, level_variables = set(), set()
    for variable, categorical in factors:
        if variable not in frame.columns:
            return None
        numeric = _numeric_type(column(frame, variable).dtype)
        if categorical is False and not numeric:
            return None
        variables.add(variable)
        if categorical or not numeric:
            level_variables.add(variable)
    return sorted(variables), sorted(level_variables), False


def _formula_factors(formula: str) -> tuple[tuple[str, bool | None], ...] | None:
    """(variable, categorical) of each factor of ``formula``'s two sides, in order (see
    :func:`_formula_sides`); ``None`` where some factor is none of those it reads."""
    sides = _formula_sides(formula)
    return None if sides is None else sides[0] + sides[1]


@functools.lru_cache(maxsize=1024)
def _formula_sides(formula: str) -> tuple[tuple[tuple[str, bool | None], ...], ...] | None:
    """(left, right): (variable, categorical) of each factor of each side of ``formula``, in
    order: True for ``C(column)``, False for log/exp/sqrt of a column, None for a plain column
    (its type decides); ``None`` where some factor is none of these. The formula alone decides,
    so it is read once per formula (``parsed_specification`` then looks at the columns' types)."""
    try:
        parsed = _parse(formula)
        sides = [parsed.lhs, parsed.rhs]
    except Exception:
        return None
    found: list[list[tuple[str, bool | None]]] = [[], []]
    for side, into in zip(sides, found, strict=True):
        for term in side:
            for factor in term.factors:
                method = getattr(factor.eval_method, "value", "")
                if method == "literal":
                    continue
                if method == "lookup":
                    into.append((factor.expr, None))
                elif method == "python" and (matched := _CATEGORICAL.match(factor.expr)):
                    into.append((matched.group(1), True))
                elif method == "python" and (matched := _TRANSFORM.match(factor.expr)):
                    into.append((matched.group(2), False))
                else:
                    return None
    return tuple(found[0]), tuple(found[1])


def right_hand_variables(formula: str) -> list[str] | None:
    """The data columns the right-hand side of ``formula`` reads, where its outcome is one plain
    column and every factor is one :func:`parsed_specification` reads (else ``None``)."""
    sides = _formula_sides(formula)
    if sides is None or len(sides[0]) != 1 or sides[0][0][1] is not None:
        return None
    return list(dict.fromkeys(variable for variable, _ in sides[1]))


def column_storage(values: pd.Series) -> tuple | None:
    """Where a column's values live in memory: equal for two columns that share it (a frame's
    shallow copies, its samples of every row), different for columns that do not; ``None`` for
    a type whose memory this does not read (then nothing is shared by it). Under pandas' copy
    on write, memory that a column still refers to is not changed in place."""
    buffers = _value_buffers(values)
    if buffers is None:
        return None
    return (
        values.dtype,
        len(values),
        tuple(
            (buffer.__array_interface__["data"][0], buffer.shape, buffer.strides, buffer.dtype.str)
            for buffer in buffers
        ),
    )


def _value_buffers(values: pd.Series) -> list[np.ndarray] | None:
    """The arrays that hold a column's values (:func:`column_storage`'s types), else None."""
    dtype = values.dtype
    array = values.array
    if isinstance(dtype, np.dtype):
        return [values.to_numpy()]
    if isinstance(dtype, pd.CategoricalDtype):
        return [np.asarray(array.codes)]
    if isinstance(getattr(array, "_data", None), np.ndarray) and isinstance(
        getattr(array, "_mask", None), np.ndarray
    ):  # pandas' nullable integers, floats and booleans: values and mask
        return [array._data, array._mask]
    return None


def same_values(first: pd.Series, second: pd.Series) -> bool:
    """Whether two columns of :func:`column_storage`'s types hold the same values bit for bit,
    wherever they live: the same type (a categorical's categories in the same order, of the
    same type) and equal bits in the arrays that hold the values (the codes; a nullable
    array's values and mask). About 2 us a column of a few thousand rows: what a caller pays
    to find a copy of columns it has seen (the battery's parts remake columns per outcome)."""
    if len(first) != len(second) or first.dtype != second.dtype:
        return False
    if isinstance(first.dtype, pd.CategoricalDtype):  # equal types may order their levels apart
        mine, theirs = first.dtype, second.dtype
        if mine is not theirs and (
            mine.categories.dtype != theirs.categories.dtype
            or not mine.categories.equals(theirs.categories)
        ):
            return False
    found, other = _value_buffers(first), _value_buffers(second)
    if found is None or other is None or len(found) != len(other):
        return False
    return all(_equal_bits(a, b) for a, b in zip(found, other, strict=True))


def _equal_bits(first: np.ndarray, second: np.ndarray) -> bool:
    """Whether two arrays of one type hold the same bits (floats compared as their bits: -0.0
    is not 0.0); False for types compared otherwise (objects)."""
    if first.dtype != second.dtype or first.shape != second.shape:
        return False
    kind = first.dtype.kind
    if kind in "fc" and first.dtype.itemsize in (2, 4, 8):
        bits = np.dtype(f"u{first.dtype.itemsize}")
        return bool(np.array_equal(first.view(bits), second.view(bits)))
    if kind in "iub":
        return bool(np.array_equal(first, second))
    return False


# whether a column type is numeric and not boolean, by the type (pandas' checks of a type
# cost a few microseconds each, and a design asks for every factor of its formula)
_NUMERIC_TYPES: dict[Any, bool] = {}


def _numeric_type(dtype: Any) -> bool:
    """Numeric and not boolean: what ``parsed_specification`` reads as a continuous column."""
    try:
        return _NUMERIC_TYPES[dtype]
    except (KeyError, TypeError):  # a new type, or one that cannot be a key
        pass
    numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
    try:
        if len(_NUMERIC_TYPES) < 256:
            _NUMERIC_TYPES[dtype] = numeric
    except TypeError:
        pass
    return numeric


def specification_from_specs(
    formula: str,
    specs,
    *,
    variables: list[str],
    level_variables: list[str],
    stateful: bool,
    weights: str | None = None,
    cluster: str | None = None,
    offset: str | None = None,
    names: list[str] | None = None,
) -> ModelSpecification:
    """A specification from formulaic specs already made (``specification`` makes them)."""
    if names is None:
        names = [str(name) for name in specs.rhs.column_names]
    return ModelSpecification(
        formula=formula,
        outcome=parse_outcome(formula),
        specs=specs,
        names=names,
        plan=_direct_plan(specs, names),
        variables=variables,
        level_variables=level_variables,
        stateful=stateful,
        weights=weights,
        cluster=cluster,
        offset=offset,
    )


def _taken(columns: dict, frame: pd.DataFrame, variable: str, positions: np.ndarray):
    """The values of ``variable`` at ``positions``, as an array (the column read once)."""
    return (columns[variable] if variable in columns else column(frame, variable)).array.take(
        positions
    )


def specification_key(
    formula: str,
    frame: pd.DataFrame,
    positions: np.ndarray | None,
    variables,
    level_variables,
    roles,
    known_levels: dict | None = None,
) -> tuple:
    """What a non-stateful specification depends on: the formula, the roles, the columns' types
    and the levels the sample holds (those of ``frame``'s rows at ``positions``; a variable in
    ``known_levels`` takes the levels kept there, from an earlier key of the same rows of a
    column of the same values)."""
    types, columns = [], {}
    for variable in variables:
        columns[variable] = read = column(frame, variable)
        dtype = read.dtype
        categories = category_values(dtype) if isinstance(dtype, pd.CategoricalDtype) else ()
        types.append((variable, str(dtype), categories))
    known_levels = known_levels or {}
    # the values of the few rows at ``positions`` (present: the rows are usable), not the whole
    # column turned into an object array (0.1 ms a categorical column of 1,604 rows)
    levels = tuple(
        (
            variable,
            known_levels[variable]
            if variable in known_levels
            else _level_reprs(columns, frame, variable, positions),
        )
        for variable in level_variables
    )
    return formula, tuple(sorted(roles.items())), tuple(types), levels


def _level_reprs(columns: dict, frame: pd.DataFrame, variable: str, positions: np.ndarray):
    """The sorted reprs of the distinct values of ``variable`` at ``positions``. A categorical
    column of string (or object) levels: from its codes and categories, the values numpy's
    object array of the taken rows would hold (NaN for a missing one), without making that array
    (0.5-0.8 ms a column); other columns: from the taken values themselves (numpy turns other
    categories into arrays of their own type, whose reprs differ)."""
    read = columns[variable] if variable in columns else column(frame, variable)
    dtype = read.dtype
    if isinstance(dtype, pd.CategoricalDtype) and _object_levels(dtype.categories.dtype):
        codes = np.unique(np.asarray(read.array.codes).take(positions))
        categories = category_values(dtype)
        values = [categories[code] for code in codes.tolist() if code >= 0]
        if codes.size and codes[0] < 0:  # a missing value: NaN in numpy's array
            values.append(np.nan)
        return tuple(sorted(map(repr, values)))
    return tuple(
        sorted(map(repr, pd.unique(np.asarray(_taken(columns, frame, variable, positions)))))
    )


# a categorical type's categories as Python values, by the type's identity: the samples of one
# frame share their columns' types, and iterating text categories (pyarrow strings) costs
# 10-20 us a time, several times a design
_CATEGORY_VALUES = KeptByIdentity(256)


def category_values(dtype: pd.CategoricalDtype) -> tuple:
    """``tuple(dtype.categories)``, made once per categorical type."""
    values = _CATEGORY_VALUES.get(dtype)
    if values is None:
        values = _CATEGORY_VALUES.put(dtype, tuple(dtype.categories))
    return values


def _object_levels(dtype: Any) -> bool:
    """Whether a categorical's categories are strings or Python objects."""
    return pd.api.types.is_string_dtype(dtype)  # True for object too


def present(column: pd.Series) -> np.ndarray | bool:
    """What ``column.notna().to_numpy()`` gives, without its Series: ``True`` for a numpy
    integer or boolean column (which holds no missing value), else the array's own mask."""
    dtype = column.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iub":
        return True
    if isinstance(dtype, np.dtype) and dtype.kind == "f":
        return ~np.isnan(column.to_numpy())
    return ~np.asarray(column.array.isna(), dtype=bool)


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
        usable &= derived(frame, variable, "present", lambda v=variable: present(column(frame, v)))
    if cluster is not None:
        usable &= present(column(frame, cluster))
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
    """One row per distinct value of each level variable among the usable rows (a small frame):
    the first usable row holding it, the rows in the frame's order."""
    if not level_variables:
        return frame.iloc[:0]
    return frame.iloc[level_positions(frame, usable, level_variables)]


def level_positions(
    frame: pd.DataFrame, usable: np.ndarray, level_variables: Sequence[str]
) -> np.ndarray:
    """Positions (ascending) of ``level_rows``' rows in ``frame``."""
    rows = np.flatnonzero(usable)
    found = []
    for variable in level_variables:
        read = column(frame, variable)
        if isinstance(read.dtype, pd.CategoricalDtype):
            # one code per category (-1 missing): the same first rows, no object array made
            codes = np.asarray(read.array.codes)[rows]
        else:
            codes, _ = pd.factorize(read.to_numpy()[rows], use_na_sentinel=False)
        found.append(rows[np.unique(codes, return_index=True)[1]])
    return np.unique(np.concatenate(found)) if found else rows[:0]


def specification(formula: str, level_frame: pd.DataFrame, **options) -> ModelSpecification:
    """The specification learnt from ``level_frame`` (which must hold every level of the sample);
    ``options`` are ``specification_from_specs``' (variables, level variables, roles)."""
    outcome = parse_outcome(formula)
    matrices = _materialise(formula, level_frame)
    if matrices.lhs.shape[1] != 1:
        raise InputError(
            "the outcome must be one numeric column",
            column=outcome,
            value=list(matrices.lhs.columns),
            expected="a numeric 0/1 or ordinal outcome",
        )
    return specification_from_specs(
        formula,
        matrices.model_spec,
        names=[str(name) for name in matrices.rhs.columns],
        **options,
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


GATHER_ROWS = 8_192  # rows of numeric columns gathered at a time into a row-major design
_TRANSFORM = re.compile(r"^(?:np\.)?(log|exp|sqrt)\((\w+)\)$")
_CATEGORICAL = re.compile(r"^C\((\w+)\)$")
_FUNCTIONS = {"log": np.log, "exp": np.exp, "sqrt": np.sqrt}


class UnknownLevel(Exception):
    """A categorical value the specification's levels do not hold (formulaic then decides)."""


def _factor_recipe(rhs, factor, reduced: bool) -> tuple | None:
    """How one factor's columns come from data columns without formulaic, or ``None``.

    ``("numeric", variable, function)``: the column as float64, through ``function`` (``log``,
    ``exp``, ``sqrt``) when the factor is one; ``("categorical", variable, levels, coding)``:
    treatment dummies, row ``i`` of the coding matrix for the ``i``-th level (reduced rank drops
    the reference level's column, as formulaic does).
    """
    factor = getattr(factor, "factor", factor)  # an evaluated factor wraps the formula's
    kind, state = rhs.encoder_state.get(factor.expr, (None, None))
    kind = getattr(kind, "value", kind)
    method = getattr(factor.eval_method, "value", "")
    if kind == "numerical":
        if method == "lookup":
            return ("numeric", factor.expr, None)
        matched = _TRANSFORM.match(factor.expr) if method == "python" else None
        if matched is None:
            return None
        return ("numeric", matched.group(2), _FUNCTIONS[matched.group(1)])
    if kind != "categorical":
        return None
    if method == "lookup":
        variable = factor.expr
    elif method == "python" and (matched := _CATEGORICAL.match(factor.expr)):
        variable = matched.group(1)
    else:
        return None
    contrasts = state.get("contrasts") if isinstance(state, dict) else None
    if type(getattr(contrasts, "contrasts", None)) is not TreatmentContrasts:
        return None
    levels = list(contrasts.levels)
    return ("categorical", variable, levels, _coding(contrasts.contrasts, levels, reduced))


# treatment coding matrices by (contrasts, the levels' reprs, reduced rank): formulaic builds
# each as a DataFrame (about 1 ms with its conversion); a battery asks for a few dozen codings
# some 200 times. Read-only arrays, shared by every plan that codes the same levels
_CODINGS = KeptByKey(256)


def _coding(contrasts: Any, levels: list, reduced: bool) -> np.ndarray:
    """``contrasts.get_coding_matrix(levels, reduced_rank=reduced)`` as float64, made once per
    coding (the contrasts' repr names the treatment's base; the levels' reprs their types)."""
    key = (repr(contrasts), tuple(map(repr, levels)), bool(reduced))
    coding = _CODINGS.get(key)
    if coding is None:
        matrix = contrasts.get_coding_matrix(levels, reduced_rank=reduced)
        coding = np.asarray(matrix, dtype=np.float64)
        coding.flags.writeable = False
        _CODINGS.put(key, coding)
    return coding


def _term_recipes(rhs, structure) -> list | None:
    """Recipes of one term's columns, in formulaic's order, or ``None`` (formulaic builds it)."""
    recipes: list = []
    for scoped in structure.scoped_terms:
        if getattr(scoped, "scale", 1) != 1:
            return None
        if not scoped.factors:
            recipes.append(("intercept",))
            continue
        factors = []
        for scoped_factor in scoped.factors:
            recipe = _factor_recipe(rhs, scoped_factor.factor, scoped_factor.reduced)
            if recipe is None:
                return None
            factors.append(recipe)
        widths = [1 if f[0] == "numeric" else f[3].shape[1] for f in factors]
        # formulaic's row-wise Kronecker product: the first factor varies fastest
        for reverse in itertools.product(*(range(w) for w in reversed(widths))):
            recipes.append(("product", tuple(zip(factors, reverse[::-1], strict=True))))
    if len(recipes) != len(structure.columns):
        return None
    return recipes


def rhs_plan(rhs, names: list[str]) -> dict | None:
    """How the design columns of a formulaic specification are built without formulaic: plain
    numeric columns copied (``direct``), the intercept, terms of numeric columns, simple
    transforms (log, exp, sqrt) and treatment-coded factors computed (``computed``), and
    formulaic's specification of any other terms (``reduced``). ``None`` where the columns
    cannot be matched to the specification's terms."""
    direct, intercept, computed, others, positions = [], None, [], [], []
    structures = {structure.term: structure for structure in rhs.structure}
    for term, columns in rhs.term_indices.items():
        structure = structures.get(term)
        recipes = None if structure is None else _term_recipes(rhs, structure)
        if recipes is None:
            others.append(term)
            positions.extend(columns)
        elif recipes == [("intercept",)]:
            intercept = columns[0]
        elif len(recipes) == 1 and len(recipes[0][1]) == 1 and recipes[0][1][0][0][0] == "numeric":
            (((_kind, variable, function), _),) = recipes[0][1]
            if function is None:
                direct.append((columns[0], variable))
            else:
                computed.append((columns, recipes))
        else:
            computed.append((columns, recipes))
    reduced = rhs.subset(others) if others else None
    if reduced is not None and list(reduced.column_names) != [names[j] for j in positions]:
        return None
    return {
        "direct": direct,
        "intercept": intercept,
        "computed": computed,
        "reduced": reduced,
        "positions": positions,
    }


# right-hand plans by their specification (its identity) and column names: the battery's
# specifications of one right-hand side for several outcomes share that side's specification
# (``direct_specification._RIGHT_HANDS``), so its plan is made once; plans are read, not changed
_RHS_PLANS = KeptByIdentity(256)


def _direct_plan(specs, names: list[str]) -> dict | None:
    """``rhs_plan`` plus the outcome column (``None`` where the outcome is not a plain column)."""
    lhs_factors = [f for term in specs.lhs.formula for f in term.factors]
    if len(lhs_factors) != 1 or getattr(lhs_factors[0].eval_method, "value", "") != "lookup":
        return None
    kept = _RHS_PLANS.get(specs.rhs)
    if kept is not None and kept[0] == names:
        plan = kept[1]
    else:
        plan = _RHS_PLANS.put(specs.rhs, (list(names), rhs_plan(specs.rhs, names)))[1]
    if plan is None:
        return None
    return {**plan, "outcome": lhs_factors[0].expr}


def level_codes(column: pd.Series, levels, rows) -> np.ndarray:
    """Positions of ``column``'s values (over ``rows``) among ``levels``, -1 where missing or not
    a level: ``pd.Index(levels).get_indexer`` of the values. A categorical column has its
    categories matched once and its integer codes mapped, instead of every value converted to an
    object array and hashed (1.9 ms a column of 1,604 arrow strings, 0.1 ms this way)."""
    if isinstance(column.dtype, pd.CategoricalDtype) and not pd.isna(list(levels)).any():
        categorical = column.array
        position = {level: j for j, level in enumerate(levels)}
        # the last entry answers code -1: a missing value, which is no level
        mapping = np.array([position.get(c, -1) for c in category_values(column.dtype)] + [-1])
        return mapping[np.asarray(categorical.codes)[rows]]
    return pd.Index(levels).get_indexer(column.to_numpy()[rows])


def _factor_values(recipe: tuple, j: int, frame: pd.DataFrame, rows, cache: dict) -> np.ndarray:
    """A factor's column (numeric) or its ``j``-th dummy column (categorical) over ``frame``'s
    ``rows``."""
    if recipe[0] == "numeric":
        if recipe not in cache:
            _kind, variable, function = recipe
            if function is None:
                values = float_values(frame, variable)
            else:

                def transformed(function=function, variable=variable) -> np.ndarray:
                    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                        return function(float_values(frame, variable))

                values = derived(frame, variable, function.__name__, transformed)
            cache[recipe] = values[rows]
        return cache[recipe]
    _kind, variable, levels, coding = recipe
    key = ("codes", variable, tuple(levels))
    if key not in cache:
        codes = derived(
            frame,
            variable,
            ("codes", tuple(levels)),
            lambda: level_codes(column(frame, variable), levels, slice(None)),
        )[rows]
        if codes.size and codes.min() < 0:
            raise UnknownLevel(variable)
        cache[key] = codes
    return coding[:, j][cache[key]]


def _factor_block(recipe: tuple, frame: pd.DataFrame, rows, cache: dict) -> np.ndarray:
    """All of a factor's columns over ``frame``'s ``rows``: a numeric factor's one column, or a
    categorical factor's dummy columns (the coding's rows of the values' levels, copied)."""
    if recipe[0] == "numeric":
        return _factor_values(recipe, 0, frame, rows, cache)[:, None]
    _factor_values(recipe, 0, frame, rows, cache)  # the codes, checked and kept in ``cache``
    _kind, variable, levels, coding = recipe
    return coding[cache[("codes", variable, tuple(levels))]]


def _product_block(factors: tuple, frame: pd.DataFrame, rows, cache: dict) -> np.ndarray:
    """The columns of one product of factors in formulaic's order (the first factor varies
    fastest), each the left-to-right product of its factors' columns: what multiplying column
    by column gives, element for element."""
    block = _factor_block(factors[0], frame, rows, cache)
    for factor in factors[1:]:
        right = _factor_block(factor, frame, rows, cache)
        block = (block[:, None, :] * right[:, :, None]).reshape(block.shape[0], -1)
    return block


def fill_computed(plan: dict, frame: pd.DataFrame, rows, X: np.ndarray) -> None:
    """The computed terms of ``plan`` into the columns of ``X`` (one row per ``rows``); raises
    ``UnknownLevel`` for a value outside a factor's levels (or missing). The columns of one
    product of factors are made together (one gather per factor, one broadcast product)."""
    cache: dict = {}
    for columns, recipes in plan["computed"]:
        start = 0
        while start < len(recipes):
            recipe = recipes[start]
            if recipe[0] == "intercept":
                X[:, columns[start]] = 1.0
                start += 1
                continue
            factors = tuple(factor for factor, _j in recipe[1])
            widths = [1 if f[0] == "numeric" else f[3].shape[1] for f in factors]
            width = int(np.prod(widths))
            group = recipes[start : start + width]
            order = [tuple(j[::-1]) for j in itertools.product(*map(range, widths[::-1]))]
            if len(group) == width and all(
                r[0] == "product"
                and all(a is b for (a, _j), b in zip(r[1], factors, strict=True))
                and tuple(j for _f, j in r[1]) == expected
                for r, expected in zip(group, order, strict=True)
            ):
                targets = columns[start : start + width]
                if targets == list(range(targets[0], targets[0] + width)):
                    targets = slice(targets[0], targets[0] + width)
                X[:, targets] = _product_block(factors, frame, rows, cache)
                start += width
                continue
            parts = [_factor_values(factor, j, frame, rows, cache) for factor, j in recipe[1]]
            X[:, columns[start]] = functools.reduce(operator.mul, parts)
            start += 1


def _fill(spec: ModelSpecification, frame, subset, where, out):
    """(y, X, row positions in ``frame``) for the usable rows ``subset``: numeric columns copied
    directly, simple terms computed, the other terms through formulaic (which drops rows where
    they are missing)."""
    if spec.plan is not None:
        try:
            return _fill_planned(spec, spec.plan, frame, subset, where, out)
        except UnknownLevel:
            pass  # formulaic names the level (an error for a fixed specification)
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


def _fill_planned(spec: ModelSpecification, plan: dict, frame, subset, where, out):
    reduced = None
    if plan["reduced"] is not None:
        reduced = _chunk_matrices(replace(spec, specs=plan["reduced"]), subset, where)
        rows = subset.index.get_indexer(reduced.index)
    else:
        rows = slice(None)  # every usable row: columns are copied without indexing
    n = len(subset) if isinstance(rows, slice) else rows.shape[0]
    X = out[:n] if out is not None else np.empty((n, len(spec.names)))
    if plan["computed"]:
        fill_computed(plan, subset, rows, X)
    if reduced is not None and n:
        X[:, plan["positions"]] = reduced.to_numpy(dtype=np.float64)
    _fill_direct(plan, subset, rows, X)
    y = np.array(float_values(subset, plan["outcome"])[rows])
    if isinstance(rows, slice) and subset is frame:
        return y, X, np.arange(len(frame))
    return y, X, frame.index.get_indexer(subset.index[rows])


def _fill_direct(plan: dict, frame: pd.DataFrame, rows, X: np.ndarray) -> None:
    """The intercept and the plain numeric columns of ``plan`` into ``X``."""
    if plan["intercept"] is not None:
        X[:, plan["intercept"]] = 1.0
    if not plan["direct"]:
        return
    # gathered column by column into a (columns, rows) block, then one transposing copy:
    # writing a column of a row-major X straight away touches every cache line per column.
    # The block holds GATHER_ROWS rows at most, so the copy needs no design-sized scratch.
    columns = [column for column, _variable in plan["direct"]]
    values = [float_values(frame, variable) for _column, variable in plan["direct"]]
    if isinstance(rows, slice):
        rows = np.arange(X.shape[0])[rows] if rows != slice(None) else None
    contiguous = columns == list(range(columns[0], columns[0] + len(columns)))
    target = X[:, columns[0] : columns[0] + len(columns)] if contiguous else None
    gathered = np.empty((len(columns), min(GATHER_ROWS, X.shape[0])))
    for start in range(0, X.shape[0], GATHER_ROWS):
        stop = min(start + GATHER_ROWS, X.shape[0])
        block = gathered[:, : stop - start]
        for j, column in enumerate(values):
            block[j] = column[start:stop] if rows is None else column[rows[start:stop]]
        if contiguous:
            target[start:stop] = block.T
        else:
            X[start:stop, columns] = block.T


def matrix_from_plan(plan: dict, frame: pd.DataFrame, n_columns: int) -> np.ndarray:
    """The design of every row of ``frame`` through a plan without formulaic terms (missing
    numeric inputs give NaN); raises ``UnknownLevel`` where a factor's value is missing or new."""
    X = np.empty((len(frame), n_columns), order="F")
    rows = slice(None)
    fill_computed(plan, frame, rows, X)
    _fill_direct(plan, frame, rows, X)
    return X


def build_chunk(
    spec: ModelSpecification,
    frame: pd.DataFrame,
    *,
    where: str | None = None,
    first_row: int | None = None,
    out: np.ndarray | None = None,
    levels: bool = True,
    usable: np.ndarray | None = None,
) -> DesignChunk:
    """The design of one chunk (``frame``) through ``spec``.

    Row ids are ``first_row + position`` when ``first_row`` is given (Parquet, Dask), else the
    frame's index labels. ``out``, when given, receives X (its first rows) instead of a new array.
    ``levels=False`` skips the rows of each level the chunk holds (a check of first passes).
    ``usable``: the chunk's :func:`usable_rows` for ``spec``, where the caller has them already
    (the whole data's, sliced), so that they are not computed twice.
    """
    if first_row is None:
        ids = np.asarray(frame.index)
    else:
        ids = first_row + np.arange(len(frame), dtype=np.int64)
    if usable is None:
        usable = usable_rows(
            frame,
            spec.variables,
            weights=spec.weights,
            cluster=spec.cluster,
            offset=spec.offset,
            where=where,
        )
    else:
        usable = usable.copy()  # the caller's mask is not changed by the exclusions below
    if spec.excluded is not None and spec.excluded.size:
        usable &= ~np.isin(ids, spec.excluded)
    subset = frame.loc[usable] if not usable.all() else frame
    y, X, positions = _fill(spec, frame, subset, where, out)
    finite = np.isfinite(y)
    for start in range(0, X.shape[0], GATHER_ROWS):  # no chunk-sized mask of every cell
        finite[start : start + GATHER_ROWS] &= np.isfinite(X[start : start + GATHER_ROWS]).all(1)
    nonfinite = ids[positions[~finite]]
    if not finite.all():
        kept = int(finite.sum())
        X[:kept] = X[finite]
        X = X[:kept]
        y = y[finite]
        positions = positions[finite]
    if spec.drop_cells:
        kept_rows = np.ones(y.shape[0], dtype=bool)
        for column, value in spec.drop_cells:  # a tuple of columns: their sum (a reference cell)
            cell = X[:, column] if isinstance(column, int) else X[:, list(column)].sum(axis=1)
            kept_rows &= cell != value
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
    level_frame = None
    first_pass = spec.cluster_labels is None and spec.keep_columns is None
    if levels and first_pass and spec.level_variables:
        # before estimation: the levels the kept rows hold, to check the specification's
        kept = np.zeros(len(frame), dtype=bool)
        kept[positions] = True
        level_frame = level_rows(frame, kept, spec.level_variables)
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
        level_rows=level_frame,
    )


def with_estimation(spec: ModelSpecification, **changes) -> ModelSpecification:
    """A copy with estimation settings (kept columns, ordinal codes, cluster labels) changed."""
    return replace(spec, **changes)
