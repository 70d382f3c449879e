"""Run the model for a number of steps: the city time series, survey windows and final outcomes.

Survey windows are aligned to the end of the run, so the last window is the reference period of
the simulated survey and the one before it gives each city's previous best (new to market).
Replicates get independent generators from ``SeedSequence(seed).spawn``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from buzzpipe.simulate.kernel import SERIES_COLUMNS, Simulation, WindowOutcomes
from buzzpipe.simulate.network import Cities, Network
from buzzpipe.simulate.parameters import ModelParameters

WORLD = "world"  # the name of the world pool in the time series


@dataclass(frozen=True)
class SimulationResult:
    """Everything one run leaves behind (no Python object per firm)."""

    parameters: ModelParameters
    cities: Cities
    network: Network
    steps: int
    seed: int | None
    replicate: int
    series: pd.DataFrame  # step x city (and the world pool): SERIES_COLUMNS
    windows: pd.DataFrame  # survey window x city: product, process, new_to_market rates
    outcomes: WindowOutcomes  # per firm, over the last survey window
    fitness: np.ndarray  # per agent at the end
    strings: np.ndarray  # per agent at the end
    employees: np.ndarray  # per firm: drawn before the run; scales ties and absorption
    foreign_share: np.ndarray  # per firm: 0/1 foreign ownership, drawn independently of ties


def _as_cities(cities: Cities | Mapping[str, int]) -> Cities:
    return cities if isinstance(cities, Cities) else Cities.from_mapping(cities)


def simulate(
    parameters: ModelParameters | Mapping[str, Any] | None,
    cities: Cities | Mapping[str, int],
    steps: int,
    seed: int | np.random.SeedSequence | None = 0,
    *,
    network: Network | None = None,
    replicate: int = 0,
) -> SimulationResult:
    """Run one simulated economy of the knowledge-diffusion model (buzz, pipelines, lock-in).

    Parameters
    ----------
    parameters : ModelParameters, dict or None
        The model's knobs: a ``buzzpipe.simulate.parameters.ModelParameters``, a dict of the
        values to change from its defaults (``{"pipeline_share": 0.0}``), or None for the
        defaults.
    cities : dict or Cities
        City name -> number of firms, e.g. ``{"Oslo": 700, "Kristiansand": 104}``.
    steps : int
        Steps to run; at least one survey window (``survey_window``, 12 by default).
    seed : int or numpy.random.SeedSequence, default 0
        One seeded generator drives the run: same seed, same bytes.
    network : Network, optional
        A fixed network of partner ties and pipelines (default drawn from the parameters).
    replicate : int, default 0
        The replicate number recorded in the result.

    Returns
    -------
    SimulationResult
        ``series`` (per step and city: mean fitness, gap to the world frontier, diversity,
        staleness, improvement rate), ``windows`` (innovation rates per survey window and city),
        ``outcomes`` (per firm over the last window) and the end state.

    Notes
    -----
    All firms advance together with array operations (no Python object per firm). The model,
    its defaults and what the tests show are written down in ``docs/simulation.md``;
    ``buzzpipe simulate`` writes a run as files, its ``survey.csv`` readable by
    :func:`buzzpipe.read_survey`.

    Examples
    --------
    >>> import buzzpipe as bp
    >>> run = bp.simulate({"pipeline_share": 0.0}, {"Oslo": 100, "Kristiansand": 20},
    ...                   steps=48, seed=1)
    >>> run.windows.shape
    (8, 6)
    >>> print(run.windows.groupby("city", observed=True)["product_rate"].mean().round(3))
    city
    Oslo            0.265
    Kristiansand    0.238
    Name: product_rate, dtype: float64
    """
    if not isinstance(parameters, ModelParameters):
        parameters = ModelParameters(**dict(parameters or {}))
    if steps < parameters.survey_window:
        raise ValueError(
            f"steps ({steps}) must cover at least one survey window ({parameters.survey_window})"
        )
    cities = _as_cities(cities)
    model = Simulation(parameters, cities, seed, network)
    n_cities = len(cities.names)
    series = np.empty((steps, n_cities + 1, len(SERIES_COLUMNS)))
    window = parameters.survey_window
    window_rows: list[tuple[int, int, int, float, float, float]] = []
    outcomes: WindowOutcomes | None = None
    for step in range(1, steps + 1):
        model.step()
        series[step - 1, :n_cities] = model.city_indicators()
        series[step - 1, n_cities] = model.world_indicators()
        if (steps - step) % window == 0 and step >= window:
            outcomes = model.close_window()
            city = model.city_of_firm
            for c in range(n_cities):
                members = city == c
                window_rows.append(
                    (
                        len(window_rows) // n_cities,
                        step,
                        c,
                        float(outcomes.product[members].mean()),
                        float(outcomes.process[members].mean()),
                        float(outcomes.new_to_market[members].mean()),
                    )
                )
        elif (steps - step) % window == 0:
            model.close_window()  # a partial first window is not reported
    assert outcomes is not None
    names = [*cities.names, WORLD]
    series_frame = pd.DataFrame(
        series.reshape(-1, len(SERIES_COLUMNS)), columns=list(SERIES_COLUMNS)
    )
    series_frame.insert(0, "city", pd.Categorical(np.tile(names, steps), categories=names))
    series_frame.insert(0, "step", np.repeat(np.arange(1, steps + 1), len(names)))
    windows = pd.DataFrame(
        window_rows,
        columns=["window", "end_step", "city", "product_rate", "process_rate",
                 "new_to_market_rate"],
    )  # fmt: skip
    windows["city"] = pd.Categorical.from_codes(windows["city"], categories=list(cities.names))
    traits = model.network.traits
    return SimulationResult(
        parameters=parameters,
        cities=cities,
        network=model.network,
        steps=steps,
        seed=seed if isinstance(seed, int) else None,
        replicate=replicate,
        series=series_frame,
        windows=windows,
        outcomes=outcomes,
        fitness=model.state.fitness.copy(),
        strings=model.state.strings.copy(),
        employees=traits.employees,
        foreign_share=traits.foreign_owned,
    )


def replicate_seeds(seed: int, replicates: int) -> list[np.random.SeedSequence]:
    """Independent seeds for replicate runs, by replicate index."""
    return np.random.SeedSequence(seed).spawn(replicates)


def _replicate_run(parameters, cities, steps, item) -> SimulationResult:
    index, child = item
    return simulate(parameters, cities, steps, child, replicate=index)


def simulate_replicates(
    parameters: ModelParameters,
    cities: Cities | Mapping[str, int],
    steps: int,
    seed: int,
    replicates: int,
    processes: int = 1,
) -> list[SimulationResult]:
    """``replicates`` independent runs seeded by ``SeedSequence(seed).spawn``, over
    ``processes`` processes (the same results whatever their number)."""
    from functools import partial

    from buzzpipe.simulate.parallel import map_replicates

    seeds = list(enumerate(replicate_seeds(seed, replicates)))
    return map_replicates(partial(_replicate_run, parameters, cities, steps), seeds, processes)
