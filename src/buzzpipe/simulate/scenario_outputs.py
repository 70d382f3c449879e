"""Run a scenario and write what it produced: surveys, time series, experiment tables, figures.

Everything is computed before the first file is written, and the files are written as one
folder (``output_folder``): all of them or none, an earlier run's files replaced whole.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pandas as pd

from buzzpipe import __version__
from buzzpipe.csv_safety import spreadsheet_safe_frame
from buzzpipe.errors import InputError
from buzzpipe.output_folder import MANIFEST, check_output_folder, write_folder
from buzzpipe.simulate.experiments import openness_sweep, pipelines_by_city_size, summarise
from buzzpipe.simulate.parallel import check_processes
from buzzpipe.simulate.plots import plot_experiment, plot_series
from buzzpipe.simulate.policy import (
    MIN_BURN_IN_WINDOWS,
    TARGETING,
    paired_effects,
    policy_experiment,
)
from buzzpipe.simulate.run import simulate_replicates
from buzzpipe.simulate.scenario import Scenario
from buzzpipe.simulate.summary import experiment_summary_lines, summary_lines
from buzzpipe.simulate.survey_output import survey_frame, to_survey


def _stack(frames: list[pd.DataFrame], replicates: int) -> pd.DataFrame:
    if replicates == 1:
        return frames[0]
    return pd.concat(
        [frame.assign(replicate=index).set_index("replicate").reset_index()
         for index, frame in enumerate(frames)],
        ignore_index=True,
    )  # fmt: skip


def run_scenario(
    scenario: Scenario,
    out: str | Path,
    *,
    plots: bool = True,
    progress: Callable[[str], None] | None = None,
    summary: Callable[[str], None] | None = None,
    processes: int = 1,
) -> list[Path]:
    """Run the scenario's experiment and write its files into ``out``; returns the paths.

    ``summary``, when given, receives the lines of what happened (``simulate.summary``) after the
    files are written."""
    out = Path(out)
    check_processes(processes)
    check_output_folder(out, kind="simulation")  # before the simulation runs
    tables: dict[str, pd.DataFrame] = {}
    figures: list[tuple[Callable, tuple, str]] = []
    args = (scenario.parameters, scenario.cities, scenario.steps, scenario.seed,
            scenario.replicates)  # fmt: skip
    if scenario.experiment == "single":
        results = simulate_replicates(*args, processes=processes)
        surveys = [survey_frame(r) for r in results]
        for survey in surveys:
            to_survey(survey, source=f"simulated survey of scenario {scenario.name}")  # validates
        tables["survey.csv"] = _stack(surveys, scenario.replicates)
        tables["series.csv"] = _stack([r.series for r in results], scenario.replicates)
        tables["windows.csv"] = _stack([r.windows for r in results], scenario.replicates)
        figures.append((plot_series, (tables["series.csv"],), "series.png"))
        lines = summary_lines(results)
    else:
        if scenario.experiment == "pipelines_by_city_size":
            arm = "pipelines"
            table = pipelines_by_city_size(*args, progress=progress, processes=processes)
        else:
            arm = "omega"
            table = openness_sweep(*args, omega_values=scenario.omega_values, progress=progress,
                                   processes=processes)  # fmt: skip
        means = summarise(table, arm)
        tables["experiment.csv"] = table
        tables["summary.csv"] = means
        figures.append((plot_experiment, (means, arm, scenario.replicates), "experiment.png"))
        lines = experiment_summary_lines(means, arm, scenario.replicates)

    return _write(scenario, out, tables, figures if plots else [], lines, summary)


def _manifest(scenario: Scenario, files: list[str], **extra) -> dict:
    return {
        "buzzpipe_version": __version__,
        "scenario": scenario.name,
        "experiment": scenario.experiment,
        "steps": scenario.steps,
        "seed": scenario.seed,
        "replicates": scenario.replicates,
        "replicate_seeds": (
            f"numpy.random.SeedSequence({scenario.seed}).spawn({scenario.replicates})"
        ),
        "cities": dict(zip(scenario.cities.names, scenario.cities.sizes.tolist(), strict=True)),
        "parameters": {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in dataclasses.asdict(scenario.parameters).items()
        },
        **extra,
        "files": files,
    }


def _write(
    scenario: Scenario,
    out: Path,
    tables: dict[str, pd.DataFrame],
    figures: list[tuple[Callable, tuple, str]],
    lines: list[str],
    summary: Callable[[str], None] | None,
    **extra,
) -> list[Path]:
    manifest = _manifest(scenario, [*tables, *(name for *_, name in figures)], **extra)
    files: dict[str, bytes | Callable[[Path], None]] = {
        name: spreadsheet_safe_frame(table)
        .to_csv(index=False, float_format="%.10g")
        .encode("utf-8")
        for name, table in tables.items()
    }
    for plot, plot_args, name in figures:
        files[name] = partial(_draw, plot, plot_args)
    files["manifest.json"] = (json.dumps(manifest, indent=2) + "\n").encode("utf-8")
    written = write_folder(out, files, kind="simulation")
    if summary is not None:
        for line in lines:
            summary(line)
    return [path for path in written if path.name != MANIFEST]


def _draw(plot: Callable, plot_args: tuple, path: Path) -> None:
    plot(*plot_args, path)


def check_policy_options(
    scenario: Scenario, targeting: str, treated: int, burn_in: int, follow: int
) -> None:
    """Refuse impossible policy experiments before any work, with one line each."""
    if targeting not in TARGETING:
        expected = ", ".join(TARGETING)
        raise InputError("unknown --policy targeting", value=targeting, expected=expected)
    firms = scenario.cities.n_firms
    if not 1 <= treated <= firms:
        raise InputError("--treated out of range", value=treated, expected=f"1 to {firms} firms")
    if burn_in < MIN_BURN_IN_WINDOWS:
        raise InputError("--burn-in too short", value=burn_in,
                         expected=f"at least {MIN_BURN_IN_WINDOWS} survey windows")  # fmt: skip
    if follow < 1:
        raise InputError("--follow too short", value=follow, expected="at least 1 survey window")
    if scenario.replicates < 2:
        raise InputError("a policy experiment needs at least 2 replicates (paired intervals)",
                         value=scenario.replicates, expected="--replicates 2 or more")  # fmt: skip
    if any(size < 2 for size in scenario.cities.sizes):
        raise InputError("every city needs two firms or more for the local arm's new partner",
                         expected="cities of at least 2 firms")  # fmt: skip


def run_policy_scenario(
    scenario: Scenario,
    out: str | Path,
    *,
    targeting: str,
    treated: int,
    burn_in: int = MIN_BURN_IN_WINDOWS,
    follow: int = 2,
    summary: Callable[[str], None] | None = None,
    processes: int = 1,
) -> list[Path]:
    """The study's programmes as interventions in the scenario's world (``simulate.policy``):
    per replicate and arm ``policy.csv``; the paired effects ``effects.csv``."""
    out = Path(out)
    check_policy_options(scenario, targeting, treated, burn_in, follow)
    check_processes(processes)
    check_output_folder(out, kind="simulation")
    try:
        table = policy_experiment(
            scenario.parameters, scenario.cities, scenario.seed, scenario.replicates,
            treated_firms=treated, targeting=targeting, burn_in_windows=burn_in,
            follow_windows=follow, processes=processes,
        )  # fmt: skip
    except ValueError as error:  # too few eligible firms (no_pipeline)
        raise InputError(str(error), expected="fewer --treated firms") from None
    effects = paired_effects(table)
    lines = [
        f"policy experiment: {treated} firms ({targeting}), burn-in {burn_in} windows, "
        f"effects over {follow} windows after; change in the share innovating per window, arm "
        f"minus control paired by replicate, mean [95% t interval] over {scenario.replicates} "
        "replicates:"
    ]
    for _, row in effects.iterrows():
        lines.append(
            f"  +1 {row['arm']} partner type, {row['group']}: {row['effect']:+.4f} "
            f"[{row['low']:+.4f}, {row['high']:+.4f}]"
        )
    tables = {"policy.csv": table, "effects.csv": effects}
    policy = {"targeting": targeting, "treated": treated, "burn_in_windows": burn_in,
              "follow_windows": follow}  # fmt: skip
    return _write(scenario, out, tables, [], lines, summary, policy=policy)
