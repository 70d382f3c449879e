"""The same step as a Mesa model (one ``mesa.Agent`` per firm and foreign agent), for Mesa users
and as the benchmark's peer. Optional: needs ``pip install mesa`` (3.x).

Each step the model hands every agent the learning pairs it takes part in (from the kernel's
draws, so results equal the vectorised kernel string for string); then ``agents.do("propose")``
lets each agent evaluate its proposals, and ``agents.do("adopt")`` lets it adopt its best one.
Each agent checks its partner's gain on its own, as a per-agent implementation does.
"""

from __future__ import annotations

from typing import Any

from buzzpipe.errors import BuzzpipeError
from buzzpipe.simulate.kernel import Simulation, StepDraws

try:
    import mesa
except ImportError:  # pragma: no cover - exercised only where Mesa is missing
    mesa = None

# how a pair exchanges: local pairs need the partner's gain or openness; pipelines and world ties
# always exchange; a barren pipeline (a world without new knowledge) hands back the own string;
# exploration flips one bit
LOCAL, ALWAYS, BARREN, EXPLORE = 0, 1, 2, 3


def _require_mesa() -> None:
    if mesa is None:
        raise BuzzpipeError("the Mesa model needs Mesa: pip install 'mesa>=3.1'")


if mesa is not None:

    class KnowledgeAgent(mesa.Agent):
        """A firm or foreign agent: its string, locus contributions and fitness."""

        def __init__(self, model: MesaKnowledgeModel, index: int, string: int) -> None:
            super().__init__(model)
            self.index = index
            self.exponent = model.exponents[index]
            self.string = string
            self.contributions = model.contributions_of(string)
            self.fitness = sum(self.contributions) / model.n_loci
            self.pairs: list[tuple] = []
            self.best: tuple | None = None

        def shock(self, loci: list[int], tables: list[list[float]]) -> None:
            model = self.model
            for locus, table in zip(loci, tables, strict=True):
                code = (
                    (self.string >> locus) | (self.string << (model.n_loci - locus))
                ) & model.code_mask
                self.contributions[locus] = table[code]
            if loci:
                self.fitness = sum(self.contributions) / model.n_loci

        def propose(self) -> None:
            """Evaluate this step's proposals, in the kernel's pair order; keep the best."""
            model, best = self.model, None
            for rule, partner, mask, open_draw, absorb_draw in self.pairs:
                if rule == EXPLORE:
                    proposal = self.string ^ mask
                else:
                    source = self.string if rule == BARREN else model.agent_list[partner].string
                    if rule == LOCAL:
                        other = model.agent_list[partner]
                        reverse = model.recombine(other.string, self.string, mask)
                        partner_gains = model.fitness_of(reverse) > other.fitness
                        if not (partner_gains or open_draw < model.omega):
                            continue
                    if not model.absorbs(self.string, source, absorb_draw, self.exponent):
                        continue
                    proposal = model.recombine(self.string, source, mask)
                contributions = model.contributions_of(proposal)
                value = sum(contributions) / model.n_loci
                if best is None or value > best[2]:
                    best = (proposal, contributions, value)
            self.best = best

        def adopt(self) -> None:
            if self.best is not None and self.best[2] > self.fitness:
                self.string, self.contributions, self.fitness = self.best
            self.pairs, self.best = [], None

    class MesaKnowledgeModel(mesa.Model):
        """The kernel's economy as Mesa agents, stepping on the kernel's draws."""

        def __init__(self, simulation: Simulation) -> None:
            super().__init__(seed=0)
            parameters = simulation.parameters
            self.simulation = simulation
            self.n_loci = parameters.n_loci
            self.code_mask = (1 << (parameters.k + 1)) - 1
            self.full_mask = (1 << parameters.n_loci) - 1
            self.omega = parameters.omega
            self.exponents = simulation.exponents.tolist()
            self.evolving = parameters.world_novelty == "evolving"
            self.tables = simulation.landscape.tables.tolist()
            self.agent_list = [
                KnowledgeAgent(self, index, string)
                for index, string in enumerate(simulation.state.strings.tolist())
            ]

        def contributions_of(self, string: int) -> list[float]:
            n_loci, mask, tables = self.n_loci, self.code_mask, self.tables
            return [
                tables[locus][((string >> locus) | (string << (n_loci - locus))) & mask]
                for locus in range(n_loci)
            ]

        def fitness_of(self, string: int) -> float:
            return sum(self.contributions_of(string)) / self.n_loci

        def recombine(self, own: int, other: int, mask: int) -> int:
            return (own & (self.full_mask ^ mask)) | (other & mask)

        def absorbs(self, own: int, other: int, draw: float, exponent: float) -> bool:
            distance = (own ^ other).bit_count()
            return draw < (1.0 - distance / self.n_loci) ** exponent

        def hand_out(self, draws: StepDraws) -> None:
            """Give every agent its learning pairs of the step, in the kernel's order."""
            agents = self.agent_list
            local = list(
                zip(draws.local_a.tolist(), draws.local_b.tolist(), draws.local_mask.tolist(),
                    draws.local_open_a.tolist(), draws.local_open_b.tolist(),
                    draws.local_absorb_a.tolist(), draws.local_absorb_b.tolist(), strict=True)
            )  # fmt: skip
            for a, b, mask, open_a, _, absorb_a, _ in local:
                agents[a].pairs.append((LOCAL, b, mask, open_a, absorb_a))
            for a, b, mask, _, open_b, _, absorb_b in local:
                agents[b].pairs.append((LOCAL, a, mask, open_b, absorb_b))
            # under the barter rule a pipeline or world tie is judged like a local tie
            parameters = self.simulation.parameters
            pipe_rule = LOCAL if parameters.pipeline_exchange == "barter" else ALWAYS
            for firm, foreign, mask, open_draw, absorb in zip(
                draws.pipe_firm.tolist(), draws.pipe_foreign.tolist(), draws.pipe_mask.tolist(),
                draws.pipe_open.tolist(), draws.pipe_absorb.tolist(), strict=True,
            ):  # fmt: skip
                if self.evolving:
                    agents[firm].pairs.append((pipe_rule, foreign, mask, open_draw, absorb))
                else:
                    agents[firm].pairs.append((BARREN, foreign, mask, 0.0, absorb))
            world_rule = LOCAL if parameters.world_exchange == "barter" else ALWAYS
            n_world = len(draws.world_a)
            opens = (
                (draws.world_open_a.tolist(), draws.world_open_b.tolist())
                if world_rule == LOCAL else ([0.0] * n_world, [0.0] * n_world)
            )  # fmt: skip
            world = list(
                zip(draws.world_a.tolist(), draws.world_b.tolist(), draws.world_mask.tolist(),
                    draws.world_absorb_a.tolist(), draws.world_absorb_b.tolist(), *opens,
                    strict=True)
            )  # fmt: skip
            for a, b, mask, absorb_a, _, open_a, _ in world:
                agents[a].pairs.append((world_rule, b, mask, open_a, absorb_a))
            for a, b, mask, _, absorb_b, _, open_b in world:
                agents[b].pairs.append((world_rule, a, mask, open_b, absorb_b))
            for agent, bit in zip(draws.explorer.tolist(), draws.explore_bit.tolist(), strict=True):
                agents[agent].pairs.append((EXPLORE, agent, 1 << bit, 0.0, 0.0))

        def step(self, draws: StepDraws | None = None) -> None:  # type: ignore[override]
            draws = self.simulation.draw_step() if draws is None else draws
            loci = draws.shock_loci.tolist()
            tables = draws.shock_tables.tolist()
            for locus, table in zip(loci, tables, strict=True):
                self.tables[locus] = table
            if loci:
                self.agents.do("shock", loci, tables)
            self.hand_out(draws)
            self.agents.do("propose")
            self.agents.do("adopt")

        @property
        def strings(self) -> list[int]:
            return [agent.string for agent in self.agent_list]


def mesa_model(simulation: Simulation) -> Any:
    """A Mesa model of the simulation's economy in its current state (needs Mesa)."""
    _require_mesa()
    return MesaKnowledgeModel(simulation)
