"""Under ``--engine dask`` the study reads no column of the analysis frame on the client.

The survey stage keeps the frame on the workers (``Survey.keep_on``): the client's copy has the
frame's length and no column, and every part of the battery asks the engine which columns the
survey has (``StudyEngine.columns``/``meta``), reduces the rows on the workers (value sets,
counts, per-cell totals, factor levels) and selects its samples there (``engine.mask``,
``rows_kept(..., reads=[])``). Before, the client kept the outcomes, breadth, region,
industry and the weights (28 bytes a firm). The numbers are memory's (1e-10).
"""

import json

import numpy as np
import pandas as pd
import pytest
from json_differences import differences

from buzzpipe.study.battery import run_study
from buzzpipe.study.engine import StudyEngine, using


def _weighted(survey, links: bool):
    """``survey`` with sampling weights, with or without its link exposure."""
    import buzzpipe as bp

    frame = survey.analysis_frame()
    frame["weight"] = 1.0 + (np.arange(len(frame)) % 7) / 3
    if not links:
        frame = frame.drop(columns=["pipeline_exposure", "pipeline_exposure_unknown_share"])
    return bp.Survey.from_frame(frame)


def _survey(kind: str):
    import buzzpipe as bp

    survey = bp.synthesize("norway2010", seed=3, firms=800)
    if kind == "links":
        return survey
    return _weighted(survey, links=kind == "weighted, links")


def test_the_survey_kept_on_dask_leaves_no_column_on_the_client(dask_client):
    """The frame the client keeps (the study's analysis frame) has the firms' number of rows
    and no column: nothing of any firm here; the columns are the workers'."""
    import buzzpipe as bp

    engine = StudyEngine("dask", _client=dask_client, partition_rows=250)
    survey = bp.synthesize("norway2010", seed=4, firms=600)
    survey.keep_on(engine)
    try:
        here = survey.analysis_frame()
        assert here.shape == (600, 0)
        assert isinstance(here.index, pd.RangeIndex)  # no per-firm labels either
        assert engine._frame[0].shape == (600, 0)
        assert "breadth_international" in engine.columns(here)  # on the workers
    finally:
        engine.close()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["weighted, links", "weighted, no links"])
def test_the_study_of_a_survey_kept_on_dask_gives_the_memory_numbers(kind, dask_client):
    """The battery (models, margins, sensitivity, complementarity, counterfactuals,
    spill-over with and without links, heterogeneity) on a survey whose client frame holds no
    column: memory's results.json to 1e-10."""
    options = {
        "seed": 1,
        "wild_bootstrap_draws": 199,
        "bootstrap_replications": 0,
        "outcomes": ["product"],
    }
    with using(None):
        memory = json.loads(run_study(_survey(kind), **options).to_json())
    survey = _survey(kind)
    chosen = StudyEngine("dask", _client=dask_client, partition_rows=300)
    with using(chosen):
        survey.keep_on(chosen)
        assert survey.analysis_frame().shape[1] == 0
        on_dask = json.loads(run_study(survey, **options).to_json())
    assert memory["models"]["product"] and memory["counterfactuals"]
    assert "spillover_exposure" in memory["tests"]["product"]
    assert differences(memory, on_dask) == []


@pytest.mark.slow
def test_separate_estimates_by_sector_read_no_column_on_the_client(dask_client):
    """Heterogeneity's fallback on a client frame with no column: the sectors (in the order
    the rows first show them) and each sector's rows are found on the workers, memory's
    models."""
    from buzzpipe.results import StudyResults
    from buzzpipe.study.heterogeneity import separate_estimates
    from buzzpipe.study.models import breadth_terms, control_terms

    def run(chosen):
        survey = _survey("links")
        results = StudyResults()
        with using(chosen) as engine:
            survey.keep_on(engine)
            frame = survey.analysis_frame()
            engine.keep_frame(frame)
            separate_estimates(
                results, "product", frame, breadth_terms(frame), control_terms(frame)[0],
                "logit", "robust", "industry",
            )  # fmt: skip
        return json.loads(results.to_json())

    memory = run(None)
    assert sum(name.startswith("industry=") for name in memory["models"]["product"]) > 1
    on_dask = run(StudyEngine("dask", _client=dask_client, partition_rows=300))
    assert list(on_dask["models"]["product"]) == list(memory["models"]["product"])
    assert differences(memory, on_dask) == []


def test_the_leave_one_out_parts_from_summed_cell_counts_are_the_parts_bit_for_bit():
    """Spill-over without links on dask: each cell's counts summed over partitions, then each
    firm's leave-one-out share, exclusion term and cell made from its row and them, are
    ``leave_one_out_parts`` of the whole frame exactly (statuses and a region missing)."""
    import buzzpipe as bp
    from buzzpipe.estimate.sources import tree_combine
    from buzzpipe.study.spillover import (
        CELL,
        EXCLUSION,
        LEAVE_ONE_OUT,
        _cell_pipelines,
        _leave_one_out_columns,
        leave_one_out_parts,
    )

    frame = bp.synthesize("norway2010", seed=6, firms=900).analysis_frame()
    frame.loc[frame.index[::11], "breadth_international"] = pd.NA
    frame.loc[frame.index[5::97], "region"] = np.nan
    share, exclusion, cell = leave_one_out_parts(frame)
    assert share.notna().sum() > 500 and share.isna().sum() > 50
    bounds = [0, 130, 131, 500, 900]
    parts = [frame.iloc[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    counts = tree_combine([_cell_pipelines(part) for part in parts])
    assert counts == _cell_pipelines(frame)
    made = [_leave_one_out_columns(counts, part) for part in parts]
    for name, expected in ((LEAVE_ONE_OUT, share), (EXCLUSION, exclusion), (CELL, cell)):
        found = pd.concat([columns[name] for columns in made])
        pd.testing.assert_series_equal(found, expected, check_exact=True)
