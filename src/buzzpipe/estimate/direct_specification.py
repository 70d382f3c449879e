"""formulaic's model specification of a simple formula, made from the column types and levels.

formulaic learns a specification by materialising the formula on data (about 10-35 ms for a
study formula, most of it building pandas frames of the level rows). For the formulas the study
writes, what it learns follows from the columns' types and the levels the sample holds alone,
so this module writes the same ``ModelSpecs`` directly (0.2-0.5 ms):

- the outcome: a numeric column (numpy or nullable integer or float, not boolean);
- the right-hand side: the intercept, then terms that are products of factors, each factor
  a numeric column, ``log``/``exp``/``sqrt`` (or ``np.``) of one (numerical), a text or
  categorical column or ``C(column)`` of a numeric, text or categorical column (treatment
  coded, formulaic's levels: a categorical column's categories, else the sorted distinct
  values the sample holds).

Which factors are reduced in rank is decided by formulaic's own rule
(``FormulaMaterializer._get_scoped_terms_spanned_by_evaled_factors`` and
``_simplify_scoped_terms``), and columns are named by its formats. Any other formula or column
type (boolean, nullable, dates, mixed objects, a single level, no intercept, a column named
like a function) gives ``None``: formulaic then materialises it as before. Tests compare every
field of the specification with formulaic's on many formulas and frames.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import numpy as np
import pandas as pd
from formulaic.materializers.base import EncodedTermStructure, FormulaMaterializer
from formulaic.materializers.types import EvaluatedFactor, FactorValues, ScopedFactor, ScopedTerm
from formulaic.model_spec import ModelSpec, ModelSpecs
from formulaic.parser.types import Factor
from formulaic.transforms.contrasts import ContrastsState, TreatmentContrasts
from formulaic.utils.variables import Variable
from pandas.core.dtypes.dtypes import BaseMaskedDtype  # pandas' nullable numbers

from buzzpipe.estimate import chunks
from buzzpipe.estimate.kept import KeptByKey

__all__ = ["direct_specs"]

# right-hand specifications by (right-hand side, its factors' kinds and levels): the battery
# fits the same right-hand side to several outcomes on one sample. Shared by the designs that
# take them, as formulaic's specifications kept per design key already are.
_RIGHT_HANDS = KeptByKey(256)  # -> (right-hand ModelSpec, column names)

_CATEGORICAL = re.compile(r"^C\((\w+)\)$")
_TRANSFORM = re.compile(r"^(np\.)?(log|exp|sqrt)\((\w+)\)$")
# names a formula's functions are looked up by: a data column of that name would shadow them
_FUNCTION_NAMES = ("C", "np", "log", "exp", "sqrt")
_LITERAL, _LOOKUP, _PYTHON = (Factor.EvalMethod(m) for m in ("literal", "lookup", "python"))
_NUMERICAL, _CATEGORICAL_KIND = Factor.Kind.NUMERICAL, Factor.Kind.CATEGORICAL


def _value(name: str) -> Variable:
    return Variable(name, roles=("value",), source="data")


def _callable(name: str, source: str) -> Variable:
    return Variable(name, roles=("callable",), source=source)


def _numeric(dtype: Any) -> bool:
    """A numpy or pandas (nullable) integer or float column: formulaic reads it as numerical."""
    return isinstance(dtype, np.dtype | BaseMaskedDtype) and dtype.kind in "iuf"


def _text_or_categorical(dtype: Any) -> bool:
    """A column formulaic reads as categorical by itself (its pandas materialiser's rule:
    object, pandas' default text type or categorical)."""
    return isinstance(dtype, pd.CategoricalDtype) or dtype == "object" or dtype == "str"


def _levels(frame: pd.DataFrame, variable: str, rows: np.ndarray) -> list | None:
    """formulaic's categories of ``variable`` over the usable ``rows``: its own conversion
    (``Series.astype("category")``) of one row per distinct value; ``None`` where they are not
    plain strings or numbers (formulaic names and orders others in ways not checked here)."""
    column = chunks.column(frame, variable)
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        kinds = dtype.categories.dtype
        if not (_numeric(kinds) or pd.api.types.is_string_dtype(kinds)):
            return None
        # what the conversion gives a categorical whatever its rows: all its categories
        categories = list(chunks.category_values(dtype))
        return categories if len(categories) >= 2 else None
    positions = chunks.level_positions(frame, rows, [variable])
    values = column.iloc[positions]
    if dtype == "object" and not all(isinstance(value, str) for value in values.array):
        return None
    categories = list(values.astype("category").cat.categories)
    return categories if len(categories) >= 2 else None


def _evaluated(factor: Factor, frame: pd.DataFrame, rows: np.ndarray, levels: dict):
    """formulaic's evaluated factor (values left out, as its specifications keep them) with
    the metadata its rank rule reads, or ``None`` for a factor not handled here. ``levels``
    receives a categorical factor's categories."""
    method, expr = factor.eval_method, factor.expr
    if method is _LITERAL:
        if expr != "1":
            return None
        return EvaluatedFactor(factor, FactorValues(1, kind="constant"), None)
    if method is _LOOKUP:
        if expr not in frame.columns:
            return None
        dtype = chunks.column(frame, expr).dtype
        variables = {_value(expr)}
        if _numeric(dtype):
            kind = _NUMERICAL
        elif _text_or_categorical(dtype):
            kind = _CATEGORICAL_KIND
            variable = expr
        else:
            return None
    elif method is _PYTHON and (matched := _CATEGORICAL.match(expr)):
        variable = matched.group(1)
        if variable not in frame.columns:
            return None
        dtype = chunks.column(frame, variable).dtype
        if not (_numeric(dtype) or _text_or_categorical(dtype)):
            return None
        kind = _CATEGORICAL_KIND
        variables = {_value(variable), _callable("C", "transforms")}
    elif method is _PYTHON and (matched := _TRANSFORM.match(expr)):
        prefix, function, variable = matched.groups()
        if variable not in frame.columns or not _numeric(chunks.column(frame, variable).dtype):
            return None
        kind = _NUMERICAL
        if prefix:
            variables = {_value(variable), _callable(f"np.{function}", "transforms")}
        else:
            variables = {_value(variable), _callable(function, "context")}
    else:
        return None
    if kind is _CATEGORICAL_KIND:
        found = _levels(frame, variable, rows)
        if found is None:
            return None
        levels[expr] = found
    spans = kind is _CATEGORICAL_KIND
    return EvaluatedFactor(
        factor,
        FactorValues(np.empty(0), kind=kind.value, spans_intercept=spans),
        variables,
    )


def _column_names(scoped_term, levels: dict) -> list[str]:
    """A scoped term's columns, as formulaic names them: each factor's encoded names (a
    treatment-coded factor ``name[level]``, or ``name[T.level]`` reduced without its first
    level), joined by ':' over the product in which the first factor varies fastest."""
    if not scoped_term.factors:
        return ["Intercept"]
    per_factor = []
    for scoped in scoped_term.factors:
        expr = scoped.factor.expr
        if expr not in levels:
            per_factor.append([expr])
        elif scoped.reduced:
            per_factor.append([f"{expr}[T.{level}]" for level in levels[expr][1:]])
        else:
            per_factor.append([f"{expr}[{level}]" for level in levels[expr]])
    return [":".join(reversed(product)) for product in itertools.product(*reversed(per_factor))]


def _side(formula, structure, encoder_state) -> ModelSpec:
    return ModelSpec(
        formula=formula,
        materializer="pandas",
        materializer_params={},
        ensure_full_rank=True,
        na_action="drop",
        output="pandas",
        structure=structure,
        transform_state={},
        encoder_state=encoder_state,
    )


def direct_specs(
    formula: str, frame: pd.DataFrame, rows: np.ndarray, right: tuple | None = None
) -> tuple[Any, list] | None:
    """(formulaic's ``ModelSpecs`` of ``formula``, the design's column names) as formulaic
    learns them from ``frame``'s usable ``rows`` (``na_action="drop"``), or ``None`` where the
    formula or a column is not one this module writes (see the module's docstring).
    ``right``: the (right-hand specification, column names) this function gave a formula of the
    same right-hand side on the same rows of columns of the same values (a shared design's:
    ``design.designs_shared``), taken instead of reading the right-hand side's columns again."""
    try:
        parsed = chunks._parse(formula)
        lhs_terms, rhs_terms = list(parsed.lhs), list(parsed.rhs)
    except Exception:  # formulaic's parser refuses it, or it has no two sides
        return None
    if any(name in frame.columns for name in _FUNCTION_NAMES):
        return None
    if len(lhs_terms) != 1 or len(lhs_terms[0].factors) != 1:
        return None
    (outcome,) = lhs_terms[0].factors
    if outcome.eval_method is not _LOOKUP or outcome.expr not in frame.columns:
        return None
    if not _numeric(chunks.column(frame, outcome.expr).dtype):
        return None
    if not rhs_terms or str(rhs_terms[0]) != "1":
        return None  # no intercept: formulaic's full-rank rule then differs
    if right is not None:
        if any(factor.expr == outcome.expr for term in rhs_terms for factor in term.factors):
            return None  # the outcome on the right: formulaic shares its encoding
        return _with_outcome(parsed, lhs_terms, outcome, *right)
    levels: dict[str, list] = {}
    evaluated: dict[str, EvaluatedFactor] = {}
    for term in rhs_terms:
        for factor in term.factors:
            if factor.expr == outcome.expr:
                return None  # the outcome on the right: formulaic shares its encoding
            if factor.expr not in evaluated:
                found = _evaluated(factor, frame, rows, levels)
                if found is None:
                    return None
                evaluated[factor.expr] = found
    key = (
        str(parsed.rhs),
        tuple(
            (expr, found.metadata.kind, tuple(map(repr, levels.get(expr, ()))))
            for expr, found in evaluated.items()
        ),
    )
    right = _RIGHT_HANDS.get(key)
    if right is None:
        right = _right_hand(parsed.rhs, evaluated, levels)
        if right is None:
            return None
        _RIGHT_HANDS.put(key, right)
    return _with_outcome(parsed, lhs_terms, outcome, *right)


def _with_outcome(parsed, lhs_terms, outcome, rhs, names) -> tuple[Any, list]:
    """The ``ModelSpecs`` of the outcome's side written beside the right-hand ``rhs``."""
    lhs_factor = EvaluatedFactor(outcome, None, {_value(outcome.expr)})
    lhs = _side(
        parsed.lhs,
        [
            EncodedTermStructure(
                lhs_terms[0], [ScopedTerm([ScopedFactor(lhs_factor)], scale=1)], [outcome.expr]
            )
        ],
        {outcome.expr: (_NUMERICAL, {})},
    )
    return ModelSpecs(lhs=lhs, rhs=rhs), list(names)


def _right_hand(formula, evaluated: dict, levels: dict) -> tuple[ModelSpec, list[str]] | None:
    """The right-hand specification and its columns, from the evaluated factors by
    formulaic's rank rule (``None`` where two columns would share a name)."""
    structure, encoder_state, names = [], {}, []
    spanned: set = set()
    for term in formula:
        factors = [evaluated[factor.expr] for factor in term.factors]
        span = FormulaMaterializer._get_scoped_terms_spanned_by_evaled_factors(factors) - spanned
        scoped_terms = FormulaMaterializer._simplify_scoped_terms(span)
        spanned.update(span)
        columns = []
        for scoped_term in scoped_terms:
            columns += _column_names(scoped_term, levels)
            for scoped in scoped_term.factors:
                expr = scoped.factor.expr
                if expr in encoder_state:
                    continue
                if expr in levels:
                    categories = levels[expr]
                    state = {
                        "categories": categories,
                        "contrasts": ContrastsState(TreatmentContrasts(), categories),
                    }
                    encoder_state[expr] = (_CATEGORICAL_KIND, state)
                else:
                    encoder_state[expr] = (_NUMERICAL, {})
        structure.append(
            EncodedTermStructure(
                term, [st.copy(without_values=True) for st in scoped_terms], columns
            )
        )
        names += columns
    if len(set(names)) != len(names):
        return None
    return _side(formula, structure, encoder_state), names
