"""Policy counterfactuals: innovation "predicted under the model" if a programme added partners.

Programme P (``pipeline``) gives K firms one more kind of international partner, programme C
(``cluster``) one more kind of local partner: regional, or national where the survey lacks the
regional scale (CIS-style data, where "local" is the own country, as the regimes define it).
A firm already collaborating with every partner type at that scale (the cap) cannot gain one and
is not eligible. The new breadth carries through:
``breadth_<scale>``, its ``_with_group`` variant, ``any_<scale>`` and ``regime`` are rebuilt, so
regimes and interactions in the formula follow.

Targeting gives each firm a treatment share t_i in [0, 1], the probability it is chosen:

- ``random``: every eligible firm alike, t_i = min(1, K / W), W the (weighted) eligible count;
- ``smallest``: eligible firms by employees, smallest first, until K is reached; firms tied at the
  boundary share what is left equally (the expectation over random tie-breaking);
- ``no_pipeline``: random among eligible firms without an international partner.

K counts firms in total or per region (``allocation``); with sampling weights K counts firms of
the population and every total is a population total. Because a firm's prediction depends only
on its own row, the expectation over all choices of the K firms is exact, not simulated:

    E[innovators] = sum_i w_i (p0_i + t_i (p1_i - p0_i)),

with p0_i the prediction at the observed data and p1_i with one more kind of partner. Effects of
the programme on other firms (through partners' exposure) are outside this calculation.
Intervals come from a firm bootstrap stratified by region: firms are resampled within each
region, the model refitted (all replicates at once, by batched Newton steps) and the whole
calculation repeated; percentile intervals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, Protocol

import numpy as np
import pandas as pd
from numba import njit

from buzzpipe import defaults
from buzzpipe.errors import InputError
from buzzpipe.estimate.batched_newton import _column_products as column_products
from buzzpipe.estimate.batched_newton import (
    fitted_probability,
    newton_batch,
    replicate_probability,
)
from buzzpipe.estimate.exact_sums import ExactSum, group_sums
from buzzpipe.results import CounterfactualCell, CounterfactualResult, Interval, ProgrammeNote
from buzzpipe.results.vocabulary import Allocation, Family, Programme, ProgrammeNoteKind
from buzzpipe.results.vocabulary import Targeting as Whom
from buzzpipe.study import engine
from buzzpipe.study.models import columns_of, local_scale
from buzzpipe.study.probability_changes import (
    BREADTH_CAP,
    ChangeDesigns,
    apply_programme,
    plus_one,
)
from buzzpipe.survey.schema import (
    WEIGHT,
    breadth_column,
)

PROGRAMME_SCALES = {"pipeline": "international", "cluster": "regional"}
TARGETINGS = tuple(Whom)
ALLOCATIONS = tuple(Allocation)
DEFAULT_CAP = BREADTH_CAP  # one definition of a +1 change: study/probability_changes.py
ALL_REGIONS = "all"


class Predictor(Protocol):
    """Anything that predicts the probability of innovating for each row of a frame."""

    def predict(self, data: pd.DataFrame) -> Any: ...


def programme_scale(programme: str, frame: pd.DataFrame | None = None) -> str:
    """The scale a programme adds a kind of partner at: international for the pipeline, the
    local scale of ``frame`` for the cluster (regional, or national where the survey lacks the
    regional scale); without a frame, the programmes' default scales."""
    if programme not in PROGRAMME_SCALES:
        raise InputError(
            "unknown programme", value=programme, expected=" or ".join(PROGRAMME_SCALES)
        )
    scale = PROGRAMME_SCALES[programme]
    if frame is not None and programme == Programme.CLUSTER:
        scale = local_scale(frame)
    if frame is not None and breadth_column(scale) not in columns_of(frame):
        raise InputError(
            f"the {programme} programme needs breadth at the {scale} scale",
            column=breadth_column(scale),
        )
    return scale


def fill_in_order(order_keys: np.ndarray, weights: np.ndarray, budget: float) -> np.ndarray:
    """Treatment shares filling ``budget`` (weighted firms) in ascending key order.

    Firms with equal keys share the remainder at their boundary equally, so with all keys equal
    every firm gets min(1, budget / total weight): random targeting's exact expectation.
    """
    shares = np.zeros(len(order_keys))
    if len(order_keys) == 0 or budget <= 0:
        return shares
    levels, inverse = np.unique(order_keys, return_inverse=True)
    return level_shares(level_weights(weights, inverse, len(levels)), budget)[inverse]


def level_weights(weights: np.ndarray, inverse: np.ndarray, levels: int) -> np.ndarray:
    """The weight at each fill-order level (``inverse``: a firm's level), each the exact sum
    rounded once: the same whatever the chunks the levels' firms were counted in."""
    return np.array([float(total) for (total,) in group_sums([weights], inverse, levels)])


def level_shares(weight_per_level: np.ndarray, budget: float) -> np.ndarray:
    """The share of each level (ascending) that filling ``budget`` in order gives its firms."""
    before = np.concatenate([[0.0], np.cumsum(weight_per_level)[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        level_share = np.clip((budget - before) / weight_per_level, 0.0, 1.0)
    level_share[weight_per_level <= 0] = 0.0
    return level_share


def eligible_and_keys(
    frame: pd.DataFrame, scale: str, targeting: str, cap: int
) -> tuple[np.ndarray, np.ndarray]:
    """Which firms a programme may choose (below the cap; without a pipeline for
    ``no_pipeline``) and the order it fills them in (employees for ``smallest``, else all equal)."""
    eligible = (frame[breadth_column(scale)] < cap).to_numpy(dtype=bool).copy()
    if targeting == Whom.NO_PIPELINE:
        eligible &= (frame[breadth_column("international")] == 0).to_numpy(dtype=bool)
    if targeting == Whom.SMALLEST:
        keys = frame["employees"].to_numpy(dtype=float)
    else:
        keys = np.zeros(len(frame))
    return eligible, keys


@dataclass(frozen=True)
class Targeting:
    """Who a programme may choose, in which order, and within which groups: fixed per frame, so
    the shares under many weightings (bootstrap replicates) cost only the filling."""

    eligible: np.ndarray  # bool per firm
    keys: np.ndarray  # fill order (employees for "smallest", all equal otherwise)
    groups: np.ndarray  # 0 for a total K, region codes for K per region
    firms_treated: float

    @classmethod
    def of(
        cls,
        frame: pd.DataFrame,
        scale: str,
        firms_treated: float,
        targeting: str = Whom.RANDOM,
        allocation: str = Allocation.TOTAL,
        cap: int = DEFAULT_CAP,
    ) -> Targeting:
        if targeting not in TARGETINGS:
            raise InputError("unknown targeting", value=targeting, expected=" or ".join(TARGETINGS))
        if allocation not in ALLOCATIONS:
            raise InputError(
                "unknown allocation", value=allocation, expected=" or ".join(ALLOCATIONS)
            )
        if firms_treated < 0:
            raise InputError("the number of firms treated is negative", value=firms_treated)
        eligible, keys = eligible_and_keys(frame, scale, targeting, cap)
        if allocation == Allocation.TOTAL:
            groups = np.zeros(len(frame), dtype=int)
        else:
            groups = pd.factorize(frame["region"], sort=True)[0]
        return cls(eligible, keys, groups, float(firms_treated))

    def shares(self, weights: np.ndarray) -> np.ndarray:
        """Each firm's probability of being chosen when firms count with these weights."""
        shares = np.zeros(len(self.keys))
        for group in np.unique(self.groups):
            members = np.flatnonzero((self.groups == group) & self.eligible)
            shares[members] = fill_in_order(
                self.keys[members], weights[members], self.firms_treated
            )
        return shares

    def shares_many(self, weights: np.ndarray) -> np.ndarray:
        """``shares`` for each column of ``weights`` (n x B) at once (the bootstrap replicates),
        without a Python loop over the columns: each level's weight added member by member
        (``level_sums``), not exactly as ``shares`` adds it. With whole-number weights (the
        replicates' counts of an unweighted survey) every partial sum is exact and the shares
        are ``shares``' bit for bit; with sampling weights they may differ in the last bits."""
        shares = np.zeros(weights.shape)
        for members, inverse, level_share in self._replicate_levels(weights):
            shares[members] = level_share[inverse]
        return shares

    def treatable_shares(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows, shares): the firms that some replicate (a column of ``weights``, n x B) may
        treat, in ascending order, and their ``shares_many`` (rows x B, or 1 x B where every
        such firm has the same shares: one group filled at one level). The other firms' shares
        are zero in every replicate."""
        rows, at, tables = [], [], []
        levels = 0
        for members, inverse, level_share in self._replicate_levels(weights):
            filled = level_share.any(axis=1)[inverse]  # at a level some replicate fills
            rows.append(members[filled])
            at.append(inverse[filled] + levels)
            tables.append(level_share)
            levels += len(level_share)
        if not rows:
            return np.zeros(0, dtype=np.intp), np.zeros((0, weights.shape[1]))
        rows_found, at_found = np.concatenate(rows), np.concatenate(at)
        order = np.argsort(rows_found, kind="stable")
        table = np.concatenate(tables)
        if len(table) == 1:
            return rows_found[order], table
        return rows_found[order], table[at_found[order]]

    def _replicate_levels(self, weights: np.ndarray):
        """Per group with eligible firms: (its eligible firms, each one's fill-order level,
        levels x B shares of each level under each column of ``weights``)."""
        budget = self.firms_treated
        if budget <= 0:
            return
        for group in np.unique(self.groups):
            members = np.flatnonzero((self.groups == group) & self.eligible)
            if members.size == 0:
                continue
            levels, inverse = np.unique(self.keys[members], return_inverse=True)
            weight_per_level = level_sums(inverse, len(levels), weights, members)
            before = np.zeros_like(weight_per_level)
            before[1:] = np.cumsum(weight_per_level, axis=0)[:-1]
            with np.errstate(divide="ignore", invalid="ignore"):
                level_share = np.clip((budget - before) / weight_per_level, 0.0, 1.0)
            level_share[weight_per_level <= 0] = 0.0
            yield members, inverse, level_share


def level_sums(
    inverse: np.ndarray, levels: int, weights: np.ndarray, members: np.ndarray
) -> np.ndarray:
    """levels x B: the rows ``members`` of ``weights`` (n x B) added per level (``inverse``: a
    member's level), each level's members added one after another in their order, as
    ``np.add.at`` and ``np.bincount`` add (the same numbers bit for bit). One compiled pass over
    the members (:func:`_add_member_rows`), reading each member's row where it lies: no gathered
    copy of the members' rows (a round per place within a level gathered each round's rows
    before: 0.3-0.7 against 1.3-2.5 ms for 1,604 firms and 199 replicates, load 28)."""
    sums = np.zeros((levels, weights.shape[1]))
    _add_member_rows(
        np.asarray(inverse, dtype=np.int64),
        np.ascontiguousarray(weights, dtype=float),
        np.asarray(members, dtype=np.int64),
        sums,
    )
    return sums


@njit(cache=True)
def _add_member_rows(inverse, weights, members, sums):  # pragma: no cover - compiled
    for place in range(members.shape[0]):
        row, level = members[place], inverse[place]
        for column in range(weights.shape[1]):
            sums[level, column] += weights[row, column]


def treatment_shares(
    frame: pd.DataFrame,
    scale: str,
    firms_treated: float,
    *,
    targeting: str = Whom.RANDOM,
    allocation: str = Allocation.TOTAL,
    weights: np.ndarray | None = None,
    cap: int = DEFAULT_CAP,
) -> np.ndarray:
    """Each firm's probability of being chosen by the programme (see the module docstring)."""
    plan = Targeting.of(frame, scale, firms_treated, targeting, allocation, cap)
    weights = np.ones(len(frame)) if weights is None else np.asarray(weights, dtype=float)
    return plan.shares(weights)


def _cells(
    regions: np.ndarray, weights: np.ndarray, baseline: np.ndarray, predicted: np.ndarray
) -> list[tuple[str, float, float, float, float]]:
    """(region, firms, baseline rate, predicted rate, extra innovators) per region, then all:
    from the exact sums per region (:func:`region_totals`), as the chunked engines make them."""
    return _cell_rows(region_totals(regions, weights, baseline, predicted))


def region_totals(
    regions: np.ndarray, weights: np.ndarray, baseline: np.ndarray, predicted: np.ndarray
) -> dict[Any, tuple[ExactSum, ExactSum, ExactSum]]:
    """{region: the exact sums of w, w p0 and w p over its firms}. Exact, so that the totals of
    chunks add to the whole sample's whatever the chunking (the extra innovators, a difference
    of two totals, would magnify a chunking-dependent rounding past 1e-10)."""
    codes, names = pd.factorize(np.asarray(regions, dtype=object))
    sums = group_sums((weights, weights * baseline, weights * predicted), codes, len(names))
    return {region: tuple(sums[code]) for code, region in enumerate(names)}


def _cell_rows(totals: dict[Any, tuple[ExactSum, ExactSum, ExactSum]]) -> list[tuple]:
    """``_cells``' rows from the exact totals per region: the regions sorted, then all (the
    regions' exact totals added); each figure rounded once from the exact sums."""
    rows = [_cell_row(region, *totals[region]) for region in sorted(totals, key=str)]
    everywhere = [sum(column, ExactSum()) for column in zip(*totals.values(), strict=True)]
    rows.append(_cell_row(ALL_REGIONS, *(everywhere or [ExactSum()] * 3)))
    return rows


def cell_indicators(regions: np.ndarray) -> np.ndarray:
    """cells x n: each cell's firms (1) in ``_cells``' order, the regions sorted, then all."""
    names = sorted(pd.unique(regions).tolist(), key=str)
    members = np.zeros((len(names) + 1, len(regions)))
    for row, region in enumerate(names):
        members[row] = regions == region
    members[-1] = 1.0  # all regions
    return members


def _cells_many(
    members: np.ndarray,
    weights: np.ndarray,
    baseline: np.ndarray,
    rows: np.ndarray | None,
    change: np.ndarray,
    product: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``_cells``' predicted rates and extra innovators for B replicates at once (arrays n x B,
    a replicate per column): (rates, extras), each B x cells, the cells in ``_cells``' order
    (``members``: :func:`cell_indicators`). The predictions are ``baseline`` at the observed
    data and ``baseline`` plus ``change`` (t (p1 - p0)) in ``rows`` under the programme
    (``rows`` None: ``change`` has every row). Each cell's sums are one product with its firms'
    indicator (every cell in one product): the extra innovators the weighted changes' sums
    (``change`` is overwritten by its weighted values), the predicted total the baseline's plus
    those; ``product``: an n x B array to hold the weighted predictions (reused by a caller
    making many)."""
    product = np.empty(weights.shape) if product is None else product
    firms = members @ weights
    base_total = members @ np.multiply(weights, baseline, out=product)
    if rows is None:
        extra = members @ np.multiply(weights, change, out=change)
    else:
        row_weights = np.take(weights, rows, axis=0, out=product[: len(rows)])
        extra = members[:, rows] @ np.multiply(row_weights, change, out=change)
    return ((base_total + extra) / firms).T, extra.T


def expected_innovation(
    model: Predictor,
    frame: pd.DataFrame,
    programme: str,
    firms_treated: float,
    *,
    targeting: str = Whom.RANDOM,
    allocation: str = Allocation.TOTAL,
    weight_column: str | None = None,
    cap: int = DEFAULT_CAP,
) -> list[tuple[str, float, float, float, float]]:
    """Point figures of one programme: (region, firms, baseline rate, predicted rate, extra)."""
    scale = programme_scale(programme, frame)
    weights = np.ones(len(frame)) if weight_column is None else frame[weight_column].to_numpy(float)
    shares = treatment_shares(
        frame,
        scale,
        firms_treated,
        targeting=targeting,
        allocation=allocation,
        weights=weights,
        cap=cap,
    )
    baseline = np.asarray(model.predict(frame), dtype=float)
    treated = np.asarray(model.predict(apply_programme(frame, scale, cap)), dtype=float)
    if np.isnan(baseline).any() or np.isnan(treated).any():
        raise InputError("predictions are missing for some firms: pass the estimation sample")
    predicted = baseline + shares * (treated - baseline)
    return _cells(frame["region"].to_numpy(), weights, baseline, predicted)


MISSING_DESIGN = "the design has missing values: pass the model's estimation sample"


def chunk_predictions(frame: pd.DataFrame, where: str, model: Any, scale: str, cap: int):
    """(baseline, treated): one chunk's predicted probabilities at the observed data and under
    the programme, its designs built from its rows alone (on the Dask workers for dask)."""
    params = model.params[model.x_names].to_numpy(dtype=float)
    x_base = np.asarray(model.design_matrix(frame), dtype=float)
    x_treated = np.asarray(model.design_matrix(apply_programme(frame, scale, cap)), float)
    if np.isnan(x_base).any() or np.isnan(x_treated).any():
        raise InputError(MISSING_DESIGN, file=where)
    baseline = fitted_probability(x_base @ params, model.family)
    treated = fitted_probability(x_treated @ params, model.family)
    return baseline, treated


@dataclass(frozen=True)
class ChunkedPlan:
    """A programme's point figures as sums over the chunks of its sample (``counterfactual`` on
    a chunked engine, bootstrap off), in two passes where the chunks are (the Dask workers):

    1. per group (the region, or one group for a total K), the eligible weight at each fill-order
       level, up to the level where the chunk alone reaches K (the programme's last level is at
       or below it, so the levels it fills are counted whole); the firms eligible per group;
    2. each firm's share from those levels (``fill_in_order``'s rule), its probabilities at the
       observed data and under the programme, and per region the sums of w, w p0 and
       w (p0 + t (p1 - p0)).

    Nothing per firm comes back: the levels (one for random and no_pipeline targeting, at most
    the firms up to K per chunk and group for smallest) and three sums per region."""

    scale: str
    budget: float
    targeting: str
    allocation: str
    cap: int
    weight_column: str | None

    def _firms(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        eligible, keys = eligible_and_keys(frame, self.scale, self.targeting, self.cap)
        if self.allocation == Allocation.TOTAL:
            groups = np.zeros(len(frame), dtype=object)
        else:
            groups = frame["region"].to_numpy(dtype=object)
        weights = (
            np.ones(len(frame))
            if self.weight_column is None
            else frame[self.weight_column].to_numpy(float)
        )
        return eligible, keys, groups, weights

    def levels(self, frame: pd.DataFrame) -> tuple[dict, dict]:
        """Pass 1 over one chunk: ({(group, level): eligible weight}, {group: eligible firms})."""
        eligible, keys, groups, weights = self._firms(frame)
        found: dict = {}
        counts: dict = {}
        for group in pd.unique(groups):
            members = (groups == group) & eligible
            counts[group] = int(members.sum())
            levels, inverse = np.unique(keys[members], return_inverse=True)
            exact = group_sums([weights[members]], inverse, len(levels))
            weight = np.array([float(total) for (total,) in exact])
            reached = np.flatnonzero(np.cumsum(weight) >= self.budget)
            last = reached[0] + 1 if len(reached) else len(levels)
            kept = zip(levels[:last], exact[:last], strict=True)
            # exact: the chunks' weights at a level add to the whole sample's bit for bit
            found.update({(group, float(level)): total for level, (total,) in kept})
        return found, counts

    def sums(self, frame: pd.DataFrame, where: str, model: Any, table: dict) -> dict:
        """Pass 2 over one chunk: {region: [w, w p0, w p]} with the shares ``table`` gives."""
        eligible, keys, groups, weights = self._firms(frame)
        shares = np.zeros(len(frame))
        for group, (levels, level_share) in table.items():
            members = np.flatnonzero((groups == group) & eligible)
            at = np.minimum(np.searchsorted(levels, keys[members]), len(levels) - 1)
            known = levels[at] == keys[members]  # a level beyond the table is not filled
            shares[members[known]] = level_share[at[known]]
        baseline, treated = chunk_predictions(frame, where, model, self.scale, self.cap)
        predicted = baseline + shares * (treated - baseline)
        # exact sums: the chunks' totals add to the in-memory ones bit for bit
        return region_totals(frame["region"].to_numpy(), weights, baseline, predicted)

    def point(self, chosen: Any, model: Any, sample: pd.DataFrame) -> tuple[list, np.ndarray]:
        """``_cells``' rows and the eligible firms per group, from two passes over the chunks
        of ``sample`` on the engine ``chosen``."""
        weights, counts = chosen.map_chunks(sample, _chunk_levels, self)
        by_group: dict = {}
        for (group, level), weight in weights.items():
            by_group.setdefault(group, []).append((level, float(weight)))
        table = {}
        for group, pairs in by_group.items():
            levels, weight = (np.array(x, dtype=float) for x in zip(*sorted(pairs), strict=True))
            table[group] = (levels, level_shares(weight, self.budget))
        light = replace(model, row_ids=pd.RangeIndex(0))  # its one row-sized part stays here
        totals = chosen.map_chunks(sample, _chunk_sums, self, light, table)
        return _cell_rows(totals), np.array([counts[group] for group in counts])


def _chunk_levels(frame: pd.DataFrame, where: str, first_row: int, plan: ChunkedPlan):
    return plan.levels(frame)


def _chunk_sums(frame: pd.DataFrame, where: str, first_row: int, plan: ChunkedPlan, *args):
    return plan.sums(frame, where, *args)


def _cell_row(region: Any, firms: ExactSum, base_total: ExactSum, predicted: ExactSum) -> tuple:
    """(region, firms, baseline rate, predicted rate, extra innovators): the totals rounded
    once, the extra innovators the exact difference of the two totals rounded once."""
    weight = np.float64(float(firms))  # numpy's division: no firms give nan, not an error
    return (
        str(region),
        float(weight),
        float(float(base_total) / weight),
        float(float(predicted) / weight),
        float(predicted - base_total),
    )


class ProgrammeInputs:
    """What every programme scenario of one model on one frame shares, each made once: the
    frame (its index reset), its regions and sampling weights, the design and predictions at
    the observed data and under each programme's +1 change, the cells' indicators and the point
    totals at the observed data. Kept in the ``designs`` dict a caller passes to
    :func:`counterfactual` across its scenarios (key ``"inputs"``)."""

    def __init__(self, model: Any, frame: pd.DataFrame, changes: ChangeDesigns) -> None:
        self.model, self.frame, self.changes = model, frame, changes
        self.family = model.family
        self.full_sample = model.params[model.x_names].to_numpy(dtype=float)
        self.regions = frame["region"].to_numpy()
        self.sampling = (
            frame[WEIGHT].to_numpy(float) if WEIGHT in frame.columns else np.ones(len(frame))
        )
        self.x_base = changes.of(None)
        if np.isnan(self.x_base).any():
            raise InputError(MISSING_DESIGN)
        self.baseline = fitted_probability(self.x_base @ self.full_sample, self.family)
        self._treated: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}
        self._kept: dict[str, np.ndarray] = {}
        # the point cells' exact totals of w and w p0 per region, in order of appearance
        self._codes, self._names = pd.factorize(np.asarray(self.regions, dtype=object))
        self._base_totals = group_sums(
            (self.sampling, self.sampling * self.baseline), self._codes, len(self._names)
        )

    @classmethod
    def of(cls, model: Any, frame: pd.DataFrame, designs: dict | None) -> ProgrammeInputs:
        """The inputs kept in ``designs`` (made there on the first scenario), or new ones."""
        designs = {} if designs is None else designs
        if "inputs" not in designs:
            frame = frame.reset_index(drop=True)
            if "changes" not in designs:  # the observed design, edited under each programme
                designs["changes"] = ChangeDesigns(model, frame)
            designs["inputs"] = cls(model, frame, designs["changes"])
        return designs["inputs"]

    def treated(self, scale: str, cap: int) -> tuple[np.ndarray, np.ndarray]:
        """The design with one more kind of partner at ``scale`` (up to ``cap``) and the
        predictions there."""
        if (scale, cap) not in self._treated:
            x_treated = self.changes.of(plus_one(scale, cap))
            if np.isnan(x_treated).any():
                raise InputError(MISSING_DESIGN)
            treated = fitted_probability(x_treated @ self.full_sample, self.family)
            self._treated[scale, cap] = (x_treated, treated)
        return self._treated[scale, cap]

    @cached_property
    def outcome(self) -> np.ndarray:
        return self.frame[self.model.outcome].to_numpy(dtype=float)

    @cached_property
    def column_products(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The design's column products, which every scenario's batched refits share."""
        return column_products(self.x_base)

    @cached_property
    def cell_members(self) -> np.ndarray:
        return cell_indicators(self.regions)

    def point_cells(self, predicted: np.ndarray) -> list[tuple[str, float, float, float, float]]:
        """``_cells``' rows of the predictions ``predicted`` (at the sampling weights)."""
        totals = group_sums([self.sampling * predicted], self._codes, len(self._names))
        return _cell_rows(
            {
                region: (*self._base_totals[code], totals[code][0])
                for code, region in enumerate(self._names)
            }
        )

    def kept_array(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """An array of ``shape`` kept for reuse by the scenarios (contents undefined): the
        bootstraps' n x B arrays made once, not once per scenario (each fresh one costs its
        page faults: about 3 microseconds for every 4 KiB on this machine)."""
        array = self._kept.get(name)
        if array is None or array.shape != shape:
            array = self._kept[name] = np.empty(shape)
        return array

    def cells_many(
        self,
        weights: np.ndarray,
        baseline: np.ndarray,
        rows: np.ndarray | None,
        change: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """:func:`_cells_many` with the cells' indicators and the product's array kept."""
        product = self.kept_array("product", weights.shape)
        return _cells_many(self.cell_members, weights, baseline, rows, change, product)


def stratified_counts(
    regions: np.ndarray, replications: int, seed: int, out: np.ndarray | None = None
) -> np.ndarray:
    """n x B times each firm is drawn in B bootstrap samples, drawn with replacement within each
    region (region sizes kept); replicate b uses ``SeedSequence(seed).spawn(B)[b]``: its
    generator ``default_rng(child)`` draws ``integers(0, size, size=size)`` for each region in
    the regions' sorted order, the region's members in their order.

    Those draws are made for all replicates at once from the generators' raw output, exactly as
    numpy's ``integers`` makes them, and counted as they are made (:func:`lemire_counts`); a
    replicate where numpy's rule could have rejected a value (a chance of about size / 2^32 per
    draw) is drawn by ``integers`` itself. ``out``: an n x B float array to write the counts
    into (a caller drawing many bootstraps of one sample reuses it: a fresh n x B array costs
    its page faults)."""
    codes = pd.factorize(regions, sort=True)[0]
    n = len(regions)
    members = np.argsort(codes, kind="stable")  # each region's rows in order, regions sorted
    sizes = np.bincount(codes)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    # numpy draws nothing for a region of one firm (the one value integers(0, 1) can take)
    words = int(sizes[sizes > 1].sum())
    raw = replicate_raw(seed, replications, (words + 1) // 2)
    counts = np.empty((n, replications)) if out is None else out  # a firm per row
    exact = lemire_counts(raw, sizes, starts, members, counts)
    if not exact.all():
        children = np.random.SeedSequence(seed).spawn(replications)
    for b in np.flatnonzero(~exact):  # numpy's rejection rule: drawn by integers
        rng = np.random.default_rng(children[b])
        drawn = [
            members[start + rng.integers(0, size, size=size)]
            for start, size in zip(starts, sizes, strict=True)
        ]
        counts[:, b] = np.bincount(np.concatenate(drawn), minlength=n)
    return counts


_MASK32 = 0xFFFFFFFF
_MASK128 = (1 << 128) - 1
# numpy's SeedSequence (bit_generator.pyx) and PCG64 (pcg64.h) constants
_INIT_A, _MULT_A = 0x43B0D7E5, 0x931E8875
_INIT_B, _MULT_B = 0x8B51F9DD, 0x58F38DED
_MIX_MULT_L, _MIX_MULT_R = 0xCA01F9DD, 0x4973F715
_XSHIFT = np.uint32(16)
_PCG_MULTIPLIER = 0x2360ED051FC65DA44385DF649FCCF645


def replicate_raw(seed: int, replications: int, words: int) -> np.ndarray:
    """B x ``words`` outputs of each replicate's generator: row b is
    ``PCG64(SeedSequence(seed).spawn(B)[b]).random_raw(words)``, bit for bit.

    The children's states come from :func:`spawned_states` (every child at once) and every
    child's generator is stepped in one compiled pass (:func:`_pcg64_outputs`: PCG64's 128-bit
    step and its XSL-RR output on two 64-bit halves). Setting each child's state on one numpy
    generator in turn cost about twice as much (1.3-1.5 against 0.64-0.66 ms for 199 replicates
    of 802 words, load 30); making B seed sequences and B generators about seven times."""
    states = spawned_states(seed, replications)
    low = (1 << 64) - 1
    halves = np.array(
        [(state >> 64, state & low, step >> 64, step & low) for state, step in states],
        dtype=np.uint64,
    ).reshape(replications, 4)
    raw = np.empty((replications, words), dtype=np.uint64)
    _pcg64_outputs(np.ascontiguousarray(halves.T), _PCG_HIGH, _PCG_LOW, raw)
    return raw


_PCG_HIGH = np.uint64(_PCG_MULTIPLIER >> 64)
_PCG_LOW = np.uint64(_PCG_MULTIPLIER & ((1 << 64) - 1))


@njit(cache=True)
def _high_product(a, b):  # pragma: no cover - compiled
    """The high 64 bits of the 128-bit product of two 64-bit words (from 32-bit halves)."""
    half, bits = np.uint64(0xFFFFFFFF), np.uint64(32)
    a_low, a_high, b_low, b_high = a & half, a >> bits, b & half, b >> bits
    low_low, high_low = a_low * b_low, a_high * b_low
    middle = (low_low >> bits) + (high_low & half) + a_low * b_high
    return a_high * b_high + (high_low >> bits) + (middle >> bits)


@njit(cache=True)
def _pcg64_outputs(states, multiplier_high, multiplier_low, out):  # pragma: no cover - compiled
    """Row b of ``out``: the next outputs of PCG64 from state (states[0, b], states[1, b])
    (high, low 64 bits) and increment (states[2, b], states[3, b]), as numpy's pcg64.h makes
    them: the state stepped (state x multiplier + increment, mod 2^128), then the output the
    new state's halves XORed and rotated right by its top 6 bits."""
    rotation, width = np.uint64(58), np.uint64(63)
    for b in range(out.shape[0]):
        high, low = states[0, b], states[1, b]
        increment_high, increment_low = states[2, b], states[3, b]
        for word in range(out.shape[1]):
            product_low = low * multiplier_low
            high = (
                high * multiplier_low
                + low * multiplier_high
                + _high_product(low, multiplier_low)
                + increment_high
            )
            low = product_low + increment_low
            if low < product_low:  # the carry into the high half
                high += np.uint64(1)
            mixed = high ^ low
            turn = high >> rotation
            out[b, word] = (mixed >> turn) | (mixed << ((np.uint64(64) - turn) & width))


def spawned_states(seed: int, replications: int) -> list[tuple[int, int]]:
    """(state, increment) of ``PCG64(child)`` for each child of
    ``SeedSequence(seed).spawn(replications)``, as numpy seeds them: the child's pool of four
    32-bit words mixed from the seed's words (padded to four) and its spawn key (b), by numpy's
    hash and mix (data-independent constants, so every child is one vector operation), its
    first four 64-bit words (``generate_state(4, uint64)``) as the 128-bit initial state and
    sequence, and PCG64's two seeding steps."""
    entropy_words, rest = [], int(seed)
    while True:
        entropy_words.append(rest & _MASK32)
        rest >>= 32
        if not rest:
            break
    entropy_words += [0] * (4 - len(entropy_words))
    entropy = [np.full(replications, word, dtype=np.uint32) for word in entropy_words]
    entropy.append(np.arange(replications, dtype=np.uint32))  # the spawn key
    constant = _INIT_A

    def hashmix(value: np.ndarray) -> np.ndarray:
        nonlocal constant
        value = value ^ np.uint32(constant)
        constant = (constant * _MULT_A) & _MASK32
        value = value * np.uint32(constant)
        return value ^ (value >> _XSHIFT)

    def mix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        result = np.uint32(_MIX_MULT_L) * x - np.uint32(_MIX_MULT_R) * y
        return result ^ (result >> _XSHIFT)

    pool = [hashmix(entropy[i]) for i in range(4)]
    for source in range(4):
        for target in range(4):
            if source != target:
                pool[target] = mix(pool[target], hashmix(pool[source]))
    for source in range(4, len(entropy)):
        for target in range(4):
            pool[target] = mix(pool[target], hashmix(entropy[source]))
    constant = _INIT_B
    halves = []
    for k in range(8):  # generate_state(4, uint64): eight 32-bit words, low half first
        value = pool[k % 4] ^ np.uint32(constant)
        constant = (constant * _MULT_B) & _MASK32
        value = value * np.uint32(constant)
        halves.append((value ^ (value >> _XSHIFT)).astype(np.uint64))
    seeds = [(halves[2 * k] | (halves[2 * k + 1] << np.uint64(32))).tolist() for k in range(4)]
    states = []
    for high, low, sequence_high, sequence_low in zip(*seeds, strict=True):
        increment = ((((sequence_high << 64) | sequence_low) << 1) | 1) & _MASK128
        state = (increment + ((high << 64) | low)) & _MASK128  # a step from 0, plus the seed
        states.append(((state * _PCG_MULTIPLIER + increment) & _MASK128, increment))
    return states


def lemire_counts(
    raw: np.ndarray, sizes: np.ndarray, starts: np.ndarray, members: np.ndarray, out: np.ndarray
) -> np.ndarray:
    """Write into ``out`` (n x B) the times each firm is drawn when each region's draws are
    made from the replicate's 64-bit generator output ``raw`` (B x words) as numpy's
    ``Generator.integers`` makes them for bounds below 2^32 (Lemire's method on 32-bit words,
    each 64-bit output giving its low then its high half: numpy's ``next_uint32`` for PCG64):
    with u the next word and ``size`` the region's firms, the draw is (u x size) >> 32, the
    region's member at that place (``members[start + draw]``, ``starts``: each region's first
    place), unless the low 32 bits of the product fall below the size, where numpy may reject
    u and take the next word. Regions in ``sizes``' order, a region of one firm drawing nothing.

    Returns per replicate whether no product fell below its bound: only there are the counts
    numpy's, bit for bit. One compiled pass (:func:`_count_draws`): no n x B temporaries."""
    out[...] = 0.0
    exact = np.ones(raw.shape[0], dtype=np.bool_)
    _count_draws(
        np.ascontiguousarray(raw, dtype=np.uint64),
        np.asarray(sizes, dtype=np.int64),
        np.asarray(starts, dtype=np.int64),
        np.asarray(members, dtype=np.int64),
        out,
        exact,
    )
    return exact


@njit(cache=True)
def _count_draws(raw, sizes, starts, members, out, exact):  # pragma: no cover - compiled
    low_half = np.uint64(0xFFFFFFFF)
    half_bits = np.uint64(32)
    for b in range(raw.shape[0]):
        word = 0  # the next 32-bit word: the low half of raw[b, word // 2], then its high half
        for region in range(sizes.shape[0]):
            size, start = sizes[region], starts[region]
            if size == 1:
                out[members[start], b] += 1.0
                continue
            bound = np.uint64(size)
            for _ in range(size):
                value = raw[b, word >> 1]
                u = (value >> half_bits) if word & 1 else (value & low_half)
                word += 1
                product = u * bound  # a 32-bit word times a bound below 2^32: exact in 64 bits
                if (product & low_half) < bound:
                    exact[b] = False
                out[members[start + np.int64(product >> half_bits)], b] += 1.0


def counterfactual(
    model: Any,
    frame: pd.DataFrame,
    programme: str,
    firms_treated: int,
    *,
    targeting: str = Whom.RANDOM,
    allocation: str = Allocation.TOTAL,
    cap: int = DEFAULT_CAP,
    bootstrap_replications: int = defaults.BOOTSTRAP_REPLICATIONS,
    seed: int = 0,
    level: float = 0.95,
    designs: dict[str, Any] | None = None,
) -> CounterfactualResult:
    """One programme scenario under a fitted binary model, with bootstrap percentile intervals.

    ``model`` is a core ``Fit`` of a logit or probit on ``frame`` (its estimation sample). A
    bootstrap sample is the frame with each firm counted as often as it was drawn, so all
    replicates are refitted together by batched Newton steps from the full-sample estimate, and
    the whole calculation (treatment shares included) is repeated with those counts as weights.
    Replicates that do not converge or lose a design column are dropped and counted in a note.
    ``designs``: a dict kept by the caller across the scenarios of one model on one frame, which
    then builds the design at the observed data once and edits it under each programme once
    (:class:`~buzzpipe.study.probability_changes.ChangeDesigns`).
    """
    scale = programme_scale(programme, frame)
    if model.family not in (Family.LOGIT, Family.PROBIT):
        raise InputError("counterfactuals need a logit or probit model", value=model.family)
    weight_column = WEIGHT if WEIGHT in columns_of(frame) else None
    chosen = engine.current()
    if chosen.chunked and bootstrap_replications == 0:  # per chunk: nothing per firm comes back
        plan = ChunkedPlan(scale, float(firms_treated), targeting, allocation, cap, weight_column)
        point, eligible = plan.point(chosen, model, frame)
    else:
        inputs = ProgrammeInputs.of(model, frame, designs)
        frame = inputs.frame
        targets = Targeting.of(frame, scale, firms_treated, targeting, allocation, cap)
        sampling, baseline = inputs.sampling, inputs.baseline
        x_treated, treated = inputs.treated(scale, cap)
        predicted = baseline + targets.shares(sampling) * (treated - baseline)
        point = inputs.point_cells(predicted)
        groups = targets.groups[targets.eligible]
        eligible = np.bincount(groups, minlength=targets.groups.max() + 1)
    rate_draws: list = []
    rates = extras = np.zeros((0, 0))
    if bootstrap_replications > 0:  # 0: the firm bootstrap off (no intervals)
        counts = stratified_counts(
            inputs.regions,
            bootstrap_replications,
            seed,
            out=inputs.kept_array("counts", (len(frame), bootstrap_replications)),
        )
        weights = counts  # x the sampling weights, where the survey has them
        if weight_column is not None:
            weights *= sampling[:, None]
        batch = newton_batch(
            inputs.x_base,
            inputs.outcome,
            weights,
            family=model.family,
            start=inputs.full_sample,
            products=inputs.column_products,
            single_in_blocks=True,
        )
        kept = batch.converged & batch.full_rank & ~batch.separated
        # every usable replicate's cells at once: the point calculation with B columns
        params, replicate_weights = batch.params, weights
        if not kept.all():  # (a copy only where some replicate is dropped)
            params, replicate_weights = params[:, kept], weights[:, kept]
        shape = (len(frame), params.shape[1])
        index = np.matmul(inputs.x_base, params, out=inputs.kept_array("baseline", shape))
        baseline = replicate_probability(index, model.family, out=index)
        # only firms some replicate may treat need their prediction under the programme: for
        # the others baseline + 0 (treated - baseline) is the baseline itself
        treatable, shares = targets.treatable_shares(replicate_weights)
        rows, change = _programme_changes(
            inputs, x_treated, params, baseline, treatable, shares, model.family
        )
        rates, extras = inputs.cells_many(replicate_weights, baseline, rows, change)
        rate_draws = list(rates)
    notes = [
        ProgrammeNote(ProgrammeNoteKind.NOT_CAUSED),
        ProgrammeNote(ProgrammeNoteKind.ELIGIBILITY, scale=scale, cap=cap),
    ]
    if scale != PROGRAMME_SCALES[programme]:
        notes.append(
            ProgrammeNote(
                ProgrammeNoteKind.SCALE_SUBSTITUTED,
                scale=scale,
                wanted_scale=PROGRAMME_SCALES[programme],
            )
        )
    if (short := int((eligible < firms_treated).sum())) > 0:
        notes.append(
            ProgrammeNote(
                ProgrammeNoteKind.ALL_ELIGIBLE_TREATED,
                firms_treated=int(firms_treated),
                eligible=int(eligible.min()),
                regions=None if allocation == Allocation.TOTAL else short,
            )
        )
    dropped = bootstrap_replications - len(rate_draws)
    if dropped:
        notes.append(
            ProgrammeNote(
                ProgrammeNoteKind.REPLICATES_DROPPED,
                dropped=dropped,
                replicates=bootstrap_replications,
            )
        )
    tail = (1.0 - level) / 2.0
    cells = []
    if len(rate_draws):  # every cell's percentiles at once (each column's own, as np.quantile)
        rate_ends = np.quantile(rates, [tail, 1 - tail], axis=0)
        extra_ends = np.quantile(extras, [tail, 1 - tail], axis=0)
    for index, (region, firms, base_rate, rate, extra) in enumerate(point):
        rate_interval = extra_interval = None
        if len(rate_draws):
            rate_interval = Interval.bounded(*rate_ends[:, index], level=level)
            extra_interval = Interval.bounded(*extra_ends[:, index], level=level)
        cells.append(
            CounterfactualCell(region, firms, base_rate, rate, extra, rate_interval, extra_interval)
        )
    return CounterfactualResult(
        outcome=str(model.outcome),
        programme=programme,
        firms_treated=int(firms_treated),
        allocation=allocation,
        targeting=targeting,
        cells=cells,
        bootstrap_replications=len(rate_draws),
        seed=seed,
        weighted=weight_column is not None,
        notes=notes,
        scale=scale,
    )


def _programme_changes(
    inputs: ProgrammeInputs,
    x_treated: np.ndarray,
    params: np.ndarray,
    baseline: np.ndarray,
    treatable: np.ndarray,
    shares: np.ndarray,
    family: str,
) -> tuple[np.ndarray | None, np.ndarray]:
    """(rows, t (p1 - p0)): the replicates' changes of prediction under the programme (the
    coefficients ``params``, p x B; ``baseline``: p0, n x B) in the firms ``treatable`` with
    their ``shares`` (rows x B, or 1 x B for all), as ``baseline + shares * (treated -
    baseline)`` rounds it. Where most firms are treatable and the shares need no gathering (one
    row for all, or every firm treatable) the change is made for every firm and is zero outside
    ``treatable`` (rows None): no gathered copies of rows x B. Otherwise only the treatable
    rows are made. The arrays are ``inputs``' kept ones (their first rows)."""
    n, replicates = baseline.shape
    shape = (n, replicates)
    whole = 2 * len(treatable) > n and (shares.shape[0] == 1 or len(treatable) == n)
    if whole:
        index = np.matmul(x_treated, params, out=inputs.kept_array("change", shape))
        change = replicate_probability(index, family, out=index)
        change -= baseline
        change *= shares
        outside = np.ones(n, dtype=bool)
        outside[treatable] = False
        change[outside] = 0.0  # firms no replicate treats
        return None, change
    index = np.matmul(
        x_treated[treatable], params, out=inputs.kept_array("change", shape)[: len(treatable)]
    )
    change = replicate_probability(index, family, out=index)
    change -= np.take(
        baseline, treatable, axis=0, out=inputs.kept_array("product", shape)[: len(treatable)]
    )
    change *= shares
    return treatable, change


def programme_grid(
    firms_treated: Sequence[int] = (100,),
    targetings: Sequence[str] = TARGETINGS,
    allocations: Sequence[str] = ("total",),
) -> list[dict[str, Any]]:
    """The default scenarios: both programmes under every targeting and allocation asked for."""
    return [
        dict(programme=programme, firms_treated=k, targeting=targeting, allocation=allocation)
        for programme in PROGRAMME_SCALES
        for k in firms_treated
        for targeting in targetings
        for allocation in allocations
    ]
