"""Scenario files (TOML): the cities, the model parameters, the run and which experiment to run.

```toml
[run]
experiment = "single"      # or "pipelines_by_city_size", "openness"
steps = 240
seed = 2011
replicates = 1
omega_values = [0.0, 0.25, 0.5, 0.75, 1.0]   # openness only

[cities]                   # name = number of firms, in this order
Oslo = 700
Kristiansand = 104

[model]                    # any field of ModelParameters; the rest keep their defaults
omega = 0.0
```
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from buzzpipe.errors import InputError
from buzzpipe.simulate.network import Cities
from buzzpipe.simulate.parameters import ModelParameters

EXPERIMENTS = ("single", "pipelines_by_city_size", "openness")
RUN_KEYS = ("experiment", "steps", "seed", "replicates", "omega_values")


@dataclass(frozen=True)
class Scenario:
    """A validated scenario file."""

    name: str
    parameters: ModelParameters
    cities: Cities
    experiment: str = "single"
    steps: int = 240
    seed: int = 0
    replicates: int = 1
    omega_values: tuple[float, ...] = field(default=(0.0, 0.25, 0.5, 0.75, 1.0))

    def with_overrides(
        self, *, seed: int | None = None, replicates: int | None = None, steps: int | None = None
    ) -> Scenario:
        """The scenario with command-line overrides applied (and checked)."""
        values = {
            "seed": self.seed if seed is None else seed,
            "replicates": self.replicates if replicates is None else replicates,
            "steps": self.steps if steps is None else steps,
        }
        _check_run(values, self.parameters, file=None)
        return Scenario(
            self.name,
            self.parameters,
            self.cities,
            self.experiment,
            values["steps"],
            values["seed"],
            values["replicates"],
            self.omega_values,
        )


def _check_run(run: dict, parameters: ModelParameters, file: str | None) -> None:
    for key in ("steps", "seed", "replicates"):
        value = run[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < (key != "seed"):
            raise InputError(
                "must be a positive integer" if key != "seed" else "must be an integer >= 0",
                file=file,
                column=f"run.{key}",
                value=value,
            )
    if run["steps"] < parameters.survey_window:
        raise InputError(
            "the run is shorter than one survey window",
            file=file,
            column="run.steps",
            value=run["steps"],
            expected=f"at least model.survey_window = {parameters.survey_window}",
        )


def parse_scenario(text: str, *, name: str, file: str | None = None) -> Scenario:
    """A Scenario from TOML text; every problem is an InputError naming the file and key."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"not valid TOML: {error}", file=file) from None
    for section in data:
        if section not in ("run", "cities", "model"):
            raise InputError(
                "unknown section", file=file, column=section, expected="[run], [cities] and [model]"
            )
    if "cities" not in data or not isinstance(data["cities"], dict):
        raise InputError(
            "missing [cities]",
            file=file,
            column="cities",
            expected="a table of city name = number of firms",
        )
    model = data.get("model", {})
    if not isinstance(model, dict):
        raise InputError("[model] must be a table", file=file, column="model")
    parameters = ModelParameters.from_mapping(model, file=file)
    cities = Cities.from_mapping(data["cities"], file=file)
    run = data.get("run", {})
    if not isinstance(run, dict):
        raise InputError("[run] must be a table", file=file, column="run")
    for key in run:
        if key not in RUN_KEYS:
            raise InputError(
                "unknown run setting",
                file=file,
                column=f"run.{key}",
                expected="one of " + ", ".join(RUN_KEYS),
            )
    settings = {"experiment": "single", "steps": 240, "seed": 0, "replicates": 1} | run
    if settings["experiment"] not in EXPERIMENTS:
        raise InputError(
            "unknown experiment",
            file=file,
            column="run.experiment",
            value=settings["experiment"],
            expected=" or ".join(EXPERIMENTS),
        )
    _check_run(settings, parameters, file)
    omega_values = settings.get("omega_values", [0.0, 0.25, 0.5, 0.75, 1.0])
    if (
        not isinstance(omega_values, list)
        or not omega_values
        or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 1
            for v in omega_values
        )
    ):
        raise InputError(
            "omega_values must be a list of numbers in [0, 1]",
            file=file,
            column="run.omega_values",
            value=omega_values,
        )
    return Scenario(
        name,
        parameters,
        cities,
        settings["experiment"],
        settings["steps"],
        settings["seed"],
        settings["replicates"],
        tuple(float(v) for v in omega_values),
    )


def read_scenario(path: str | Path) -> Scenario:
    """Read a scenario file from disk."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("scenario file not found", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read the scenario file: {error}", file=str(path)) from None
    return parse_scenario(text, name=path.stem, file=str(path))


def builtin_scenarios() -> list[str]:
    """Names of the scenarios that ship with buzzpipe."""
    folder = resources.files("buzzpipe.simulate") / "scenarios"
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


def builtin_scenario(name: str) -> Scenario:
    """A scenario that ships with buzzpipe, by name."""
    names = builtin_scenarios()
    if name not in names:
        raise InputError("unknown built-in scenario", value=name, expected=" or ".join(names))
    resource = resources.files("buzzpipe.simulate") / "scenarios" / f"{name}.toml"
    return parse_scenario(resource.read_text(encoding="utf-8"), name=name, file=f"<{name}>")
