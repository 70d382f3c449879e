"""The same step written as a plain per-agent Python loop, as an agent-based framework would run it.

It reads the draws of :meth:`Simulation.draw_step` and applies the rules of ``kernel.learn`` one
tie and one agent at a time, with Python integers for bit strings. It exists to check the
vectorised kernel (same draws, same strings) and to time it (``bench/bench_simulate.py``); it is
far too slow for real runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from buzzpipe.simulate.kernel import StepDraws
from buzzpipe.simulate.parameters import ModelParameters


@dataclass
class ReferenceAgent:
    """One agent as a Python object: its bit string, locus contributions and fitness."""

    string: int
    contributions: list[float]
    fitness: float


class ReferenceModel:
    """A per-agent implementation of the kernel's step."""

    def __init__(
        self,
        parameters: ModelParameters,
        tables: list[list[float]],
        strings: list[int],
        exponents: list[float] | None = None,
    ) -> None:
        self.parameters = parameters
        self.n_loci = parameters.n_loci
        self.code_mask = (1 << (parameters.k + 1)) - 1
        self.full_mask = (1 << parameters.n_loci) - 1
        self.tables = [list(row) for row in tables]
        self.exponents = (
            list(exponents) if exponents is not None
            else [parameters.absorption_exponent] * len(strings)
        )  # fmt: skip
        self.agents = []
        for string in strings:
            contributions = self.contributions(string)
            self.agents.append(ReferenceAgent(string, contributions, self.fitness(contributions)))

    def contributions(self, string: int) -> list[float]:
        n_loci, mask, tables = self.n_loci, self.code_mask, self.tables
        return [
            tables[locus][((string >> locus) | (string << (n_loci - locus))) & mask]
            for locus in range(n_loci)
        ]

    def fitness(self, contributions: list[float]) -> float:
        return sum(contributions) / self.n_loci

    def absorbs(self, learner: int, other: int, draw: float) -> bool:
        distance = (self.agents[learner].string ^ other).bit_count()
        return draw < (1.0 - distance / self.n_loci) ** self.exponents[learner]

    def source_shares(self, source: int, learner_string: int, mask: int, open_draw: float) -> bool:
        """The barter rule: the source shares when it gains from the exchange, or is open."""
        agent = self.agents[source]
        proposal = self.recombine(agent.string, learner_string, mask)
        gains = self.fitness(self.contributions(proposal)) > agent.fitness
        return gains or open_draw < self.parameters.omega

    def recombine(self, own: int, other: int, mask: int) -> int:
        return (own & (self.full_mask ^ mask)) | (other & mask)

    def step(self, draws: StepDraws) -> None:
        """Shock, then every tie proposes, then every agent adopts its best proposal if better."""
        for locus, table in zip(
            draws.shock_loci.tolist(), draws.shock_tables.tolist(), strict=True
        ):
            self.tables[locus] = table
            for agent in self.agents:
                code = (
                    (agent.string >> locus) | (agent.string << (self.n_loci - locus))
                ) & self.code_mask
                agent.contributions[locus] = table[code]
        if len(draws.shock_loci):
            for agent in self.agents:
                agent.fitness = self.fitness(agent.contributions)

        agents, omega = self.agents, self.parameters.omega
        proposals: list[tuple[int, int, list[float], float]] = []  # in the kernel's pair order
        local = list(
            zip(draws.local_a.tolist(), draws.local_b.tolist(), draws.local_mask.tolist(),
                draws.local_open_a.tolist(), draws.local_open_b.tolist(),
                draws.local_absorb_a.tolist(), draws.local_absorb_b.tolist(), strict=True)
        )  # fmt: skip
        evaluated = []
        for a, b, mask, open_a, open_b, absorb_a, absorb_b in local:
            agent_a, agent_b = agents[a], agents[b]
            proposal_a = self.recombine(agent_a.string, agent_b.string, mask)
            proposal_b = self.recombine(agent_b.string, agent_a.string, mask)
            contributions_a = self.contributions(proposal_a)
            contributions_b = self.contributions(proposal_b)
            fitness_a, fitness_b = self.fitness(contributions_a), self.fitness(contributions_b)
            a_gains, b_gains = fitness_a > agent_a.fitness, fitness_b > agent_b.fitness
            a_learns = (b_gains or open_a < omega) and self.absorbs(a, agent_b.string, absorb_a)
            b_learns = (a_gains or open_b < omega) and self.absorbs(b, agent_a.string, absorb_b)
            evaluated.append(
                ((a, proposal_a, contributions_a, fitness_a) if a_learns else None,
                 (b, proposal_b, contributions_b, fitness_b) if b_learns else None)
            )  # fmt: skip
        proposals += [pair[0] for pair in evaluated if pair[0] is not None]
        proposals += [pair[1] for pair in evaluated if pair[1] is not None]

        evolving = self.parameters.world_novelty == "evolving"
        pipe_barter = self.parameters.pipeline_exchange == "barter"
        for firm, foreign, mask, open_draw, absorb in zip(
            draws.pipe_firm.tolist(), draws.pipe_foreign.tolist(), draws.pipe_mask.tolist(),
            draws.pipe_open.tolist(), draws.pipe_absorb.tolist(), strict=True,
        ):  # fmt: skip
            own = agents[firm].string
            source_index = foreign if evolving else firm
            source = agents[source_index].string
            if own == source:
                continue  # nothing to learn: the proposal is the firm's own string
            if pipe_barter and not self.source_shares(source_index, own, mask, open_draw):
                continue
            if self.absorbs(firm, source, absorb):
                proposal = self.recombine(own, source, mask)
                contributions = self.contributions(proposal)
                proposals.append((firm, proposal, contributions, self.fitness(contributions)))

        world_barter = self.parameters.world_exchange == "barter"
        n_world = len(draws.world_a)
        world = list(
            zip(draws.world_a.tolist(), draws.world_b.tolist(), draws.world_mask.tolist(),
                draws.world_absorb_a.tolist(), draws.world_absorb_b.tolist(),
                (draws.world_open_a if world_barter else [1.0] * n_world),
                (draws.world_open_b if world_barter else [1.0] * n_world), strict=True)
        )  # fmt: skip
        for learner_side in (0, 1):
            for a, b, mask, absorb_a, absorb_b, open_a, open_b in world:
                learner, source = (a, b) if learner_side == 0 else (b, a)
                absorb = absorb_a if learner_side == 0 else absorb_b
                open_draw = float(open_a if learner_side == 0 else open_b)
                own, other = agents[learner].string, agents[source].string
                if own == self.recombine(own, other, mask):
                    continue
                if world_barter and not self.source_shares(source, own, mask, open_draw):
                    continue
                if self.absorbs(learner, other, absorb):
                    proposal = self.recombine(own, other, mask)
                    contributions = self.contributions(proposal)
                    proposals.append(
                        (learner, proposal, contributions, self.fitness(contributions))
                    )

        for agent_index, bit in zip(
            draws.explorer.tolist(), draws.explore_bit.tolist(), strict=True
        ):
            proposal = agents[agent_index].string ^ (1 << bit)
            contributions = self.contributions(proposal)
            proposals.append((agent_index, proposal, contributions, self.fitness(contributions)))

        best: dict[int, tuple[int, list[float], float]] = {}
        for learner, proposal, contributions, value in proposals:
            if learner not in best or value > best[learner][2]:
                best[learner] = (proposal, contributions, value)
        for learner, (proposal, contributions, value) in best.items():
            agent = agents[learner]
            if value > agent.fitness:
                agent.string, agent.contributions, agent.fitness = proposal, contributions, value
