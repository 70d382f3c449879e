"""The vectorised kernel: its rules against a per-agent loop, and the model's limiting cases."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from buzzpipe.simulate.kernel import SERIES_COLUMNS, Simulation, segment_best
from buzzpipe.simulate.landscape import Landscape, pack_bits, unpack_bits
from buzzpipe.simulate.network import Cities, Edges, Network, complete_regional_network
from buzzpipe.simulate.parameters import ModelParameters
from buzzpipe.simulate.reference import ReferenceModel
from buzzpipe.simulate.run import simulate

SMALL = {"big": 40, "small": 6, "lonely": 1}


@pytest.mark.parametrize("n_loci, k", [(12, 3), (32, 16), (40, 6)])  # both lookup paths
def test_landscape_lookup_matches_a_direct_reading_of_the_bits(n_loci, k):
    rng = np.random.default_rng(3)
    landscape = Landscape(n_loci, k, rng)
    strings = rng.integers(0, 2**n_loci, size=50, dtype=np.uint64)
    bits = unpack_bits(strings, n_loci)
    expected = np.empty((50, n_loci))
    for row in range(50):
        for locus in range(n_loci):
            neighbourhood = [bits[row, (locus + j) % n_loci] for j in range(k + 1)]
            code = sum(int(bit) << j for j, bit in enumerate(neighbourhood))
            expected[row, locus] = landscape.tables[locus, code]
    np.testing.assert_array_equal(landscape.contributions(strings), expected)
    np.testing.assert_array_equal(pack_bits(bits), strings)


def test_segment_best_picks_each_learners_first_maximum():
    learner = np.array([2, 0, 2, 0, 1, 2])
    value = np.array([0.5, 0.1, 0.9, 0.1, 0.3, 0.9])
    best = segment_best(learner, value)
    assert sorted(best.tolist()) == [1, 2, 4]


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"copy_share": 0.5, "world_novelty": "none", "omega": 0.2},
        {"copy_share": 0.3, "absorption_exponent": 2.0, "turbulence_interval": 2, "k": 2},
        {"copy_share": 1.0, "omega": 1.0, "explore_rate": 0.2},
        # the symmetric rules (pipelines and world under barter) and capable, sized firms
        {"pipeline_exchange": "barter", "world_exchange": "barter", "omega": 0.1},
        {
            "capability_absorption": 0.5,
            "size_absorption": 0.3,
            "pipeline_selection": 0.6,
            "size_tie_elasticity": 0.5,
            "gatekeeper_ratio": 2.0,
            "pipeline_exchange": "barter",
        },
    ],
)
def test_kernel_equals_a_per_agent_loop_on_the_same_draws(changes):
    """Compiled and vectorised kernels draw the same numbers and, with the per-agent loop, end
    every step on the same strings and the same fitness bits; so does the fused compiled step
    (draws and rules in one pass, without the draws as arrays), with the same winners."""
    parameters = ModelParameters(world_size=30, **changes)
    model = Simulation(parameters, Cities.from_mapping(SMALL), np.random.default_rng(11))
    vectorised = Simulation(
        parameters, Cities.from_mapping(SMALL), np.random.default_rng(11), engine="numpy"
    )
    fused = Simulation(parameters, Cities.from_mapping(SMALL), np.random.default_rng(11))
    reference = ReferenceModel(
        parameters, model.landscape.tables.tolist(), model.state.strings.tolist(),
        model.exponents.tolist(),
    )  # fmt: skip
    adopted = 0
    for _ in range(25):
        draws = model.draw_step()
        other = vectorised.draw_step()
        for name, value in vars(draws).items():
            np.testing.assert_array_equal(value, getattr(other, name), err_msg=name)
        reference.step(draws)
        adoption = model.step(draws)
        adopted += len(adoption.agents)
        vectorised.step(other)
        fused_adoption = fused.step()
        for name in ("agents", "old_contributions", "old_strings"):
            expected = getattr(adoption, name)
            assert getattr(fused_adoption, name).tobytes() == expected.tobytes(), name
        assert fused.state.strings.tobytes() == model.state.strings.tobytes()
        assert fused.state.fitness.tobytes() == model.state.fitness.tobytes()
        assert model.state.strings.tolist() == [agent.string for agent in reference.agents]
        assert model.state.fitness.tolist() == [agent.fitness for agent in reference.agents]
        assert vectorised.state.fitness.tobytes() == model.state.fitness.tobytes()
        assert vectorised.state.strings.tobytes() == model.state.strings.tobytes()
    assert adopted > 50  # the comparison covered real learning, not an idle economy


def test_same_seed_same_bytes_and_other_seed_other_bytes():
    parameters = ModelParameters(world_size=40)
    first = simulate(parameters, SMALL, 36, seed=5)
    second = simulate(parameters, SMALL, 36, seed=5)
    other = simulate(parameters, SMALL, 36, seed=6)
    assert first.strings.tobytes() == second.strings.tobytes()
    numbers = list(SERIES_COLUMNS)
    assert first.series[numbers].to_numpy().tobytes() == second.series[numbers].to_numpy().tobytes()
    assert first.series.to_csv() == second.series.to_csv()
    assert first.windows.equals(second.windows)
    assert first.strings.tobytes() != other.strings.tobytes()


def test_incremental_turbulence_equals_full_recomputation():
    parameters = ModelParameters(world_size=50, turbulence_interval=1, turbulence_share=0.3)
    model = Simulation(parameters, Cities.from_mapping(SMALL), np.random.default_rng(2))
    shocks = 0
    for _ in range(20):
        draws = model.draw_step()
        shocks += len(draws.shock_loci)
        model.step(draws)
        full = model.landscape.contributions(model.state.strings)
        np.testing.assert_array_equal(model.state.contributions, full)
        np.testing.assert_array_equal(model.state.fitness, model.landscape.fitness(full))
    assert shocks == 20 * 6


@pytest.mark.parametrize("engine", ["compiled", "numpy"])
def test_kept_product_fitness_and_bit_counts_equal_a_recomputation(engine):
    """The fused step, shocks and adoptions keep each agent's product fitness and each block's
    bit counts up to date; after a restore they are recomputed."""
    parameters = ModelParameters(world_size=50, turbulence_interval=3, turbulence_share=0.3)
    cities = Cities.from_mapping(SMALL)
    model = Simulation(parameters, cities, np.random.default_rng(4), engine=engine)
    snapshot = model.snapshot()
    everyone = np.arange(model.network.n_agents)

    def check() -> None:
        np.testing.assert_array_equal(model._product, model.product_fitness(everyone))
        bits = unpack_bits(model.state.strings, parameters.n_loci).astype(np.int64)
        blocks = np.add.reduceat(bits, np.append(cities.start[:-1], model.n_firms), axis=0)
        np.testing.assert_array_equal(model._bits, blocks)

    adopted = 0
    for _ in range(15):
        adopted += len(model.step().agents)
        check()
    model.restore(snapshot)
    check()
    assert adopted > 100


def _isolated(parameters: ModelParameters, cities: Cities) -> Network:
    empty = Edges.empty()
    return Network(cities, parameters.world_size, empty, empty, empty, empty)


@pytest.mark.parametrize("seed", range(5))
def test_static_landscape_without_ties_ends_every_firm_at_a_local_optimum(seed):
    parameters = ModelParameters(
        n_loci=14, k=4, turbulence_interval=0, world_size=5, buzz_contacts=0, explore_rate=1.0
    )
    cities = Cities.from_mapping({"a": 60, "b": 20})
    model = Simulation(
        parameters, cities, np.random.default_rng(seed), _isolated(parameters, cities)
    )
    start = model.state.fitness.copy()
    for _ in range(600):
        model.step()
    neighbours = model.landscape.one_bit_neighbours_best(model.state.strings)
    assert (model.state.fitness >= neighbours).all()
    assert (model.state.fitness > start).mean() > 0.9  # they climbed to get there


def k0_complete_city(seed: int, tie_activity: float) -> tuple[Simulation, int, float]:
    """K = 0, one city of 30 firms all tied to each other, no exploration, static landscape."""
    parameters = ModelParameters(
        n_loci=16, k=0, turbulence_interval=0, world_size=5, buzz_contacts=0, explore_rate=0.0,
        world_explore_rate=0.0, tie_activity=tie_activity, omega=1.0, copy_share=0.5,
    )  # fmt: skip
    cities = Cities.from_mapping({"city": 30})
    network = complete_regional_network(cities, parameters.world_size)
    model = Simulation(parameters, cities, np.random.default_rng(seed), network)
    best_string, best_fitness = model.landscape.global_optimum()
    assert model.state.fitness[:30].max() < best_fitness  # nobody starts there
    for _ in range(60):
        model.step()
    return model, best_string, best_fitness


@pytest.mark.parametrize("seed", range(5))
def test_k0_complete_graph_without_exploration_finds_the_global_optimum(seed):
    model, best_string, _ = k0_complete_city(seed, tie_activity=1.0)
    assert (model.state.strings[:30] == best_string).all()


@pytest.mark.parametrize("seed", range(5))
def test_without_recombination_the_k0_graph_stays_short_of_the_optimum(seed):
    """The paired case: the same economy with all exchange blocked never reaches the optimum."""
    model, best_string, _ = k0_complete_city(seed, tie_activity=0.0)
    assert not (model.state.strings[:30] == best_string).any()


@pytest.mark.parametrize("seed", range(5))
def test_full_openness_full_copy_static_no_exploration_makes_a_city_uniform(seed):
    parameters = ModelParameters(
        turbulence_interval=0, omega=1.0, copy_share=1.0, explore_rate=0.0,
        world_explore_rate=0.0, absorption_exponent=0.0, pipeline_share=0.0, national_partners=0.0,
        world_size=10,
    )  # fmt: skip
    cities = Cities.from_mapping({"a": 50, "b": 12})
    model = Simulation(parameters, cities, np.random.default_rng(seed))
    initial_best = model.state.fitness[:50].max(), model.state.fitness[50:62].max()
    for _ in range(150):
        model.step()
    strings = model.state.strings
    assert len(np.unique(strings[:50])) == 1 and len(np.unique(strings[50:62])) == 1
    # with copying only, each city ends on the best string it started with
    assert (model.state.fitness[0], model.state.fitness[50]) == initial_best


def test_closed_city_does_not_become_uniform():
    """The paired case: omega = 0 and full copies give no source a gain, so nothing spreads."""
    parameters = ModelParameters(
        turbulence_interval=0, omega=0.0, copy_share=1.0, explore_rate=0.0,
        world_explore_rate=0.0, absorption_exponent=0.0, pipeline_share=0.0, national_partners=0.0,
        world_size=10,
    )  # fmt: skip
    cities = Cities.from_mapping({"a": 50, "b": 12})
    model = Simulation(parameters, cities, np.random.default_rng(0))
    for _ in range(150):
        model.step()
    assert len(np.unique(model.state.strings[:50])) > 1


@settings(max_examples=25, deadline=None)
@given(
    n_loci=st.integers(2, 24),
    k_share=st.floats(0, 1),
    copy_share=st.sampled_from([0.0, 0.3, 0.5, 0.8, 1.0]),
    omega=st.floats(0, 1),
    exponent=st.sampled_from([0.0, 0.5, 1.0, 3.0]),
    novelty=st.sampled_from(["evolving", "none"]),
    sizes=st.lists(st.integers(1, 15), min_size=1, max_size=3),
    seed=st.integers(0, 2**32 - 1),
    pipeline_exchange=st.sampled_from(["always", "barter"]),
    world_exchange=st.sampled_from(["always", "barter"]),
    capability=st.sampled_from([0.0, 0.7]),
)
def test_kernel_equals_the_per_agent_loop_for_any_parameters(
    n_loci, k_share, copy_share, omega, exponent, novelty, sizes, seed, pipeline_exchange,
    world_exchange, capability,
):  # fmt: skip
    parameters = ModelParameters(
        n_loci=n_loci, k=min(int(k_share * n_loci), n_loci - 1, 8), copy_share=copy_share,
        omega=omega, absorption_exponent=exponent, world_novelty=novelty, world_size=8,
        turbulence_interval=2, explore_rate=0.3, tie_activity=0.6, regional_partners=2.0,
        national_partners=0.5, pipeline_exchange=pipeline_exchange,
        world_exchange=world_exchange, capability_absorption=capability,
    )  # fmt: skip
    cities = Cities.from_mapping({f"c{i}": size for i, size in enumerate(sizes)})
    model = Simulation(parameters, cities, np.random.default_rng(seed))
    reference = ReferenceModel(
        parameters, model.landscape.tables.tolist(), model.state.strings.tolist(),
        model.exponents.tolist(),
    )  # fmt: skip
    vectorised = Simulation(parameters, cities, np.random.default_rng(seed), engine="numpy")
    fused = Simulation(parameters, cities, np.random.default_rng(seed))
    for _ in range(6):
        draws = model.draw_step()
        reference.step(draws)
        model.step(draws)
        vectorised.step(vectorised.draw_step())
        fused.step()
        assert model.state.strings.tolist() == [agent.string for agent in reference.agents]
        assert model.state.fitness.tolist() == [agent.fitness for agent in reference.agents]
        assert vectorised.state.strings.tobytes() == model.state.strings.tobytes()
        assert fused.state.strings.tolist() == [agent.string for agent in reference.agents]
        assert fused.state.fitness.tolist() == [agent.fitness for agent in reference.agents]
