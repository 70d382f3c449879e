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
from buzzpipe.output_folder import MANIFEST, check_output_folder, write_folder
from buzzpipe.simulate.experiments import openness_sweep, pipelines_by_city_size, summarise
from buzzpipe.simulate.plots import plot_experiment, plot_series
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
) -> list[Path]:
    """Run the scenario's experiment and write its files into ``out``; returns the paths.

    ``summary``, when given, receives the lines of what happened (``simulate.summary``) after the
    files are written."""
    out = Path(out)
    check_output_folder(out, kind="simulation")  # before the simulation runs
    tables: dict[str, pd.DataFrame] = {}
    figures: list[tuple[Callable, tuple, str]] = []
    args = (scenario.parameters, scenario.cities, scenario.steps, scenario.seed,
            scenario.replicates)  # fmt: skip
    if scenario.experiment == "single":
        results = simulate_replicates(*args)
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
            arm, table = "pipelines", pipelines_by_city_size(*args, progress=progress)
        else:
            arm = "omega"
            table = openness_sweep(*args, omega_values=scenario.omega_values, progress=progress)
        means = summarise(table, arm)
        tables["experiment.csv"] = table
        tables["summary.csv"] = means
        figures.append((plot_experiment, (means, arm, scenario.replicates), "experiment.png"))
        lines = experiment_summary_lines(means, arm, scenario.replicates)

    manifest = {
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
        "files": [*tables, *([name for *_, name in figures] if plots else [])],
    }
    files: dict[str, bytes | Callable[[Path], None]] = {
        name: spreadsheet_safe_frame(table)
        .to_csv(index=False, float_format="%.10g")
        .encode("utf-8")
        for name, table in tables.items()
    }
    if plots:
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
