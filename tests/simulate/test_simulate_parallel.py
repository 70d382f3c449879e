"""Replicates over processes or a Dask cluster: identical results whatever runs them."""

import numpy as np
import pandas as pd
import pytest

from buzzpipe.errors import InputError
from buzzpipe.simulate.calibration import simulated_moments
from buzzpipe.simulate.experiments import pipelines_by_city_size
from buzzpipe.simulate.network import Cities
from buzzpipe.simulate.parallel import map_replicates
from buzzpipe.simulate.parameters import ModelParameters
from buzzpipe.simulate.policy import policy_experiment
from buzzpipe.simulate.run import replicate_seeds, simulate_replicates

CITIES = Cities.from_mapping({"big": 80, "small": 20})
PARAMETERS = ModelParameters(world_size=30, national_partners=0.3)


def test_replicates_over_two_processes_equal_one_process():
    one = simulate_replicates(PARAMETERS, CITIES, 24, 9, 3, processes=1)
    two = simulate_replicates(PARAMETERS, CITIES, 24, 9, 3, processes=2)
    for first, second in zip(one, two, strict=True):
        assert first.replicate == second.replicate
        np.testing.assert_array_equal(first.strings, second.strings)
        np.testing.assert_array_equal(first.fitness, second.fitness)
        pd.testing.assert_frame_equal(first.series, second.series)
        np.testing.assert_array_equal(first.outcomes.product, second.outcomes.product)
    # and the replicates differ from each other (each has its own seed)
    assert not np.array_equal(one[0].strings, one[1].strings)


def test_experiments_policy_and_moments_are_the_same_over_processes():
    arms = [pipelines_by_city_size(PARAMETERS, CITIES, 24, 4, 3, processes=p) for p in (1, 2)]
    pd.testing.assert_frame_equal(*arms)
    options = {"treated_firms": 5, "targeting": "random", "follow_windows": 1}
    policy = [policy_experiment(PARAMETERS, CITIES, 4, 2, processes=p, **options) for p in (1, 2)]
    pd.testing.assert_frame_equal(*policy)
    seeds = replicate_seeds(4, 3)
    moments = [simulated_moments(PARAMETERS, CITIES, 24, seeds, processes=p) for p in (1, 2)]
    pd.testing.assert_frame_equal(*moments)


def test_map_replicates_keeps_the_order_and_refuses_no_process():
    assert map_replicates(abs, [-3, 1, -2], processes=2) == [3, 1, 2]
    with pytest.raises(InputError, match="at least 1"):
        map_replicates(abs, [1], processes=0)


def test_replicates_experiments_policy_and_moments_on_dask_equal_one_process(dask_client):
    """The session's 2-worker LocalCluster runs the replicates (each a task): the same results,
    in replicate order, as one process."""
    one = simulate_replicates(PARAMETERS, CITIES, 24, 9, 3, processes=1)
    dask = simulate_replicates(PARAMETERS, CITIES, 24, 9, 3, processes=dask_client)
    for first, second in zip(one, dask, strict=True):
        assert first.replicate == second.replicate
        assert first.strings.tobytes() == second.strings.tobytes()
        pd.testing.assert_frame_equal(first.series, second.series)
        pd.testing.assert_frame_equal(first.windows, second.windows)
    arms = [pipelines_by_city_size(PARAMETERS, CITIES, 24, 4, 3, processes=p)
            for p in (1, dask_client)]  # fmt: skip
    pd.testing.assert_frame_equal(*arms)
    options = {"treated_firms": 5, "targeting": "random", "follow_windows": 1}
    policy = [policy_experiment(PARAMETERS, CITIES, 4, 2, processes=p, **options)
              for p in (1, dask_client)]  # fmt: skip
    pd.testing.assert_frame_equal(*policy)
    seeds = replicate_seeds(4, 3)
    moments = [simulated_moments(PARAMETERS, CITIES, 24, seeds, processes=p)
               for p in (1, dask_client)]  # fmt: skip
    pd.testing.assert_frame_equal(*moments)
    assert map_replicates(abs, [-3, 1, -2], processes=dask_client) == [3, 1, 2]
