"""Parameters of the knowledge-diffusion model, with their defaults and checks.

Each field is one mechanism's knob; docs/simulation.md writes the model down and says where a
default comes from (the literature, the Norwegian survey, or an assumption).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

from buzzpipe.errors import InputError
from buzzpipe.simulate.landscape import MAX_K, MAX_LOCI
from buzzpipe.survey.schema import PARTNER_TYPES

WORLD_NOVELTY = ("evolving", "none")


@dataclass(frozen=True)
class ModelParameters:
    """All knobs of one simulated economy (cities, world pool, ties, learning, landscape)."""

    n_loci: int = 20  # N: bits of a technology
    k: int = 5  # K: epistatic neighbours of each locus
    turbulence_interval: int = 5  # tau: steps between landscape shocks (0 = static landscape)
    turbulence_share: float = 0.2  # phi: share of loci whose tables are redrawn at a shock
    world_size: int = 400  # foreign agents in the world pool
    world_novelty: str = "evolving"  # "none": a pipeline hands back the learner's own knowledge
    regional_partners: float = 1.0  # mean partner ties a firm names inside its city
    national_partners: float = 0.1  # mean partner ties a firm names in other cities
    buzz_contacts: int = 1  # random face-to-face contacts per firm and step within its city
    pipeline_share: float = 0.45  # share of firms with at least one pipeline abroad
    pipelines_per_firm: float = 2.0  # mean pipelines of a pipeline firm (at least one)
    world_partners: float = 3.0  # mean ties a foreign agent names inside the world pool
    tie_activity: float = 0.25  # chance that a firm's partner tie or pipeline is used in a step
    world_tie_activity: float = 0.25  # the same for ties inside the world pool
    copy_share: float = 0.8  # chance that a bit of the crossover mask takes the source's bit
    absorption_exponent: float = 1.0  # absorb with chance (1 - distance/N) ** exponent
    omega: float = 0.0  # openness: chance a source shares locally without gaining itself
    explore_rate: float = 0.05  # chance a firm tries one random bit flip in a step
    world_explore_rate: float = 0.3  # the same for foreign agents
    innovation_threshold: float = 0.04  # fitness gain in a survey window that counts as news
    survey_window: int = 12  # steps of a survey's reference period
    product_loci_share: float = 0.5  # the first share of loci are product, the rest process
    partner_type_weights: tuple[float, ...] = ()  # weights over PARTNER_TYPES (empty = equal)

    def validate(self, file: str | None = None) -> ModelParameters:
        """Raise an InputError naming the first parameter out of its range; return self."""
        ranges = {
            "n_loci": (1, MAX_LOCI),
            "turbulence_interval": (0, math.inf),
            "turbulence_share": (0.0, 1.0),
            "world_size": (1, math.inf),
            "regional_partners": (0.0, math.inf),
            "national_partners": (0.0, math.inf),
            "buzz_contacts": (0, 64),
            "pipeline_share": (0.0, 1.0),
            "pipelines_per_firm": (1.0, math.inf),
            "world_partners": (0.0, math.inf),
            "tie_activity": (0.0, 1.0),
            "world_tie_activity": (0.0, 1.0),
            "copy_share": (0.0, 1.0),
            "absorption_exponent": (0.0, math.inf),
            "omega": (0.0, 1.0),
            "explore_rate": (0.0, 1.0),
            "world_explore_rate": (0.0, 1.0),
            "innovation_threshold": (0.0, 1.0),
            "survey_window": (1, math.inf),
            "product_loci_share": (0.0, 1.0),
        }
        for name, (low, high) in ranges.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InputError(
                    "parameter is not a number", file=file, column=name, value=value,
                    expected="a number",
                )  # fmt: skip
            if not (low <= value <= high) or math.isnan(value):
                raise InputError(
                    "parameter out of range", file=file, column=name, value=value,
                    expected=f"a value in [{low}, {high}]",
                )  # fmt: skip
        if not 0 <= self.k <= min(self.n_loci - 1, MAX_K):
            raise InputError(
                "parameter out of range", file=file, column="k", value=self.k,
                expected=f"an integer in [0, min(n_loci - 1, {MAX_K})]",
            )  # fmt: skip
        if self.world_novelty not in WORLD_NOVELTY:
            raise InputError(
                "unknown world_novelty", file=file, column="world_novelty",
                value=self.world_novelty, expected=" or ".join(map(repr, WORLD_NOVELTY)),
            )  # fmt: skip
        weights = self.partner_type_weights
        if weights and len(weights) != len(PARTNER_TYPES):
            raise InputError(
                "one weight per partner type is needed", file=file,
                column="partner_type_weights", value=list(weights),
                expected=f"{len(PARTNER_TYPES)} weights for " + ", ".join(PARTNER_TYPES),
            )  # fmt: skip
        if weights and (any(w < 0 for w in weights) or sum(weights) <= 0):
            raise InputError(
                "partner type weights must be non-negative with a positive sum",
                file=file, column="partner_type_weights", value=list(weights),
            )  # fmt: skip
        return self

    @classmethod
    def from_mapping(
        cls, mapping: Mapping[str, object], file: str | None = None
    ) -> ModelParameters:
        """Parameters from a TOML table: unknown keys and wrong types are input errors."""
        fields = {field.name: field for field in dataclasses.fields(cls)}
        values: dict[str, object] = {}
        for key, value in mapping.items():
            if key not in fields:
                raise InputError(
                    "unknown model parameter", file=file, column=key,
                    expected="one of " + ", ".join(fields),
                )  # fmt: skip
            default = fields[key].default
            if isinstance(default, int) and not isinstance(default, bool):
                if isinstance(value, bool) or not isinstance(value, int):
                    raise InputError(
                        "parameter must be an integer", file=file, column=key, value=value
                    )
            elif isinstance(default, float):
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise InputError(
                        "parameter must be a number", file=file, column=key, value=value
                    )
                value = float(value)
            elif isinstance(default, tuple):
                if not isinstance(value, list) or not all(
                    isinstance(v, int | float) and not isinstance(v, bool) for v in value
                ):
                    raise InputError(
                        "parameter must be a list of numbers", file=file, column=key, value=value
                    )
                value = tuple(float(v) for v in value)
            elif isinstance(default, str) and not isinstance(value, str):
                raise InputError("parameter must be a string", file=file, column=key, value=value)
            values[key] = value
        return cls(**values).validate(file)

    def replace(self, **changes: object) -> ModelParameters:
        """A copy with some fields changed, validated."""
        return dataclasses.replace(self, **changes).validate()
