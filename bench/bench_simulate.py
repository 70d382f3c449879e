"""Benchmark the simulation kernel against a Mesa model and a per-agent Python loop of the rules.

Prints, for the same draws, agent-steps per second of the rules (shock, learning, adoption) in the
compiled kernel (numba, the default engine), the vectorised numpy kernel, a plain per-agent Python
loop (``buzzpipe.simulate.reference``) and, where Mesa is installed, a Mesa model of the same
rules (``buzzpipe.simulate.mesa_model``); the ratio compiled / Mesa as min and median over
``--repeats`` runs (each a fresh economy, timed over ``--reference-steps`` steps after 20 steps of
burn-in); the full step of a run (keyed draws, shock, rules, bookkeeping, city and world
indicators) at 2,004 and 100,000 firms, fused and with the draws as arrays; the time of one
survey-sized run, and its peak memory. Times are CPU time of this process (``time.process_time``,
BLAS pinned to one thread), which a shared machine disturbs less than wall time; the ratios are
measured in the same run, and the load average is printed (the machine may be shared). Each
engine runs the timed steps back to back, as in a real run; every step is checked afterwards:
all engines end on the same strings.

    PYTHONPATH=src python bench/bench_simulate.py [--steps 240] [--reference-steps 10]
"""

from __future__ import annotations

import argparse
import os
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
        model.step(model.draw_step())  # (the compiled rules on given draws compile here)
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
    parameters: ModelParameters, cities: dict, steps: int, seed: int, burn_in: int = 20
) -> tuple[float, float]:
    """Agent-steps per second of the full step of a run (keyed draws, shock, rules, bookkeeping,
    city and world indicators), fused (``Simulation.step()``: draws and rules in one compiled
    pass) and with the draws as arrays (``draw_step`` then ``step(draws)``), alternated step by
    step on two copies of one economy after ``burn_in`` steps; both end on the same strings."""
    fused = Simulation(parameters, Cities.from_mapping(cities), seed)
    drawn = Simulation(parameters, Cities.from_mapping(cities), seed)
    for _ in range(burn_in):  # compiles outside the clock, and leaves the random start
        fused.step()
        drawn.step(drawn.draw_step())
    spent = {"fused": 0.0, "drawn": 0.0}
    for _ in range(steps):
        start = time.process_time()
        fused.step()
        fused.city_indicators()
        fused.world_indicators()
        middle = time.process_time()
        drawn.step(drawn.draw_step())
        drawn.city_indicators()
        drawn.world_indicators()
        spent["fused"] += middle - start
        spent["drawn"] += time.process_time() - middle
    assert fused.state.strings.tobytes() == drawn.state.strings.tobytes()
    agents = fused.network.n_agents * steps
    return agents / spent["fused"], agents / spent["drawn"]


def _min_median(values: list[float]) -> str:
    return f"min {min(values):,.0f}, median {statistics.median(values):,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=240, help="steps of the survey-sized run")
    parser.add_argument("--reference-steps", type=int, default=10, help="steps timed per loop")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    parameters = ModelParameters()
    print("load average (1, 5, 15 min) at the start: " + ", ".join(
        f"{load:.1f}" for load in os.getloadavg()))  # fmt: skip
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
        for firms, steps in ((sum(NORWAY.values()), 240), (100_000, 20)):
            big = firms == 100_000
            cities = {f"city{i}": firms // 5 for i in range(5)} if big else NORWAY
            world = firms // 4 if big else parameters.world_size
            rates = [
                full_steps_per_second(parameters.replace(world_size=world), cities, steps, repeat)
                for repeat in range(args.repeats)
            ]
            print(f"full step (draws, shock, rules, bookkeeping, city and world indicators), "
                  f"{firms:,} firms + {world:,} foreign agents = {firms + world:,} agents, "
                  f"{steps} steps after 20: "
                  f"agent-steps/s fused {_min_median([fused for fused, _ in rates])}; "
                  f"draws as arrays {_min_median([drawn for _, drawn in rates])}")  # fmt: skip
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
    print("load average (1, 5, 15 min) at the end: " + ", ".join(
        f"{load:.1f}" for load in os.getloadavg()))  # fmt: skip


if __name__ == "__main__":
    main()
