"""Common random numbers by construction: keyed draws, shared by the arms of an experiment."""

import numpy as np
import pytest
from scipy import stats

from buzzpipe.simulate import streams
from buzzpipe.simulate.kernel import Simulation
from buzzpipe.simulate.network import Cities
from buzzpipe.simulate.parameters import ModelParameters

CITIES = Cities.from_mapping({"big": 60, "small": 15})


def test_keyed_uniforms_look_uniform_and_independent_across_neighbouring_keys():
    u = streams.uniform(7, streams.ACTIVE, np.arange(200_000))
    assert stats.kstest(u, "uniform").pvalue > 0.001
    # neighbouring keys and neighbouring steps are uncorrelated
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 0.01
    v = streams.uniform(streams.combine(7, 1), streams.ACTIVE, np.arange(200_000))
    w = streams.uniform(streams.combine(7, 2), streams.ACTIVE, np.arange(200_000))
    assert abs(np.corrcoef(v, w)[0, 1]) < 0.01


@pytest.mark.parametrize("copy_share", [0.0, 0.3, 0.5, 0.8, 1.0])
def test_integer_bit_masks_set_each_bit_with_the_copy_share(copy_share):
    n_loci, count = 20, 40_000
    masks = streams.masks(streams.combine(3, np.arange(count)), copy_share, n_loci)
    assert (masks >> np.uint64(n_loci) == 0).all()
    bits = (masks[:, None] >> np.arange(n_loci, dtype=np.uint64)) & np.uint64(1)
    share = streams.mask_levels(copy_share) / 256
    # every bit position at the share (binomial 0.1% bounds); bits uncorrelated
    bound = 3.3 * np.sqrt(max(share * (1 - share), 1e-12) / count) + 1e-12
    assert np.all(np.abs(bits.mean(axis=0) - share) <= bound)
    if 0 < share < 1:
        correlation = np.corrcoef(bits[:, 0].astype(float), bits[:, 1].astype(float))[0, 1]
        assert abs(correlation) < 0.03


def _arms(changes_a: dict, changes_b: dict, seed: int = 4):
    base = ModelParameters(world_size=40, turbulence_interval=3, national_partners=0.3)
    return (
        Simulation(base.replace(**changes_a), CITIES, seed),
        Simulation(base.replace(**changes_b), CITIES, seed),
    )


def _by_key(keys: np.ndarray, *columns: np.ndarray) -> dict:
    return {int(k): tuple(c[i] for c in columns) for i, k in enumerate(keys.tolist())}


@pytest.mark.parametrize(
    "changes_a, changes_b",
    [
        ({"pipeline_share": 0.0}, {"pipeline_share": 0.45}),  # the pipelines experiment
        ({"regional_partners": 1.0}, {"regional_partners": 2.0}),  # more local ties
        ({"omega": 0.0}, {"omega": 0.6}),
    ],
)
def test_two_arms_share_initial_strings_ties_shocks_and_every_common_tie_draw(changes_a, changes_b):
    off, on = _arms(changes_a, changes_b)
    np.testing.assert_array_equal(off.state.strings, on.state.strings)
    np.testing.assert_array_equal(off.landscape.tables, on.landscape.tables)
    # ties: every tie of the arm with fewer is in the other, with the same ends, type and key
    for kind in ("regional", "national", "pipelines", "world"):
        edges_off, edges_on = getattr(off.network, kind), getattr(on.network, kind)
        small, big = sorted((edges_off, edges_on), key=len)
        ties_big = _by_key(big.key, big.source, big.target, big.source_type)
        for key, tie in _by_key(small.key, small.source, small.target, small.source_type).items():
            assert ties_big[key] == tie
    assert len(off.network.regional) > 0 and len(on.network.world) > 0
    common = 0
    for _ in range(12):
        draws_off, draws_on = off.draw_step(), on.draw_step()
        np.testing.assert_array_equal(draws_off.shock_loci, draws_on.shock_loci)
        np.testing.assert_array_equal(draws_off.shock_tables, draws_on.shock_tables)
        np.testing.assert_array_equal(draws_off.explorer, draws_on.explorer)
        np.testing.assert_array_equal(draws_off.explore_bit, draws_on.explore_bit)
        for prefix in ("local", "world"):
            fields = ("a", "b", "mask", "absorb_a", "absorb_b")
            got = [
                _by_key(getattr(d, f"{prefix}_key"), *(getattr(d, f"{prefix}_{f}") for f in fields))
                for d in (draws_off, draws_on)
            ]
            shared = got[0].keys() & got[1].keys()
            common += len(shared)
            assert all(got[0][k] == got[1][k] for k in shared)
        # a tie active in one arm is active in the other when both have it
        for prefix, kind in (("local", "regional"), ("world", "world")):
            keys_both = set(getattr(off.network, kind).key.tolist()) & set(
                getattr(on.network, kind).key.tolist()
            )
            active_off = set(getattr(draws_off, f"{prefix}_key").tolist()) & keys_both
            active_on = set(getattr(draws_on, f"{prefix}_key").tolist()) & keys_both
            assert active_off == active_on
        # every pipeline both arms have draws the same numbers
        pipes = [_by_key(d.pipe_key, d.pipe_foreign, d.pipe_mask, d.pipe_absorb)
                 for d in (draws_off, draws_on)]  # fmt: skip
        assert all(pipes[0][k] == pipes[1][k] for k in pipes[0].keys() & pipes[1].keys())
        off.step(draws_off)
        on.step(draws_on)
    assert common > 200  # the comparison covered many shared ties


def test_the_open_draws_are_shared_too():
    off, on = _arms({"pipeline_share": 0.0}, {"pipeline_share": 0.45})
    first, second = off.draw_step(), on.draw_step()
    a = _by_key(first.local_key, first.local_open_a, first.local_open_b)
    b = _by_key(second.local_key, second.local_open_a, second.local_open_b)
    assert a.keys() == b.keys() and all(a[k] == b[k] for k in a)


def test_a_snapshot_branches_two_runs_that_go_on_identically():
    model = Simulation(ModelParameters(world_size=30), CITIES, 8)
    for _ in range(7):
        model.step()
    snapshot = model.snapshot()
    for _ in range(6):
        model.step()
    first = model.state.strings.copy()
    model.restore(snapshot)
    for _ in range(6):
        model.step()
    np.testing.assert_array_equal(model.state.strings, first)


BIG = Cities.from_mapping({"a": 3000, "b": 1000})


def test_selection_puts_capable_firms_into_pipelines_and_keeps_the_share():
    from buzzpipe.simulate.network import build_network

    for rho in (0.0, 0.8):
        network = build_network(ModelParameters(pipeline_selection=rho), BIG, np.uint64(5))
        has = np.zeros(BIG.n_firms, dtype=bool)
        has[network.pipelines.source] = True
        assert abs(has.mean() - 0.45) < 0.03  # binomial sd at 4,000 firms: 0.008
        gap = network.traits.capability[has].mean() - network.traits.capability[~has].mean()
        if rho == 0.0:
            assert abs(gap) < 0.12  # sd of the difference about 0.03
        else:
            assert gap > 1.0  # about rho * 1.6 for a 45% share


def test_gatekeepers_name_more_regional_partners_and_the_mean_is_kept():
    from buzzpipe.simulate.network import build_network

    network = build_network(ModelParameters(gatekeeper_ratio=3.0), BIG, np.uint64(6))
    has = np.zeros(BIG.n_firms, dtype=bool)
    has[network.pipelines.source] = True
    named = np.bincount(network.regional.source, minlength=BIG.n_firms)
    assert named[has].mean() > 2.2 * named[~has].mean()
    assert abs(named.mean() - 1.0) < 0.06


def test_size_scales_ties_and_absorption_and_ownership_is_independent_of_pipelines():
    from buzzpipe.simulate.network import build_network

    parameters = ModelParameters(size_tie_elasticity=1.0, size_absorption=0.5)
    network = build_network(parameters, BIG, np.uint64(7))
    traits = network.traits
    named = np.bincount(network.regional.source, minlength=BIG.n_firms)
    large = traits.size_z > 1
    small = traits.size_z < -1
    assert named[large].mean() > 3 * named[small].mean()
    model = Simulation(parameters, BIG, 7, network)
    assert (
        model.exponents[: BIG.n_firms][large].mean() < model.exponents[: BIG.n_firms][small].mean()
    )
    has = np.zeros(BIG.n_firms, dtype=bool)
    has[network.pipelines.source] = True
    foreign = traits.foreign_owned == 1
    assert abs(foreign.mean() - 0.15) < 0.02
    assert abs(has[foreign].mean() - has[~foreign].mean()) < 0.08


def test_new_to_market_needs_the_national_best_product_at_the_same_step():
    """With no margin a new-to-market innovator held the country's best product at a step when
    it adopted; a wide margin makes every product innovator new to market."""
    base = ModelParameters(world_size=40, innovation_threshold=0.0)
    outcomes = {}
    for margin in (0.0, 1.0):
        model = Simulation(base.replace(new_to_market_margin=margin), CITIES, 3)
        best_held = np.zeros(model.n_firms, dtype=bool)
        for _ in range(12):
            adoption = model.step()
            product = model.product_fitness(slice(0, model.n_firms))
            firms = adoption.agents[adoption.agents < model.n_firms]
            best_held[firms] |= product[firms] == product.max()
        outcomes[margin] = (model.close_window(), best_held)
    strict, best_held = outcomes[0.0]
    np.testing.assert_array_equal(strict.new_to_market, strict.product & best_held)
    wide, _ = outcomes[1.0]
    np.testing.assert_array_equal(wide.new_to_market, wide.product)
    assert 0 < strict.new_to_market.sum() < wide.new_to_market.sum()


def test_distinct_ties_get_distinct_keys_in_the_calibrated_world():
    """Every (kind, owner, rank) of the norway world (standing ties of each kind, buzz contacts,
    a policy arm's new ties) has its own key, so no two ties share their per-step numbers."""
    from buzzpipe.simulate.policy import choose_treated, treated_network
    from buzzpipe.simulate.scenario import builtin_scenario

    scenario = builtin_scenario("norway")
    model = Simulation(scenario.parameters, scenario.cities, 2011)
    network = model.network
    treated = choose_treated(network, 100, "random", model.key)
    new_ties = [
        getattr(treated_network(network, treated, arm, model.key), kind).key[-len(treated) :]
        for arm, kind in (("international", "pipelines"), ("local", "regional"))
    ]
    kinds = [network.regional, network.national, network.pipelines, network.world]
    keys = np.concatenate([e.key for e in kinds] + [model._buzz_key, *new_ties])
    assert len(keys) > 5_000
    assert len(np.unique(keys)) == len(keys)
    # the kinds' keys stay apart even where owner and rank coincide across kinds
    owner, rank = np.arange(5_000), np.zeros(5_000, dtype=np.int64)
    pooled = np.concatenate(
        [streams.tie_key(kind, owner, rank) for kind in range(streams.TIE_REGIONAL, 34)]
    )
    assert len(np.unique(pooled)) == len(pooled)
