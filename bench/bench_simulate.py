"""Benchmark the simulation kernel against a per-agent Python loop of the same rules.

Prints, for the same draws, agent-steps per second of the vectorised rules, of a plain per-agent
Python loop (``buzzpipe.simulate.reference``, no framework) and, where Mesa is installed, of a
Mesa model of the same rules (``buzzpipe.simulate.mesa_model``), their ratios, the full kernel step
(draws and bookkeeping included), the time of one survey-sized run, and its peak memory.
Times are CPU time of this process (``time.process_time``, BLAS pinned to one thread), which a
shared machine disturbs less than wall time; compare the ratios, measured in the same run.

    PYTHONPATH=src python bench/bench_simulate.py [--steps 240] [--reference-steps 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc

import numpy as np
from threadpoolctl import threadpool_limits

from buzzpipe.errors import BuzzpipeError
from buzzpipe.simulate.kernel import Simulation, learn
from buzzpipe.simulate.network import Cities
from buzzpipe.simulate.parameters import ModelParameters
from buzzpipe.simulate.reference import ReferenceModel
from buzzpipe.simulate.run import simulate

NORWAY = {"Oslo": 700, "Bergen": 300, "Stavanger": 250, "Trondheim": 250, "Kristiansand": 104}


def rules_per_second(parameters: ModelParameters, cities: dict, steps: int, seed: int) -> tuple:
    """Agent-steps per second of the kernel's rules and of the per-agent loop, on equal draws."""
    model = Simulation(parameters, Cities.from_mapping(cities), np.random.default_rng(seed))
    for _ in range(20):  # leave the random start: learning is busiest then
        model.step()
    reference = ReferenceModel(
        parameters, model.landscape.tables.tolist(), model.state.strings.tolist()
    )
    draws = [model.draw_step() for _ in range(steps)]
    mesa = None
    try:
        from buzzpipe.simulate.mesa_model import mesa_model

        mesa = mesa_model(model)
    except BuzzpipeError:
        print("Mesa is not installed: the Mesa peer is skipped (pip install 'mesa>=3.1')")
    kernel_times, reference_times, mesa_times = [], [], []
    for step_draws in draws:
        start = time.process_time()
        model.shock(step_draws.shock_loci, step_draws.shock_tables)
        learn(model.state, step_draws, model.landscape, parameters)
        kernel_times.append(time.process_time() - start)
        start = time.process_time()
        reference.step(step_draws)
        reference_times.append(time.process_time() - start)
        if mesa is not None:
            start = time.process_time()
            mesa.step(step_draws)
            mesa_times.append(time.process_time() - start)
            assert mesa.strings == model.state.strings.tolist(), "kernel and Mesa disagree"
        same = model.state.strings.tolist() == [agent.string for agent in reference.agents]
        assert same, "kernel and per-agent loop disagree"
    agents = model.network.n_agents
    mesa_rate = agents / statistics.median(mesa_times) if mesa_times else None
    return (
        agents / statistics.median(kernel_times),
        agents / statistics.median(reference_times),
        mesa_rate,
    )


def full_steps_per_second(parameters: ModelParameters, cities: dict, steps: int) -> float:
    model = Simulation(parameters, Cities.from_mapping(cities), np.random.default_rng(1))
    start = time.process_time()
    for _ in range(steps):
        model.step()
        model.city_indicators()
    return model.network.n_agents * steps / (time.process_time() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=240, help="steps of the survey-sized run")
    parser.add_argument("--reference-steps", type=int, default=10, help="steps timed per loop")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    parameters = ModelParameters()
    with threadpool_limits(1):
        print(f"economy: {sum(NORWAY.values())} firms in 5 cities + {parameters.world_size} "
              "foreign agents, N = 20, K = 5")  # fmt: skip
        kernel_rate, reference_rate, mesa_rate = rules_per_second(
            parameters, NORWAY, args.reference_steps, seed=1
        )
        if mesa_rate is not None:
            import mesa

            ratio = kernel_rate / mesa_rate
            print(f"rules only, same draws: Mesa {mesa.__version__} model "
                  f"{mesa_rate:,.0f} agent-steps/s; kernel / Mesa {ratio:,.0f}x")  # fmt: skip
        print(f"rules only, same draws: kernel {kernel_rate:,.0f} agent-steps/s; "
              f"per-agent loop {reference_rate:,.0f} agent-steps/s; "
              f"ratio {kernel_rate / reference_rate:,.0f}x")  # fmt: skip
        full = full_steps_per_second(parameters, NORWAY, 60)
        print(
            f"full kernel step (draws, rules, bookkeeping, indicators): {full:,.0f} agent-steps/s"
        )
        for firms in (20_000, 100_000):
            big = {f"city{i}": firms // 5 for i in range(5)}
            rate = full_steps_per_second(parameters.replace(world_size=firms // 4), big, 10)
            print(f"full kernel step, {firms:,} firms: {rate:,.0f} agent-steps/s")
        times = []
        for repeat in range(args.repeats):
            start = time.process_time()
            simulate(parameters, NORWAY, args.steps, seed=repeat)
            times.append(time.process_time() - start)
        print(f"one survey-sized run ({args.steps} steps, series and survey windows): "
              f"median {statistics.median(times):.2f} s over {args.repeats}")  # fmt: skip
        tracemalloc.start()
        simulate(parameters, NORWAY, args.steps, seed=0)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"peak memory traced in that run: {peak / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
