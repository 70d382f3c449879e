"""Formula -> design: the estimation sample, outcome, design matrix and its specification.

::

    design = build_design("product ~ breadth_international + log(employees) + C(industry)", data,
                          weights="weight", cluster="region", offset=None)
    design.y, design.X, design.names       # float64 arrays and formulaic's column names
    design.row_ids                         # data index labels of the estimation sample
    design.n_dropped_missing               # rows lost to listwise deletion
    design.rebuild(new_data)               # X for other data through the same specification

Formulas are formulaic's, with ``log``, ``exp`` and ``sqrt`` available. As in Stata, a row with a
missing value in any variable the model uses (outcome, regressors, weight, cluster, offset) is
left out, and so is a row whose transformed value is not finite (``log(0)`` is missing in Stata).
Categorical terms use treatment coding with the lowest level as reference (Stata's rule).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from formulaic import model_matrix

from buzzpipe.errors import InputError
from buzzpipe.estimate import chunks
from buzzpipe.estimate.chunks import FORMULA_CONTEXT, parse_outcome
from buzzpipe.estimate.direct_specification import direct_specs
from buzzpipe.estimate.kept import MISSING, KeptByIdentity, KeptByKey

__all__ = [
    "Design",
    "build_design",
    "designs_shared",
    "cluster_codes",
    "shared_derived",
    "rebuild_matrix",
    "rebuild_plan",
    "FORMULA_CONTEXT",
]

# rows per block when a design is built block by block (formulaic's cost per call is amortised)
BUILD_BLOCK_ROWS = 65_536


@dataclass
class Design:
    """The estimation sample of one model: arrays plus the formulaic spec behind them."""

    formula: str
    outcome: str
    y: np.ndarray
    X: np.ndarray
    names: list[str]
    row_ids: pd.Index
    n_dropped_missing: int
    model_spec: Any
    weights: np.ndarray | None = None
    weights_name: str | None = None
    clusters: np.ndarray | None = None
    cluster_labels: np.ndarray | None = None
    cluster_name: str | None = None
    offset: np.ndarray | None = None
    offset_name: str | None = None
    outcome_spec: Any = None
    notes: list[str] = field(default_factory=list)
    # X'WX (W the sampling weights), cached by the checks so that estimation can reuse it
    gram: np.ndarray | None = None

    @classmethod
    def from_arrays(
        cls,
        X: np.ndarray,
        y: np.ndarray,
        names: Sequence[str] | None = None,
        *,
        weights: np.ndarray | None = None,
        clusters: np.ndarray | None = None,
        offset: np.ndarray | None = None,
        row_ids: pd.Index | None = None,
    ) -> Design:
        """A design from ready arrays (no formula: ``rebuild`` is unavailable)."""
        X = np.ascontiguousarray(X, dtype=np.float64)
        if names is None:
            names = [f"x{j}" for j in range(X.shape[1])]
        codes = labels = None
        if clusters is not None:
            codes, labels = pd.factorize(np.asarray(clusters), sort=True)
            codes, labels = codes.astype(np.intp), np.asarray(labels)
        return cls(
            formula="",
            outcome="y",
            y=np.asarray(y, dtype=np.float64),
            X=X,
            names=list(names),
            row_ids=pd.RangeIndex(X.shape[0]) if row_ids is None else row_ids,
            n_dropped_missing=0,
            model_spec=None,
            weights=None if weights is None else np.asarray(weights, dtype=np.float64),
            weights_name=None if weights is None else "weights",
            clusters=codes,
            cluster_labels=labels,
            cluster_name=None if clusters is None else "clusters",
            offset=None if offset is None else np.asarray(offset, dtype=np.float64),
        )

    @property
    def nobs(self) -> int:
        return int(self.y.shape[0])

    @property
    def n_clusters(self) -> int | None:
        return None if self.cluster_labels is None else int(len(self.cluster_labels))

    def rebuild(self, new_data: pd.DataFrame) -> np.ndarray:
        """X for ``new_data`` through the same specification (same levels, columns, order).

        Rows are kept one for one (a missing input gives a NaN row), so perturbed copies of the
        estimation data line up with ``row_ids``.
        """
        return rebuild_matrix(self.model_spec, self.names, new_data)

    def subset(
        self, keep_rows: np.ndarray | None = None, keep_columns: Sequence[str] | None = None
    ):
        """A copy with only the rows (boolean mask) and columns (names, in order) given."""
        design = self
        if keep_columns is not None:
            positions = [self.names.index(name) for name in keep_columns]
            gram = None if self.gram is None else self.gram[np.ix_(positions, positions)]
            design = replace(design, X=design.X[:, positions], names=list(keep_columns), gram=gram)
        if keep_rows is not None:
            clusters, labels = design.clusters, design.cluster_labels
            if clusters is not None:
                used, clusters = np.unique(clusters[keep_rows], return_inverse=True)
                labels = labels[used]
            design = replace(
                design,
                gram=None,
                y=design.y[keep_rows],
                X=design.X[keep_rows],
                row_ids=design.row_ids[keep_rows],
                weights=None if design.weights is None else design.weights[keep_rows],
                clusters=clusters,
                cluster_labels=labels,
                offset=None if design.offset is None else design.offset[keep_rows],
            )
        return design


def rebuild_matrix(model_spec: Any, names: Sequence[str], new_data: pd.DataFrame) -> np.ndarray:
    """X for ``new_data`` through a formulaic specification, columns ``names`` in that order."""
    if model_spec is None:
        raise InputError("this design was built from arrays: it has no formula to rebuild")
    plan = rebuild_plan(model_spec)
    if plan is not None and all(v in new_data.columns for v in plan["variables"]):
        try:
            with chunks.reading(new_data):
                X = chunks.matrix_from_plan(plan, new_data, len(plan["names"]))
        except chunks.UnknownLevel:
            pass  # a missing or new level: formulaic's answer (or its error)
        else:
            positions = [plan["names"].index(name) for name in names]
            # column-major, as formulaic's frame gives it: BLAS then sums in formulaic's order,
            # so what is computed from the design is bit for bit what formulaic's gave
            return np.asfortranarray(X if positions == list(range(X.shape[1])) else X[:, positions])
    try:
        frame = model_spec.get_model_matrix(new_data, na_action="ignore", context=FORMULA_CONTEXT)
    except Exception as error:  # formulaic raises many types for unknown levels, names, ...
        raise InputError(f"cannot build the model's design for new data: {error}") from None
    return np.asarray(frame[list(names)], dtype=np.float64)


# formulaic specifications seen by rebuild_matrix -> their plans (None: formulaic rebuilds)
_REBUILD_PLANS = KeptByIdentity(256)


def rebuild_plan(model_spec: Any) -> dict | None:
    """The plan that builds ``model_spec``'s columns without formulaic (``chunks.rhs_plan``), or
    ``None`` where some term needs formulaic or a transform learnt state (center, scale)."""
    kept = _REBUILD_PLANS.get(model_spec, MISSING)
    if kept is not MISSING:
        return kept
    plan = None
    try:
        names = [str(name) for name in model_spec.column_names]
        if not model_spec.transform_state:
            plan = chunks.rhs_plan(model_spec, names)
    except Exception:  # a specification formulaic built differently: formulaic rebuilds it
        plan = None
    if plan is not None and plan["reduced"] is not None:
        plan = None
    if plan is not None:
        variables = [v for _, v in plan["direct"]]
        for _columns, recipes in plan["computed"]:
            for recipe in recipes:
                if recipe[0] == "product":
                    variables += [factor[1] for factor, _ in recipe[1]]
        plan = {**plan, "names": names, "variables": sorted(set(variables))}
    return _REBUILD_PLANS.put(model_spec, plan)


def cluster_codes(values: pd.Series, positions: Any = slice(None)) -> tuple[np.ndarray, np.ndarray]:
    """(codes, labels) of the clusters of ``values`` at ``positions`` (none missing): what
    ``pd.factorize(values.to_numpy()[positions], sort=True)`` gives (codes as intp, labels an
    array). A categorical column is read from its codes and its few categories, not turned into
    an array of Python objects and hashed (1.1 ms a column of 1,604 text regions, 0.04 this way)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = np.asarray(values.array.codes)[positions]
        if codes.size and codes.min() >= 0:
            used = np.unique(codes)
            levels = np.asarray(values.array.categories)[used]
            try:
                order = np.argsort(levels, kind="stable")
            except TypeError:  # levels without an order among them: pandas decides
                order = None
            if order is not None:
                rank = np.empty(len(values.array.categories), dtype=np.intp)
                rank[used[order]] = np.arange(used.size)
                return rank[codes], levels[order]
    codes, labels = pd.factorize(values.to_numpy()[positions], sort=True)
    return codes.astype(np.intp), np.asarray(labels)


def _plain(value: object) -> object:
    """A numpy scalar as the Python value (so messages read 'got -1.0', not 'np.float64(-1.0)')."""
    return value.item() if hasattr(value, "item") else value


def _require_column(data: pd.DataFrame, column: str, role: str) -> None:
    if column not in data.columns:
        raise InputError(
            f"the {role} column is not in the data", column=column, expected="an existing column"
        )


def build_design(
    formula: str,
    data: pd.DataFrame,
    *,
    weights: str | None = None,
    cluster: str | None = None,
    offset: str | np.ndarray | None = None,
    block_rows: int = BUILD_BLOCK_ROWS,
) -> Design:
    """The estimation sample and design matrix of ``formula`` on ``data`` (listwise deletion).

    The model specification is fixed once from the levels the sample holds, then the design is
    built block by block into one array (``chunks.py``): no full-size copy beyond that array.
    """
    if not isinstance(data, pd.DataFrame):
        raise InputError("data must be a pandas DataFrame", value=type(data).__name__)
    if not data.index.is_unique:
        raise InputError(
            "the data index has duplicate labels; row ids must identify observations",
            expected="a unique index (reset_index() makes one)",
        )
    parse_outcome(formula)
    for column, role in ((weights, "weight"), (cluster, "cluster")):
        if column is not None:
            _require_column(data, column, role)
    if isinstance(offset, str):
        _require_column(data, offset, "offset")
    with chunks.reading(data):  # each column read from the frame once
        blocked = _build_design_blocked(formula, data, weights, cluster, offset, block_rows)
    if blocked is not None:
        return blocked
    return _build_design_whole(formula, data, weights=weights, cluster=cluster, offset=offset)


# specifications of formulas without learnt state, by chunks.specification_key (formula, roles,
# column types, levels): the battery fits several models of one formula on one sample
_SPECIFICATIONS = KeptByKey(256)


def _frame_outcome(spec: chunks.ModelSpecification, data: pd.DataFrame) -> np.ndarray | None:
    """The outcome as the frame holds it, where that is the design's y (a float64 column used as
    it stands), else ``None``. A view of the data (read-only under pandas' copy-on-write)."""
    if spec.plan is None or spec.ordinal_values is not None:
        return None
    column = chunks.column(data, spec.plan["outcome"])  # read once inside build_design's block
    if column.dtype != np.float64:
        return None
    values = column.to_numpy()
    return values if values.ndim == 1 else None


def _build_design_blocked(
    formula: str,
    data: pd.DataFrame,
    weights: str | None,
    cluster: str | None,
    offset: str | np.ndarray | None,
    block_rows: int,
) -> Design | None:
    """The design built per block through a specification fixed once; ``None`` where the whole-
    data path must run instead (an offset array, a stateful transform such as ``center``, or a
    formula formulaic cannot evaluate on a few rows)."""
    if offset is not None and not isinstance(offset, str) or len(data) == 0:
        return None
    quick = chunks.parsed_specification(formula, data)
    try:
        variables, level_variables, stateful = quick or chunks.head_specification(
            formula, data.iloc[:256]
        )
    except InputError:
        return None
    if stateful or any(v not in data.columns for v in variables):
        return None
    roles = {"weights": weights, "cluster": cluster, "offset": offset}
    usable = chunks.usable_rows(data, variables, **roles)
    if not usable.any():
        return None

    # a design shared already (the same right-hand side, rows and column values) is found
    # before the specification is fixed: its levels are the shared build's, not read again
    early = entry = None
    if usable.all():
        early = _sharing_columns(formula, data, len(data), weights, cluster, offset, block_rows)
    if early is not None and quick is not None:
        entry = _shared_entry(early)
    keys: list[tuple] = []  # the specification's key, where fix made one
    written: list[tuple] = []  # the right-hand (specification, names) direct_specs wrote

    def fix(
        frame: pd.DataFrame, rows: np.ndarray, shared: _SharedDesign | None = None
    ) -> chunks.ModelSpecification:
        known_levels = None if shared is None else shared.levels
        positions = None
        if known_levels is None or any(v not in known_levels for v in level_variables):
            positions = chunks.level_positions(frame, rows, level_variables)
        options = dict(
            variables=variables, level_variables=level_variables, stateful=stateful, **roles
        )
        key = None
        if quick is not None:  # no learnt state: the levels and types decide the specification
            key = chunks.specification_key(
                formula, frame, positions, variables, level_variables, roles, known_levels
            )
            keys.append(key)
            if key in _SPECIFICATIONS:
                return replace(_SPECIFICATIONS[key], notes=[])
            # formulaic's specification written from the types and levels, not materialised
            # (the right-hand side's as the shared design's build wrote it, where it did)
            direct = direct_specs(formula, frame, rows, None if shared is None else shared.right)
            if direct is not None:
                specs, names = direct
                written.append((specs.rhs, names))
                spec = chunks.specification_from_specs(formula, specs, names=names, **options)
                _SPECIFICATIONS.put(key, replace(spec, notes=[]))
                return spec
        if positions is None:
            positions = chunks.level_positions(frame, rows, level_variables)
        # formulaic learns it from the rows that hold every level (and a few more)
        level_frame = frame.iloc[np.union1d(np.flatnonzero(rows)[:64], positions)]
        spec = chunks.specification(formula, level_frame, **options)
        if key is not None:
            _SPECIFICATIONS.put(key, replace(spec, notes=[]))
        return spec

    spec = fix(data, usable, entry)
    rows = int(usable.sum())
    sharing = _sharing_key(spec, data, rows, offset, early)
    if sharing is not None:
        shared = _shared_design(sharing, formula, spec, data, weights, cluster)
        if shared is not None:
            return shared
    # X written block by block into one array made once: no block's pieces kept to be joined at
    # the end (a second copy of each beside the joined one). While every row so far is kept, the
    # outcome is the frame's own float column and the row positions are 0..n-1 (nothing made);
    # the first block that leaves rows out makes the two row-sized arrays (ordered blocks: what
    # came before is copied in)
    X = np.empty((rows, len(spec.names)))
    for _attempt in range(2):
        filled, parts = 0, []
        y = positions = None
        frame_y = _frame_outcome(spec, data) if rows == len(data) else None
        for start in range(0, len(data), block_rows):
            # one block of all the data: the frame itself, not a copy of its columns
            block = data if len(data) <= block_rows else data.iloc[start : start + block_rows]
            chunk = chunks.build_chunk(
                spec,
                block,
                first_row=start,
                out=X[filled:],
                levels=False,
                usable=usable[start : start + block_rows],
            )
            every_row = chunk.nobs == min(block_rows, len(data) - start)
            if y is None and (frame_y is None or not every_row):
                y, positions = np.empty(rows), np.empty(rows, np.int64)
                if filled:
                    y[:filled] = frame_y[:filled]
                    positions[:filled] = np.arange(filled)
            if y is not None:
                y[filled : filled + chunk.nobs] = chunk.y
                positions[filled : filled + chunk.nobs] = chunk.row_ids
            filled += chunk.nobs
            parts.append(replace(chunk, X=None, y=None, row_ids=None))
        if y is None:  # every row kept, in order
            y, positions = frame_y, slice(None)
        if filled == X.shape[0]:
            break
        # rows left out by a transform (log(0), log(-1)): Stata treats them as missing, and the
        # levels are those of the rows that remain
        kept = np.zeros(len(data), dtype=bool)
        kept[positions[:filled]] = True
        refixed = fix(data, kept)
        if refixed.names == spec.names:
            break
        spec = replace(refixed, excluded=np.concatenate([part.nonfinite for part in parts]))
        X = np.empty((rows, len(spec.names)))
    if filled < X.shape[0]:
        X, y, positions = X[:filled], y[:filled], positions[:filled]
    clusters = labels = None
    if cluster is not None:
        clusters, labels = cluster_codes(chunks.column(data, cluster), positions)
    design = Design(
        formula=formula,
        outcome=spec.outcome,
        y=y,
        X=X,
        names=list(spec.names),
        row_ids=data.index[positions],
        n_dropped_missing=int(len(data) - filled),
        model_spec=spec.specs.rhs,
        outcome_spec=spec.specs.lhs,
        weights=None if weights is None else np.concatenate([p.weights for p in parts]),
        weights_name=weights,
        clusters=clusters,
        cluster_labels=labels,
        cluster_name=cluster,
        offset=None if offset is None else np.concatenate([p.offset for p in parts]),
        offset_name=offset,
    )
    if sharing is not None and filled == len(data) and spec.excluded is None:
        _share(
            sharing,
            design,
            keys[0] if len(keys) == 1 else None,
            written[0] if len(written) == 1 and written[0][1] == spec.names else None,
        )
    return design


# Designs shared inside ``designs_shared()``: the models of a battery fit several outcomes on
# the same right-hand side and the same rows (the controls model of product, process and
# new_to_market; the ordered logit's), so each such design is built once, with what is computed
# from it alone (X'WX, the collinear columns). A design is shared where every row of the data
# is used, the builder needs no formulaic (the specification's plan), there is no offset and it
# has at most SHARED_DESIGN_NUMBERS numbers; two builds share it where their right-hand sides,
# roles and rows agree and the columns they read hold the same values: the same memory
# (pandas' copy on write: a frame's shallow copies share their columns, and a change to any of
# them copies first), or columns remade with the same values (the parts remake their columns
# and select their rows once per outcome), compared bit for bit (``chunks.same_values``). An
# entry holds the columns it was found by, so their memory is not reused while it lives. The
# shared X (and X'WX) is read-only.
_SHARED: ContextVar[_SharedDesigns | None] = ContextVar("buzzpipe_shared_designs", default=None)
SHARED_DESIGN_NUMBERS = 1 << 16


@contextmanager
def designs_shared() -> Iterator[None]:
    """Inside the block, :func:`build_design` builds each right-hand side's design of the same
    rows of the same column values once (see ``_SHARED``); they go when the outermost block
    ends."""
    token = _SHARED.set(_SharedDesigns()) if _SHARED.get() is None else None
    try:
        yield
    finally:
        if token is not None:
            _SHARED.reset(token)


@dataclass
class _SharedDesign:
    design: Design
    columns: list[pd.Series]  # the columns it was built from, compared with a later build's
    # the levels of its specification's key by variable (its right-hand side's level
    # variables) and the right-hand (specification, names) direct_specs wrote for it: a later
    # build of the same column values fixes its specification from them
    levels: dict | None = None
    right: tuple | None = None
    derived: dict = field(default_factory=dict)
    # columns found to hold the same values: held, so their memory is not reused while the
    # entry is found by it
    aliases: list[list[pd.Series]] = field(default_factory=list)


@dataclass
class _SharedDesigns:
    """The designs kept inside one ``designs_shared`` block: by the memory of the columns a
    build read (a lookup), and by what a build's design depends on besides the columns' values
    (right-hand side, roles, rows), where the values are then compared."""

    by_storage: dict = field(default_factory=dict)
    by_model: dict = field(default_factory=dict)

    def entries(self) -> Iterator[_SharedDesign]:
        for entries in self.by_model.values():
            yield from entries


def _sharing_columns(
    formula: str,
    data: pd.DataFrame,
    rows: int,
    weights: str | None,
    cluster: str | None,
    offset: str | None,
    block_rows: int,
) -> tuple | None:
    """What a shared design is found by (``_SHARED``), before the specification is known: (the
    model's key: right-hand side, roles, columns read, rows; that key with the columns' memory;
    the columns), or None where the build cannot share (see ``_sharing_key``)."""
    if _SHARED.get() is None or offset is not None:
        return None
    if rows != len(data) or len(data) > block_rows:
        return None
    right = chunks.right_hand_variables(formula)
    if right is None:
        return None
    read = [*right, *(role for role in (weights, cluster) if role is not None)]
    columns = [chunks.column(data, name) for name in read]
    storage = tuple(chunks.column_storage(values) for values in columns)
    if any(where is None for where in storage):
        return None
    right_side = formula.split("~", 1)[1].strip()
    model = (right_side, weights, cluster, tuple(read), rows)
    return model, (model, storage), columns


def _sharing_key(
    spec: chunks.ModelSpecification,
    data: pd.DataFrame,
    rows: int,
    offset: str | None,
    found: tuple | None,
) -> tuple | None:
    """``found`` (:func:`_sharing_columns` of the build) where the design may be shared: every
    row used, no offset, the builder needs no formulaic (the specification's plan) and the
    design has at most SHARED_DESIGN_NUMBERS numbers; else None."""
    if found is None or offset is not None or spec.plan is None or spec.drop_cells:
        return None
    if rows != len(data) or spec.ordinal_values is not None:
        return None
    if rows * len(spec.names) > SHARED_DESIGN_NUMBERS:
        return None
    return found


def _shared_entry(sharing: tuple) -> _SharedDesign | None:
    """The shared design of a build's ``sharing`` key: found by its columns' memory, else by an
    entry of the same model whose columns hold the same values (then found by this memory too)."""
    shared = _SHARED.get()
    model, storage, columns = sharing
    entry = shared.by_storage.get(storage)
    if entry is not None:
        return entry
    for entry in shared.by_model.get(model, ()):
        if all(
            chunks.same_values(mine, theirs)
            for mine, theirs in zip(columns, entry.columns, strict=True)
        ):
            entry.aliases.append(columns)
            shared.by_storage[storage] = entry
            return entry
    return None


def _shared_design(
    sharing: tuple,
    formula: str,
    spec: chunks.ModelSpecification,
    data: pd.DataFrame,
    weights: str | None,
    cluster: str | None,
) -> Design | None:
    """The design of ``formula`` on ``data`` from a shared one of the same right-hand side and
    rows, with this formula's outcome and specifications; None where none is kept (or the
    outcome is not finite on every row: the build leaves those rows out)."""
    entry = _shared_entry(sharing)
    if entry is None or entry.design.names != spec.names:
        return None
    # the outcome as the build takes it: the frame's own float column, else a float copy
    y = _frame_outcome(spec, data)
    positions: Any = slice(None)
    if y is None:
        y = np.array(chunks.float_values(data, spec.plan["outcome"]))
        positions = np.arange(len(data))
    if not np.isfinite(y).all():
        return None
    kept = entry.design
    return replace(
        kept,
        formula=formula,
        outcome=spec.outcome,
        y=y,
        row_ids=data.index[positions],
        model_spec=spec.specs.rhs,
        outcome_spec=spec.specs.lhs,
        names=list(kept.names),
        weights_name=weights,
        cluster_name=cluster,
        notes=[],
        gram=None,
    )


def _share(sharing: tuple, design: Design, key: tuple | None, right: tuple | None) -> None:
    """Keep ``design`` (its X read-only) for the builds of the same right-hand side, with the
    levels of its specification's ``key`` (where it has one) of the right-hand side's
    variables, and the right-hand (specification, names) ``direct_specs`` wrote (or None)."""
    design.X.flags.writeable = False
    kept = replace(design, y=None, row_ids=None, model_spec=None, outcome_spec=None, notes=[])
    model, storage, columns = sharing
    levels = None
    if key is not None:
        read = set(model[3])
        levels = {variable: found for variable, found in key[3] if variable in read}
    entry = _SharedDesign(kept, columns, levels, right)
    shared = _SHARED.get()
    shared.by_storage[storage] = entry
    shared.by_model.setdefault(model, []).append(entry)


def shared_derived(design: Design, what: str, compute: Callable[[], Any]) -> Any:
    """``compute()``, a value computed from ``design``'s X and weights alone (``what`` says
    which), made once per shared design (``designs_shared``); computed each time for any other
    design. Read-only where it is an array; the caller copies before changing it."""
    shared = _SHARED.get()
    if shared is None:
        return compute()
    for entry in shared.entries():
        kept = entry.design
        if kept.X is design.X and kept.weights is design.weights and kept.names == design.names:
            if what not in entry.derived:
                value = compute()
                if isinstance(value, np.ndarray):
                    value.flags.writeable = False
                entry.derived[what] = value
            return entry.derived[what]
    return compute()


def _build_design_whole(
    formula: str,
    data: pd.DataFrame,
    *,
    weights: str | None = None,
    cluster: str | None = None,
    offset: str | np.ndarray | None = None,
) -> Design:
    """The design materialised from the whole data at once (offset arrays, stateful transforms)."""
    outcome = parse_outcome(formula)

    usable = pd.Series(True, index=data.index)
    for column, role in ((weights, "weight"), (cluster, "cluster")):
        if column is not None:
            _require_column(data, column, role)
            usable &= data[column].notna()
    offset_values: np.ndarray | None = None
    offset_name: str | None = None
    if isinstance(offset, str):
        _require_column(data, offset, "offset")
        offset_name = offset
        offset_values = pd.to_numeric(data[offset], errors="coerce").to_numpy(np.float64)
    elif offset is not None:
        offset_values = np.asarray(offset, dtype=np.float64)
        if offset_values.shape != (len(data),):
            raise InputError(
                "the offset array does not match the data",
                value=offset_values.shape,
                expected=f"one value per data row ({len(data)})",
            )
    if offset_values is not None:
        usable &= np.isfinite(offset_values)
    if weights is not None:
        weight_values = pd.to_numeric(data[weights], errors="coerce")
        bad = usable & ~(weight_values >= 0) & weight_values.notna()
        if bad.any() or (usable & weight_values.isna() & data[weights].notna()).any():
            rows = list(data.index[bad | (usable & weight_values.isna() & data[weights].notna())])
            raise InputError(
                "sampling weights must be non-negative numbers",
                column=weights,
                rows=rows,
                value=_plain(data.loc[rows[0], weights]),
                expected="a weight >= 0",
            )
        usable &= weight_values > 0  # zero-weight rows do not enter the sample (as Stata)
    # a row missing a variable of the formula leaves the sample (na_action="drop") before a
    # stateful transform learns from the rows: center(a) centres on the estimation sample,
    # not on a mean that one missing value makes NaN (which left no row at all). The variables
    # as a few rows' specification names them (formulaic's parse alone does not name those
    # inside a transform's call)
    try:
        variables = chunks.head_specification(formula, data.iloc[:256])[0]
    except InputError:  # the whole data's build below says what is wrong
        variables = []
    for variable in variables:
        if variable in data.columns:
            usable &= data[variable].notna()

    def materialise(frame: pd.DataFrame):
        try:
            return model_matrix(formula, frame, context=FORMULA_CONTEXT, na_action="drop")
        except Exception as error:
            raise InputError(f"cannot build the design: {error}", value=formula) from None

    with np.errstate(divide="ignore", invalid="ignore"):
        subset = data.loc[usable.to_numpy()]
        matrices = materialise(subset)
        lhs, rhs = matrices.lhs, matrices.rhs
        finite = np.isfinite(np.asarray(rhs, dtype=np.float64)).all(axis=1) & np.isfinite(
            np.asarray(lhs, dtype=np.float64)
        ).all(axis=1)
        if not finite.all():
            # a transform produced +-inf (log(0)): Stata treats it as missing; rebuild so that
            # factor levels come from the rows that remain
            matrices = materialise(subset.loc[rhs.index[finite]])
            lhs, rhs = matrices.lhs, matrices.rhs
    if lhs.shape[1] != 1:
        raise InputError(
            "the outcome must be one numeric column",
            column=outcome,
            value=list(lhs.columns),
            expected="a numeric 0/1 or ordinal outcome",
        )
    row_ids = rhs.index
    positions = data.index.get_indexer(row_ids)
    clusters = labels = None
    if cluster is not None:
        clusters, labels = pd.factorize(data[cluster].to_numpy()[positions], sort=True)
        labels = np.asarray(labels)
    weight_array = None
    if weights is not None:
        weight_array = pd.to_numeric(data[weights]).to_numpy(np.float64)[positions]
    return Design(
        formula=formula,
        outcome=outcome,
        y=np.asarray(lhs, dtype=np.float64)[:, 0].copy(),
        X=np.ascontiguousarray(np.asarray(rhs, dtype=np.float64)),
        names=[str(name) for name in rhs.columns],
        row_ids=row_ids,
        n_dropped_missing=int(len(data) - len(row_ids)),
        model_spec=rhs.model_spec,
        outcome_spec=lhs.model_spec,
        weights=weight_array,
        weights_name=weights,
        clusters=None if clusters is None else clusters.astype(np.intp),
        cluster_labels=labels,
        cluster_name=cluster,
        offset=None if offset_values is None else offset_values[positions],
        offset_name=offset_name,
    )
