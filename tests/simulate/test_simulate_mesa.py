"""The optional Mesa model runs the kernel's rules agent by agent and ends on the same strings."""

import numpy as np
import pytest

from buzzpipe.simulate.kernel import Simulation
from buzzpipe.simulate.network import Cities
from buzzpipe.simulate.parameters import ModelParameters

mesa = pytest.importorskip("mesa")


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"world_novelty": "none", "omega": 0.3},
        {"pipeline_exchange": "barter", "world_exchange": "barter", "capability_absorption": 0.5},
    ],
)
def test_mesa_model_equals_the_kernel_on_the_same_draws(changes):
    from buzzpipe.simulate.mesa_model import mesa_model

    parameters = ModelParameters(world_size=30, turbulence_interval=3, **changes)
    simulation = Simulation(
        parameters, Cities.from_mapping({"a": 40, "b": 6}), np.random.default_rng(5)
    )
    model = mesa_model(simulation)
    adopted = 0
    for _ in range(15):
        draws = simulation.draw_step()
        model.step(draws)
        adopted += len(simulation.step(draws).agents)
        assert model.strings == simulation.state.strings.tolist()
    assert adopted > 30
