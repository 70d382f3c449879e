"""Local spill-over of pipeline knowledge: do firms gain when their local peers have pipelines?

With firm-to-firm links the exposure is the data layer's ``pipeline_exposure`` (the share of a
firm's regional partners that have international partners; the share of partners of unknown
status is reported beside it; "regional" is the national scale where a survey lacks the
regional one). Without links it is the leave-one-out share of pipeline firms in the firm's
region x industry cell c of n_c firms, S_c of them with a pipeline (x_i = 1),

    share_i = (S_c - x_i) / (n_c - 1) = S_c / (n_c - 1) - x_i / (n_c - 1),

with errors clustered by cell.

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
already absorbed by it. Verified by simulation (``tests/test_study_spillover.py``, 1,604 firms
in 40 cells, 300 seeds, no spill-over): the corrected estimate averages -0.04 (Monte Carlo
error 0.05) while the naive one averages -0.70; a spill-over of 1.5 on the log-odds averages
1.44 (detected in 52 of 100 seeds), one of 2.5 averages 2.51 (detected in 89 of 100).

Inference: errors clustered by cell. With a few dozen cells, a dozen of whose degrees of
freedom go to region and industry effects, the cell-clustered Wald test over-rejects (14.7% at
a nominal 5% in that simulation), so the pooled test also gets the wild score bootstrap with
cells as clusters (``spillover_exposure_wild_bootstrap``: 8.5% over 200 seeds), reported
beside it.

The estimates are made for all firms (own status and the exclusion term held fixed), for firms
with their own pipeline (x_i = 1: the exclusion term is 1 / (n_c - 1)) and for firms without
(x_i = 0: no exclusion term). The naive pooled estimate is recorded as a description beside
the corrected one, never used for a verdict.

Results: ``tests[outcome]["spillover_exposure"]`` (all firms, the verdict's number) and
``..._own_pipeline`` / ``..._no_pipeline``; without links also ``..._wild_bootstrap`` and
``descriptions[outcome]["spillover_exposure_naive"]``; the exposure measure is named in
``note``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from buzzpipe.errors import BuzzpipeError
from buzzpipe.study.models import fit_model, inference_label, local_scale, term_estimates
from buzzpipe.study.results import Estimate, StudyResults
from buzzpipe.study.sensitivity import wild_bootstrap_terms
from buzzpipe.survey.schema import breadth_column

EXPOSURE = "pipeline_exposure"
UNKNOWN_SHARE = "pipeline_exposure_unknown_share"
LEAVE_ONE_OUT = "pipeline_share_leave_one_out"
CELL = "region_industry_cell"
OWN_PIPELINE = "own_pipeline"  # 0/1: the firm has an international partner itself
EXCLUSION = "own_pipeline_exclusion"  # x_i / (n_c - 1): the share's mechanical own term
NAIVE = "spillover_exposure_naive"


def has_link_exposure(frame: pd.DataFrame) -> bool:
    """Whether the survey came with firm-to-firm links (an exposure measure per firm)."""
    return EXPOSURE in frame.columns and frame[EXPOSURE].notna().any()


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
    international = frame[breadth_column("international")]
    pipeline = (international > 0).astype(float).where(international.notna())
    cell = frame["region"].astype(str) + " | " + frame["industry"].astype(str)
    total = pipeline.groupby(cell).transform("sum")
    size = pipeline.groupby(cell).transform("count").astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = (total - pipeline) / (size - 1.0)
        exclusion = pipeline / (size - 1.0)
    alone = (size <= 1) | pipeline.isna()
    share[alone] = np.nan
    exclusion[alone] = np.nan
    return share.rename(LEAVE_ONE_OUT), exclusion.rename(EXCLUSION), cell.rename(CELL)


def varies(values: pd.Series) -> bool:
    """Whether a column takes more than one value (up to rounding) on the rows given."""
    values = values.dropna()
    return len(values) > 1 and float(values.max() - values.min()) > 1e-12


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
) -> None:
    """Fit the exposure models (all firms, own pipeline, no pipeline) and record their terms;
    with ``wild_bootstrap_draws`` the pooled leave-one-out test also gets a wild score bootstrap
    by cell (``spillover_exposure_wild_bootstrap``, binary models)."""
    data = frame.copy()
    if has_link_exposure(frame):
        exposure, vcov = EXPOSURE, "robust"
        measure = f"share of {local_scale(frame)} partners with international partners (links)"
        if UNKNOWN_SHARE in frame.columns:
            unknown = float(frame[UNKNOWN_SHARE].mean())
            measure += f"; mean share of partners of unknown status {unknown:.3f}"
    else:
        data[LEAVE_ONE_OUT], data[EXCLUSION], data[CELL] = leave_one_out_parts(frame)
        exposure, vcov = LEAVE_ONE_OUT, {"cluster": CELL}
        measure = (
            "leave-one-out share of pipeline firms in the region x industry cell, corrected "
            "for exclusion bias (own status and x_i / (n_c - 1) held fixed; cell-level "
            "correlated effects beyond region and industry not absorbed)"
        )
    inference = inference_label(vcov)
    columns = [outcome, exposure, *breadth, *control_columns]
    if not isinstance(vcov, str):
        columns.append(CELL)
    data = data.loc[data[list(dict.fromkeys(columns))].notna().all(axis=1)]
    own = data[breadth_column("international")] > 0
    data[OWN_PIPELINE] = own.astype(float)
    global_term = breadth_column("international")
    exclusion = [] if exposure == EXPOSURE else [EXCLUSION]
    groups = (
        ("spillover_exposure", data, [*breadth, OWN_PIPELINE, *exclusion]),
        ("spillover_exposure_own_pipeline", data.loc[own], [*breadth, *exclusion]),
        (
            "spillover_exposure_no_pipeline",
            data.loc[~own],
            [term for term in breadth if term != global_term],
        ),
    )
    if exclusion:
        groups += ((NAIVE, data, []),)
    for name, subset, terms in groups:
        if EXCLUSION in terms and not varies(subset.loc[subset[OWN_PIPELINE] == 1, EXCLUSION]):
            terms = [term for term in terms if term != EXCLUSION]  # cells of one size: absorbed
        formula = f"{outcome} ~ {exposure} + " + " + ".join([*terms, *controls])
        try:
            fitted = fit_model(formula, subset, family, vcov)
        except BuzzpipeError as error:
            results.meta.setdefault("notes", []).append(f"{outcome}: {name} not estimated: {error}")
            continue
        estimate: Estimate = term_estimates(fitted, inference, [exposure])[exposure]
        estimate.hypothesis = f"b[{exposure}] = 0 ({len(subset)} firms)"
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
        results.add_test(outcome, name, estimate)
        if (
            name == "spillover_exposure"
            and exclusion
            and wild_bootstrap_draws
            and family in ("logit", "probit")
        ):
            _wild_bootstrap_by_cell(
                results, outcome, fitted, subset, exposure, family, seed, wild_bootstrap_draws
            )


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
        results.meta.setdefault("notes", []).append(
            f"{outcome}: wild bootstrap of the spill-over by cell not computed: {error}"
        )
        return
    wild.hypothesis = f"b[{exposure}] = 0 ({len(subset)} firms)"
    results.add_test(outcome, "spillover_exposure_wild_bootstrap", wild)
