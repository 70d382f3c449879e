"""Association with local pipelines: do firms innovate more when their local peers have pipelines?

With firm-to-firm links the exposure is the data layer's ``pipeline_exposure`` (the share of a
firm's regional partners that have international partners; the share of partners of unknown
status is reported beside it; "regional" is the national scale where a survey lacks the
regional one). Without links it is the leave-one-out share of pipeline firms in the firm's
region x industry cell c of n_c firms, S_c of them with a pipeline (x_i = 1),

    share_i = (S_c - x_i) / (n_c - 1) = S_c / (n_c - 1) - x_i / (n_c - 1),

tested between cells (below).

Exclusion bias (Caeyers and Fafchamps, "Exclusion bias in the estimation of peer effects",
NBER WP 22565, 2016/2020): a firm cannot be its own peer, so within a cell the share falls
mechanically with the firm's own status: its within-cell variation is exactly
-(x_i - mean_c x) / (n_c - 1). Because own pipelines raise innovation, a regression of the
outcome on the share (the naive estimator) is biased downward even when nothing spills over,
and cell fixed effects make it worse (within a cell the share is then nothing but the
mechanical term). The correction used here removes that mechanical term from the identifying
variation: the model conditions on own status x_i and on the exclusion term x_i / (n_c - 1)
itself, so the spill-over coefficient is identified only by the composition of the cell,
S_c / (n_c - 1), never by the firm's own exclusion. (Reparametrised, the model is
y ~ S_c / (n_c - 1) + x_i + x_i / (n_c - 1): the coefficient on the cell's composition equals
the corrected spill-over coefficient.) Region and industry enter as main effects for
correlated effects; a shock common to one region x industry cell that also raises its
pipeline share is not absorbed (the design has no variation left to absorb it), which the
note says. With cells of one size the exclusion term is proportional to own status and
already absorbed by it. Verified by simulation (``tests/study/test_study_spillover.py``, 1,604 firms
in 40 cells, 300 seeds, no spill-over): the corrected estimate averages -0.04 (Monte Carlo
error 0.05) while the naive one averages -0.70; a spill-over of 1.5 on the log-odds averages
1.44, one of 2.5 averages 2.51 (pooled estimates; the pooled Wald test's detection rates of
52 and 89 in 100 seeds were inflated by its over-rejection, below).

Inference without links. The spill-over is identified only by the cell's composition, a
regressor constant within cells, across 40 cells of unequal size of which region and industry
effects use 12 degrees of freedom. The pooled logit with cell-clustered errors (G/(G-1), normal
reference) then over-rejects: 14.7% at a nominal 5% over 300 seeds when first measured, 11.3%
(34 of 300, seeds 1000-1299) in ``bench/bench_spillover.py``. Why: the cluster-robust meat is
built from residuals that region and industry effects have already partialled out, so in the
40-dimensional space of cell sums the design's leverage is large (13 of 40 dimensions),
shrinking the variance estimate, and the estimate has far fewer effective degrees of freedom
than G - 1 = 39: the Bell-McCaffrey (CR2) Satterthwaite degrees of freedom of the same
coefficient in the linear probability model average 12.4, and with CR2 errors and that t
reference the LPM test rejects 4.3% (13 of 300; ``bench/bench_spillover.py --cr2``, checked
against statsmodels' HC2 with one firm per cluster). The wild score bootstrap by cell
(Rademacher weights) helps only part of the way (8.5% over 200 seeds).

The primary test without links is therefore made between cells, where the identifying
variation lives (Donald and Lang 2007, two steps): (1) the model with one effect per cell in
place of the exposure, region and industry (own status, the exclusion term, breadth and the
firm-level controls kept), whose cell effects a_c carry the composition's effect with their
sampling variances v_c; (2) the regression of a_c on S_c / (n_c - 1) with region and industry
effects, weighted by 1 / (v_c + tau^2) with the between-cell variance tau^2 by the method of
moments (DerSimonian and Laird), the error by Knapp and Hartung (2003) (weighted residual
variance) and a t(G - K) reference (26 df with 40 cells). It holds its size: 5.3% over 300
seeds (16 of 300; 5% +- 3 binomial standard errors is 1.2% to 8.8%), and its standard error
is calibrated (mean 0.872 against a spread of the estimates of 0.881 across those seeds; the
pooled cell-clustered error averages 0.703 against a spread of 0.875). Power: 35% at a
spill-over of 1.5 on the log-odds and 70% at 2.5 (100 seeds each). The pooled Wald test
detects 53% and 88% on the same seeds only through its 11.3% size; at the critical value
that would give it a 5% size (|t| > 2.50, known only in simulation) it detects 43% and 77%,
so the honest test gives up about 8 points of power. Cells whose firms all share one outcome
have no finite effect and are left out (the note says how many). The pooled cell-clustered
Wald test stays as ``spillover_exposure_cell_clustered`` (with the wild bootstrap beside it),
a sensitivity column only.

With links the exposure varies between firms of one region and the firm-level robust test
holds its size: on ``norway2010`` surveys (no spill-over) it rejects 5.3% of 300 seeds at 5%
(the own-pipeline and no-pipeline estimates 5.3% and 3.7%).

The estimates are made for all firms (own status and the exclusion term held fixed), for firms
with their own pipeline (x_i = 1: the exclusion term is 1 / (n_c - 1)) and for firms without
(x_i = 0: no exclusion term). The naive pooled estimate is recorded as a description beside
the corrected one, never used for a verdict.

What the estimate means (issue 16). It is the association of innovation with local partners'
(or the cell's) pipeline share, read as a spill-over only under two assumptions: without links,
that no shock common to a region x industry cell raises both its firms' pipelines and their
innovation (the composition of 30-40 cells is the only identifying variation); with links, that
firms do not choose partners on an unobserved capability that also drives pipelines and
innovation. Two checks are reported beside it:

- a placebo (``tests[outcome]["spillover_placebo"]``) of the assumption's testable part, that
  pipelines are as good as randomly placed: without links, whether firms' international
  partners cluster by cell beyond region, industry and their own characteristics (the
  variance-component score test of a random effect per cell in the number of kinds of
  international partner, the pipeline's intensity, with each firm's squared residual as its
  variance; Guryan, Kroft and Notowidigdo's test of random peer assignment, here as a test of
  cell effects so that the exclusion of oneself from the peers plays no part); with links,
  whether local partners' pipeline share, beyond the region's leave-one-out share that
  partners drawn at random would give, predicts a firm's own pipeline status (partners sorting
  on what drives pipelines). A spill-over of pipeline knowledge to innovation makes
  neither reject; a cell shock in pipelines, or partner choice on a capability behind
  pipelines, does. It cannot see a confounder that moves innovation but not pipelines'
  placement.
- a sensitivity bound (``descriptions[outcome]["spillover_confounding_bound"]``): the strength
  delta x rho an omitted confounder of SD 1 would need (delta its effect on the log-odds, rho
  its partial correlation with the exposure given the other terms) to explain the estimate,
  |estimate| x SD(exposure | other terms) by the omitted-variable formula of a linear index, and
  to bring the 95% interval to zero (the interval's lower end).

Their size and power under the generator's confounders (``confounding.cell_shock_*``,
``links.homophily``) are in docs/synthetic_surveys.md (``bench/spillover_confounders.py``).

Results: ``tests[outcome]["spillover_exposure"]`` (all firms, the verdict's number) and
``..._own_pipeline`` / ``..._no_pipeline``, all three between cells without links (for firms
with a pipeline the exclusion term 1 / (n_c - 1) is constant within a cell, so it moves to the
second step as a cell-level term; their sizes over the 300 null seeds: 5.0% with a pipeline,
3.3% without, where the pooled cell-clustered tests reject 15.3% and 11.0%; the estimate for
firms with a pipeline averages +0.31 against a spread of 1.60, a small-sample bias of logit
cell effects estimated from a cell's few pipeline firms, so read it as a description);
without links also the pooled cell-clustered Wald tests
``<name>_cell_clustered``, ``spillover_exposure_wild_bootstrap`` and
``descriptions[outcome]["spillover_exposure_naive"]``; the exposure measure is named in
``note``.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from buzzpipe.errors import BuzzpipeError, EstimationError
from buzzpipe.estimate.design import build_design
from buzzpipe.estimate.reference import chi2_sf, quantile, two_sided_p
from buzzpipe.results import Estimate, Hypothesis, Inference, Interval, StudyResults, Term
from buzzpipe.results.vocabulary import (
    Family,
    HypothesisKind,
    InferenceKind,
    InferenceMethod,
    StudyPart,
    TermKind,
)
from buzzpipe.study import engine
from buzzpipe.study.models import (
    coefficient_hypothesis,
    columns_of,
    fit_model,
    inference_of,
    local_scale,
    rows_kept,
    term_estimates,
    with_computed,
)
from buzzpipe.study.sensitivity import wild_bootstrap_terms
from buzzpipe.study.skipped import record_not_assessed
from buzzpipe.survey.schema import GROUP_PARTNER_TYPE, PARTNER_TYPES, WEIGHT, breadth_column

EXPOSURE = "pipeline_exposure"
UNKNOWN_SHARE = "pipeline_exposure_unknown_share"
LEAVE_ONE_OUT = "pipeline_share_leave_one_out"
CELL = "region_industry_cell"
OWN_PIPELINE = "own_pipeline"  # 0/1: the firm has an international partner itself
EXCLUSION = "own_pipeline_exclusion"  # x_i / (n_c - 1): the share's mechanical own term
NAIVE = "spillover_exposure_naive"
COMPOSITION = "pipeline_share_of_cell"  # S_c / (n_c - 1): the cell's composition
CELL_CLUSTERED = "spillover_exposure_cell_clustered"
PLACEBO = "spillover_placebo"  # own pipeline status on the exposure: sorting, not spill-over
# the leave-one-out pipeline share of the firm's region: what random local partners would give
REGIONAL_POOL = "pipeline_share_of_region_leave_one_out"
BEYOND_POOL = "pipeline_exposure_beyond_random"  # the exposure less that share
BOUND = "spillover_confounding_bound"  # how strong a confounder would have to be


def has_link_exposure(frame: pd.DataFrame) -> bool:
    """Whether the survey came with firm-to-firm links (an exposure measure per firm)."""
    chosen = engine.current()  # on dask the exposure may be held on the workers alone
    return EXPOSURE in chosen.columns(frame) and chosen.any_present(frame, EXPOSURE)


def leave_one_out_share(frame: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """(leave-one-out share of pipeline firms in the region x industry cell, cell label).

    Firms alone in their cell have no peers: their share is missing.
    """
    share, _, cell = leave_one_out_parts(frame)
    return share, cell


def leave_one_out_parts(frame: pd.DataFrame) -> tuple[pd.Series, pd.Series, pd.Series]:
    """(leave-one-out share, exclusion term x_i / (n_c - 1), cell label) per firm.

    Counts use the firms whose pipeline status is known; firms alone in their cell (or of
    unknown status) have no share.
    """
    pipeline, cell = _cell_status(frame)
    total = pipeline.groupby(cell).transform("sum")
    size = pipeline.groupby(cell).transform("count").astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = (total - pipeline) / (size - 1.0)
        exclusion = pipeline / (size - 1.0)
    alone = (size <= 1) | pipeline.isna()
    share[alone] = np.nan
    exclusion[alone] = np.nan
    return share.rename(LEAVE_ONE_OUT), exclusion.rename(EXCLUSION), cell.rename(CELL)


def regional_pool_share(frame: pd.DataFrame) -> pd.Series:
    """The leave-one-out share of pipeline firms among the surveyed firms of each firm's region
    (those of known status), (S_r - x_i) / (n_r - 1): the expected share of a firm's local
    partners with pipelines if they were drawn at random from the other surveyed firms of its
    region. Missing for a firm of unknown status or alone in its region."""
    known, pipeline = _pipeline_status(frame)
    pipeline = np.where(known, pipeline, np.nan)
    # per region (a missing region in none) the firms of known status and those with a
    # pipeline: counts of whole firms, exact whatever the order they are added in
    codes, labels = _region_text_codes(frame["region"])
    grouped, regions = (codes >= 0) & known, len(labels)
    total = np.bincount(codes[grouped], weights=pipeline[grouped], minlength=regions)
    size = np.bincount(codes[grouped], minlength=regions).astype(float)
    return _firm_pool_shares(codes, known, pipeline, size, total, frame.index)


def _firm_pool_shares(
    codes: np.ndarray,
    known: np.ndarray,
    pipeline: np.ndarray,
    size: np.ndarray,
    total: np.ndarray,
    index: pd.Index,
) -> pd.Series:
    """Each firm's (S_r - x_i) / (n_r - 1) from its region's code (-1: none), whether its
    status is known, its pipeline (missing where unknown) and each region's firms of known
    status ``size`` and pipelines ``total``: :func:`regional_pool_share`'s shares."""
    in_region = codes >= 0
    firm_total = np.full(len(codes), np.nan)
    firm_size = np.zeros(len(codes))
    firm_total[in_region], firm_size[in_region] = total[codes[in_region]], size[codes[in_region]]
    with np.errstate(divide="ignore", invalid="ignore"):
        share = (firm_total - pipeline) / (firm_size - 1.0)
    share[(firm_size <= 1) | ~known] = np.nan
    return pd.Series(share, index=index, name=REGIONAL_POOL)


def _rows_on_workers(frame: pd.DataFrame) -> pd.DataFrame | None:
    """Every row of ``frame`` selected on the Dask workers with every column of the kept frame
    there and none here (``rows_kept`` with no reads): the spill-over parts' columns (the
    outcome, breadth, the cells, the link exposure and its unknown share, the weights) are not
    held on the client. None where the rows cannot be selected there (off dask): the caller
    takes the spill-over columns."""
    return engine.current().rows_on_workers(frame, np.ones(len(frame), dtype=bool), [])


def _leave_one_out_on_workers(frame: pd.DataFrame, data: pd.DataFrame) -> pd.DataFrame | None:
    """``data`` with :func:`leave_one_out_parts` of ``frame``'s firms (the frame ``data``'s rows
    are rows of, in order) made on the Dask workers: each cell's firms of known status and
    pipelines counted per partition there and added (whole numbers: exact in any order), then
    each firm's parts computed from its row and them (``with_computed``), the same numbers;
    None off dask (the caller computes them here)."""
    chosen = engine.current()
    if chosen.name != "dask":
        return None
    reads = [breadth_column("international"), "region", "industry"]
    counts = chosen.reduced(frame, _cell_pipelines, columns=reads)
    return with_computed(data, functools.partial(_leave_one_out_columns, counts or {}))


def _cell_status(rows: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """(pipeline status: 1.0, 0.0 or missing where unknown; the region x industry cell's
    label) of each firm of ``rows``, as :func:`leave_one_out_parts` makes them."""
    international = rows[breadth_column("international")]
    pipeline = (international > 0).astype(float).where(international.notna())
    return pipeline, rows["region"].astype(str) + " | " + rows["industry"].astype(str)


def _cell_pipelines(rows: pd.DataFrame) -> dict[str, tuple[int, int]]:
    """{cell label: (firms of known pipeline status, those with a pipeline)} of ``rows`` (a
    partition's counts of :func:`_leave_one_out_on_workers`)."""
    pipeline, cell = _cell_status(rows)
    grouped = pipeline.groupby(cell)
    size, total = grouped.count(), grouped.sum()
    return {
        label: (int(n), int(t))
        for label, n, t in zip(size.index, size.tolist(), total.tolist(), strict=True)
    }


def _leave_one_out_columns(
    counts: dict[str, tuple[int, int]], rows: pd.DataFrame
) -> dict[str, pd.Series]:
    """:func:`leave_one_out_parts` of ``rows`` from every firm's per-cell ``counts``
    (:func:`_cell_pipelines` summed): the same arithmetic on the same whole numbers."""
    pipeline, cell = _cell_status(rows)
    codes, labels = pd.factorize(cell)
    sizes = np.array([counts.get(label, (0, 0))[0] for label in labels], dtype=float)
    totals = np.array([counts.get(label, (0, 0))[1] for label in labels], dtype=float)
    grouped = codes >= 0
    size, total = np.full(len(codes), np.nan), np.full(len(codes), np.nan)
    size[grouped], total[grouped] = sizes[codes[grouped]], totals[codes[grouped]]
    values = pipeline.to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = (total - values) / (size - 1.0)
        exclusion = values / (size - 1.0)
    alone = (size <= 1) | np.isnan(values)
    share[alone] = np.nan
    exclusion[alone] = np.nan
    return {
        LEAVE_ONE_OUT: pd.Series(share, index=rows.index, name=LEAVE_ONE_OUT),
        EXCLUSION: pd.Series(exclusion, index=rows.index, name=EXCLUSION),
        CELL: cell.rename(CELL),
    }


def _regional_pool_on_workers(frame: pd.DataFrame, data: pd.DataFrame) -> pd.DataFrame | None:
    """``data`` with :func:`regional_pool_share` of ``frame``'s firms (the frame ``data``'s rows
    are rows of, in order) made on the Dask workers: the pool's per-region counts summed over
    ``frame``'s partitions there, then each firm's share computed from its row and them
    (``with_computed``), the same numbers; None off dask (the caller computes it here)."""
    chosen = engine.current()
    if chosen.name != "dask":
        return None
    counts = chosen.reduced(
        frame, _region_pipelines, columns=[breadth_column("international"), "region"]
    )
    return with_computed(data, functools.partial(_pool_column, counts or {}))


def _region_pipelines(rows: pd.DataFrame) -> dict[str, tuple[int, int]]:
    """{region as text: (firms of known pipeline status, those with a pipeline)} of ``rows``
    (a partition's counts: whole numbers, summed exactly in any order)."""
    known, pipeline = _pipeline_status(rows)
    codes, labels = _region_text_codes(rows["region"])
    grouped = (codes >= 0) & known
    size = np.bincount(codes[grouped], minlength=len(labels))
    total = np.bincount(codes[grouped], weights=pipeline[grouped], minlength=len(labels))
    return {
        label: (int(n), int(t))
        for label, n, t in zip(labels, size.tolist(), total.tolist(), strict=True)
    }


def _pool_column(counts: dict[str, tuple[int, int]], rows: pd.DataFrame) -> dict[str, pd.Series]:
    """:func:`regional_pool_share` of ``rows`` from every firm's per-region ``counts``
    (:func:`_region_pipelines` summed): the same arithmetic on the same whole numbers."""
    known, pipeline = _pipeline_status(rows)
    pipeline = np.where(known, pipeline, np.nan)
    codes, labels = _region_text_codes(rows["region"])
    sizes = np.array([counts.get(label, (0, 0))[0] for label in labels], dtype=float)
    totals = np.array([counts.get(label, (0, 0))[1] for label in labels], dtype=float)
    return {REGIONAL_POOL: _firm_pool_shares(codes, known, pipeline, sizes, totals, rows.index)}


def _pipeline_status(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(known status, 1.0 for a pipeline and 0.0 otherwise) of each firm of ``rows``."""
    international = rows[breadth_column("international")]
    known = international.notna().to_numpy()
    return known, (international > 0).to_numpy(dtype=float, na_value=0.0)


def _region_text_codes(column: pd.Series) -> tuple[np.ndarray, list[str]]:
    """(codes, labels) of ``column``'s values as text (-1 where missing): the groups of
    ``pd.factorize(column.astype(str))``, labelled by their text so that partitions' groups add
    up. A categorical's categories are put as text and each firm's code read through its
    category, with no text column of every firm (Arrow's, whose pool keeps the pages it frees):
    at 1,000,000 firms, with the Dask client's malloc settings, :func:`regional_pool_share` rose
    92 MiB at its peak and kept 32 MiB after it, now 49 and 8 (its result)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        named, labels = pd.factorize(column.cat.categories.astype(str))
        codes = column.cat.codes.to_numpy()
        if not len(named):  # no category: no firm in a region
            return np.full(len(codes), -1), []
        return np.where(codes >= 0, named[np.maximum(codes, 0)], -1), list(labels)
    codes, labels = pd.factorize(column.astype(str))
    return codes, list(labels)


def spillover_columns(
    frame: pd.DataFrame, outcome: str, breadth: Sequence[str], control_columns: Sequence[str]
) -> list[str]:
    """The columns of ``frame`` the spill-over parts read: the outcome, breadth, the controls'
    columns, region and industry (the cells), the link exposure and its unknown share, the
    sampling weights."""
    wanted = [
        outcome,
        *breadth,
        breadth_column("international"),
        *control_columns,
        "region",
        "industry",
        EXPOSURE,
        UNKNOWN_SHARE,
        WEIGHT,
    ]
    return [name for name in dict.fromkeys(wanted) if name in frame.columns]


def varies(values: pd.Series) -> bool:
    """Whether a column takes more than one value (up to rounding) on the rows given."""
    values = values.dropna()
    return len(values) > 1 and float(values.max() - values.min()) > 1e-12


def _exclusion_varies(subset: pd.DataFrame) -> bool:
    """:func:`varies` of the exclusion term over ``subset``'s firms with a pipeline, from its
    values' count and ends (on dask each partition's, made there)."""
    found = engine.current().reduced(subset, _pipeline_exclusion_ends)
    ends = found["ends"] if found else []
    return found["firms"] > 1 and float(max(ends) - min(ends)) > 1e-12 if ends else False


def _pipeline_exclusion_ends(rows: pd.DataFrame) -> dict[str, Any]:
    """How many of ``rows``' firms with a pipeline have an exclusion term, and its least and
    largest value among them (none where no firm has)."""
    values = rows.loc[rows[OWN_PIPELINE] == 1, EXCLUSION].dropna()
    return {"firms": len(values), "ends": [values.min(), values.max()] if len(values) else []}


def assess_spillover(
    results: StudyResults,
    outcome: str,
    frame: pd.DataFrame,
    breadth: Sequence[str],
    controls: Sequence[str],
    control_columns: Sequence[str],
    family: str,
    *,
    seed: int = 0,
    wild_bootstrap_draws: int = 0,
    primary_only: bool = False,
    placebo_only: bool = False,
    placebos: dict | None = None,
) -> None:
    """Fit the exposure models (all firms, own pipeline, no pipeline) and record their terms:
    with links firm-level robust; without links tested between cells, the pooled
    cell-clustered fits kept as ``<name>_cell_clustered``, and with ``wild_bootstrap_draws`` the
    pooled test also gets a wild score bootstrap by cell
    (``spillover_exposure_wild_bootstrap``, binary models). Then the placebo and the
    confounding bound (module docstring). ``primary_only``: the all-firms test (between cells
    without links), its placebo and bound only, for simulations of their size; ``placebo_only``:
    the placebo alone (no fit of the outcome, no bound), for simulations of its size.
    ``placebos``: a dict a caller keeps across the outcomes of one frame, where the placebo and
    the bound's residual SD of each set of rows are kept (:func:`_guarded_placebo`)."""
    links = has_link_exposure(frame)
    # the columns the parts read, not every column of the survey: each subset below copies them
    # (copy on write: the columns it sets are its own); with links on dask, the frame's rows
    # with every column on the workers and none here (the rows are only fitted and reduced)
    data = _rows_on_workers(frame)
    if data is None:
        data = frame[spillover_columns(frame, outcome, breadth, control_columns)].copy(deep=False)
    if links:
        exposure, vcov = EXPOSURE, "robust"
        measure = f"share of {local_scale(frame)} partners with international partners (links)"
        if UNKNOWN_SHARE in engine.current().columns(frame):
            unknown = engine.current().mean(frame, UNKNOWN_SHARE)
            measure += f"; mean share of partners of unknown status {unknown:.3f}"
        # the placebo's null (all surveyed): on dask made on the workers
        found = _regional_pool_on_workers(frame, data)
        if found is None:
            data[REGIONAL_POOL] = regional_pool_share(frame)
        else:
            data = found
    else:
        found = _leave_one_out_on_workers(frame, data)  # on dask made on the workers
        if found is None:
            data[LEAVE_ONE_OUT], data[EXCLUSION], data[CELL] = leave_one_out_parts(frame)
        else:
            data = found
        exposure, vcov = LEAVE_ONE_OUT, {"cluster": CELL}
        measure = (
            "leave-one-out share of pipeline firms in the region x industry cell, corrected "
            "for exclusion bias (own status and x_i / (n_c - 1) held fixed; cell-level "
            "correlated effects beyond region and industry not absorbed)"
        )
    inference = inference_of(vcov)
    columns = [outcome, exposure, *breadth, *control_columns]
    if not isinstance(vcov, str):
        columns.append(CELL)
    # column by column: ``data[columns].notna()`` copied the columns first (with the frame of
    # booleans, at 150,000 firms the peak of this part on the Dask client)
    chosen, columns = engine.current(), list(dict.fromkeys(columns))
    # the rows are only fitted and reduced below (the placebo's and the cells' columns made
    # where they are): on dask their masks and columns are made on the workers, none kept here
    complete = chosen.mask(data, _complete_on, columns, columns=columns)
    data = rows_kept(data, complete, [])
    own = chosen.mask(data, _has_pipeline, columns=[breadth_column("international")])
    data = with_computed(data, _own_pipeline_column)
    global_term = breadth_column("international")
    exclusion = [] if exposure == EXPOSURE else [EXCLUSION]
    # each group's rows (None: all), its subset made when its turn comes and let go after:
    # one copy of a group's rows at a time (the Dask client holds them)
    groups = (
        ("spillover_exposure", None, [*breadth, OWN_PIPELINE, *exclusion]),
        ("spillover_exposure_own_pipeline", own, [*breadth, *exclusion]),
        (
            "spillover_exposure_no_pipeline",
            ~own,
            [term for term in breadth if term != global_term],
        ),
    )
    if exclusion:
        groups += ((NAIVE, None, []),)
    if primary_only:  # the verdict's test, its placebo and bound (simulations of their size)
        groups = groups[:1]
    if placebo_only:  # the placebo alone (simulations of its size)
        groups = ()
    # a group's rows are only fitted and reduced here: on --engine dask their columns stay on
    # the workers
    for name, rows, terms in groups:
        subset = data if rows is None else rows_kept(data, rows, [])
        if EXCLUSION in terms and not _exclusion_varies(subset):
            terms = [term for term in terms if term != EXCLUSION]  # cells of one size: absorbed
        formula = f"{outcome} ~ {exposure} + " + " + ".join([*terms, *controls])
        try:
            fitted = fit_model(formula, subset, family, vcov)
        except BuzzpipeError as error:
            quantity = f"tests/{outcome}/{name}"
            record_not_assessed(
                results, outcome, StudyPart.SPILLOVER, error, term=name, quantity=quantity
            )
            continue
        estimate: Estimate = term_estimates(fitted, inference, [exposure])[exposure]
        estimate.hypothesis = coefficient_hypothesis(fitted, exposure, firms=len(subset))
        if name == NAIVE:
            estimate.note = " ".join(
                [
                    "naive leave-one-out estimate without own status: biased by exclusion "
                    "(Caeyers and Fafchamps); described only, not a verdict",
                    *fitted.notes,
                ]
            )
            results.add_description(outcome, name, estimate)
            continue
        estimate.note = " ".join([measure, *fitted.notes])
        if exclusion:  # without links: the test between cells is primary (see the docstring)
            _between_cells(
                results, outcome, name, subset, terms, controls, family, exposure, measure
            )
            if primary_only:
                continue
            name = f"{name}_cell_clustered"  # the pooled Wald test: over-rejects
            estimate.note = " ".join(
                [
                    "pooled model, cell-clustered Wald test: over-rejects with a few dozen "
                    "cells (the test between cells is the primary one);",
                    estimate.note,
                ]
            )
        results.add_test(outcome, name, estimate)
        if (
            name == CELL_CLUSTERED
            and exclusion
            and wild_bootstrap_draws
            and family in (Family.LOGIT, Family.PROBIT)
        ):
            _wild_bootstrap_by_cell(
                results, outcome, fitted, subset, exposure, family, seed, wild_bootstrap_draws
            )
    subset = fitted = None  # the last group's rows go before the placebo
    _guarded_placebo(results, outcome, data, exposure, breadth, controls, bool(exclusion), placebos)


def _wild_bootstrap_by_cell(
    results: StudyResults,
    outcome: str,
    fitted: Any,
    subset: pd.DataFrame,
    exposure: str,
    family: str,
    seed: int,
    draws: int,
) -> None:
    """The pooled spill-over test by the wild score bootstrap with cells as clusters: the
    cell-clustered Wald test over-rejects with a few dozen cells (see the module docstring)."""
    try:
        wild = wild_bootstrap_terms(
            fitted,
            subset,
            outcome,
            family,
            [exposure],
            seed,
            draws,
            confidence_sets=False,
            cluster_column=CELL,
        )[exposure]
    except BuzzpipeError as error:
        detail = f"wild bootstrap of the spill-over by cell not computed: {error}"
        record_not_assessed(results, outcome, StudyPart.SPILLOVER, error, detail=detail)
        return
    wild.hypothesis = coefficient_hypothesis(fitted, exposure, firms=len(subset))
    results.add_test(outcome, "spillover_exposure_wild_bootstrap", wild)


def cell_effects(fitted: Any, subset: pd.DataFrame, cell_column: str = CELL) -> pd.DataFrame:
    """The estimated cell effects (intercept plus cell dummy; log-odds for logit) of a fit with
    one dummy per cell and their sampling variances, one row per cell label. A cell's effect is
    the same on each of its firms, so the design is built for each cell's first firm only (not
    a firm-by-coefficient matrix of the whole subset, on the client under --engine dask)."""
    labels = subset[cell_column].to_numpy()
    first = pd.Series(np.arange(len(subset))).groupby(labels).first()  # sorted by cell label
    design = np.asarray(fitted.design_matrix(subset.iloc[first.to_numpy()]), dtype=float)
    names = [str(name) for name in fitted.params.index]
    params = fitted.params.to_numpy(dtype=float)
    keep = np.array([name == "Intercept" or name.startswith(f"C({cell_column})") for name in names])
    rows = design[:, keep]
    covariance = fitted.vcov.to_numpy(dtype=float)[np.ix_(keep, keep)]
    return pd.DataFrame(
        {
            "effect": rows @ params[keep],
            "variance": np.einsum("ij,jk,ik->i", rows, covariance, rows),
        },
        index=first.index,
    )


def cell_design(
    cells: pd.DataFrame,
    regressor: str,
    covariates: Sequence[str],
    numeric: Sequence[str] = (),
) -> np.ndarray:
    """Intercept, the cells' regressor, dummies of each covariate (first level left out) and
    the numeric columns as they are."""
    dummies = [
        pd.get_dummies(cells[name].astype(str), prefix=name, drop_first=True, dtype=float)
        for name in covariates
    ]
    intercept = pd.Series(1.0, index=cells.index, name="Intercept")
    columns = [intercept, cells[regressor], *dummies, *(cells[name] for name in numeric)]
    return pd.concat(columns, axis=1).to_numpy(dtype=float)


@dataclass
class BetweenCellsTest:
    """The meta-regression of cell effects on a cell-level regressor (its coefficient)."""

    estimate: float
    std_error: float
    p_value: float
    df: int  # residual degrees of freedom: cells less coefficients
    heterogeneity: float  # tau^2, the between-cell variance beyond sampling error
    cells: int


def between_cells_test(
    effects: pd.Series,
    variances: pd.Series,
    cells: pd.DataFrame,
    regressor: str,
    covariates: Sequence[str],
    numeric: Sequence[str] = (),
) -> BetweenCellsTest:
    """Random-effects meta-regression of the estimated cell effects on the cells' ``regressor``
    with the covariates as fixed effects (and the ``numeric`` cell-level columns): weights
    1 / (v_c + tau^2), tau^2 by the method of moments (DerSimonian-Laird), error by Knapp and
    Hartung (2003), t(G - K) reference."""
    design = cell_design(cells.loc[effects.index], regressor, covariates, numeric)
    response = effects.to_numpy(dtype=float)
    variance = variances.loc[effects.index].to_numpy(dtype=float)
    rank = np.linalg.matrix_rank(design)
    df = len(response) - rank
    if rank < design.shape[1] or df < 1 or not np.all(variance > 0):
        raise EstimationError(
            f"the between-cells regression has {len(response)} cells for {design.shape[1]} "
            f"coefficients (rank {rank}): no residual degrees of freedom or collinear cells"
        )
    weight = 1.0 / variance
    weighted_design = design * weight[:, None]
    projection = np.linalg.solve(design.T @ weighted_design, weighted_design.T)
    residuals = response - design @ (projection @ response)
    q_statistic = float(residuals @ (weight * residuals))
    # tr(P) with P = W - W X (X'WX)^-1 X'W
    trace = float(weight.sum() - np.einsum("ij,ji->", weighted_design, projection))
    heterogeneity = max(0.0, (q_statistic - df) / trace)
    weight = 1.0 / (variance + heterogeneity)
    weighted_design = design * weight[:, None]
    information = design.T @ weighted_design
    coefficients = np.linalg.solve(information, weighted_design.T @ response)
    residuals = response - design @ coefficients
    scale = float(residuals @ (weight * residuals)) / df
    std_error = float(np.sqrt(scale * np.linalg.inv(information)[1, 1]))
    estimate = float(coefficients[1])
    p_value = float(two_sided_p(estimate / std_error, df)) if std_error > 0 else math.nan
    return BetweenCellsTest(estimate, std_error, p_value, df, heterogeneity, len(response))


def _between_cells(
    results: StudyResults,
    outcome: str,
    name: str,
    subset: pd.DataFrame,
    terms: Sequence[str],
    controls: Sequence[str],
    family: str,
    exposure: str,
    measure: str,
) -> None:
    """A spill-over test without links between cells (``name``: all firms or one of the two
    groups): a fit with one effect per cell (own status, the exclusion term, breadth and the
    firm-level controls), then the meta-regression of the estimated cell effects on the cell's
    composition S_c / (n_c - 1) with region and industry effects, t(G - K) reference (see the
    module docstring). An exclusion term constant within cells (firms with a pipeline:
    1 / (n_c - 1)) moves from the first step to the second."""
    chunked = engine.current().chunked
    if chunked:  # the cells' first firms and ranges, chunk by chunk: no firm-level column here
        firsts, ranges = _chunked_cell_table(subset, exposure, [outcome, EXCLUSION])
        data = subset
    else:
        data = subset.copy(deep=False)
        data[COMPOSITION] = data[exposure] + data[EXCLUSION]
    dropped = 0
    if family in (Family.LOGIT, Family.PROBIT):
        if chunked:
            varying_cells = ranges[f"{outcome} low"] < ranges[f"{outcome} high"]
            dropped = int((~varying_cells).sum())
            if dropped:  # on dask the cells' rows found on the workers
                kept_cells = list(ranges.index[varying_cells])
                inside = engine.current().mask(data, _in_cells, kept_cells, columns=[CELL])
                data = rows_kept(data, inside, [])
            firsts, ranges = firsts.loc[varying_cells], ranges.loc[varying_cells]
        else:
            varying = data.groupby(CELL)[outcome].transform("nunique") > 1
            dropped = data.loc[~varying, CELL].nunique()
            data = data.loc[varying]
    firm_controls = [
        term for term in controls if term not in ("C(region)", "C(industry)", "region", "industry")
    ]
    cell_level = []
    if chunked:
        constant = not (ranges[f"{EXCLUSION} low"] < ranges[f"{EXCLUSION} high"]).any()
    else:
        constant = EXCLUSION in terms and (data.groupby(CELL)[EXCLUSION].nunique() <= 1).all()
    if EXCLUSION in terms and constant:
        terms = [term for term in terms if term != EXCLUSION]
        cell_level = [EXCLUSION]
    formula = f"{outcome} ~ C({CELL}) + " + " + ".join([*terms, *firm_controls])
    try:
        weighted = WEIGHT in columns_of(data)  # on dask: the columns its rows have there
        fitted = fit_model(formula, data, family, "robust" if weighted else "classical")
        if chunked:  # one row per cell already
            effects = cell_effects(fitted, firsts)
            cells = firsts[[COMPOSITION, *cell_level, "region", "industry"]]
        else:
            effects = cell_effects(fitted, data)
            cells = data.groupby(CELL)[[COMPOSITION, *cell_level, "region", "industry"]].first()
        test = between_cells_test(
            effects["effect"],
            effects["variance"],
            cells,
            COMPOSITION,
            ["region", "industry"],
            numeric=cell_level,
        )
    except BuzzpipeError as error:
        record_not_assessed(
            results,
            outcome,
            StudyPart.SPILLOVER,
            error,
            term=name,
            quantity=f"tests/{outcome}/{name}",
            detail=f"between cells: {error}",
        )
        return
    critical = quantile(0.975, test.df)
    note = [
        measure + ";",
        f"between-cells test: {test.cells} cell effects from a {family} fit with one effect "
        "per cell (own status, exclusion term, breadth and firm-level controls), regressed on "
        "the cell's share of pipeline firms S_c / (n_c - 1) with region and industry effects "
        "(random-effects meta-regression, weights 1 / (v_c + tau^2), tau^2 = "
        f"{test.heterogeneity:.3g}; Knapp-Hartung error, t({test.df}) reference);",
    ]
    if dropped:
        cells_word = "cell" if dropped == 1 else "cells"
        note.append(f"{dropped} {cells_word} whose firms all share one outcome left out;")
    results.add_test(
        outcome,
        name,
        Estimate(
            estimate=test.estimate,
            std_error=test.std_error,
            p_value=test.p_value,
            inference=Inference(
                InferenceKind.BETWEEN_CELLS,
                by=CELL,
                clusters=int(test.cells),
                method=InferenceMethod.META_REGRESSION,
            ),
            interval=Interval.bounded(
                test.estimate - critical * test.std_error,
                test.estimate + critical * test.std_error,
            ),
            statistic=test.estimate / test.std_error if test.std_error > 0 else math.nan,
            hypothesis=Hypothesis(  # the cells' regressor: a continuous cell-level variable
                HypothesisKind.ZERO,
                terms=[Term(TermKind.CONTINUOUS, variable=exposure)],
                firms=len(data),
                cells=int(test.cells),
            ),
            note=" ".join([*note, *fitted.notes]),
        ),
    )


def _guarded_placebo(
    results: StudyResults,
    outcome: str,
    data: pd.DataFrame,
    exposure: str,
    breadth: Sequence[str],
    controls: Sequence[str],
    cells: bool,
    placebos: dict | None = None,
) -> None:
    """The placebo and the confounding bound of one outcome's spill-over association; a part
    that cannot be computed is a not-assessed note.

    Neither the placebo nor the bound's residual SD reads the outcome: both are functions of
    the firms' other columns on the outcome's rows. ``placebos`` (kept by the caller across the
    outcomes of one frame) keeps them per set of rows (:func:`_rows_key`), so outcomes with the
    same rows share one placebo fit and one null design (norway2010: three outcomes, one fit);
    a copy of the placebo goes to each outcome. Nothing per firm is kept."""
    global_term = breadth_column("international")
    others = [term for term in breadth if term != global_term]
    key = None if placebos is None else _rows_key(data, exposure, others, controls, cells)
    kept = {} if key is None else placebos.setdefault(key, {})
    try:
        if PLACEBO in kept:
            test = copy.deepcopy(kept[PLACEBO])
        else:
            if cells:
                test = cell_clustering_test(data, others, controls)
            else:
                test = partner_sorting_test(data, exposure, others, controls)
            if key is not None:
                kept[PLACEBO] = copy.deepcopy(test)
    except BuzzpipeError as error:
        record_not_assessed(
            results,
            outcome,
            StudyPart.SPILLOVER,
            error,
            quantity=f"tests/{outcome}/{PLACEBO}",
            detail=f"the placebo was not computed: {error}",
        )
    else:
        results.add_test(outcome, PLACEBO, test)
    primary = results.tests.get(outcome, {}).get("spillover_exposure")
    if primary is not None and primary.estimate is not None and math.isfinite(primary.estimate):
        if BOUND not in kept:
            kept[BOUND] = exposure_spread(data, exposure, others, controls, cells)
        results.add_description(
            outcome, BOUND, confounding_bound(primary, exposure, kept[BOUND], cells)
        )


def _rows_key(
    data: pd.DataFrame, exposure: str, others: Sequence[str], controls: Sequence[str], cells: bool
) -> tuple | None:
    """What the placebo and the bound depend on: the rows of ``data`` (their number and a
    128-bit digest of its index, not the index itself) and the terms; None where ``data`` is
    not a pandas frame (nothing is then kept)."""
    if not isinstance(data, pd.DataFrame):
        return None
    hashes = pd.util.hash_pandas_object(data.index, index=False).to_numpy()
    digest = hashlib.blake2b(hashes.tobytes(), digest_size=16).hexdigest()
    return len(data), digest, exposure, tuple(others), tuple(controls), cells


def _in_cells(rows: pd.DataFrame, cells: list[str]) -> np.ndarray:
    """Whether each firm of ``rows`` is in one of ``cells``."""
    return rows[CELL].isin(cells).to_numpy()


def _own_pipeline(data: pd.DataFrame) -> np.ndarray:
    return (data[breadth_column("international")] > 0).to_numpy(dtype=float)


def _has_pipeline(rows: pd.DataFrame) -> np.ndarray:
    """Whether each firm of ``rows`` has a pipeline (international partners)."""
    return (rows[breadth_column("international")] > 0).to_numpy(dtype=bool)


def _own_pipeline_column(rows: pd.DataFrame) -> dict[str, np.ndarray]:
    """Own pipeline status (1.0 or 0.0), the spill-over models' term, of each firm of ``rows``
    (:func:`_own_pipeline`, as a computed column)."""
    return {OWN_PIPELINE: _own_pipeline(rows)}


def _complete_on(rows: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """Whether each row of ``rows`` holds every one of ``columns``."""
    complete = np.ones(len(rows), dtype=bool)
    for column in columns:
        complete &= rows[column].notna().to_numpy()
    return complete


def _placebo_columns(exposure: str, rows: pd.DataFrame) -> dict[str, Any]:
    """The placebo's own pipeline status and exposure beyond the regional pool, of ``rows``
    (which hold the pool's column): :func:`partner_sorting_test`'s columns."""
    return {OWN_PIPELINE: _own_pipeline(rows), BEYOND_POOL: rows[exposure] - rows[REGIONAL_POOL]}


def _beyond_known(rows: pd.DataFrame) -> np.ndarray:
    return rows[BEYOND_POOL].notna().to_numpy()


def _null_design(
    data: pd.DataFrame, others: Sequence[str], controls: Sequence[str]
) -> tuple[np.ndarray, list[str]]:
    """The design of own pipeline status's null model: the local and national breadth and the
    controls (region and industry main effects among them), as formulaic builds it.

    Built by the fits' design builder (``build_design``: the formula's specification kept for
    the battery's other formulas, the columns filled in blocks), whose matrix is formulaic's bit
    for bit, column-major as formulaic's frame gives it; formulaic itself where some row has a
    missing value (its error) or the frame lacks the own-pipeline column the builder's formula
    needs on its left-hand side."""
    right = _null_terms(others, controls)
    if OWN_PIPELINE in data.columns:
        built = build_design(f"{OWN_PIPELINE} ~ {right}", data)
        if built.nobs == len(data):
            return np.asfortranarray(built.X), list(built.names)
    from formulaic import model_matrix

    matrix = model_matrix(right, data, na_action="raise")
    return np.asarray(matrix, dtype=float), [str(name) for name in matrix.columns]


def _null_terms(others: Sequence[str], controls: Sequence[str]) -> str:
    """The right-hand side of the null models (the placebo's and the bound's): the local and
    national breadth and the controls, or the intercept alone."""
    return " + ".join([*others, *controls]) or "1"


def _chunked_null(
    data: pd.DataFrame,
    outcome: str,
    others: Sequence[str],
    controls: Sequence[str],
    what: str,
    *,
    cluster: str | None = None,
) -> tuple[Any, Any, dict]:
    """(chunk source, specification, row summaries) of ``outcome`` on the null terms over the
    chunks of ``data`` on the study's chunked engine, the specification fixed as the fits fix
    theirs (``chunked_specification``); an error naming ``what`` where a firm is not usable."""
    from buzzpipe.estimate.streamed import chunked_specification

    source = engine.current().source(data)
    formula = f"{outcome} ~ {_null_terms(others, controls)}"
    spec, summary = chunked_specification(formula, source, cluster=cluster)
    if summary["nobs"] != len(data):
        raise EstimationError(f"{what} has {summary['nobs']} usable firms of {len(data)}")
    return source, spec, summary


def _binomial_null(design: np.ndarray, y: np.ndarray, trials: float) -> np.ndarray:
    """Fitted means trials x p of a binomial logit by Newton steps (raises on separation)."""
    params = _binomial_newton(
        lambda params: _binomial_sums(design, y, params, trials), design.shape[1]
    )
    return trials / (1.0 + np.exp(-(design @ params)))


def _binomial_sums(
    design: np.ndarray, y: np.ndarray, params: np.ndarray, trials: float
) -> tuple[np.ndarray, np.ndarray]:
    """(X'WX, X'(y - mu)) of the binomial logit at ``params`` over ``design``'s rows: the whole
    sample's in memory, one chunk's under a chunked engine (the chunks' sums are added)."""
    p = 1.0 / (1.0 + np.exp(-(design @ params)))
    hessian = (design * (trials * p * (1.0 - p))[:, None]).T @ design
    return hessian, design.T @ (y - trials * p)


def _binomial_newton(sums: Any, columns: int) -> np.ndarray:
    """The binomial logit's coefficients by Newton steps from zero, ``sums(params)`` giving
    (X'WX, X'(y - mu)) (raises on separation)."""
    params = np.zeros(columns)
    for _ in range(60):
        hessian, gradient = sums(params)
        step = np.linalg.lstsq(hessian, gradient, rcond=None)[0]
        params += step
        if np.max(np.abs(step)) < 1e-10:
            break
    else:
        raise EstimationError("the placebo's null model of international partners did not converge")
    return params


def _chunk_binomial_sums(chunk: Any, params: np.ndarray, trials: float) -> tuple:
    """:func:`_binomial_sums` over one chunk's design (a chunked engine's Newton pass)."""
    return _binomial_sums(chunk.X, chunk.y, params, trials)


def _chunk_cell_sums(chunk: Any, params: np.ndarray, trials: float, cells: int) -> dict:
    """One chunk's part of the cell placebo's pieces at the null's estimate: with r the
    residuals, W the binomial weights, Z the cell indicators and X the design, the p x p sums
    X'WX and X' diag(r^2) X, the cells x p sums Z'WX and Z' diag(r^2) X, and per cell the sums
    of r and of r^2 (no per-firm array leaves the chunk)."""
    X, codes = chunk.X, chunk.clusters
    mean = trials / (1.0 + np.exp(-(X @ params)))
    residuals = chunk.y - mean
    squares = residuals * residuals
    weight = mean * (1.0 - mean / trials)

    def by_cell(values: np.ndarray) -> np.ndarray:
        return np.bincount(codes, weights=values, minlength=cells)

    def cells_by_columns(values: np.ndarray) -> np.ndarray:
        found = np.empty((cells, X.shape[1]))
        for column in range(X.shape[1]):
            found[:, column] = by_cell(values * X[:, column])
        return found

    return {
        "information": (X * weight[:, None]).T @ X,
        "residual_gram": (X * squares[:, None]).T @ X,
        "cross": cells_by_columns(weight),
        "residual_cross": cells_by_columns(squares),
        "cell_sums": by_cell(residuals),
        "cell_squares": by_cell(squares),
    }


INTERNATIONAL_KINDS = sum(kind != GROUP_PARTNER_TYPE for kind in PARTNER_TYPES)


def cell_clustering_test(
    data: pd.DataFrame, others: Sequence[str], controls: Sequence[str]
) -> Estimate:
    """Placebo without links: do firms' international partnerships cluster in region x industry
    cells beyond region, industry and the firms' own characteristics? The variance-component
    score test (Lin 1997) of a random effect per cell in the number of kinds of international
    partner y_i (0-6, the pipeline's intensity; y_i > 0 is own pipeline status), with the
    binomial logit of y_i on the local and national breadth and the controls as the null
    model's mean: T = sum over cells of the squared sum of the residuals r_i = y_i - mu_i,
    referred to a scaled chi-squared (Satterthwaite: T / k against chi-squared with nu df, k
    and nu from the trace of the cell sums' covariance C and of C^2). The counts are
    overdispersed (a firm's partner types share its propensity), so C is built from each firm's
    own squared residual, C = B diag(r_i^2) B' with B = Z' - Z'WX (X'WX)^-1 X' the cell sums as
    maps of the errors (the robust form of the score test's covariance), not from the binomial
    variance.

    The spill-over is identified by the cells' composition; that is as good as random only if
    firms' pipeline propensities share no cell-level shock. A shock that raised both pipelines
    and innovation in a cell would make international partners cluster by cell (this test),
    while a spill-over of pipeline knowledge to innovation does not. Against such a shock, one
    draw per cell, the random-effect score test is the locally most powerful; the count carries
    the shifted propensity with less noise than own status (y_i > 0), which the first form of
    this test used: over the same surveys it flagged fewer shocked surveys at the same size
    (docs/synthetic_surveys.md)."""
    if engine.current().chunked:
        covariance, sums, trials, cells = _chunked_cell_pieces(data, others, controls)
        return _cell_score_test(covariance, sums, trials, firms=len(data), cells=cells)
    y = data[breadth_column("international")].to_numpy(dtype=float)
    trials = float(max(INTERNATIONAL_KINDS, np.max(y, initial=0.0)))
    design, _ = _null_design(data, others, controls)
    mean = _binomial_null(design, y, trials)
    residuals = y - mean
    cell_codes, labels = pd.factorize(data[CELL])
    dummies = np.zeros((len(data), len(labels)))
    dummies[np.arange(len(data)), cell_codes] = 1.0
    weight = mean * (1.0 - mean / trials)
    information = (design * weight[:, None]).T @ design
    cross = (dummies * weight[:, None]).T @ design
    # the cells' residual sums as linear maps of the outcome's errors: Z' - Z'WX (X'WX)^-1 X'
    maps = dummies.T - cross @ np.linalg.lstsq(information, design.T, rcond=None)[0]
    covariance = (maps * (residuals * residuals)[None, :]) @ maps.T
    sums = dummies.T @ residuals
    return _cell_score_test(covariance, sums, trials, firms=len(data), cells=len(labels))


def _chunked_cell_pieces(
    data: pd.DataFrame, others: Sequence[str], controls: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, float, int]:
    """(C, the cells' residual sums, trials, cells) of :func:`cell_clustering_test` as sums
    over the chunks of ``data`` on the study's chunked engine: the null's Newton steps are
    p x p sums, and C = B diag(r^2) B' with B = Z' - Z'WX (X'WX)^-1 X' is
    Z' diag(r^2) Z - Z' diag(r^2) X K' - K X' diag(r^2) Z + K X' diag(r^2) X K' with
    K = Z'WX (X'WX)^-1, from p x p and cells x p sums (:func:`_chunk_cell_sums`). The design
    is the null's (the same terms; its columns may come in another order, which changes
    neither the fitted means nor C); the cells are in sorted order, which changes neither the
    statistic nor C's traces."""
    from buzzpipe.estimate import chunks

    source, spec, summary = _chunked_null(
        data,
        breadth_column("international"),
        others,
        controls,
        "the placebo's null model",
        cluster=CELL,
    )
    trials = float(max([INTERNATIONAL_KINDS, *summary["outcomes"]]))
    labels = np.array(sorted(summary["clusters"]))
    spec = chunks.with_estimation(spec, cluster_labels=labels)
    columns = len(spec.names)
    params = _binomial_newton(
        lambda params: source.map_designs(spec, _chunk_binomial_sums, params, trials), columns
    )
    found = source.map_designs(spec, _chunk_cell_sums, params, trials, len(labels))
    inverse = np.linalg.lstsq(found["information"], np.eye(columns), rcond=None)[0]
    reach = found["cross"] @ inverse  # K: cells x p
    crossed = found["residual_cross"] @ reach.T  # Z' diag(r^2) X K'
    covariance = np.diag(found["cell_squares"]) - crossed - crossed.T
    covariance += reach @ found["residual_gram"] @ reach.T
    return covariance, found["cell_sums"], trials, len(labels)


def _cell_score_test(
    covariance: np.ndarray, sums: np.ndarray, trials: float, *, firms: int, cells: int
) -> Estimate:
    """The cell placebo's scaled chi-squared test from C and the cells' residual sums."""
    trace = float(np.trace(covariance))
    trace_squared = float(np.sum(covariance * covariance))
    if trace <= 1e-12:
        raise EstimationError("no cell variation beyond region and industry to test")
    scale = trace_squared / trace
    df = trace * trace / trace_squared
    statistic = float(sums @ sums) / scale
    return Estimate(
        estimate=None,
        std_error=None,
        p_value=float(chi2_sf(statistic, df)),
        inference=Inference(InferenceKind.ROBUST, method=InferenceMethod.SCORE_TEST),
        statistic=statistic,
        df=max(1, round(df)),
        hypothesis=Hypothesis(HypothesisKind.PIPELINES_AS_GOOD_AS_RANDOM, firms=firms, cells=cells),
        note=(
            "placebo: the number of kinds of international partner (binomial logit of 0-"
            f"{trials:.0f} on local and national breadth and the controls), variance-component "
            "score test of a random effect per region x industry cell (Lin 1997; the sum of "
            f"squared cell sums of residuals over {scale:.4g} against chi2 with {df:.4g} df, "
            "Satterthwaite, each firm's squared residual as its variance); rejects when "
            "international partners cluster by cell beyond region, industry and the firms' own "
            "characteristics, which a cell shock in pipelines would cause and a spill-over of "
            "pipeline knowledge would not"
        ),
    )


def partner_sorting_test(
    data: pd.DataFrame, exposure: str, others: Sequence[str], controls: Sequence[str]
) -> Estimate:
    """Placebo with links: is a firm's own pipeline status associated with its local partners'
    pipelines beyond what partners drawn at random from its region would give, given its
    region, industry and characteristics? The firm-level robust logit of own pipeline status on
    the exposure less its expectation under random partners (``pipeline_exposure_beyond_random``),
    the local and national breadth and the controls.

    The expectation is the leave-one-out pipeline share of the firm's region,
    (S_r - x_i) / (n_r - 1) (:func:`regional_pool_share`, over the surveyed firms in ``data``'s
    ``REGIONAL_POOL`` column where the study put it, else over ``data``): a firm cannot be its own
    partner, so with partners drawn at random a firm with a pipeline has partners from a pool
    with one pipeline fewer, and own status and the raw exposure are negatively associated by
    construction (the exclusion bias of Caeyers and Fafchamps; Guryan, Kroft and Notowidigdo
    control for the leave-one-out mean of the pool for the same reason). On 1,000 norway2010
    surveys with uniform partners the raw exposure's z averaged -0.154 (Monte Carlo error
    0.031), its 5% test rejecting 3.7% below and 1.3% above; centred, -0.049, 2.9% and 1.9%
    (docs/synthetic_surveys.md).

    Partners drawn at random within the region then give no association; partners chosen on a
    capability that also drives pipelines (homophily) do, and the same choice would make the
    exposure's association with innovation a matter of the firm's own capability. A spill-over
    of pipeline knowledge to innovation does not make partners' pipelines predict one's own."""
    chosen = engine.current()
    if REGIONAL_POOL not in data and REGIONAL_POOL in chosen.columns(data):
        # the pool made on the Dask workers (assess_spillover): the placebo's columns and rows
        # made there too, nothing per firm here
        frame = with_computed(data, functools.partial(_placebo_columns, exposure))
        present = chosen.mask(frame, _beyond_known, columns=[BEYOND_POOL])
        if not present.all():
            frame = rows_kept(frame, present, reads=[])
    else:
        y = _own_pipeline(data)
        pool = data[REGIONAL_POOL] if REGIONAL_POOL in data else regional_pool_share(data)
        frame = data.assign(**{OWN_PIPELINE: y, BEYOND_POOL: data[exposure] - pool})
        present = frame[BEYOND_POOL].notna()
        if not present.all():  # no copy of the firms' rows where none leaves
            frame = frame.loc[present]
    formula = f"{OWN_PIPELINE} ~ {BEYOND_POOL} + " + " + ".join([*others, *controls])
    fitted = fit_model(formula, frame, Family.LOGIT, "robust")
    estimate: Estimate = term_estimates(fitted, inference_of("robust"), [BEYOND_POOL])[BEYOND_POOL]
    estimate.hypothesis = Hypothesis(
        HypothesisKind.PIPELINES_AS_GOOD_AS_RANDOM,
        terms=[Term(TermKind.CONTINUOUS, variable=exposure)],
        firms=len(frame),
    )
    estimate.note = " ".join(
        [
            "placebo: own pipeline status's logit on the share of local partners with "
            "pipelines less the leave-one-out pipeline share of the firm's region (what "
            "partners drawn at random would give; log-odds), local and national breadth and "
            "the controls; an association means partners sort on what drives pipelines",
            *fitted.notes,
        ]
    )
    return estimate


def _chunked_cell_table(
    data: pd.DataFrame, exposure: str, ranged: Sequence[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per region x industry cell of ``data`` (rows sorted by the cell's label), found chunk by
    chunk on the study's chunked engine: its first firm (``data``'s columns and the cell's
    composition S_c / (n_c - 1), exposure plus exclusion term, as ``groupby().first()`` gives
    them in memory where none is missing) and the least and largest values of each ``ranged``
    column (``"<column> low"``, ``"<column> high"``)."""
    found = engine.current().source(data).map_reduce(_chunk_cell_table, exposure, list(ranged))
    firsts = pd.concat([first for first, _ranges in found], ignore_index=True)
    firsts = firsts.sort_values(_FIRST_ROW, kind="stable").drop_duplicates(CELL)
    firsts = firsts.set_index(firsts[CELL].to_numpy()).sort_index().drop(columns=_FIRST_ROW)
    if not ranged:
        return firsts, pd.DataFrame(index=firsts.index)
    ranges = pd.concat([ranges for _first, ranges in found]).groupby(level=0)
    lows = ranges[[f"{name} low" for name in ranged]].min()
    highs = ranges[[f"{name} high" for name in ranged]].max()
    return firsts, pd.concat([lows, highs], axis=1).loc[firsts.index]


_FIRST_ROW = "first row of the cell"  # a column of the chunks' cell tables only


def _chunk_cell_table(
    frame: pd.DataFrame, _where: str, first_row: int, exposure: str, ranged: list[str]
) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """One chunk's part of :func:`_chunked_cell_table`: each of its cells' first firm (with its
    row in the whole data) and the ranges of the ``ranged`` columns, by cell."""
    labels = frame[CELL].to_numpy()
    positions = pd.Series(np.arange(len(frame))).groupby(labels).first()
    firsts = frame.iloc[positions.to_numpy()].reset_index(drop=True)
    firsts[COMPOSITION] = firsts[exposure] + firsts[EXCLUSION]
    firsts[_FIRST_ROW] = first_row + positions.to_numpy()
    ranges = {}
    for name in ranged:
        grouped = pd.Series(frame[name].to_numpy()).groupby(labels)
        ranges[f"{name} low"], ranges[f"{name} high"] = grouped.min(), grouped.max()
    return [(firsts, pd.DataFrame(ranges, index=positions.index))]


def _chunked_exposure_residuals(
    data: pd.DataFrame, exposure: str, others: Sequence[str], controls: Sequence[str]
) -> tuple[float, int, int]:
    """(residual sum of squares, firms, columns) of the least-squares fit of the exposure on
    the null design's terms over the chunks of ``data``: X'X and X'y summed, then the squared
    residuals at the solution in a second pass (not y'y - b'X'y, which cancels)."""
    source, spec, summary = _chunked_null(data, exposure, others, controls, "the bound's design")
    gram, cross = source.map_designs(spec, _chunk_least_squares)
    coefficients = np.linalg.lstsq(gram, cross, rcond=None)[0]
    residual_ss = source.map_designs(spec, _chunk_residual_squares, coefficients)
    return float(residual_ss), int(summary["nobs"]), len(spec.names)


def _chunk_least_squares(chunk: Any) -> tuple[np.ndarray, np.ndarray]:
    return chunk.X.T @ chunk.X, chunk.X.T @ chunk.y


def _chunk_residual_squares(chunk: Any, coefficients: np.ndarray) -> float:
    residual = chunk.y - chunk.X @ coefficients
    return float(residual @ residual)


def exposure_spread(
    data: pd.DataFrame,
    exposure: str,
    others: Sequence[str],
    controls: Sequence[str],
    cells: bool,
) -> float:
    """SD(exposure | other terms), the scale of :func:`confounding_bound`: without links the
    cells' composition's residual SD over cells given region and industry (the between-cells
    regression's design); with links the exposure's residual SD over firms given the other
    terms (the placebo's null design). It does not read the outcome."""
    chunked = engine.current().chunked
    if cells:  # the cells' composition S_c / (n_c - 1) given region and industry
        if chunked:  # each cell's first firm, found chunk by chunk
            cells_frame = _chunked_cell_table(data, exposure, [])[0]
        else:
            composition = (data[exposure] + data[EXCLUSION]).rename(COMPOSITION)
            frame = pd.concat([composition, data[["region", "industry"]]], axis=1)
            cells_frame = frame.groupby(data[CELL].to_numpy()).first()
        design = cell_design(cells_frame, COMPOSITION, ["region", "industry"])
        others_design = np.delete(design, 1, axis=1)
        target = cells_frame[COMPOSITION].to_numpy(dtype=float)
    elif chunked:  # over firms, as sums over the chunks
        residual_ss, rows, columns = _chunked_exposure_residuals(data, exposure, others, controls)
    else:  # the exposure given the model's other terms, over firms
        others_design, _ = _null_design(data, others, controls)
        target = data[exposure].to_numpy(dtype=float)
    if cells or not chunked:
        residual = target - others_design @ np.linalg.lstsq(others_design, target, rcond=None)[0]
        residual_ss, rows, columns = residual @ residual, len(residual), others_design.shape[1]
    return float(np.sqrt(residual_ss / max(rows - columns, 1)))


def confounding_bound(primary: Estimate, exposure: str, spread: float, cells: bool) -> Estimate:
    """How strong an omitted confounder would have to be to explain the association: by the
    omitted-variable formula of a linear index, a confounder u of SD 1 that moves the log-odds
    by delta and has partial correlation rho with the exposure (given the model's other terms)
    shifts the estimate by delta x rho / SD(exposure | other terms). The association is
    explained when delta x rho reaches |estimate| x that SD (the estimate), and its 95%
    interval reaches zero when delta x rho reaches max(0, |estimate| - t x SE) x that SD (the
    interval's lower end). ``spread``: that SD (:func:`exposure_spread`; over cells, the cells'
    composition, where ``cells``). A linear approximation (Cinelli and Hazlett 2020 in the
    simplest form), described, not a test."""
    size = abs(float(primary.estimate))
    critical = 1.96  # the test's own critical value where its interval gives it
    if primary.interval is not None and primary.interval.segments and primary.std_error:
        low, high = primary.interval.segments[0]
        if math.isfinite(low) and math.isfinite(high):
            critical = (high - low) / (2.0 * primary.std_error)
    to_zero = max(0.0, size - critical * float(primary.std_error or 0.0)) * spread
    return Estimate(
        estimate=size * spread,
        std_error=None,
        p_value=math.nan,
        inference=primary.inference,
        interval=Interval.bounded(to_zero, size * spread),
        hypothesis=Hypothesis(
            HypothesisKind.CONFOUNDING_BOUND,
            terms=[Term(TermKind.CONTINUOUS, variable=exposure)],
        ),
        note=(
            f"delta x rho a confounder needs: {size * spread:.3g} to explain the estimate, "
            f"{to_zero:.3g} to bring its 95% interval to zero (residual SD of the exposure "
            f"{spread:.3g}{' over cells' if cells else ''}); described, not a test"
        ),
    )
