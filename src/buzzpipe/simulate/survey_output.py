"""The simulated survey: one row per firm, in the survey model's columns, and its ``Survey``.

Collaboration is reported from the standing ties (regional and national partner ties, both sides,
and pipelines abroad), never from buzz, which surveys do not ask about. Outcomes come from the
last survey window of the run: a fitness gain above the threshold, never a formula in tie counts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from buzzpipe.simulate.run import SimulationResult
from buzzpipe.survey import schema

SIMULATED_INDUSTRY = "simulated"  # the model has no industries: one category for every firm


def _reported(n_firms: int, firms: np.ndarray, partner_types: np.ndarray) -> np.ndarray:
    """0/1 matrix (firm, partner type): did the firm report that type of partner?"""
    reported = np.zeros((n_firms, len(schema.PARTNER_TYPES)), dtype=np.int8)
    typed = partner_types >= 0
    reported[firms[typed], partner_types[typed]] = 1
    return reported


def survey_frame(result: SimulationResult) -> pd.DataFrame:
    """The simulated firms as a survey DataFrame (the columns ``Survey.from_frame`` validates)."""
    network, n_firms = result.network, result.cities.n_firms
    by_scale = {}
    for scale, edges in (("regional", network.regional), ("national", network.national)):
        both_sides = np.concatenate([edges.source, edges.target])
        both_types = np.concatenate([edges.source_type, edges.target_type])
        by_scale[scale] = _reported(n_firms, both_sides, both_types)
    pipelines = network.pipelines
    by_scale["international"] = _reported(n_firms, pipelines.source, pipelines.source_type)

    names = list(result.cities.names)
    frame = pd.DataFrame(
        {
            schema.FIRM_ID: np.arange(1, n_firms + 1, dtype=np.int64),
            "region": pd.Categorical.from_codes(result.cities.city_of_firm, categories=names),
            "industry": pd.Categorical([SIMULATED_INDUSTRY] * n_firms),
            "employees": result.employees,
            "foreign_share": result.foreign_share,
        }
    )
    columns = {}
    for scale in schema.SCALES:
        for index, partner_type in enumerate(schema.PARTNER_TYPES):
            column = schema.collab_column(scale, partner_type)
            columns[column] = pd.array(by_scale[scale][:, index], dtype="Int8")
    outcomes = result.outcomes
    columns["product"] = outcomes.product.astype(np.int64)
    columns["process"] = outcomes.process.astype(np.int64)
    columns["new_to_market"] = outcomes.new_to_market.astype(np.int64)
    return pd.concat([frame, pd.DataFrame(columns)], axis=1)


def breadth(frame: pd.DataFrame, scale: str, *, with_group: bool = False) -> pd.Series:
    """Partner types collaborated with at a scale (``group`` left out unless asked for)."""
    types = [t for t in schema.PARTNER_TYPES if with_group or t != schema.GROUP_PARTNER_TYPE]
    return frame[[schema.collab_column(scale, t) for t in types]].sum(axis=1).astype(np.int64)


def to_survey(frame: pd.DataFrame, *, source: str = "buzzpipe simulate"):  # -> Survey
    """Validate the simulated frame through the data layer: ``Survey.from_frame``."""
    from buzzpipe.survey import Survey  # the data layer; imported late so the kernel runs alone

    return Survey.from_frame(frame, source=source)
