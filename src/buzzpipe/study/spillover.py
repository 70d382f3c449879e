"""Local spill-over of pipeline knowledge: do firms gain when their local peers have pipelines?

With firm-to-firm links the exposure is the data layer's ``pipeline_exposure`` (the share of a
firm's regional partners that have international partners; the share of partners of unknown
status is reported beside it; "regional" is the national scale where a survey lacks the
regional one). Without links it is the leave-one-out share of pipeline firms in
the firm's region x industry cell,

    share_i = (S_c - x_i) / (n_c - 1),   S_c the pipeline firms in cell c of n_c firms,

with errors clustered by cell. A leave-one-out share is mechanically negatively correlated with
the firm's own pipeline status once a model conditions on the cell's composition (exclusion
bias, Caeyers and Fafchamps 2016), as cell fixed effects would: the models therefore never use
cell fixed effects (region and industry enter as main effects) and hold own status fixed, by
controlling for the own-pipeline indicator and own breadth in the pooled model and by estimating
separately for firms with and without their own pipelines, where own status is constant. (The
analytic bias correction of Caeyers and Fafchamps for models with cell effects is not applied.)

Results: ``tests[outcome]["spillover_exposure"]`` (all firms, the verdict's number) and
``..._own_pipeline`` / ``..._no_pipeline``; the exposure measure is named in ``note``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from buzzpipe.errors import BuzzpipeError
from buzzpipe.study.models import fit_model, inference_label, local_scale, term_estimates
from buzzpipe.study.results import Estimate, StudyResults
from buzzpipe.survey.schema import breadth_column

EXPOSURE = "pipeline_exposure"
UNKNOWN_SHARE = "pipeline_exposure_unknown_share"
LEAVE_ONE_OUT = "pipeline_share_leave_one_out"
CELL = "region_industry_cell"
OWN_PIPELINE = "own_pipeline"  # 0/1: the firm has an international partner itself


def has_link_exposure(frame: pd.DataFrame) -> bool:
    """Whether the survey came with firm-to-firm links (an exposure measure per firm)."""
    return EXPOSURE in frame.columns and frame[EXPOSURE].notna().any()


def leave_one_out_share(frame: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """(leave-one-out share of pipeline firms in the region x industry cell, cell label).

    Firms alone in their cell have no peers: their share is missing.
    """
    pipeline = (frame[breadth_column("international")] > 0).astype(float)
    cell = frame["region"].astype(str) + " | " + frame["industry"].astype(str)
    total = pipeline.groupby(cell).transform("sum")
    size = pipeline.groupby(cell).transform("size").astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = (total - pipeline) / (size - 1.0)
    share[size <= 1] = np.nan
    return share.rename(LEAVE_ONE_OUT), cell.rename(CELL)


def assess_spillover(
    results: StudyResults,
    outcome: str,
    frame: pd.DataFrame,
    breadth: Sequence[str],
    controls: Sequence[str],
    control_columns: Sequence[str],
    family: str,
) -> None:
    """Fit the exposure models (all firms, own pipeline, no pipeline) and record their terms."""
    data = frame.copy()
    if has_link_exposure(frame):
        exposure, vcov = EXPOSURE, "robust"
        measure = f"share of {local_scale(frame)} partners with international partners (links)"
        if UNKNOWN_SHARE in frame.columns:
            unknown = float(frame[UNKNOWN_SHARE].mean())
            measure += f"; mean share of partners of unknown status {unknown:.3f}"
    else:
        data[LEAVE_ONE_OUT], data[CELL] = leave_one_out_share(frame)
        exposure, vcov = LEAVE_ONE_OUT, {"cluster": CELL}
        measure = "leave-one-out share of pipeline firms in the region x industry cell"
    inference = inference_label(vcov)
    columns = [outcome, exposure, *breadth, *control_columns]
    if not isinstance(vcov, str):
        columns.append(CELL)
    data = data.loc[data[list(dict.fromkeys(columns))].notna().all(axis=1)]
    own = data[breadth_column("international")] > 0
    data[OWN_PIPELINE] = own.astype(float)
    global_term = breadth_column("international")
    groups = (
        ("spillover_exposure", data, [*breadth, OWN_PIPELINE]),
        ("spillover_exposure_own_pipeline", data.loc[own], list(breadth)),
        (
            "spillover_exposure_no_pipeline",
            data.loc[~own],
            [term for term in breadth if term != global_term],
        ),
    )
    for name, subset, terms in groups:
        formula = f"{outcome} ~ {exposure} + " + " + ".join([*terms, *controls])
        try:
            fitted = fit_model(formula, subset, family, vcov)
        except BuzzpipeError as error:
            results.meta.setdefault("notes", []).append(f"{outcome}: {name} not estimated: {error}")
            continue
        estimate: Estimate = term_estimates(fitted, inference, [exposure])[exposure]
        estimate.hypothesis = f"b[{exposure}] = 0 ({len(subset)} firms)"
        estimate.note = " ".join([measure, *fitted.notes])
        results.add_test(outcome, name, estimate)
