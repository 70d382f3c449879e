"""Average changes in the predicted probability of innovating, with delta-method gradients.

A change is the mean over the estimation sample of F(x_changed' b) - F(x' b), where the changed
design is rebuilt from changed data through the fit's own specification (so log(), factors and
interactions follow, Stata's ``margins`` semantics). Its gradient in b is
mean(f(x_changed' b) x_changed - f(x' b) x), which gives delta-method errors and the Fieller set
of a ratio of two changes. Binary models only (logit, probit, LPM).
"""

from __future__ import annotations

import dataclasses
import math
import re
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from buzzpipe.errors import InputError
from buzzpipe.estimate.batched_newton import (
    _column_products,
    _hessians,
    hessians_by_blocks,
    keeps_products,
)
from buzzpipe.estimate.fieller import fieller_set
from buzzpipe.estimate.hypothesis_tests import critical_value, reference_df
from buzzpipe.estimate.reference import normal_cdf, normal_pdf, two_sided_p
from buzzpipe.results import Estimate, Hypothesis, Inference, Interval
from buzzpipe.results.vocabulary import Family, InferenceMethod
from buzzpipe.study import engine
from buzzpipe.study.models import BREADTH_CAP, design_of, local_scale
from buzzpipe.survey import measures
from buzzpipe.survey.schema import (
    any_column,
    breadth_column,
)

BINARY_FAMILIES = (Family.LOGIT, Family.PROBIT, Family.LPM)
# rows a time of :func:`difference_sums` where the reference's column products are not kept:
# its m x n arrays then take at most 8 m numbers a row of the block (2.6 MB each at m = 10)
DIFFERENCE_BLOCK = 1 << 15
# a ChangeDifference keeps the m x n arrays of its sums (:func:`difference_sums`) for its later
# calls where all of them hold at most DIFFERENCE_KEPT numbers (8 MiB), else makes them afresh
DIFFERENCE_KEPT = 1 << 20


@dataclass(frozen=True)
class ProbabilityChange:
    """A mean change in predicted probability and its gradient with respect to the coefficients."""

    value: float
    gradient: np.ndarray


def probability_and_density(eta: np.ndarray, family: str) -> tuple[np.ndarray, np.ndarray]:
    """F(eta) and f(eta) of a binary model's link."""
    if family == Family.LOGIT:
        probability = 1.0 / (1.0 + np.exp(-eta))
        return probability, probability * (1.0 - probability)
    if family == Family.PROBIT:
        return normal_cdf(eta), normal_pdf(eta)
    if family == Family.LPM:
        return eta, np.ones_like(eta)
    raise InputError("probability changes need a binary model", value=family)


class Edited:
    """A frame seen with some of its columns replaced (``frame[name]``, ``name in
    edited.columns``), without copying it: what a later step of a composed change reads."""

    def __init__(self, frame: Any, new: dict[str, pd.Series]) -> None:
        self.frame, self.new = frame, new
        added = [name for name in new if name not in frame.columns]
        self.columns = frame.columns.append(pd.Index(added)) if added else frame.columns

    def __getitem__(self, name: str) -> pd.Series:
        return self.new[name] if name in self.new else self.frame[name]


def with_columns(frame: pd.DataFrame, new: dict[str, pd.Series]) -> pd.DataFrame:
    """A copy of frame with these columns set."""
    changed = frame.copy(deep=False)  # copy on write: the columns it sets are its own
    for name, values in new.items():
        changed[name] = values
    return changed


@dataclass(frozen=True)
class DataChange:
    """A change of some columns of the data, such as one more kind of partner at a scale.

    Called on a frame it gives a changed copy (the formula path, Stata's ``margins``
    semantics); ``columns(frame, wanted)`` gives the changed columns alone, which
    :class:`ChangeDesigns` writes into the fit's design where the design reads them directly
    (``wanted``: the columns asked for, None for all; the column a change sets is always
    there, the columns that follow it only when asked for). ``key`` names the change (equal
    keys, equal changes)."""

    columns: Callable[[Any, Collection[str] | None], dict[str, pd.Series]]
    key: tuple

    def __call__(self, frame: pd.DataFrame) -> pd.DataFrame:
        return with_columns(frame, self.columns(frame, None))


def asked_column(frame: Any, name: str, wanted: Collection[str] | None) -> bool:
    """Whether a :class:`DataChange` gives column ``name``, one that follows the column it sets:
    the frame has it and ``wanted`` (the columns asked for, None for all) names it."""
    return name in frame.columns and (wanted is None or name in wanted)


def programme_columns(
    frame: Any, scale: str, cap: int = BREADTH_CAP, wanted: Collection[str] | None = None
) -> dict[str, pd.Series]:
    """The columns :func:`apply_programme` changes, with their new values (the breadth at
    scale, and of the with-group breadth, the any-flag and the regime those in ``wanted``,
    every one for None)."""
    column = breadth_column(scale)
    if column not in frame.columns:
        raise InputError("the survey has no breadth at this scale", column=column)
    observed = frame[column]  # once: a frame's column lookup is not free
    gains = (observed < cap).to_numpy()
    new = {column: observed + gains}
    with_group = breadth_column(scale, with_group=True)
    if asked_column(frame, with_group, wanted):
        new[with_group] = frame[with_group] + gains
    flag = any_column(scale)
    if asked_column(frame, flag, wanted):
        new[flag] = (new[column] > 0).astype(frame[flag].dtype)
    if asked_column(frame, "regime", wanted):
        changed = Edited(frame, new)
        new["regime"] = measures.regime(
            (changed[breadth_column(local_scale(frame))] > 0).astype(float),
            (changed[breadth_column("international")] > 0).astype(float),
        )
    return new


def apply_programme(frame: pd.DataFrame, scale: str, cap: int = BREADTH_CAP) -> pd.DataFrame:
    """A copy of frame in which every firm below the cap has one more kind of partner at scale;
    a firm at the cap (every partner type at that scale) is held there.

    This is the one definition of a +1 change: the probability changes, the margins' +1 rows
    (``cap=``) and the policy counterfactuals all use it. The with-group breadth, the any-flag
    and the regime follow the new breadth (:func:`programme_columns`).
    """
    return with_columns(frame, programme_columns(frame, scale, cap))


def plus_one(scale: str, cap: int = BREADTH_CAP) -> DataChange:
    """A data change: one more kind of partner at scale for every firm below the cap (by
    default :data:`BREADTH_CAP`), firms at the cap held there (:func:`apply_programme`)."""
    return DataChange(
        lambda frame, wanted: programme_columns(frame, scale, cap, wanted), ("plus_one", scale, cap)
    )


def average_change(
    fitted: Any,
    sample: pd.DataFrame,
    family: str,
    change: Callable[[pd.DataFrame], pd.DataFrame],
    base: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    *,
    designs: ChangeDesigns | None = None,
) -> ProbabilityChange:
    """Mean of F(design(change(sample)) b) - F(design(base(sample)) b) with its gradient.
    ``designs``: the fit's :class:`ChangeDesigns` on this sample, shared by several changes."""
    designs = ChangeDesigns(fitted, sample) if designs is None else designs
    pair = change_designs(fitted, sample, change, base, designs=designs)
    return change_at(designs.params, *pair, designs.weights, family)


def average_changes(
    fitted: Any,
    sample: pd.DataFrame,
    family: str,
    pairs: dict[Any, tuple[Callable, Callable | None]],
    *,
    designs: ChangeDesigns | None = None,
) -> dict[Any, ProbabilityChange]:
    """:func:`average_change` of each (change, base) in ``pairs``, by the same keys: in memory
    from the fit's :class:`ChangeDesigns` (``designs``, shared); on the stream and Dask engines
    summed over the sample's chunks where they lie, all pairs in one pass
    (:func:`chunked_average_changes`): no design of the sample is built on the client."""
    where = engine.current()
    if where.chunked:
        found = chunked_average_changes(where.source(sample), fitted, family, list(pairs.values()))
        return dict(zip(pairs, found, strict=True))
    designs = ChangeDesigns(fitted, sample) if designs is None else designs
    return {
        key: average_change(fitted, sample, family, change, base, designs=designs)
        for key, (change, base) in pairs.items()
    }


def chunked_average_changes(
    source: Any, fitted: Any, family: str, pairs: Sequence[tuple[Callable, Callable | None]]
) -> list[ProbabilityChange]:
    """:func:`average_change` of each (change, base) over the chunks of ``source`` (the fit's
    sample's), one pass for all: each chunk's designs are built from its rows where the chunk
    lies (on the workers for Dask) and only p + 2 numbers per pair come back from a chunk."""
    light = dataclasses.replace(fitted, row_ids=pd.RangeIndex(0))  # no per-firm part travels
    sums = source.map_reduce(_chunk_average_changes, light, family, tuple(pairs))
    return [ProbabilityChange(value / total, gradient / total) for value, gradient, total in sums]


def _chunk_average_changes(chunk, where, first_row, fitted, family, pairs) -> tuple:
    """((sum of w times the change, its gradient, sum of w), ...) per pair over one chunk's
    rows (tuples, so chunks add entry by entry)."""
    if len(chunk) == 0:
        empty = (0.0, np.zeros(len(fitted.x_names)), 0.0)
        return tuple(empty for _pair in pairs)
    designs = ChangeDesigns(fitted, chunk)
    weights = raw_weights(fitted, chunk)
    total = float(weights.sum())
    found = []
    for change, base in pairs:
        summed = change_at(designs.params, designs.of(change), designs.of(base), weights, family)
        found.append((summed.value, summed.gradient, total))
    return tuple(found)


def change_designs(
    fitted: Any,
    sample: pd.DataFrame,
    change: Callable[[pd.DataFrame], pd.DataFrame],
    base: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    *,
    designs: ChangeDesigns | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The designs of the changed and the base data (:class:`ChangeDesigns`)."""
    designs = ChangeDesigns(fitted, sample) if designs is None else designs
    return designs.of(change), designs.of(base)


def sample_design(fitted: Any, sample: pd.DataFrame, designs: ChangeDesigns | None) -> np.ndarray:
    """The fit's design of ``sample`` (:func:`~buzzpipe.study.models.design_of`): that of
    ``designs`` where it is the fit's :class:`ChangeDesigns` on this very sample (built once
    for every part that shares it, not to be written to), else rebuilt."""
    if designs is not None and designs.fitted is fitted and designs.sample is sample:
        return designs.of(None)
    return design_of(fitted, sample)


_NAME = re.compile(r"(?<![\w.])[A-Za-z_]\w*")
_CODED = re.compile(r"C\(\s*([A-Za-z_]\w*)\s*\)")


class ChangeDesigns:
    """The designs of one fit on its sample under data changes, each built once.

    A :class:`DataChange` whose changed columns the design reads only as they are (a numeric
    column, a product of at most two numeric columns, a column or ``C(column)`` coded as a
    factor) is the fit's design with those terms' columns written in: a numeric term from the
    changed values, a coded term copied from a row of the design whose values of the columns
    it reads are the changed ones (a coded term reads nothing else). Anything else (a
    transformed variable such as ``np.log(x)``, a value no firm has, a plain function) is
    rebuilt from the changed data through the fit's formula, as before. Either way the numbers
    are those of the rebuilt design, bit for bit. Memory: the fit's design and one design per
    distinct change."""

    def __init__(self, fitted: Any, sample: pd.DataFrame) -> None:
        self.fitted, self.sample = fitted, sample
        self._built: dict[Any, np.ndarray] = {}
        self._terms: list | None = None
        self._codes: dict = {}  # the sample's columns' codes for the rows of coded terms

    @cached_property
    def params(self) -> np.ndarray:
        """The fit's coefficients in the design's order."""
        params, names = self.fitted.params, list(self.fitted.x_names)
        if params.index.tolist() == names:  # already in that order: no lookup by label
            return params.to_numpy(dtype=float)
        return params[names].to_numpy(dtype=float)

    @cached_property
    def weights(self) -> np.ndarray:
        """The weights of an average over the sample (:func:`sampling_weights`)."""
        return sampling_weights(self.fitted, self.sample)

    def of(self, change: Callable[[pd.DataFrame], pd.DataFrame] | None) -> np.ndarray:
        """The design of the changed sample (of the sample itself for None)."""
        key = None if change is None else getattr(change, "key", None)
        if change is not None and key is None:  # a plain function: rebuilt, not kept
            return self._rebuilt(change(self.sample))
        if key not in self._built:
            self._built[key] = self._edited(change) if change is not None else None
            if self._built[key] is None:
                data = self.sample if change is None else change(self.sample)
                self._built[key] = self._rebuilt(data)
        return self._built[key]

    def _rebuilt(self, data: pd.DataFrame) -> np.ndarray:
        return design_of(self.fitted, data)

    def _edited(self, change: DataChange) -> np.ndarray | None:
        """The fit's design with the changed columns written in; None where the formula must
        rebuild it."""
        terms = self._design_terms()
        if terms is None:
            return None
        base = self.of(None)
        if base.shape != (len(self.sample), len(self.fitted.x_names)):
            return None
        new = change.columns(self.sample, set().union(*(reads for _, reads, _ in terms)))
        design = base.copy(order="K")  # the rebuilt layout, so products round alike
        for factors, reads, columns in terms:
            if not reads & set(new):
                continue
            values = _term_values(
                factors, reads, Edited(self.sample, new), self.sample, base, self._codes, columns
            )
            if values is None:
                return None
            design[:, columns] = values if values.ndim == 2 else values[:, None]
        return design

    def _design_terms(self) -> list | None:
        """(factors, the sample's columns they read, the design's columns) of each term with
        columns in the design; None without a formulaic specification."""
        if self._terms is None:
            spec = getattr(self.fitted, "model_spec", None)
            structure = getattr(spec, "structure", None)
            x_names = [str(name) for name in getattr(self.fitted, "x_names", None) or []]
            if not structure or not x_names:
                return None
            position = {name: i for i, name in enumerate(x_names)}
            self._terms = []
            for entry in structure:
                factors = getattr(entry.term, "factors", ())
                reads = {
                    name
                    for factor in factors
                    for name in _NAME.findall(str(getattr(factor, "expr", "")))
                    if name in self.sample.columns
                }
                columns = [position[str(name)] for name in entry.columns if str(name) in position]
                if reads and columns:
                    self._terms.append((factors, reads, columns))
        return self._terms


def _term_values(
    factors: Sequence[Any],
    reads: set[str],
    changed: Edited,
    sample: pd.DataFrame,
    base: np.ndarray,
    known: dict | None = None,
    columns: list[int] | None = None,
) -> np.ndarray | None:
    """One term's design values under the change: a numeric term's column (1-d), or rows of
    the base design (2-d, the rows whose values of what the term reads are the changed ones;
    only the term's ``columns`` where given); None where the term is not of those kinds or a
    changed value is nowhere in the sample. ``known``: kept codes (:func:`_rows_with`)."""
    lookups = [
        str(factor.expr)
        for factor in factors
        if getattr(getattr(factor, "eval_method", None), "value", None) == "lookup"
    ]
    if any(name not in sample.columns for name in lookups):
        return None
    coded = [_CODED.fullmatch(str(factor.expr)) for factor in factors]
    if len(lookups) == len(factors) <= 2 and all(_numeric(changed[name]) for name in lookups):
        values = None
        for name in lookups:
            column = changed[name].to_numpy(dtype=float, na_value=np.nan)
            values = column if values is None else values * column
        return values if np.all(np.isfinite(values)) else None
    if not all(
        str(factor.expr) in lookups or match is not None
        for factor, match in zip(factors, coded, strict=True)
    ):
        return None
    rows = _rows_with(sorted(reads), changed, sample, known)
    if rows is None:
        return None
    return base[rows] if columns is None else base[rows[:, None], columns]


def _numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(
        column.dtype
    )


def _rows_with(
    names: list[str], changed: Edited, sample: pd.DataFrame, known: dict | None = None
) -> np.ndarray | None:
    """For each firm, a row of the sample whose values of ``names`` are the firm's changed
    values (None where some firm's changed values are nowhere in the sample, or missing).
    ``known``: the sample's numeric columns' codes by name (:func:`_sample_codes`) and the
    sample's keys of ``names`` numbered, kept by the caller for every change of the sample."""
    n = len(sample)
    codes_of = []
    kept = known is not None  # every column's codes from the sample's kept ones
    for name in names:
        found = _known_codes(name, changed, sample, known)
        if found is False:
            return None
        if found is None:
            kept = False
            found = _value_codes(sample[name], changed[name])
            if found is None:
                return None
        codes_of.append(found)
    original_key = np.zeros(n, dtype=np.int64)
    changed_key = np.zeros(n, dtype=np.int64)
    for codes, count in codes_of:
        original_key = original_key * count + codes[:n]
        changed_key = changed_key * count + codes[n:]
    numbered = known.get(("rows", *names)) if kept else None
    if numbered is None:
        # the keys numbered in order of appearance (hashing, not sorting): key k first appears
        # where the running largest number reaches k
        numbers, keys = pd.factorize(original_key)
        first = np.searchsorted(np.maximum.accumulate(numbers), np.arange(len(keys)))
        numbered = (first, pd.Index(keys))
        if kept:  # the sample's keys alone: the same for every change
            known["rows", *names] = numbered
    first, keys = numbered
    at = keys.get_indexer(changed_key)
    if (at < 0).any():
        return None
    return first[at]


def _known_codes(
    name: str, changed: Edited, sample: pd.DataFrame, known: dict | None
) -> tuple[np.ndarray, int] | bool | None:
    """:func:`_value_codes` of a numeric column of the sample and its changed values from the
    sample's codes kept in ``known`` (the changed values looked up among the sample's, not
    factorized again with them): the same grouping of values. False where some changed value
    is nowhere in the sample or missing (no row has it), None where ``known`` cannot serve
    (no ``known``, a column not numeric or with values past 2^53)."""
    if known is None:
        return None
    if name not in known:
        known[name] = _sample_codes(sample[name])
    kept = known[name]
    new = changed[name]
    if kept is None or not _numeric(new):
        return None
    codes, uniques = kept
    values = new.to_numpy(dtype=float, na_value=np.nan)
    if not np.all(np.abs(values) < _EXACT_FLOAT):
        return None if not np.isnan(values).any() else False
    found = uniques.get_indexer(values + 0.0)
    if (found < 0).any():
        return False
    return np.concatenate([codes, found.astype(np.int64, copy=False)]), len(uniques)


def _sample_codes(original: pd.Series) -> tuple[np.ndarray, pd.Index] | None:
    """A numeric column's codes (equal values equal codes, -0.0 and 0.0 one value) and its
    distinct values, as :func:`_value_codes` numbers them; None where it is not numeric, has a
    missing value or values past 2^53."""
    if not _numeric(original):
        return None
    values = original.to_numpy(dtype=float, na_value=np.nan)
    if not np.all(np.abs(values) < _EXACT_FLOAT):
        return None
    codes, uniques = pd.factorize(values + 0.0)
    return codes.astype(np.int64, copy=False), pd.Index(uniques)


_EXACT_FLOAT = 2.0**53  # integers below it are exact as floats


def _value_codes(original: pd.Series, changed: pd.Series) -> tuple[np.ndarray, int] | None:
    """(codes of the values of ``original`` then ``changed``, equal values equal codes; how
    many values), None where one is missing. Numeric columns by numpy (their values as
    floats, exact below 2^53), others by pandas' factorize."""
    if _numeric(original) and _numeric(changed):
        both = np.concatenate(
            [
                original.to_numpy(dtype=float, na_value=np.nan),
                changed.to_numpy(dtype=float, na_value=np.nan),
            ]
        )
        if not np.all(np.abs(both) < _EXACT_FLOAT):  # a missing value (NaN), or too large
            if np.isnan(both).any():
                return None
        else:  # + 0.0: -0.0 and 0.0 one value
            codes, uniques = pd.factorize(both + 0.0)
            return codes.astype(np.int64, copy=False), len(uniques)
    codes, uniques = pd.factorize(pd.concat([original, changed], ignore_index=True))
    if (codes < 0).any():
        return None
    return codes, len(uniques)


def change_at(
    params: np.ndarray,
    x_changed: np.ndarray,
    x_base: np.ndarray,
    weights: np.ndarray,
    family: str,
) -> ProbabilityChange:
    """sum_i w_i (F(x_changed_i' b) - F(x_base_i' b)) at coefficients b, with its gradient."""
    p_changed, f_changed = probability_and_density(x_changed @ params, family)
    p_base, f_base = probability_and_density(x_base @ params, family)
    value = float(weights @ (p_changed - p_base))
    gradient = (weights * f_changed) @ x_changed - (weights * f_base) @ x_base
    return ProbabilityChange(value, gradient)


@dataclass(frozen=True)
class ChangeDifference:
    """g(b), the difference of two average changes as a function of the coefficients b (the
    designs and weights fixed), with its gradient: a restriction g(b) = 0 for
    :meth:`~buzzpipe.estimate.wild_bootstrap.WildScoreBootstrap.restriction_test`."""

    first: tuple[np.ndarray, np.ndarray]  # (changed, base) designs of the first change
    second: tuple[np.ndarray, np.ndarray]
    weights: np.ndarray  # normalised to sum 1
    family: str

    def __call__(self, params: np.ndarray) -> tuple[float, np.ndarray]:
        first = change_at(params, *self.first, self.weights, self.family)
        second = change_at(params, *self.second, self.weights, self.family)
        return first.value - second.value, first.gradient - second.gradient

    def many(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """g and its gradient at every column of ``params`` (p x m) in one pass: m values and
        a p x m matrix, each column what :meth:`__call__` gives at that column (to rounding).

        The four designs differ from the first only in the columns a change sets (the scales'
        breadth), so each index is the first design's plus those columns' difference, and
        the gradient one product with the first design plus the differing columns'."""
        reference, differences = self._shared_designs()
        return difference_sums(
            reference,
            differences,
            self.weights,
            self.family,
            params,
            steps=self._steps(),
            scratch=self._scratch(),
        )

    def many_with_hessians(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`many` and g's Hessian at every column of ``params`` (m x p x p), in the same
        pass: what a Newton step under the restriction g(b) = c needs for the curvature of
        the restriction (``WildScoreBootstrap.restricted_fits_under``). The reference
        design's column products are kept where they take at most ``PRODUCTS_KEPT`` numbers,
        else the Hessians are made block by block (a large sample's products are never held
        whole: n x p(p+1)/2 numbers, 13 times the design at p = 25)."""
        reference, differences = self._shared_designs()
        products = None  # made block by block where not kept
        if keeps_products(*reference.shape):
            products = self.__dict__.get("_reference_products")
            if products is None:
                products = _column_products(reference)
                object.__setattr__(self, "_reference_products", products)  # a cache
        return difference_sums(
            reference,
            differences,
            self.weights,
            self.family,
            params,
            products=products,
            curvature=True,
            steps=self._steps(),
            scratch=self._scratch(),
        )

    @staticmethod
    def _levels() -> tuple[float, float, float, float]:
        """The sign of each design in g: first changed, first base, second changed, base."""
        return 1.0, -1.0, -1.0, 1.0

    def _steps(self) -> tuple:
        """:func:`constant_steps` of the shared designs' differences (cached)."""
        cached = self.__dict__.get("_constant_steps")
        if cached is None:
            cached = constant_steps(self._shared_designs()[1])
            object.__setattr__(self, "_constant_steps", cached)  # a cache, as _shared
        return cached

    def _scratch(self) -> dict:
        """The arrays :func:`difference_sums` keeps between this difference's calls (per
        thread: a user's threads may share one difference), a cache as ``_shared``."""
        kept = self.__dict__.get("_kept_arrays")
        if kept is None:
            kept = {}
            object.__setattr__(self, "_kept_arrays", kept)
        return kept.setdefault(threading.get_ident(), {})

    def _shared_designs(self) -> tuple[np.ndarray, list]:
        """The first changed design, and for each of the four designs the columns where it
        differs from it with those columns' differences (cached)."""
        cached = self.__dict__.get("_shared")
        if cached is None:
            cached = shared_designs((*self.first, *self.second))
            object.__setattr__(self, "_shared", cached)  # frozen: a cache, not a field
        return cached


def shared_designs(designs: Sequence[np.ndarray]) -> tuple[np.ndarray, list]:
    """The first design, and for each design the columns where it differs from the first with
    those columns' differences (what :func:`difference_sums` reads)."""
    reference = designs[0]
    differences = []
    for design in designs:
        columns = np.flatnonzero(np.any(design != reference, axis=0))
        differences.append((columns, design[:, columns] - reference[:, columns]))
    return reference, differences


def constant_steps(differences: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple:
    """(the columns where some design differs from the first, and for each design either None
    or (an earlier design j, the row r)) where the design is design j plus the same numbers r
    in every row (over those columns), design j itself not such a step: its linear index is
    then design j's plus r b, a constant per coefficient vector (the first-partner changes:
    breadth set to 0 rather than 1 at a scale is the design with 1 minus one, everywhere).
    ``differences``: :func:`shared_designs`' second part."""
    union = np.unique(np.concatenate([columns for columns, _ in differences])).astype(np.intp)
    spread = []
    for columns, difference in differences:  # each design's differences over ``union``
        full = np.zeros((difference.shape[0], union.size))
        full[:, np.searchsorted(union, columns)] = difference
        spread.append(full)
    steps: list = []
    for k, design in enumerate(spread):
        found = None
        for j in range(k):
            if steps[j] is not None:
                continue
            step = design - spread[j]
            if len(step) and np.array_equal(step, np.broadcast_to(step[0], step.shape)):
                found = (j, step[0])
                break
        steps.append(found)
    return union, steps


def difference_sums(
    reference: np.ndarray,
    differences: Sequence[tuple[np.ndarray, np.ndarray]],
    weights: np.ndarray,
    family: str,
    params: np.ndarray,
    products: tuple | None = None,
    *,
    curvature: bool = False,
    steps: tuple | None = None,
    scratch: dict | None = None,
) -> tuple[np.ndarray, ...]:
    """sum_i w_i g_i(b) and its gradient at every column b of ``params`` (p x m), g_i the row's
    term in the difference of two changes: its four designs (first changed, first base, second
    changed, second base; signs ``ChangeDifference._levels``) given as the reference design
    plus each one's differing columns (:func:`shared_designs`). With ``products`` (the
    reference design's column products, ``batched_newton._column_products``) also the m x p x p
    Hessians sum_i w_i f'(x_i'b) x_i x_i' over the four designs: the reference's part from
    one product with the column products, each design's differing columns added as the
    reference's cross products with them (one product for all designs) and their own; with
    ``curvature`` and no ``products`` the reference's part made block by block
    (``hessians_by_blocks``).

    The sums over the designs are taken row by row before the weights and the design enter
    (f and f' of the four designs added with their signs, then one product with the reference
    design), each array a fit per row (m x n: a row's weight is contiguous). For the logit a
    design that is another plus a constant step (``steps``, :func:`constant_steps`, made here
    where not given) takes exp(-x'b) from that one times exp(-r b): two exponentials for the
    first-partner differences, not four. The sums agree with the designs' own sums to
    rounding (about 1e-16 relative; measured at most 3.1e-15 on the battery's calls).

    Where the reference's column products are not kept (``products`` None) and the sample has
    more than ``DIFFERENCE_BLOCK`` rows, the sums are made that many rows at a time and added:
    the m x n arrays above are then never held whole. Made whole (a93fb3d), they made
    first_partner_bootstrap's memory grow by about 3,000 bytes a firm between 20,000 and
    100,000 firms (``tests/study/test_memory_at_scale``, its bound nearly reached); in blocks,
    by about 850. At a million firms and 39 nulls each whole array took 312 MB. Up to
    ``DIFFERENCE_BLOCK`` rows (every survey-sized sample) the sums are one block's, bit for
    bit.

    ``scratch``: a dict the caller keeps between calls (``ChangeDifference``'s), where the
    m x n arrays are kept and reused when all of them hold at most ``DIFFERENCE_KEPT``
    numbers: the same operations into the same kind of arrays, so the same numbers bit for
    bit, without a fresh array's page faults each call (norway2010's 46 calls in a battery:
    about 4,500 page faults, half the sums' time)."""
    steps = constant_steps(differences) if steps is None else steps
    rows = reference.shape[0]
    if products is not None or rows <= DIFFERENCE_BLOCK:
        return _difference_sums(
            reference, differences, weights, family, params, products, curvature, steps, scratch
        )
    totals: list[np.ndarray] = []
    for start in range(0, rows, DIFFERENCE_BLOCK):
        block = slice(start, start + DIFFERENCE_BLOCK)
        part = _difference_sums(
            reference[block],
            [(columns, difference[block]) for columns, difference in differences],
            weights[block],
            family,
            params,
            None,
            curvature,
            steps,
        )
        if not totals:
            totals = list(part)
        else:
            for total, more in zip(totals, part, strict=True):
                total += more
    return tuple(totals)


def _difference_sums(
    reference: np.ndarray,
    differences: Sequence[tuple[np.ndarray, np.ndarray]],
    weights: np.ndarray,
    family: str,
    params: np.ndarray,
    products: tuple | None,
    curvature: bool,
    steps: tuple,
    scratch: dict | None = None,
) -> tuple[np.ndarray, ...]:
    """:func:`difference_sums` of one block of rows (all of them where not blocked)."""

    n, p = reference.shape
    m = params.shape[1]
    union, steps_of = steps
    logit = family == Family.LOGIT
    wanted = products is not None or curvature
    # the differing columns in order of first appearance: each one's sum of level w d f' is a
    # block of ``moved`` (m x n), the blocks read as one (c m) x n matrix below
    order = list(dict.fromkeys(int(c) for columns, _ in differences for c in columns))
    arrays = _Arrays(scratch, m, n, 8 + len(order) + len(steps_of))
    moved_all = arrays.get("moved", len(order)) if wanted and order else None
    moved: dict[int, np.ndarray] = {}  # a differing column: sum of level w d f' (m x n)
    shared = np.matmul(params.T, reference.T, out=arrays.get("shared"))  # m x n, a fit per row
    values = np.zeros(m)
    gradients = np.zeros((p, m))
    densities = slopes = None  # sum over the designs of level f, of level f' (m x n)
    squares = []  # (columns, column, sum_i level w f' d_column d_columns: m x columns)
    stepped: dict[int, np.ndarray] = {}  # exp(-x'b) of a design made from the one it steps from
    for k, (level, (columns, difference)) in enumerate(
        zip(ChangeDifference._levels(), differences, strict=True)
    ):
        if logit:
            exponential = stepped.pop(k, None)
            if exponential is None:
                exponential = _negative_index(
                    shared, columns, difference, params, out=arrays.get("exponential")
                )
                np.exp(exponential, out=exponential)
                # the designs that step from this one: their exp(-x'b) from it, now
                stepped.update(
                    _stepped_exponentials(k, exponential, steps_of, params, union, arrays)
                )
            exponential += 1.0
            probability = np.divide(1.0, exponential, out=exponential)
            # the first design's f and f' are the sums' first terms: made in their arrays
            other = np.subtract(1.0, probability, out=arrays.get("slopes" if k == 0 else "other"))
            density = np.multiply(
                other, probability, out=arrays.get("densities" if k == 0 else "density")
            )
            slope = None
            if wanted:  # f' = f (1 - 2F), made in 1 - F's array
                other -= probability
                other *= density
                slope = other
        else:
            index = _index(shared, columns, difference, params)
            probability, density = probability_and_density(index, family)
            density = np.array(density)  # its own: added to in place below
            slope = density_slope(index, probability, density, family) if wanted else None
        values += level * (probability @ weights)
        if columns.size:
            scaled = difference.T * (level * weights)  # columns x n: level w d
            gradients[columns] += scaled @ density.T
            if slope is not None:
                for place, column in enumerate(columns):
                    if column in moved:
                        term = np.multiply(slope, scaled[place], out=arrays.get("term"))
                        moved[column] += term
                    else:
                        term = moved[column] = np.multiply(
                            slope, scaled[place], out=moved_all[order.index(column)]
                        )
                    squares.append((columns, column, term @ difference))
        if slope is not None:
            slopes = _signed_sum(slopes, slope, level)
        densities = _signed_sum(densities, density, level)
    densities *= weights
    gradients += (densities @ reference).T
    if not wanted:
        return values, gradients
    slopes *= weights
    if products is None:
        hessians = hessians_by_blocks(reference, slopes.T)
    else:
        hessians = _hessians(*products, slopes.T, p)
    if moved:
        # x = r + d (d zero outside the differing columns): x x' = r r' + r d' + d r' + d d'
        cross = moved_all.reshape(len(order) * m, n) @ reference  # (c m) x p
        for place, column in enumerate(order):
            part = cross[place * m : (place + 1) * m]
            hessians[:, :, column] += part
            hessians[:, column, :] += part
        for columns, column, square in squares:
            hessians[:, columns, column] += square
    return values, gradients, hessians


class _Arrays:
    """The m x n arrays of one call of :func:`_difference_sums` by name: views of one flat
    array kept in ``scratch`` (the caller's dict, reused by its later calls) where ``count``
    of them hold at most ``DIFFERENCE_KEPT`` numbers, else fresh ones."""

    def __init__(self, scratch: dict | None, m: int, n: int, count: int) -> None:
        self.shape, self.given, self.flat = (m, n), {}, None
        if scratch is not None and count * m * n <= DIFFERENCE_KEPT:
            flat = scratch.get("flat")
            if flat is None:  # its pages are touched only as far as the calls use it
                flat = scratch["flat"] = np.empty(DIFFERENCE_KEPT)
            self.flat = flat

    def get(self, name: str, blocks: int = 0) -> np.ndarray:
        """The array ``name`` (m x n; with ``blocks``, blocks x m x n), the same on each call."""
        found = self.given.get(name)
        if found is None:
            shape = (blocks, *self.shape) if blocks else self.shape
            size = int(np.prod(shape))
            if self.flat is None:
                found = np.empty(shape)
            else:
                used = sum(array.size for array in self.given.values())
                found = self.flat[used : used + size].reshape(shape)
            self.given[name] = found
        return found


def _index(
    shared: np.ndarray, columns: np.ndarray, difference: np.ndarray, params: np.ndarray
) -> np.ndarray:
    """A design's linear index (m x n, its own array): the reference's plus its columns'."""
    if not columns.size:
        return shared.copy()
    index = params[columns].T @ difference.T
    index += shared
    return index


def _negative_index(
    shared: np.ndarray,
    columns: np.ndarray,
    difference: np.ndarray,
    params: np.ndarray,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Minus a design's linear index (m x n, its own array, ``out`` where given): minus the
    reference's and its columns' (negating the coefficients negates each product and sum
    exactly)."""
    if not columns.size:
        return np.negative(shared, out=out)
    negative = np.matmul(np.negative(params[columns]).T, difference.T, out=out)
    negative -= shared
    return negative


def _stepped_exponentials(
    base: int,
    exponential: np.ndarray,
    steps_of: list,
    params: np.ndarray,
    union: np.ndarray,
    arrays: _Arrays | None = None,
) -> dict[int, np.ndarray]:
    """exp(-x'b) of each design that is design ``base`` plus a row r (:func:`constant_steps`),
    as ``exponential`` (design base's) times exp(-r b), by the design's place; a design whose
    exp(-r b) is not a positive finite number is left out (it is made from its own index).
    ``arrays``: where each one is made (its own by the design's place), else fresh."""
    found = {}
    for place, step in enumerate(steps_of):
        if step is None or step[0] != base:
            continue
        factor = np.exp(-(step[1] @ params[union]))
        if np.all(np.isfinite(factor) & (factor > 0)):
            out = None if arrays is None else arrays.get(f"stepped {place}")
            found[place] = np.multiply(exponential, factor[:, None], out=out)
    return found


def _signed_sum(total: np.ndarray | None, term: np.ndarray, level: float) -> np.ndarray:
    """total + level term (level 1 or -1), in total's array (the first term's, signed)."""
    if total is None:
        return term if level > 0 else np.negative(term, out=term)
    if level > 0:
        total += term
    else:
        total -= term
    return total


def density_slope(
    eta: np.ndarray, probability: np.ndarray, density: np.ndarray, family: str
) -> np.ndarray:
    """f'(eta) of a binary model's link, from F(eta) and f(eta) already computed: f (1 - 2F)
    for the logit, -eta f for the probit, 0 for the linear probability model."""
    if family == Family.LOGIT:
        return density * (1.0 - 2.0 * probability)
    if family == Family.PROBIT:
        return -eta * density
    return np.zeros_like(eta)


def change_difference(
    fitted: Any,
    sample: pd.DataFrame,
    family: str,
    first: tuple[Callable, Callable | None],
    second: tuple[Callable, Callable | None],
    *,
    designs: ChangeDesigns | None = None,
) -> ChangeDifference:
    """The difference of two average changes, each (change, base) as :func:`average_change`
    takes them, as a function of the coefficients."""
    designs = ChangeDesigns(fitted, sample) if designs is None else designs
    return ChangeDifference(
        change_designs(fitted, sample, *first, designs=designs),
        change_designs(fitted, sample, *second, designs=designs),
        sampling_weights(fitted, sample),
        family,
    )


@dataclass(frozen=True, eq=False)
class ChangeChunks:
    """The chunk specification of a sample's designs under data changes, for a source's
    ``map_designs``: each chunk's design under every change (None: as observed) is built once
    from the chunk's rows through the fit's specification where the chunk lies (on the workers
    for Dask) and kept there like a fit's designs, as the first design and each design's columns
    that differ from it (:func:`shared_designs`), with the chunk's sampling weights. One object
    serves every difference of the same fit and sample, so that the changes they share (the
    international steps of the first-partner tests) are built and kept once."""

    model_spec: Any  # the fit's formulaic specification and its columns
    names: tuple
    weights: str | None  # the sampling-weight column, or None
    changes: tuple  # distinct changes (None: as observed)
    columns = None  # every column of the chunk: a change may read columns the design does not

    def build_chunk(self, frame: pd.DataFrame, where: str, first_row: int) -> tuple:
        """(the first design, the chunk's weights, (columns, difference) of each change)."""
        from buzzpipe.estimate.design import rebuild_matrix

        weights = (
            frame[self.weights].to_numpy(dtype=float)
            if self.weights is not None and self.weights in frame.columns
            else np.ones(len(frame))
        )
        designs = [
            np.asarray(
                rebuild_matrix(self.model_spec, self.names, frame if c is None else c(frame)),
                dtype=float,
            )
            for c in self.changes
        ]
        reference, differences = shared_designs(designs)
        return reference, weights, tuple(differences)


@dataclass(frozen=True, eq=False)
class ChunkedChangeDifference:
    """:class:`ChangeDifference` over the chunks of the sample (the stream and Dask engines): the
    sums of w F(x'b) and w f(x'b) x over each chunk's four designs (:class:`ChangeChunks`, built
    once where the chunk lies and kept), added in the source's fixed tree and divided by the
    total weight. No design of the sample is built on the client."""

    source: Any  # the sample's chunk source (``StudyEngine.source``)
    chunks: ChangeChunks
    picks: tuple  # the four designs' positions in chunks.changes
    family: str

    def __call__(self, params: np.ndarray) -> tuple[float, np.ndarray]:
        values, gradients = self.many(np.asarray(params, dtype=float)[:, None])
        return float(values[0]), gradients[:, 0]

    def many(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._sums(params, curvature=False)

    def many_with_hessians(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`many` and g's m x p x p Hessians in the same pass over the chunks, each chunk's
        made where it lies (block by block, ``difference_sums(curvature=True)``) so that only
        m x p x p numbers per chunk travel. Without it a restricted fit's Newton step takes
        g's Hessian by forward differences of :meth:`many` at p x m moved coefficient
        vectors: each chunk then holds several rows x (p m) arrays at once (at 20,000 firms
        the Dask workers' peak went from 619 to 1,137 MiB, at a million from 3.2 to 16.7 GiB)."""
        return self._sums(params, curvature=True)

    def _sums(self, params: np.ndarray, curvature: bool) -> tuple[np.ndarray, ...]:
        """The chunks' sums of :func:`_chunk_change_sums` (with ``curvature`` the Hessians'
        too), added in the source's tree, each divided by the total weight."""
        total, *sums = self.source.map_designs(
            self.chunks, _chunk_change_sums, self.picks, self.family,
            np.asarray(params, dtype=float), curvature,
        )  # fmt: skip
        return tuple(found / total for found in sums)


def _chunk_change_sums(
    chunk: tuple, picks: tuple, family: str, params: np.ndarray, curvature: bool = False
) -> tuple:
    """(total weight, sum_i w_i g_i at every column of params, the gradients' sums and, with
    ``curvature``, the Hessians' sums) of a kept chunk of :class:`ChangeChunks` (``picks``:
    the four designs' positions)."""
    reference, weights, differences = chunk
    sums = difference_sums(
        reference,
        [differences[pick] for pick in picks],
        weights,
        family,
        params,
        curvature=curvature,
    )
    return (float(weights.sum()), *sums)


def chunked_change_differences(
    source: Any,
    fitted: Any,
    family: str,
    pairs: Sequence[tuple[tuple[Callable, Callable | None], tuple[Callable, Callable | None]]],
) -> list[ChunkedChangeDifference]:
    """:func:`change_difference` over the chunks of ``source`` (the sample's) for each (first,
    second) pair, all reading one :class:`ChangeChunks` (a change the pairs share, by its key,
    built once per chunk)."""
    column = getattr(fitted, "weights", None)
    distinct: dict = {}
    for pair in pairs:
        for change in (*pair[0], *pair[1]):
            distinct.setdefault(getattr(change, "key", change), change)
    keys = list(distinct)
    chunks = ChangeChunks(
        fitted.model_spec,
        tuple(fitted.x_names),
        column if isinstance(column, str) else None,
        tuple(distinct.values()),
    )
    return [
        ChunkedChangeDifference(
            source,
            chunks,
            tuple(keys.index(getattr(c, "key", c)) for c in (*first, *second)),
            family,
        )
        for first, second in pairs
    ]


def sampling_weights(fitted: Any, sample: pd.DataFrame) -> np.ndarray:
    """Weights of an average over the sample: the fit's sampling weights, normalised to sum 1."""
    weights = raw_weights(fitted, sample)
    return weights / weights.sum()


def raw_weights(fitted: Any, sample: pd.DataFrame) -> np.ndarray:
    """The fit's sampling weights on the sample's rows (ones without weights)."""
    column = getattr(fitted, "weights", None)
    if isinstance(column, str) and column in sample.columns:
        return sample[column].to_numpy(dtype=float)
    return np.ones(len(sample))


def coefficient_covariance(fitted: Any) -> np.ndarray:
    """The covariance of the design's coefficients (ordered logit cut points left out)."""
    names = list(fitted.x_names)
    if list(fitted.vcov.index) == names and list(fitted.vcov.columns) == names:
        return fitted.vcov.to_numpy(dtype=float)  # already in that order: no .loc
    return fitted.vcov.loc[names, names].to_numpy(dtype=float)


def compose(*changes: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable:
    """Apply data changes one after another (a :class:`DataChange` when each is one)."""
    if all(isinstance(step, DataChange) for step in changes):

        def columns(frame: Any, wanted: Collection[str] | None) -> dict[str, pd.Series]:
            new: dict[str, pd.Series] = {}
            for number, step in enumerate(changes, 1):  # each reads what the ones before left
                asked = wanted if number == len(changes) else None  # all, for the later steps
                new.update(step.columns(Edited(frame, new) if new else frame, asked))
            return new

        return DataChange(columns, ("compose", *(step.key for step in changes)))

    def change(frame: pd.DataFrame) -> pd.DataFrame:
        for step in changes:
            frame = step(frame)
        return frame

    return change


def change_estimate(
    fitted: Any,
    change: ProbabilityChange,
    inference: Inference,
    hypothesis: Hypothesis | None = None,
) -> Estimate:
    """A probability change as an Estimate with a delta-method error and the fit's reference."""
    vcov = coefficient_covariance(fitted)
    se = float(math.sqrt(max(change.gradient @ vcov @ change.gradient, 0.0)))
    df = reference_df(fitted)
    critical = critical_value(df)
    statistic = change.value / se if se > 0 else math.nan
    return Estimate(
        estimate=change.value,
        std_error=se,
        p_value=float(two_sided_p(statistic, df)) if se > 0 else math.nan,
        inference=inference.derived(InferenceMethod.DELTA_METHOD),
        interval=Interval.bounded(change.value - critical * se, change.value + critical * se),
        statistic=statistic,
        hypothesis=hypothesis,
    )


def ratio_estimate(
    fitted: Any,
    numerator: ProbabilityChange,
    denominator: ProbabilityChange,
    inference: Inference,
    hypothesis: Hypothesis | None = None,
    level: float = 0.95,
) -> Estimate:
    """The ratio of two probability changes with Fieller's set (possibly unbounded)."""
    vcov = coefficient_covariance(fitted)
    g_num, g_den = numerator.gradient, denominator.gradient
    critical = critical_value(reference_df(fitted), 100.0 * level)
    kind, low, high = fieller_set(
        numerator.value,
        denominator.value,
        float(g_num @ vcov @ g_num),
        float(g_num @ vcov @ g_den),
        float(g_den @ vcov @ g_den),
        critical,
    )
    return Estimate(
        estimate=numerator.value / denominator.value if denominator.value != 0 else math.nan,
        std_error=None,
        p_value=math.nan,
        inference=inference.derived(InferenceMethod.FIELLER),
        interval=fieller_interval(kind, low, high, level),
        hypothesis=hypothesis,
        note=f"Fieller set: {kind.replace('_', ' ')}; described, not used for a verdict",
    )


def fieller_interval(kind: str, low: float, high: float, level: float) -> Interval:
    """A Fieller set (kind, lower, upper) as an Interval of segments."""
    if kind == "empty":
        return Interval([], level)
    if kind == "two_rays":
        return Interval([(-math.inf, low), (high, math.inf)], level)
    return Interval([(low, high)], level)
