"""Benchmark the simulation kernel against a Mesa model and a per-agent Python loop of the rules.

Prints, for the same draws, agent-steps per second of the rules (shock, learning, adoption) in the
compiled kernel (numba, the default engine), the vectorised numpy kernel, a plain per-agent Python
loop (``buzzpipe.simulate.reference``) and, where Mesa is installed, a Mesa model of the same
rules (``buzzpipe.simulate.mesa_model``); the ratio compiled / Mesa as min and median over
``--repeats`` runs (each a fresh economy, timed over ``--reference-steps`` steps after 20 steps of
burn-in); the full step (draws, rules, bookkeeping, city indicators) at 2,004, 20,000 and 100,000
firms; the time of one survey-sized run, and its peak memory. Times are CPU time of this process
(``time.process_time``, BLAS pinned to one thread), which a shared machine disturbs less than
wall time; the ratios are measured in the same run. Each engine runs the timed steps back to back,
as in a real run; every step is checked afterwards: all engines end on the same strings.

    PYTHONPATH=src python bench/bench_simulate.py [--steps 240] [--reference-steps 10]
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc

from threadpoolctl import threadpool_limits

from buzzpipe.errors import BuzzpipeError
from buzzpipe.simulate.kernel import Simulation
from buzzpipe.simulate.network import Cities
from buzzpipe.simulate.parameters import ModelParameters
from buzzpipe.simulate.reference import ReferenceModel
from buzzpipe.simulate.run import simulate

NORWAY = {"Oslo": 874, "Bergen": 285, "Stavanger": 190, "Trondheim": 181, "Kristiansand": 74}


def rules_per_second(parameters: ModelParameters, cities: dict, steps: int, seed: int) -> dict:
    """Agent-steps per second of the rules in each engine, on equal draws (one fresh economy)."""
    model = Simulation(parameters, Cities.from_mapping(cities), seed)
    vectorised = Simulation(parameters, Cities.from_mapping(cities), seed, engine="numpy")
    for _ in range(20):  # leave the random start: learning is busiest then
        model.step()
        vectorised.step()
    reference = ReferenceModel(
        parameters, model.landscape.tables.tolist(), model.state.strings.tolist(),
        model.exponents.tolist(),
    )  # fmt: skip
    draws = [model.draw_step() for _ in range(steps)]
    mesa = None  # built before the compiled step moves on: all engines start from one state
    try:
        from buzzpipe.simulate.mesa_model import mesa_model

        mesa = mesa_model(model)
    except BuzzpipeError:
        print("Mesa is not installed: the Mesa peer is skipped (pip install 'mesa>=3.1')")
    # each engine runs all the steps back to back (as in a real run), recording its strings
    times: dict[str, float] = {}
    strings: dict[str, list] = {}

    def timed(name: str, step, read) -> None:
        times[name], strings[name] = 0.0, []
        for step_draws in draws:
            start = time.process_time()
            step(step_draws)
            times[name] += time.process_time() - start
            strings[name].append(read())

    def compiled_step(step_draws) -> None:
        model.shock(step_draws.shock_loci, step_draws.shock_tables)
        model.learn(step_draws)

    def numpy_step(step_draws) -> None:
        vectorised.shock(step_draws.shock_loci, step_draws.shock_tables)
        vectorised.learn(step_draws)

    timed("compiled", compiled_step, lambda: model.state.strings.tolist())
    timed("numpy", numpy_step, lambda: vectorised.state.strings.tolist())
    timed("loop", reference.step, lambda: [agent.string for agent in reference.agents])
    if mesa is not None:
        timed("mesa", mesa.step, lambda: mesa.strings)
    for name in strings:
        assert strings[name] == strings["compiled"], f"{name} and the compiled step disagree"
    agents = model.network.n_agents * steps
    return {name: agents / spent for name, spent in times.items() if spent > 0}


def full_steps_per_second(
    parameters: ModelParameters, cities: dict, steps: int
) -> tuple[float, float]:
    """Agent-steps per second of the full step (with indicators) and of its rules alone."""
    model = Simulation(parameters, Cities.from_mapping(cities), 1)
    model.step()  # compile outside the clock
    full = rules = 0.0
    for _ in range(steps):
        start = time.process_time()
        draws = model.draw_step()
        middle = time.process_time()
        model.shock(draws.shock_loci, draws.shock_tables)
        adoption = model.learn(draws)
        rules += time.process_time() - middle
        model.step_count += 1
        model.last_change[adoption.agents] = model.step_count
        model._track(adoption)
        model.city_indicators()
        full += time.process_time() - start
    agents = model.network.n_agents * steps
    return agents / full, agents / rules


def _min_median(values: list[float]) -> str:
    return f"min {min(values):,.0f}, median {statistics.median(values):,.0f}"


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
        simulate(parameters, {"a": 20}, 12, seed=0)  # compile the kernel outside the clock
        runs = [
            rules_per_second(parameters, NORWAY, args.reference_steps, seed=repeat)
            for repeat in range(args.repeats)
        ]
        for name in ("compiled", "numpy", "loop", "mesa"):
            if name in runs[0]:
                rates = [run[name] for run in runs]
                print(f"rules only, same draws, {name}: agent-steps/s {_min_median(rates)}")
        if "mesa" in runs[0]:
            import mesa

            ratios = [run["compiled"] / run["mesa"] for run in runs]
            print(f"compiled / Mesa {mesa.__version__} over {args.repeats} runs: "
                  f"min {min(ratios):,.0f}x, median {statistics.median(ratios):,.0f}x")  # fmt: skip
        ratios = [run["compiled"] / run["loop"] for run in runs]
        print(f"compiled / per-agent loop: min {min(ratios):,.0f}x, "
              f"median {statistics.median(ratios):,.0f}x")  # fmt: skip
        rates = [full_steps_per_second(parameters, NORWAY, 60) for _ in range(args.repeats)]
        print(f"full step (draws, rules, bookkeeping, indicators), 2,004 agents: "
              f"agent-steps/s {_min_median([full for full, _ in rates])}")  # fmt: skip
        for firms in (20_000, 100_000):
            big = {f"city{i}": firms // 5 for i in range(5)}
            rates = [
                full_steps_per_second(parameters.replace(world_size=firms // 4), big, 10)
                for _ in range(args.repeats)
            ]
            print(f"{firms:,} firms + {firms // 4:,} foreign agents: full step agent-steps/s "
                  f"{_min_median([full for full, _ in rates])}; rules only "
                  f"{_min_median([rules for _, rules in rates])}")  # fmt: skip
        times = []
        for repeat in range(args.repeats):
            start = time.process_time()
            simulate(parameters, NORWAY, args.steps, seed=repeat)
            times.append(time.process_time() - start)
        print(f"one survey-sized run ({args.steps} steps, series and survey windows): "
              f"min {min(times):.2f} s, median {statistics.median(times):.2f} s")  # fmt: skip
        tracemalloc.start()
        simulate(parameters, NORWAY, args.steps, seed=0)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"peak memory traced in that run: {peak / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
