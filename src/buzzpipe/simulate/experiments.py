"""The two shipped experiments, as tidy tables of per-replicate, per-city indicators.

- pipelines on/off by city size: small-city lock-in, and pipelines as the way out;
- openness omega from 0 to 1: how freely local knowledge is shared.

Each arm of an experiment reuses the replicate seeds of the others (common random numbers), so
arms are compared replicate by replicate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial

import numpy as np
import pandas as pd

from buzzpipe.simulate.network import Cities
from buzzpipe.simulate.parallel import describe, is_client, map_replicates
from buzzpipe.simulate.parameters import ModelParameters
from buzzpipe.simulate.run import WORLD, SimulationResult, replicate_seeds, simulate

INDICATORS = (
    "innovation_rate",  # product innovators per survey window, late half of the run
    "new_to_market_rate",
    "improvement_rate",  # firms adopting a better string per step, late half
    "diversity",  # mean pairwise Hamming distance / N within the city, late half
    "mean_fitness",
    "frontier_gap_early",  # world best minus city mean, first quarter of the run
    "frontier_gap_late",  # the same, last quarter
    "gap_growth",  # late minus early: positive when the city falls behind the world
)


def city_indicators(result: SimulationResult) -> pd.DataFrame:
    """One row per city: the experiment indicators of one run."""
    series = result.series[result.series["city"] != WORLD]
    steps = result.steps
    late = series[series["step"] > steps // 2].groupby("city", observed=True)
    early_gap = (
        series[series["step"] <= steps // 4].groupby("city", observed=True)["frontier_gap"].mean()
    )
    late_gap = (
        series[series["step"] > steps - steps // 4]
        .groupby("city", observed=True)["frontier_gap"]
        .mean()
    )
    windows = result.windows[result.windows["end_step"] > steps // 2].groupby("city", observed=True)
    table = pd.DataFrame(
        {
            "size": pd.Series(result.cities.sizes, index=list(result.cities.names)),
            "innovation_rate": windows["product_rate"].mean(),
            "new_to_market_rate": windows["new_to_market_rate"].mean(),
            "improvement_rate": late["improvement_rate"].mean(),
            "diversity": late["diversity"].mean(),
            "mean_fitness": late["mean_fitness"].mean(),
            "frontier_gap_early": early_gap,
            "frontier_gap_late": late_gap,
        }
    )
    table["gap_growth"] = table["frontier_gap_late"] - table["frontier_gap_early"]
    table.index.name = "city"
    return table.reset_index()


def _replicate_arms(arms, cities, steps, item) -> list[pd.DataFrame]:
    index, child = item
    rows = []
    for name, value, parameters in arms:
        # each arm starts from the same child seed: common random numbers across arms
        child_seed = np.random.SeedSequence(child.entropy, spawn_key=child.spawn_key)
        result = simulate(parameters, cities, steps, child_seed, replicate=index)
        table = city_indicators(result)
        table.insert(0, name, value)
        table.insert(0, "replicate", index)
        rows.append(table)
    return rows


def _arms(
    arms: Sequence[tuple[str, object, ModelParameters]],
    cities: Cities | Mapping[str, int],
    steps: int,
    seed: int,
    replicates: int,
    progress: Callable[[str], None] | None,
    processes: int = 1,
) -> pd.DataFrame:
    seeds = list(enumerate(replicate_seeds(seed, replicates)))
    task = partial(_replicate_arms, arms, cities, steps)
    if is_client(processes) or processes > 1:
        if progress is not None:
            progress(f"{replicates} replicates x {len(arms)} arms over {describe(processes)}")
        tables = map_replicates(task, seeds, processes)
    else:
        tables = []
        for item in seeds:
            if progress is not None:
                progress(f"replicate {item[0] + 1}/{replicates}")
            tables.append(task(item))
    return pd.concat([table for rows in tables for table in rows], ignore_index=True)


def pipelines_by_city_size(
    parameters: ModelParameters,
    cities: Cities | Mapping[str, int],
    steps: int,
    seed: int,
    replicates: int,
    progress: Callable[[str], None] | None = None,
    processes: int = 1,
) -> pd.DataFrame:
    """Each replicate twice: pipelines off (share 0) and on (the parameters' share)."""
    arms = [
        ("pipelines", "off", parameters.replace(pipeline_share=0.0)),
        ("pipelines", "on", parameters),
    ]
    return _arms(arms, cities, steps, seed, replicates, progress, processes)


def openness_sweep(
    parameters: ModelParameters,
    cities: Cities | Mapping[str, int],
    steps: int,
    seed: int,
    replicates: int,
    omega_values: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0),
    progress: Callable[[str], None] | None = None,
    processes: int = 1,
) -> pd.DataFrame:
    """Each replicate once per openness value omega."""
    arms = [
        ("omega", float(omega), parameters.replace(omega=float(omega))) for omega in omega_values
    ]
    return _arms(arms, cities, steps, seed, replicates, progress, processes)


def summarise(table: pd.DataFrame, arm: str) -> pd.DataFrame:
    """Mean and standard error over replicates, by arm and city."""
    grouped = table.groupby([arm, "city", "size"], sort=False)[list(INDICATORS)]
    mean = grouped.mean()
    error = grouped.std(ddof=1) / np.sqrt(grouped.count())
    return mean.join(error.add_suffix("_se")).reset_index()
