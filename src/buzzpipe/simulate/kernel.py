"""The vectorised step: all agents learn, explore and adopt together, with array operations only.

A step has two halves. :meth:`Simulation.draw_step` draws every random number the step needs
(landscape shock, active ties, buzz contacts, crossover masks, openness and absorption draws,
exploration): the shock from the landscape's own generator, everything else keyed by (step,
purpose, tie or agent) (``simulate.streams``), so arms of an experiment share every number they
have in common; :func:`learn` then applies the rules to those draws deterministically. The
split lets a plain per-agent loop (``simulate.reference``) apply the same rules to the same
draws, so the two can be compared bit for bit and timed against each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from buzzpipe.simulate import streams
from buzzpipe.simulate.landscape import Landscape
from buzzpipe.simulate.network import Cities, Network, build_network, other_in_block
from buzzpipe.simulate.parameters import ModelParameters


@dataclass
class AgentState:
    """What every agent knows now: its string, per-locus contributions and fitness."""

    strings: np.ndarray  # (A,) uint64
    contributions: np.ndarray  # (A, N) float64
    fitness: np.ndarray  # (A,) float64

    def copy(self) -> AgentState:
        return AgentState(self.strings.copy(), self.contributions.copy(), self.fitness.copy())


@dataclass(frozen=True)
class StepDraws:
    """Every random number of one step, drawn before any rule is applied."""

    shock_loci: np.ndarray  # loci whose tables are redrawn at the start of the step
    shock_tables: np.ndarray  # their new tables, (len(shock_loci), 2**(K+1))
    local_a: np.ndarray  # active local ties (regional, national, then buzz): one side
    local_b: np.ndarray  # the other side
    local_key: np.ndarray  # the key of each active tie (buzz: of the firm's contact slot)
    local_mask: np.ndarray  # crossover mask of each tie: 1 = take the partner's bit
    local_open_a: np.ndarray  # a may learn without b gaining when this is below omega
    local_open_b: np.ndarray
    local_absorb_a: np.ndarray  # a absorbs when this is below the absorption chance
    local_absorb_b: np.ndarray
    pipe_firm: np.ndarray  # active pipelines: the learning firm
    pipe_foreign: np.ndarray  # the foreign source
    pipe_key: np.ndarray
    pipe_mask: np.ndarray
    pipe_open: np.ndarray  # under the barter rule: the foreign source shares when below omega
    pipe_absorb: np.ndarray
    world_a: np.ndarray  # active ties inside the world pool
    world_b: np.ndarray
    world_key: np.ndarray
    world_mask: np.ndarray
    world_open_a: np.ndarray  # under the barter rule, as for local ties
    world_open_b: np.ndarray
    world_absorb_a: np.ndarray
    world_absorb_b: np.ndarray
    explorer: np.ndarray  # agents that try one bit flip
    explore_bit: np.ndarray  # the locus each flips


@dataclass(frozen=True)
class Adoption:
    """Who adopted a new string in a step, and the contributions they gave up."""

    agents: np.ndarray
    old_contributions: np.ndarray
    old_strings: np.ndarray  # the winners' strings before the step


def absorption_chance(
    distance: np.ndarray, n_loci: int, exponent: float | np.ndarray
) -> np.ndarray:
    """Chance to absorb a partner's knowledge: falls with cognitive (Hamming) distance."""
    return (1.0 - distance / n_loci) ** exponent


def segment_best(learner: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Index of each learner's highest value (the first such pair on ties)."""
    order = np.lexsort((-value, learner))
    sorted_learner = learner[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = sorted_learner[1:] != sorted_learner[:-1]
    return order[first]


def learn(
    state: AgentState,
    draws: StepDraws,
    landscape: Landscape,
    parameters: ModelParameters,
    exponents: np.ndarray | None = None,
) -> Adoption:
    """Apply one step's learning rules to ``state`` in place; return who adopted.

    Every learning pair proposes a recombined string; each agent adopts its best proposal when it
    beats its current fitness. All proposals are judged against the strings of the step's start.
    ``exponents`` holds each agent's absorption exponent (default: the parameters' one for all).
    """
    strings, fitness, n_loci = state.strings, state.fitness, landscape.n_loci
    if exponents is None:
        exponents = np.full(len(strings), parameters.absorption_exponent)
    omega = parameters.omega

    def recombine(own: np.ndarray, other: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return (own & ~mask) | (other & mask)

    def absorbs(learner: np.ndarray, other: np.ndarray, draw: np.ndarray) -> np.ndarray:
        distance = np.bitwise_count(strings[learner] ^ other)
        return draw < absorption_chance(distance, n_loci, exponents[learner])

    def gains(agent: np.ndarray, proposal: np.ndarray) -> np.ndarray:
        """Does the proposal beat the agent's fitness? (only changed proposals can)"""
        out = np.zeros(len(agent), dtype=bool)
        changed = np.flatnonzero(proposal != strings[agent])
        out[changed] = landscape.evaluate(proposal[changed]) > fitness[agent[changed]]
        return out

    # local ties: exchange when the source also gains, or when it is open (omega). A proposal
    # equal to the agent's own string can neither gain nor win, so only changed ones are
    # evaluated (in a converged city most are unchanged).
    a, b, mask = draws.local_a, draws.local_b, draws.local_mask
    own_a, own_b = strings[a], strings[b]
    proposal_a, proposal_b = recombine(own_a, own_b, mask), recombine(own_b, own_a, mask)
    side_a = np.flatnonzero(proposal_a != own_a)
    side_b = np.flatnonzero(proposal_b != own_b)
    contributions_a = landscape.contributions(proposal_a[side_a])
    contributions_b = landscape.contributions(proposal_b[side_b])
    fitness_a, fitness_b = landscape.fitness(contributions_a), landscape.fitness(contributions_b)
    gains_a = np.zeros(len(a), dtype=bool)
    gains_b = np.zeros(len(b), dtype=bool)
    gains_a[side_a] = fitness_a > fitness[a[side_a]]
    gains_b[side_b] = fitness_b > fitness[b[side_b]]
    a_learns = (gains_b[side_a] | (draws.local_open_a[side_a] < omega)) & absorbs(
        a[side_a], own_b[side_a], draws.local_absorb_a[side_a]
    )
    b_learns = (gains_a[side_b] | (draws.local_open_b[side_b] < omega)) & absorbs(
        b[side_b], own_a[side_b], draws.local_absorb_b[side_b]
    )

    # pipelines: always exchange, or (barter) only when the foreign source gains or is open;
    # a world without new knowledge hands back the firm's own string
    firm = draws.pipe_firm
    own_firm = strings[firm]
    evolving = parameters.world_novelty == "evolving"
    foreign = strings[draws.pipe_foreign] if evolving else own_firm
    proposal_pipe = recombine(own_firm, foreign, draws.pipe_mask)
    pipe_learns = absorbs(firm, foreign, draws.pipe_absorb) & (proposal_pipe != own_firm)
    if parameters.pipeline_exchange == "barter":
        source = draws.pipe_foreign if evolving else firm
        shares = draws.pipe_open < omega
        unsure = np.flatnonzero(pipe_learns & ~shares)
        shares[unsure] = gains(
            source[unsure], recombine(foreign, own_firm, draws.pipe_mask)[unsure]
        )
        pipe_learns &= shares

    # ties inside the world pool: both ways, always or (barter) as local ties
    wa, wb, world_mask = draws.world_a, draws.world_b, draws.world_mask
    own_wa, own_wb = strings[wa], strings[wb]
    proposal_wa, proposal_wb = (
        recombine(own_wa, own_wb, world_mask),
        recombine(own_wb, own_wa, world_mask),
    )
    wa_learns = absorbs(wa, own_wb, draws.world_absorb_a) & (proposal_wa != own_wa)
    wb_learns = absorbs(wb, own_wa, draws.world_absorb_b) & (proposal_wb != own_wb)
    if parameters.world_exchange == "barter":
        wb_gains, wa_gains = gains(wb, proposal_wb), gains(wa, proposal_wa)
        wa_learns &= wb_gains | (draws.world_open_a < omega)
        wb_learns &= wa_gains | (draws.world_open_b < omega)

    # own exploration: one bit flip
    proposal_explore = strings[draws.explorer] ^ (
        np.uint64(1) << draws.explore_bit.astype(np.uint64)
    )

    learner = np.concatenate(
        [a[side_a][a_learns], b[side_b][b_learns], firm[pipe_learns], wa[wa_learns],
         wb[wb_learns], draws.explorer]
    )  # fmt: skip
    # local proposals are already evaluated; the rest are evaluated now, only where absorbed
    others = np.concatenate(
        [proposal_pipe[pipe_learns], proposal_wa[wa_learns], proposal_wb[wb_learns],
         proposal_explore]
    )  # fmt: skip
    other_contributions = landscape.contributions(others)
    proposal = np.concatenate([proposal_a[side_a][a_learns], proposal_b[side_b][b_learns], others])
    contributions = np.concatenate(
        [contributions_a[a_learns], contributions_b[b_learns], other_contributions]
    )
    value = np.concatenate(
        [fitness_a[a_learns], fitness_b[b_learns], landscape.fitness(other_contributions)]
    )
    improves = value > fitness[learner]
    pair = np.flatnonzero(improves)
    best = pair[segment_best(learner[pair], value[pair])]
    winners = learner[best]
    old = state.contributions[winners]
    old_strings = strings[winners]
    strings[winners] = proposal[best]
    state.contributions[winners] = contributions[best]
    fitness[winners] = value[best]
    return Adoption(winners, old, old_strings)


@dataclass
class WindowTracker:
    """Per-firm innovation over the current survey window."""

    n_firms: int
    product_gain: np.ndarray = field(init=False)
    process_gain: np.ndarray = field(init=False)
    market_margin: np.ndarray = field(init=False)  # best product fitness minus the market's best

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.product_gain = np.zeros(self.n_firms)
        self.process_gain = np.zeros(self.n_firms)
        self.market_margin = np.full(self.n_firms, -np.inf)


@dataclass(frozen=True)
class WindowOutcomes:
    """Innovation outcomes of every firm over one survey window (0/1 arrays)."""

    product: np.ndarray
    process: np.ndarray
    new_to_market: np.ndarray


ENGINES = ("compiled", "numpy")

SERIES_COLUMNS = (
    "mean_fitness",
    "best_fitness",
    "frontier_gap",
    "diversity",
    "staleness",
    "improvement_rate",
)


@dataclass(frozen=True)
class Snapshot:
    """Everything a run needs to go on from a step: branch experiments from it."""

    state: AgentState
    tables: np.ndarray
    landscape_state: dict
    step_count: int
    last_change: np.ndarray


class Simulation:
    """One simulated economy: cities of firms and a world pool on a shared NK landscape.

    ``seed`` is an integer, a ``SeedSequence`` or a ``Generator`` (one number is taken from it):
    it gives the run key of every keyed random number and the landscape's own generator.
    ``engine`` "compiled" (numba) or "numpy" (the vectorised rules): the same draws and strings.
    """

    def __init__(
        self,
        parameters: ModelParameters,
        cities: Cities,
        seed: int | np.random.SeedSequence | np.random.Generator | None,
        network: Network | None = None,
        *,
        engine: str = "compiled",
    ) -> None:
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
        self.engine = engine
        self.parameters = parameters.validate()
        self.cities = cities
        self.key = streams.root_key(seed)
        self.landscape_rng = streams.landscape_generator(self.key)
        self.landscape = Landscape(parameters.n_loci, parameters.k, self.landscape_rng)
        self.network = (
            network if network is not None else build_network(parameters, cities, self.key)
        )
        if self.network.cities.names != cities.names or not np.array_equal(
            self.network.cities.sizes, cities.sizes
        ):
            raise ValueError("the network was built for other cities")
        n_agents = self.network.n_agents
        self.n_firms = cities.n_firms
        # keyed agents: firm i is i, foreign agent j is WORLD_AGENT + j whatever the firms
        self.agent_key = np.concatenate(
            [np.arange(self.n_firms), streams.WORLD_AGENT + np.arange(parameters.world_size)]
        ).astype(np.uint64)
        strings = streams.combine(self.key, streams.INITIAL_STRING, self.agent_key) & np.uint64(
            2**parameters.n_loci - 1
        )
        contributions = self.landscape.contributions(strings)
        self.state = AgentState(strings, contributions, self.landscape.fitness(contributions))
        traits = self.network.traits
        shift = (
            parameters.capability_absorption * traits.capability
            + parameters.size_absorption * traits.size_z
        )
        self.exponents = parameters.absorption_exponent * np.concatenate(
            [np.exp(-shift), np.ones(parameters.world_size)]
        )
        self.step_count = 0
        self.city_of_firm = cities.city_of_firm
        self.city_start = cities.start[:-1]
        self.last_change = np.zeros(n_agents, dtype=np.int64)
        self.n_product_loci = int(round(parameters.product_loci_share * parameters.n_loci))
        self.window = WindowTracker(self.n_firms)
        self._adopted_now = np.zeros(self.n_firms, dtype=bool)
        # kept up to date step by step (from the winners, and in full after a shock or restore):
        # each agent's product fitness, and per block (the cities, then the world pool) how
        # many strings have each bit set
        self._block_start = np.append(self.city_start, self.n_firms).astype(np.int64)
        self._block_size = np.append(cities.sizes, parameters.world_size).astype(np.int64)
        self._block_of = np.concatenate(
            [self.city_of_firm, np.full(parameters.world_size, len(cities.sizes))]
        ).astype(np.int64)
        self._refresh()
        regional, national = self.network.regional, self.network.national
        self._local_edges = (
            np.concatenate([regional.source, national.source]),
            np.concatenate([regional.target, national.target]),
            np.concatenate([regional.key, national.key]),
        )
        firm = np.arange(self.n_firms)
        buzz_firm = np.repeat(firm, parameters.buzz_contacts)
        contact = np.tile(np.arange(parameters.buzz_contacts), self.n_firms)
        alone = cities.sizes[self.city_of_firm[buzz_firm]] <= 1
        self._buzz_firm = buzz_firm[~alone]
        self._buzz_key = streams.tie_key(streams.TIE_BUZZ, self._buzz_firm, contact[~alone])
        self._buzz_block = (
            self.city_start[self.city_of_firm[self._buzz_firm]],
            cities.sizes[self.city_of_firm[self._buzz_firm]],
        )
        self._explore_rate = np.concatenate(
            [np.full(self.n_firms, parameters.explore_rate),
             np.full(parameters.world_size, parameters.world_explore_rate)]
        )  # fmt: skip
        # absorption chance by distance when every agent has the same exponent (Python floats,
        # as the per-agent loop computes them); empty: the compiled step computes each one
        exponent = float(self.exponents[0]) if n_agents else 0.0
        self._absorption_table = (
            np.array([(1.0 - d / parameters.n_loci) ** exponent
                      for d in range(parameters.n_loci + 1)])
            if np.all(self.exponents == exponent) else np.zeros(0)
        )  # fmt: skip
        # scratch of the compiled step: one entry per agent, reused every step
        self._best_value = np.full(n_agents, -np.inf)
        self._best_string = np.zeros(n_agents, dtype=np.uint64)
        self._touched = np.zeros(n_agents, dtype=np.int64)
        self._scratch_index = np.zeros(0, dtype=np.int64)  # the fused step's, sized on first use

    # ---------------------------------------------------------------- draws
    def _shock_draws(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """The shock of a step, from the landscape's own generator (only on shock steps)."""
        parameters = self.parameters
        n_shocked = int(round(parameters.turbulence_share * parameters.n_loci))
        interval = parameters.turbulence_interval
        width = self.landscape.tables.shape[1]
        if interval and n_shocked and step % interval == 0:
            rng = self.landscape_rng
            loci = np.sort(rng.choice(parameters.n_loci, size=n_shocked, replace=False))
            return loci, rng.random((n_shocked, width))
        return np.zeros(0, dtype=np.intp), np.zeros((0, width))

    def draw_step(self) -> StepDraws:
        """Draw every random number of the next step: each keyed by (step, purpose, tie/agent)."""
        if self.engine == "compiled":
            return self._draw_step_compiled()
        return self._draw_step_numpy()

    def _draw_step_compiled(self) -> StepDraws:
        from buzzpipe.simulate.compiled import draw_arrays

        parameters = self.parameters
        step = self.step_count + 1
        shock_loci, shock_tables = self._shock_draws(step)
        source, target, key = self._local_edges
        pipelines, world = self.network.pipelines, self.network.world
        (local_a, local_b, local_key, local_mask, local_open, local_absorb, pipe, pipe_key,
         pipe_mask, pipe_draws, world_ends, world_key, world_mask, world_open, world_absorb,
         explorer, explore_bit) = draw_arrays(
            streams.combine(self.key, step)[()], source, target, key, parameters.tie_activity,
            self._buzz_firm, self._buzz_key, *self._buzz_block, pipelines.source,
            pipelines.target, pipelines.key, parameters.pipeline_activity, world.source,
            world.target, world.key, parameters.world_tie_activity, self.agent_key,
            self._explore_rate, streams.mask_levels(parameters.copy_share), streams.MASK_BITS,
            parameters.n_loci, parameters.pipeline_exchange == "barter",
            parameters.world_exchange == "barter",
        )  # fmt: skip
        return StepDraws(
            shock_loci=shock_loci, shock_tables=shock_tables, local_a=local_a, local_b=local_b,
            local_key=local_key, local_mask=local_mask, local_open_a=local_open[0],
            local_open_b=local_open[1], local_absorb_a=local_absorb[0],
            local_absorb_b=local_absorb[1], pipe_firm=pipe[0], pipe_foreign=pipe[1],
            pipe_key=pipe_key, pipe_mask=pipe_mask, pipe_open=pipe_draws[0],
            pipe_absorb=pipe_draws[1], world_a=world_ends[0], world_b=world_ends[1],
            world_key=world_key, world_mask=world_mask, world_open_a=world_open[0],
            world_open_b=world_open[1], world_absorb_a=world_absorb[0],
            world_absorb_b=world_absorb[1], explorer=explorer, explore_bit=explore_bit,
        )  # fmt: skip

    def _draw_step_numpy(self) -> StepDraws:
        parameters = self.parameters
        step = self.step_count + 1
        n_loci, copy_share = parameters.n_loci, parameters.copy_share
        shock_loci, shock_tables = self._shock_draws(step)
        step_key = streams.combine(self.key, step)

        def u(purpose: int, keys: np.ndarray) -> np.ndarray:
            return streams.uniform(step_key, purpose, keys)

        def mask(keys: np.ndarray) -> np.ndarray:
            return streams.masks(streams.combine(step_key, streams.MASK, keys), copy_share, n_loci)

        source, target, key = self._local_edges
        active = u(streams.ACTIVE, key) < parameters.tie_activity
        buzz_partner = other_in_block(
            u(streams.BUZZ_PARTNER, self._buzz_key), self._buzz_firm, *self._buzz_block
        )
        local_a = np.concatenate([source[active], self._buzz_firm])
        local_b = np.concatenate([target[active], buzz_partner])
        local_key = np.concatenate([key[active], self._buzz_key])

        pipelines = self.network.pipelines
        active = u(streams.ACTIVE, pipelines.key) < parameters.pipeline_activity
        pipe_key = pipelines.key[active]
        pipe_firm, pipe_foreign = pipelines.source[active], pipelines.target[active]
        pipe_barter = parameters.pipeline_exchange == "barter"

        world = self.network.world
        active = u(streams.ACTIVE, world.key) < parameters.world_tie_activity
        world_key = world.key[active]
        world_barter = parameters.world_exchange == "barter"

        explorer = np.flatnonzero(u(streams.EXPLORE, self.agent_key) < self._explore_rate)
        explore_bit = np.floor(u(streams.EXPLORE_BIT, self.agent_key[explorer]) * n_loci).astype(
            np.int64
        )
        never = np.ones(0)  # open draws a rule does not read are not drawn
        return StepDraws(
            shock_loci=shock_loci,
            shock_tables=shock_tables,
            local_a=local_a,
            local_b=local_b,
            local_key=local_key,
            local_mask=mask(local_key),
            local_open_a=u(streams.OPEN_A, local_key),
            local_open_b=u(streams.OPEN_B, local_key),
            local_absorb_a=u(streams.ABSORB_A, local_key),
            local_absorb_b=u(streams.ABSORB_B, local_key),
            pipe_firm=pipe_firm,
            pipe_foreign=pipe_foreign,
            pipe_key=pipe_key,
            pipe_mask=mask(pipe_key),
            pipe_open=u(streams.OPEN_B, pipe_key) if pipe_barter else np.ones(len(pipe_key)),
            pipe_absorb=u(streams.ABSORB_A, pipe_key),
            world_a=world.source[active],
            world_b=world.target[active],
            world_key=world_key,
            world_mask=mask(world_key),
            world_open_a=u(streams.OPEN_A, world_key) if world_barter else never,
            world_open_b=u(streams.OPEN_B, world_key) if world_barter else never,
            world_absorb_a=u(streams.ABSORB_A, world_key),
            world_absorb_b=u(streams.ABSORB_B, world_key),
            explorer=explorer,
            explore_bit=explore_bit,
        )

    # ---------------------------------------------------------------- rules
    def shock(self, loci: np.ndarray, tables: np.ndarray) -> None:
        """Turbulence: new tables for some loci; only those columns are recomputed."""
        if len(loci):
            self.landscape.redraw(loci, tables)
            state = self.state
            if self.engine == "compiled":
                from buzzpipe.simulate.compiled import shock_step

                landscape = self.landscape
                shock_step(
                    state.strings, state.contributions, state.fitness, landscape.tables,
                    np.asarray(loci, dtype=np.int64), landscape.n_loci,
                    np.uint64(2 ** (landscape.k + 1) - 1), self._product, self.n_product_loci,
                )  # fmt: skip
                return
            self.landscape.update_contributions(state.strings, state.contributions, loci)
            state.fitness = self.landscape.fitness(state.contributions)
            self._refresh()

    def learn(self, draws: StepDraws) -> Adoption:
        """Apply the rules to the step's draws (compiled or vectorised: the same result)."""
        if self.engine == "numpy":
            return learn(self.state, draws, self.landscape, self.parameters, self.exponents)
        from buzzpipe.simulate.compiled import learn_step

        state, landscape, parameters = self.state, self.landscape, self.parameters
        before = state.strings.copy()
        winners, old = learn_step(
            state.strings, state.contributions, state.fitness, landscape.tables,
            landscape.n_loci, np.uint64(2 ** (landscape.k + 1) - 1), self.exponents,
            self._absorption_table, parameters.omega, draws.local_a, draws.local_b,
            draws.local_mask,
            draws.local_open_a, draws.local_open_b, draws.local_absorb_a, draws.local_absorb_b,
            draws.pipe_firm, draws.pipe_foreign, draws.pipe_mask, draws.pipe_open,
            draws.pipe_absorb, parameters.pipeline_exchange == "barter",
            parameters.world_novelty == "evolving", draws.world_a, draws.world_b,
            draws.world_mask, draws.world_open_a, draws.world_open_b, draws.world_absorb_a,
            draws.world_absorb_b, parameters.world_exchange == "barter", draws.explorer,
            draws.explore_bit, self._best_value, self._best_string, self._touched,
        )  # fmt: skip
        return Adoption(winners, old, before[winners])

    def _fused_learn(self) -> Adoption:
        """The step's keyed draws and rules in one compiled pass (the shock already applied)."""
        from buzzpipe.simulate.compiled import fused_step

        parameters, state, landscape = self.parameters, self.state, self.landscape
        source, target, key = self._local_edges
        pipelines, world = self.network.pipelines, self.network.world
        ties = len(key) + len(self._buzz_key)
        scratch = max(ties, len(pipelines.key), len(world.key), self.network.n_agents)
        if len(self._scratch_index) < scratch:
            self._scratch_index = np.zeros(scratch, dtype=np.int64)
            self._scratch_a = np.zeros(scratch, dtype=np.int64)
            self._scratch_b = np.zeros(scratch, dtype=np.int64)
            self._scratch_key = np.zeros(scratch, dtype=np.uint64)
            self._scratch_string = np.zeros(scratch, dtype=np.uint64)
            self._scratch_flag = np.zeros(scratch, dtype=np.uint8)
            self._scratch_draw = np.zeros((2, scratch))
            self._scratch_offer = np.zeros(scratch, dtype=np.int64)
            self._scratch_own = np.zeros((2, scratch), dtype=np.uint64)
            self._scratch_fit = np.zeros((2, scratch))
            self._scratch_proposal = np.zeros(2 * scratch, dtype=np.uint64)
            self._scratch_value = np.zeros(2 * scratch)
        winners, old, old_strings = fused_step(
            streams.combine(self.key, self.step_count + 1)[()], state.strings,
            state.contributions, state.fitness, landscape.tables, landscape.n_loci,
            np.uint64(2 ** (landscape.k + 1) - 1), self.exponents, self._absorption_table,
            parameters.omega, source, target, key, parameters.tie_activity, self._buzz_firm,
            self._buzz_key, *self._buzz_block, pipelines.source, pipelines.target,
            pipelines.key, parameters.pipeline_activity, parameters.pipeline_exchange == "barter",
            parameters.world_novelty == "evolving", world.source, world.target, world.key,
            parameters.world_tie_activity, parameters.world_exchange == "barter",
            self.agent_key, self._explore_rate, streams.mask_levels(parameters.copy_share),
            streams.MASK_BITS, self._best_value, self._best_string, self._scratch_index,
            self._scratch_a, self._scratch_b, self._scratch_key,
            self._scratch_string, self._scratch_flag, self._scratch_draw, self._scratch_offer,
            self._scratch_own, self._scratch_fit, self._scratch_proposal, self._scratch_value,
            self.n_firms, self.n_product_loci, self._product, self._bits, self._block_of,
            self.window.product_gain, self.window.process_gain,
        )  # fmt: skip
        return Adoption(winners, old, old_strings)

    def _refresh(self) -> None:
        """Recompute the product fitness and the bit counts from the state."""
        from buzzpipe.simulate.compiled import bit_counts, product_fitness

        state = self.state
        n_agents = len(state.strings)
        self._product = (
            product_fitness(state.contributions, np.arange(n_agents), self.n_product_loci)
            if self.n_product_loci else np.zeros(n_agents)
        )  # fmt: skip
        self._bits = bit_counts(
            state.strings, self._block_start, self._block_size, self.parameters.n_loci
        )

    def _record(self, adoption: Adoption) -> None:
        """Bring the product fitness, the bit counts and the window's gains up to date with a
        step's winners (the fused step records its own)."""
        from buzzpipe.simulate.compiled import record_adoption

        state, window = self.state, self.window
        record_adoption(
            adoption.agents, adoption.old_contributions, adoption.old_strings, state.strings,
            state.contributions, self.n_firms, self.n_product_loci, self._product, self._bits,
            self._block_of, window.product_gain, window.process_gain,
        )  # fmt: skip

    def step(self, draws: StepDraws | None = None) -> Adoption:
        """Advance every agent one step; returns who adopted a new string.

        Without ``draws``, the compiled engine draws and applies the rules in one pass
        (:func:`compiled.fused_step`: the same numbers and strings as :meth:`draw_step` followed
        by :meth:`learn`, computing only the numbers a rule reads).
        """
        from buzzpipe.simulate.compiled import close_step

        if draws is None and self.engine == "compiled":
            shock_loci, shock_tables = self._shock_draws(self.step_count + 1)
            self.shock(shock_loci, shock_tables)
            adoption = self._fused_learn()
        else:
            draws = self.draw_step() if draws is None else draws
            self.shock(draws.shock_loci, draws.shock_tables)
            adoption = self.learn(draws)
            self._record(adoption)
        self.step_count += 1
        close_step(
            adoption.agents, self.n_firms, self.n_product_loci, self._product,
            self.parameters.new_to_market_reference == "world", self.window.market_margin,
            self._adopted_now, self.last_change, self.step_count,
        )  # fmt: skip
        return adoption

    # ---------------------------------------------------------------- snapshots
    def snapshot(self) -> Snapshot:
        """The state now (strings, landscape and its generator, step): branch arms from it."""
        return Snapshot(
            self.state.copy(), self.landscape.tables.copy(),
            self.landscape_rng.bit_generator.state, self.step_count, self.last_change.copy(),
        )  # fmt: skip

    def restore(self, snapshot: Snapshot) -> None:
        """Go back to a snapshot (of this economy or of one with the same agents)."""
        self.state = snapshot.state.copy()
        self.landscape.tables = snapshot.tables.copy()
        self.landscape_rng.bit_generator.state = snapshot.landscape_state
        self.step_count = snapshot.step_count
        self.last_change = snapshot.last_change.copy()
        self.window.reset()
        self._refresh()

    # ---------------------------------------------------------------- bookkeeping
    def _city_max(self, values: np.ndarray) -> np.ndarray:
        return np.maximum.reduceat(values, self.city_start)

    def _city_mean(self, values: np.ndarray) -> np.ndarray:
        return np.add.reduceat(values, self.city_start) / self.cities.sizes

    def product_fitness(self, agents: slice | np.ndarray) -> np.ndarray:
        """The product loci's share of fitness: their mean contribution (summed in locus order)."""
        from buzzpipe.simulate.compiled import product_fitness

        rows = np.arange(len(self.state.fitness))[agents]
        return product_fitness(self.state.contributions, rows, self.n_product_loci)

    def close_window(self) -> WindowOutcomes:
        """Outcomes of the window that ends now; starts the next window.

        new_to_market: a product innovator whose product fitness, at a step of the window when it
        adopted, came within ``new_to_market_margin`` of the best product fitness of the market
        (every firm of the country, or the world pool) at that same step.
        """
        window, threshold = self.window, self.parameters.innovation_threshold
        product = window.product_gain > threshold
        process = window.process_gain > threshold
        new_to_market = product & (window.market_margin >= -self.parameters.new_to_market_margin)
        outcomes = WindowOutcomes(
            product.astype(np.int8), process.astype(np.int8), new_to_market.astype(np.int8)
        )
        window.reset()
        return outcomes

    def city_indicators(self) -> np.ndarray:
        """The series columns (SERIES_COLUMNS) for every city now, shape (C, 6)."""
        n_firms, sizes = self.n_firms, self.cities.sizes
        fitness = self.state.fitness[:n_firms]
        mean = self._city_mean(fitness)
        frontier = self.state.fitness[n_firms:].max()
        share = self._bits[:-1] / sizes[:, None]
        pairs = np.where(sizes > 1, sizes / np.maximum(sizes - 1, 1), 0.0)
        diversity = (2 * share * (1 - share)).mean(axis=1) * pairs
        staleness = self._city_mean((self.step_count - self.last_change[:n_firms]).astype(float))
        improvement = self._city_mean(self._adopted_now.astype(float))
        return np.column_stack(
            [mean, self._city_max(fitness), frontier - mean, diversity, staleness, improvement]
        )

    def world_indicators(self) -> np.ndarray:
        """The series columns for the world pool (its own frontier gap, diversity, ...)."""
        n_firms = self.n_firms
        fitness = self.state.fitness[n_firms:]
        size = len(fitness)
        share = self._bits[-1] / size  # the mean of the world's bits, locus by locus
        diversity = (2 * share * (1 - share)).mean() * (size / (size - 1) if size > 1 else 0.0)
        staleness = (self.step_count - self.last_change[n_firms:]).mean()
        return np.array(
            [fitness.mean(), fitness.max(), fitness.max() - fitness.mean(), diversity,
             staleness, np.nan]
        )  # fmt: skip
